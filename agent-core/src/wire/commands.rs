//! `/api/nodes/{node_id}/commands`: asking a node to do something (ARCHITECTURE §5.9). The hub
//! never opens a connection to an agent: a command is a hub-owned document delivered in that
//! node's changes feed, and the node answers with its own result document.

use serde::{Deserialize, Serialize};

use crate::doc::{Command, CommandDoc, CommandResultDoc};

/// `POST /api/nodes/{node_id}/commands`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCommand {
    pub command: Command,
}

/// A command and, once the node has answered, its result.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandView {
    pub command: CommandDoc,
    /// `null` until the node has picked the command up and its answer has reached the hub.
    pub result: Option<CommandResultDoc>,
}
