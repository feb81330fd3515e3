//! `plugin` (owner: the hub; replicated only to its node) and `annotation` (owner: the agent
//! whose plugin produced it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AnnotationId, FileId, NodeId, PluginId, PluginName, Rev};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PluginDoc {
    #[serde(rename = "_id")]
    pub id: PluginId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub node_id: NodeId,
    /// File name of the executable or socket in the node's plugin directory.
    pub plugin_name: PluginName,
    pub plugin_type: PluginType,
    pub enabled: bool,
    /// `file.added`, `file.modified`, `file.deleted`, `sync.started`, ...
    #[serde(default)]
    pub subscribed_events: Vec<String>,
    /// Only files whose mime type matches one of these (`application/pdf`, `image/*`).
    #[serde(default)]
    pub mime_globs: Vec<String>,
    /// Free-form settings passed to the plugin; fields the schema marks `secret` are redacted in
    /// minimal backups.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings_schema: Option<serde_json::Value>,
    #[serde(default = "default_workers")]
    pub workers: u32,
    #[serde(default = "default_timeout")]
    pub timeout_s: u32,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Query capabilities this plugin answers (`fulltext_search`, ...).
    #[serde(default)]
    pub query_endpoints: Vec<String>,
    /// A bridge plugin that produces the node's file tree.
    #[serde(default)]
    pub provides_filesystem: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path_prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn default_workers() -> u32 {
    2
}
fn default_timeout() -> u32 {
    60
}
fn default_attempts() -> u32 {
    3
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PluginType {
    /// Run once per event, JSON on stdin, JSON on stdout.
    Executable,
    /// A long-running process listening on a Unix socket.
    Socket,
}

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnnotationDoc {
    #[serde(rename = "_id")]
    pub id: AnnotationId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub file_id: FileId,
    pub plugin_name: PluginName,
    /// The node whose plugin wrote the annotation.
    pub node_id: NodeId,
    pub status: AnnotationStatus,
    /// The plugin's output (its stdout JSON).
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Compared with the file's mtime to decide whether the annotation is current.
    pub annotated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationStatus {
    Ok,
    Error,
}

impl AnnotationDoc {
    /// The largest annotation `data`, as JSON.
    pub const MAX_DATA_BYTES: usize = 64 * 1024;

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.id != AnnotationId::for_file(&self.file_id, &self.plugin_name) {
            return Err(format!("_id must be annotation::{}::{}", self.file_id.key(), self.plugin_name));
        }
        let data = serde_json::to_vec(&self.data).map(|v| v.len()).unwrap_or(usize::MAX);
        if data > Self::MAX_DATA_BYTES {
            return Err(format!("data is {data} bytes of JSON (at most {})", Self::MAX_DATA_BYTES));
        }
        super::bounds::text("error", self.error.as_deref().unwrap_or(""), super::bounds::MAX_TEXT_BYTES)
    }
}
