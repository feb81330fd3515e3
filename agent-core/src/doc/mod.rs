//! The document model: the eleven document types of the plan (§1.3) and the command documents
//! of the hub→agent path (ARCHITECTURE §5.9), as serde types.
//!
//! Every document is a JSON object with `_id`, `_rev` and `type`; the rest are the type's fields.
//! The schema is additive: a reader ignores fields it does not know (so a newer peer's documents
//! still parse), and fields added later are `Option` or `#[serde(default)]`. Field-by-field
//! ownership (who may write what) is documented in docs/ARCHITECTURE.md and enforced by the hub.

pub mod bounds;
mod command;
mod credential;
mod file;
mod label;
mod node;
mod notification;
mod plugin;
mod status;
mod vdir;

pub use command::{Command, CommandDoc, CommandResultDoc, CommandStatus};
pub use credential::{CredentialDoc, CredentialRole, KdfParams};
pub use file::{is_normalized_abs, join_path, ordering_time, FileDoc, FileSource, FileStatus, MTIME_LEAD};
pub use label::{LabelAssignmentDoc, LabelRuleDoc, NodeSelector};
pub use node::{NetworkMount, NetworkMountType, NodeDoc, NodeRole, NodeStatus, Platform, TransferEndpoint};
pub use notification::{
    NotificationAction, NotificationDoc, NotificationSource, NotificationStatus, Severity,
};
pub use plugin::{AnnotationDoc, AnnotationStatus, PluginDoc, PluginType};
pub use status::{
    AgentStatusDoc, CacheUsage, CrawlSummary, ErrorEntry, Health, StorageUsage, SubsystemStatus,
    UtilizationSnapshotDoc, WatchPathStatus,
};
pub use vdir::{
    ConflictPolicy, LabelMatch, MountEntry, MountSource, OnMatch, Step, StepOp, StepResult, Strategy,
    VirtualDirectoryDoc,
};

use serde::{Deserialize, Serialize};

use crate::ids::{DocId, NodeId, Rev};

/// Wall-clock time in UTC, serialized as RFC 3339 with nanoseconds.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The current time, truncated to microseconds (what every platform's clock gives reliably).
pub fn now() -> Timestamp {
    let t = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(t, chrono::TimeDelta::microseconds(1)).unwrap_or(t)
}

/// The `type` field of a document.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocType {
    File,
    VirtualDirectory,
    Node,
    Credential,
    AgentStatus,
    UtilizationSnapshot,
    LabelAssignment,
    LabelRule,
    Plugin,
    Annotation,
    Notification,
    Command,
    CommandResult,
}

impl DocType {
    pub const ALL: [DocType; 13] = [
        DocType::File,
        DocType::VirtualDirectory,
        DocType::Node,
        DocType::Credential,
        DocType::AgentStatus,
        DocType::UtilizationSnapshot,
        DocType::LabelAssignment,
        DocType::LabelRule,
        DocType::Plugin,
        DocType::Annotation,
        DocType::Notification,
        DocType::Command,
        DocType::CommandResult,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocType::File => "file",
            DocType::VirtualDirectory => "virtual_directory",
            DocType::Node => "node",
            DocType::Credential => "credential",
            DocType::AgentStatus => "agent_status",
            DocType::UtilizationSnapshot => "utilization_snapshot",
            DocType::LabelAssignment => "label_assignment",
            DocType::LabelRule => "label_rule",
            DocType::Plugin => "plugin",
            DocType::Annotation => "annotation",
            DocType::Notification => "notification",
            DocType::Command => "command",
            DocType::CommandResult => "command_result",
        }
    }

    pub fn parse(s: &str) -> Option<DocType> {
        DocType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The `_id` prefix of this type's documents.
    pub fn id_prefix(self) -> &'static str {
        match self {
            DocType::File => "file",
            DocType::VirtualDirectory => "dir",
            DocType::Node => "node",
            DocType::Credential => "credential",
            DocType::AgentStatus => "status",
            DocType::UtilizationSnapshot => "utilization",
            DocType::LabelAssignment => "label_file",
            DocType::LabelRule => "label_rule",
            DocType::Plugin => "plugin",
            DocType::Annotation => "annotation",
            DocType::Notification => "notification",
            DocType::Command => "command",
            DocType::CommandResult => "command_result",
        }
    }
}

/// Any document. Serialized with its `type` tag, so `serde_json::to_string(&doc)` is exactly
/// what the store keeps and the sync protocol carries.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Document {
    File(FileDoc),
    VirtualDirectory(VirtualDirectoryDoc),
    Node(NodeDoc),
    Credential(CredentialDoc),
    AgentStatus(AgentStatusDoc),
    UtilizationSnapshot(UtilizationSnapshotDoc),
    LabelAssignment(LabelAssignmentDoc),
    LabelRule(LabelRuleDoc),
    Plugin(PluginDoc),
    Annotation(AnnotationDoc),
    Notification(NotificationDoc),
    Command(CommandDoc),
    CommandResult(CommandResultDoc),
}

/// The writer of a document: the hub, or one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    Hub,
    Node(NodeId),
}

/// A document whose fields contradict its deterministic id or each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document {id}: {reason}")]
pub struct InvalidDocument {
    pub id: String,
    pub reason: String,
}

