//! `command` and `command_result`: the one path from the hub to an agent (ARCHITECTURE §5.9).
//! The hub writes a command for one node; that node's changes feed delivers it; the node runs
//! it and writes the result document, which its push delivers to the hub. The hub never opens a
//! connection to an agent.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use super::CrawlSummary;
use crate::ids::{CommandId, CommandResultId, NodeId, Rev};

/// Hub-owned: what one node is asked to do.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandDoc {
    #[serde(rename = "_id")]
    pub id: CommandId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub node_id: NodeId,
    pub command: Command,
    pub issued_at: DateTime<Utc>,
    /// The access key id of whoever asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<String>,
}

/// The commands a node understands. A node that does not know a command (a newer hub) answers
/// it `failed` with a message saying so.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Crawl every watch path now (a reconciliation crawl: what changed while nobody watched).
    Reindex,
    #[serde(other)]
    Unknown,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Reindex => "reindex",
            Command::Unknown => "unknown",
        }
    }
}

/// Agent-owned: how a command went.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandResultDoc {
    #[serde(rename = "_id")]
    pub id: CommandResultId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub command_id: CommandId,
    pub node_id: NodeId,
    pub status: CommandStatus,
    /// For people: what happened, or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A reindex's crawl summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crawl: Option<CrawlSummary>,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Running,
    Done,
    Failed,
}

impl CommandDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        match self.id.node() {
            Some(n) if n == self.node_id => Ok(()),
            _ => Err(format!("_id must be command::{}::{{uuid}}", self.node_id)),
        }
    }
}

impl CommandResultDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.id != CommandResultId::for_command(&self.command_id) {
            return Err(format!("_id must be command_result::{}", self.command_id.key()));
        }
        super::bounds::text("message", self.message.as_deref().unwrap_or(""), super::bounds::MAX_TEXT_BYTES)?;
        match self.command_id.node() {
            Some(n) if n == self.node_id => Ok(()),
            _ => Err("the command is for another node".into()),
        }
    }
}
