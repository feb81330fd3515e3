//! `credential`: an access key. Owner: the hub. Never replicated to agents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccessKeyId, CredentialId, NodeId, Rev};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialDoc {
    #[serde(rename = "_id")]
    pub id: CredentialId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub access_key_id: AccessKeyId,
    pub name: String,
    /// How `verifier` was derived from the secret. The holder of the secret derives the same key.
    pub kdf: KdfParams,
    /// `K = Argon2id(secret, salt)`, lowercase hex. The secret itself is never stored.
    pub verifier: String,
    pub enabled: bool,
    pub role: CredentialRole,
    /// Set for node credentials: the only node that may sign with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KdfParams {
    /// Always `argon2id` in v1.
    pub algorithm: String,
    /// Per-credential salt, lowercase hex (16 bytes).
    pub salt: String,
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialRole {
    /// A person or the CLI: the whole API.
    Admin,
    /// An agent: the `/api/agent/` endpoints, as `node_id` only.
    Node,
}
