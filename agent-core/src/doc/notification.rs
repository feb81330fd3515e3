//! `notification`: a condition worth a person's attention. Two owners merged at the hub: the
//! source (agent, plugin or hub) writes the condition fields; people acknowledge through the hub.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{NodeId, NotificationId, PluginName, Rev};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationDoc {
    #[serde(rename = "_id")]
    pub id: NotificationId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub source: NotificationSource,
    /// What condition this is (`inotify_limit`, `cache_near_capacity`, ...); with the source it
    /// makes the deterministic `_id`.
    pub condition_key: String,
    pub severity: Severity,
    pub status: NotificationStatus,
    pub title: String,
    pub message: String,
    #[serde(default)]
    pub actions: Vec<NotificationAction>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub occurrence_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Hub-owned: set when a person acknowledges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NotificationSource {
    ControlPlane,
    Node { node_id: NodeId },
    Plugin { node_id: NodeId, plugin_name: PluginName },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    Active,
    Resolved,
    Acknowledged,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationAction {
    pub label: String,
    /// An API path the UI calls (`POST`), or a UI route starting with `#`.
    pub target: String,
}

impl NotificationSource {
    /// The `source` part of the deterministic id.
    pub fn id_part(&self) -> String {
        match self {
            NotificationSource::ControlPlane => "control_plane".into(),
            NotificationSource::Node { node_id } => node_id.to_string(),
            NotificationSource::Plugin { node_id, plugin_name } => format!("{node_id}:{plugin_name}"),
        }
    }
}

impl NotificationDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        let expected = NotificationId::for_condition(&self.source.id_part(), &self.condition_key);
        if self.id != expected {
            return Err(format!("_id must be {expected}"));
        }
        use super::bounds::{list, text, MAX_SHORT_BYTES, MAX_TEXT_BYTES};
        text("condition_key", &self.condition_key, MAX_TEXT_BYTES)?;
        text("title", &self.title, MAX_TEXT_BYTES)?;
        text("message", &self.message, MAX_TEXT_BYTES)?;
        list("actions", &self.actions, 16)?;
        for a in &self.actions {
            text("actions[].label", &a.label, MAX_SHORT_BYTES)?;
            text("actions[].target", &a.target, MAX_TEXT_BYTES)?;
        }
        Ok(())
    }
}
