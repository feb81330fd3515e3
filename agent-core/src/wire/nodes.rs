//! `/api/nodes`: registration, the hub-owned configuration of a node, its status.

use serde::{Deserialize, Serialize};

use super::credentials::CredentialView;
use super::sync::PublicKey;
use crate::doc::{Document, KdfParams, NetworkMount, NetworkMountType, NodeStatus};
use crate::ids::{AccessKeyId, NodeId, Rev};

/// `POST /api/nodes/register`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The joining node's id (from its `node_id` file); generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    /// A name for the node's credential (default: `node <id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A registered node's credential: the secret appears in this answer only.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registered {
    pub node_id: NodeId,
    pub access_key_id: AccessKeyId,
    pub secret: String,
    pub kdf: KdfParams,
    pub credential: CredentialView,
    pub hub_transfer_public_key: PublicKey,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// What the hub observes of a node and what the node last reported.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeStatusView {
    pub node_id: NodeId,
    pub enabled: bool,
    pub observed_status: Option<NodeStatus>,
    pub last_seen: Option<chrono::DateTime<chrono::Utc>>,
    pub reported_status: NodeStatus,
    pub last_heartbeat: chrono::DateTime<chrono::Utc>,
    pub agent_status: Option<Document>,
    pub utilization: Option<Document>,
    /// Replication towards this node (absent until it pulls from this hub process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReplicaView {
    /// The hub seq its replica had applied at its last pull.
    pub applied_hub_seq: u64,
    pub hub_seq: u64,
    /// Hub changes not yet applied there (not all of them are sent to that node).
    pub behind: u64,
    pub last_pull_at: chrono::DateTime<chrono::Utc>,
}

/// `PATCH /api/nodes/{node_id}`: hub-owned fields only, against the revision read.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePatch {
    /// The revision the client read.
    #[serde(rename = "_rev")]
    pub rev: Rev,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mounts: Option<Vec<NetworkMount>>,
}

impl NodePatch {
    pub fn at(rev: Rev) -> NodePatch {
        NodePatch { rev, friendly_name: None, enabled: None, network_mounts: None }
    }
}

/// `POST /api/nodes/{node_id}/mounts`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMount {
    /// Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_id: Option<String>,
    pub mount_type: NetworkMountType,
    pub remote_node_id: NodeId,
    pub remote_base_export_path: String,
    pub local_mount_path: String,
    #[serde(default)]
    pub priority: i32,
}

/// `PATCH /api/nodes/{node_id}/mounts/{mount_id}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MountPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_type: Option<NetworkMountType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_node_id: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_base_export_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_mount_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}
