//! `node`: one machine or bridge. Two owners, merged field by field at the hub:
//! the agent writes its runtime fields, the hub its configuration and observed status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{default_true, Timestamp};
use crate::ids::{NodeDocId, NodeId, Rev};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeDoc {
    #[serde(rename = "_id")]
    pub id: NodeDocId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub node_id: NodeId,

    // --- hub-owned configuration (the agent proposes `friendly_name` when it creates the doc) ---
    pub friendly_name: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default)]
    pub network_mounts: Vec<NetworkMount>,

    // --- agent-owned runtime fields ---
    pub platform: Platform,
    pub hostname: String,
    pub agent_version: String,
    /// `None` for a physical node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<NodeRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferEndpoint>,
    /// Query capabilities advertised by this node's plugins.
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub watch_paths: Vec<String>,
    /// What the agent says of itself: online while it runs, offline after a clean shutdown.
    pub status: NodeStatus,
    pub started_at: DateTime<Utc>,
    pub last_heartbeat: DateTime<Utc>,

    // --- hub-owned observation, derived from heartbeats ---
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_status: Option<NodeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}

impl TransferEndpoint {
    /// Whether `endpoint` is an `https://host[:port]` URL and nothing more (no credentials, path,
    /// query or fragment): other agents send tokens there, over TLS only.
    pub fn is_valid_endpoint(endpoint: &str) -> bool {
        reqwest::Url::parse(endpoint).is_ok_and(|u| {
            u.scheme() == "https"
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.path() == "/"
                && u.query().is_none()
                && u.fragment().is_none()
        })
    }
}

impl NodeDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.id != NodeDocId::for_node(&self.node_id) {
            return Err(format!("_id must be node::{}", self.node_id));
        }
        use super::bounds::{list, name, path, text, MAX_SHORT_BYTES};
        // A display name the hub lets people edit (1-200 characters); bounded, never NUL.
        text("friendly_name", &self.friendly_name, 1024)?;
        name("hostname", &self.hostname)?;
        text("agent_version", &self.agent_version, MAX_SHORT_BYTES)?;
        text("platform.os", &self.platform.os, MAX_SHORT_BYTES)?;
        text("platform.arch", &self.platform.arch, MAX_SHORT_BYTES)?;
        list("capabilities", &self.capabilities, 256)?;
        for c in &self.capabilities {
            text("capabilities[]", c, MAX_SHORT_BYTES)?;
        }
        list("watch_paths", &self.watch_paths, 4096)?;
        for p in &self.watch_paths {
            path("watch_paths[]", p)?;
        }
        list("network_mounts", &self.network_mounts, 256)?;
        for m in &self.network_mounts {
            text("network_mounts[].mount_id", &m.mount_id, MAX_SHORT_BYTES)?;
            path("network_mounts[].remote_base_export_path", &m.remote_base_export_path)?;
            path("network_mounts[].local_mount_path", &m.local_mount_path)?;
        }
        if let Some(t) = &self.transfer {
            if t.endpoint.len() > 2048 || !TransferEndpoint::is_valid_endpoint(&t.endpoint) {
                return Err(format!("transfer.endpoint {:?} is not an https://host:port URL", t.endpoint));
            }
            text("transfer.cert_fingerprint", &t.cert_fingerprint, MAX_SHORT_BYTES)?;
        }
        Ok(())
    }

    /// The hub's merge of an agent push (DESIGN §3): the agent-owned fields of `self` (the
    /// pushed document) with the hub-owned fields of `stored` (the merged document the hub
    /// holds, if any), seen online at `now`. `_rev` is left for the caller.
    pub fn merged_with_hub_fields(mut self, stored: Option<&NodeDoc>, now: Timestamp) -> NodeDoc {
        if let Some(hub) = stored {
            self.friendly_name = hub.friendly_name.clone();
            self.enabled = hub.enabled;
            self.network_mounts = hub.network_mounts.clone();
        }
        self.observed_status = Some(NodeStatus::Online);
        self.last_seen = Some(now);
        self
    }
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Platform {
    /// `linux`, `macos`, ... (`std::env::consts::OS`)
    pub os: String,
    /// `x86_64`, `aarch64`, ... (`std::env::consts::ARCH`)
    pub arch: String,
}

impl Platform {
    pub fn current() -> Platform {
        Platform { os: std::env::consts::OS.into(), arch: std::env::consts::ARCH.into() }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Online,
    Offline,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    /// A headless node that bridges a cloud service through a `provides_filesystem` plugin.
    Bridge,
}

/// Where other agents fetch this node's files, and the certificate they pin.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TransferEndpoint {
    /// `https://host:port`
    pub endpoint: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub cert_fingerprint: String,
}

/// A network or sync-folder mount through which this node reaches another node's files
/// (access tiers 2 and 3).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NetworkMount {
    pub mount_id: String,
    pub mount_type: NetworkMountType,
    /// The node whose files are reachable through the mount.
    pub remote_node_id: NodeId,
    /// Export path on the remote node that the mount exposes.
    pub remote_base_export_path: String,
    /// Where it is mounted on this node.
    pub local_mount_path: String,
    /// Higher is tried first.
    #[serde(default)]
    pub priority: i32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMountType {
    Cifs,
    Nfs,
    IcloudLocal,
    GdriveLocal,
}
