//! `agent_status` and `utilization_snapshot`: what an agent reports about itself.
//! Owner: that node's agent.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bounds::{list, path, text, MAX_SHORT_BYTES, MAX_TEXT_BYTES};
use crate::ids::{AgentStatusId, NodeId, PluginName, Rev, UtilizationId};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentStatusDoc {
    #[serde(rename = "_id")]
    pub id: AgentStatusId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub node_id: NodeId,
    pub updated_at: DateTime<Utc>,
    pub overall: Health,
    /// Keyed by subsystem: `store`, `crawler`, `watcher`, `sync`, `transfer`, `vfs`, `cache`, ...
    #[serde(default)]
    pub subsystems: BTreeMap<String, SubsystemStatus>,
    #[serde(default)]
    pub watch_paths: Vec<WatchPathStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_crawl: Option<CrawlSummary>,
    /// The most recent errors, newest first, at most 50.
    #[serde(default)]
    pub recent_errors: Vec<ErrorEntry>,
    /// Plugins found in this node's plugin directory.
    #[serde(default)]
    pub available_plugins: Vec<PluginName>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Healthy,
    Degraded,
    Unhealthy,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubsystemStatus {
    pub health: Health,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the subsystem counted since the process started (bytes sent, ranges fetched, ...).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub counters: std::collections::BTreeMap<String, u64>,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchPathStatus {
    pub path: String,
    pub health: Health,
    pub files: u64,
    /// Directories under this path that could not be watched and are crawled periodically.
    #[serde(default)]
    pub unwatched_dirs: u64,
}

/// The outcome of one crawl: also the crawler's log line.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CrawlSummary {
    pub seen: u64,
    pub added: u64,
    pub changed: u64,
    pub deleted: u64,
    /// Unchanged files skipped by the (path, size, mtime) fast path.
    pub skipped: u64,
    /// Symlinks not followed (policy: the crawl never follows symlinks).
    pub symlinks: u64,
    /// Unreadable directories, non-UTF-8 names, files that vanished mid-crawl, store errors.
    pub errors: u64,
    pub dirs: u64,
    pub duration_ms: u64,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorEntry {
    pub at: DateTime<Utc>,
    pub subsystem: String,
    pub message: String,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UtilizationSnapshotDoc {
    #[serde(rename = "_id")]
    pub id: UtilizationId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub node_id: NodeId,
    pub captured_at: DateTime<Utc>,
    #[serde(default)]
    pub storage: Vec<StorageUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUsage>,
    pub indexed_files: u64,
    pub indexed_bytes: u64,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StorageUsage {
    /// A watch path or the data directory.
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CacheUsage {
    pub bytes: u64,
    pub cap_bytes: u64,
    pub entries: u64,
}

impl AgentStatusDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.id != AgentStatusId::for_node(&self.node_id) {
            return Err(format!("_id must be status::{}", self.node_id));
        }
        if self.subsystems.len() > 64 {
            return Err(format!("subsystems has {} entries (at most 64)", self.subsystems.len()));
        }
        for (name, s) in &self.subsystems {
            text("subsystems key", name, MAX_SHORT_BYTES)?;
            text("subsystems[].message", s.message.as_deref().unwrap_or(""), MAX_TEXT_BYTES)?;
        }
        list("watch_paths", &self.watch_paths, 4096)?;
        for w in &self.watch_paths {
            path("watch_paths[].path", &w.path)?;
        }
        list("recent_errors", &self.recent_errors, 50)?;
        for e in &self.recent_errors {
            text("recent_errors[].subsystem", &e.subsystem, MAX_SHORT_BYTES)?;
            text("recent_errors[].message", &e.message, MAX_TEXT_BYTES)?;
        }
        list("available_plugins", &self.available_plugins, 256)
    }
}

impl UtilizationSnapshotDoc {
    /// The id is `utilization::{node_id}::{unix secs}` of this document's own node: a node
    /// cannot write (or take) a snapshot id of another.
    pub(super) fn validate(&self) -> Result<(), String> {
        let prefix = format!("utilization::{}::", self.node_id);
        let bound = self
            .id
            .as_str()
            .strip_prefix(&prefix)
            .is_some_and(|secs| !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()));
        if !bound {
            return Err(format!("_id must be {prefix}{{unix secs}}"));
        }
        list("storage", &self.storage, 4096)?;
        for s in &self.storage {
            path("storage[].path", &s.path)?;
        }
        Ok(())
    }
}