macro_rules! each_variant {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            Document::File($d) => $e,
            Document::VirtualDirectory($d) => $e,
            Document::Node($d) => $e,
            Document::Credential($d) => $e,
            Document::AgentStatus($d) => $e,
            Document::UtilizationSnapshot($d) => $e,
            Document::LabelAssignment($d) => $e,
            Document::LabelRule($d) => $e,
            Document::Plugin($d) => $e,
            Document::Annotation($d) => $e,
            Document::Notification($d) => $e,
            Document::Command($d) => $e,
            Document::CommandResult($d) => $e,
        }
    };
}

impl Document {
    pub fn doc_type(&self) -> DocType {
        match self {
            Document::File(_) => DocType::File,
            Document::VirtualDirectory(_) => DocType::VirtualDirectory,
            Document::Node(_) => DocType::Node,
            Document::Credential(_) => DocType::Credential,
            Document::AgentStatus(_) => DocType::AgentStatus,
            Document::UtilizationSnapshot(_) => DocType::UtilizationSnapshot,
            Document::LabelAssignment(_) => DocType::LabelAssignment,
            Document::LabelRule(_) => DocType::LabelRule,
            Document::Plugin(_) => DocType::Plugin,
            Document::Annotation(_) => DocType::Annotation,
            Document::Notification(_) => DocType::Notification,
            Document::Command(_) => DocType::Command,
            Document::CommandResult(_) => DocType::CommandResult,
        }
    }

    pub fn id(&self) -> DocId {
        each_variant!(self, d => DocId::from(&d.id))
    }

    pub fn rev(&self) -> Rev {
        each_variant!(self, d => d.rev)
    }

    pub fn set_rev(&mut self, rev: Rev) {
        each_variant!(self, d => d.rev = rev)
    }

    /// Checks what serde cannot: deterministic ids agree with the fields they derive from, and
    /// names, paths, text and lists are within [`bounds`].
    pub fn validate(&self) -> Result<(), InvalidDocument> {
        let bad = |reason: String| Err(InvalidDocument { id: self.id().to_string(), reason });
        match self {
            Document::File(f) => f.validate().or_else(bad),
            Document::VirtualDirectory(d) => d.validate().or_else(bad),
            Document::Node(n) => n.validate().or_else(bad),
            Document::Credential(c) if c.id != crate::ids::CredentialId::for_key(&c.access_key_id) => {
                bad(format!("_id must be credential::{}", c.access_key_id))
            }
            Document::AgentStatus(s) => s.validate().or_else(bad),
            Document::UtilizationSnapshot(u) => u.validate().or_else(bad),
            Document::LabelAssignment(a) if a.id != crate::ids::LabelAssignmentId::for_file(&a.file_id) => {
                bad(format!("_id must be label_file::{}", a.file_id.key()))
            }
            Document::LabelRule(r) => r.validate().or_else(bad),
            Document::Notification(n) => n.validate().or_else(bad),
            Document::Command(c) => c.validate().or_else(bad),
            Document::CommandResult(r) => r.validate().or_else(bad),
            Document::Plugin(p) if p.id != crate::ids::PluginId::for_plugin(&p.node_id, &p.plugin_name) => {
                bad(format!("_id must be plugin::{}::{}", p.node_id, p.plugin_name))
            }
            Document::Annotation(a) => a.validate().or_else(bad),
            _ => Ok(()),
        }
    }

    /// Who writes this document (DESIGN §3; ARCHITECTURE §5.3). For a node document, the
    /// node owns its runtime fields (the hub merges them with its own).
    pub fn owner(&self) -> Owner {
        match self {
            Document::File(f) => Owner::Node(f.source.node_id.clone()),
            Document::Annotation(a) => Owner::Node(a.node_id.clone()),
            Document::AgentStatus(s) => Owner::Node(s.node_id.clone()),
            Document::UtilizationSnapshot(u) => Owner::Node(u.node_id.clone()),
            Document::CommandResult(r) => Owner::Node(r.node_id.clone()),
            Document::Node(n) => Owner::Node(n.node_id.clone()),
            Document::Notification(n) => match &n.source {
                NotificationSource::Node { node_id } | NotificationSource::Plugin { node_id, .. } => {
                    Owner::Node(node_id.clone())
                }
                NotificationSource::ControlPlane => Owner::Hub,
            },
            Document::VirtualDirectory(_)
            | Document::Credential(_)
            | Document::LabelAssignment(_)
            | Document::LabelRule(_)
            | Document::Plugin(_)
            | Document::Command(_) => Owner::Hub,
        }
    }

    pub fn as_file(&self) -> Option<&FileDoc> {
        match self {
            Document::File(f) => Some(f),
            _ => None,
        }
    }
}

macro_rules! impl_from_doc {
    ($($variant:ident($ty:ty)),*) => {$(
        impl From<$ty> for Document {
            fn from(d: $ty) -> Document {
                Document::$variant(d)
            }
        }
    )*};
}

impl_from_doc!(
    File(FileDoc),
    VirtualDirectory(VirtualDirectoryDoc),
    Node(NodeDoc),
    Credential(CredentialDoc),
    AgentStatus(AgentStatusDoc),
    UtilizationSnapshot(UtilizationSnapshotDoc),
    LabelAssignment(LabelAssignmentDoc),
    LabelRule(LabelRuleDoc),
    Plugin(PluginDoc),
    Annotation(AnnotationDoc),
    Notification(NotificationDoc),
    Command(CommandDoc),
    CommandResult(CommandResultDoc)
);

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
pub(crate) mod fixtures;

#[cfg(test)]
mod tests;
