//! `file`: one file exported by a node. Owner: that node's agent.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{FileId, Inode, NodeId, Rev};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileDoc {
    #[serde(rename = "_id")]
    pub id: FileId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    /// The file name (last component of `source.export_path`).
    pub name: String,
    pub source: FileSource,
    pub size: u64,
    pub mtime: DateTime<Utc>,
    /// Guessed from the extension; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// The file's inode in the virtual filesystem, assigned at first sight.
    pub inode: Inode,
    pub status: FileStatus,
    /// When the crawler or watcher first saw the file.
    pub first_seen: DateTime<Utc>,
    /// Set when `status` becomes `deleted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the hub received this revision: the hub sets it on every push, whatever the agent
    /// sent (absent in the writer's own store). `last_write_wins` compares
    /// [`ordering_time`], so a far-future mtime cannot win forever (ARCHITECTURE §13.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<DateTime<Utc>>,
}

/// How far past the hub's receipt an mtime still counts as it is, for ordering.
pub const MTIME_LEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// `min(mtime, received_at + 5 min)`: the time `last_write_wins` orders by. The mtime itself is
/// kept and shown as pushed (cameras and archives have odd clocks).
pub fn ordering_time(mtime: DateTime<Utc>, received_at: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match received_at.and_then(|r| r.checked_add_signed(MTIME_LEAD)) {
        Some(cap) => mtime.min(cap),
        None => mtime,
    }
}

/// Where a file lives: the node and the absolute path on that node.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileSource {
    pub node_id: NodeId,
    /// Absolute, normalized path on the owning node (`/home/me/Documents/a.pdf`).
    pub export_path: String,
    /// `export_path` without its last component (`/home/me/Documents`); `/` for top-level files.
    pub export_parent: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Active,
    /// The file vanished from its node. The document stays (same id, labels and annotations keep
    /// their key) and becomes active again if a file reappears at the same path.
    Deleted,
}

impl FileSource {
    /// Splits an absolute path into a source. `None` if the path is not absolute or normalized.
    pub fn new(node_id: NodeId, export_path: &str) -> Option<FileSource> {
        if !is_normalized_abs(export_path) || export_path == "/" {
            return None;
        }
        let cut = export_path.rfind('/')?;
        let parent = if cut == 0 { "/" } else { &export_path[..cut] };
        Some(FileSource { node_id, export_path: export_path.to_owned(), export_parent: parent.to_owned() })
    }

    pub fn name(&self) -> &str {
        self.export_path.rsplit('/').next().unwrap_or("")
    }
}

/// `dir` + `/` + `name`, without doubling the slash of the root.
pub fn join_path(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// `/a/b`: absolute, no empty, `.` or `..` components, no trailing slash (except `/` itself).
pub fn is_normalized_abs(p: &str) -> bool {
    p == "/" || (p.starts_with('/') && p[1..].split('/').all(|c| !c.is_empty() && c != "." && c != ".."))
}

impl FileDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        super::bounds::path("source.export_path", &self.source.export_path)?;
        super::bounds::name("name", &self.name)?;
        if let Some(m) = &self.mime {
            super::bounds::text("mime", m, super::bounds::MAX_SHORT_BYTES)?;
        }
        if self.inode.0 >= 1 << 63 {
            return Err(format!("inode {} does not fit 63 bits", self.inode));
        }
        let expected =
            FileSource::new(self.source.node_id.clone(), &self.source.export_path).ok_or_else(|| {
                format!("source.export_path {:?} is not a normalized absolute path", self.source.export_path)
            })?;
        if expected.export_parent != self.source.export_parent {
            return Err(format!("source.export_parent must be {:?}", expected.export_parent));
        }
        if expected.name() != self.name {
            return Err(format!("name must be {:?} (the last component of export_path)", expected.name()));
        }
        if !self.inode.is_assigned() {
            return Err(format!("inode {} is below 1000", self.inode));
        }
        Ok(())
    }
}
