//! `virtual_directory`: a directory of the virtual tree and the rules that fill it.
//! Owner: the hub. Semantics: DESIGN.md "Virtual-directory semantics" and docs/ARCHITECTURE.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{is_false, Timestamp};
use crate::ids::{DirId, Inode, Label, NodeId, PluginName, Rev};

#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VirtualDirectoryDoc {
    #[serde(rename = "_id")]
    pub id: DirId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    /// `/` for the root, otherwise `/a/b` (normalized, no trailing slash).
    pub virtual_path: String,
    /// Last component of `virtual_path` (empty for the root).
    pub name: String,
    pub inode: Inode,
    /// System directories (the root) cannot be deleted.
    #[serde(default, skip_serializing_if = "is_false")]
    pub system: bool,
    /// Run this directory's steps before every descendant's own steps.
    #[serde(default)]
    pub enforce_steps_on_children: bool,
    #[serde(default)]
    pub mounts: Vec<MountEntry>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One source of files for a virtual directory.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MountEntry {
    /// Stable id of the mount within its directory (for UI edits), e.g. a short uuid.
    pub mount_id: String,
    pub source: MountSource,
    #[serde(default)]
    pub steps: Vec<Step>,
    pub default_result: StepResult,
    pub strategy: Strategy,
    pub conflict_policy: ConflictPolicy,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MountSource {
    pub node_id: NodeId,
    /// Directory prefix on that node; every file below it is a candidate.
    pub export_path: String,
}

/// `{op, params, invert, on_match}`.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Step {
    #[serde(flatten)]
    pub op: StepOp,
    #[serde(default)]
    pub invert: bool,
    pub on_match: OnMatch,
}

/// The test a step applies, with its parameters (`"op"` + `"params"` on the wire).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", content = "params", rename_all = "snake_case")]
pub enum StepOp {
    /// Glob on the path below the mount's source prefix (`**/*.pdf`).
    Glob { pattern: String },
    /// Regex on the path below the source prefix (size-bounded when compiled).
    Regex {
        pattern: String,
        #[serde(default)]
        case_insensitive: bool,
    },
    /// mtime older and/or newer than a number of seconds.
    Age {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        older_than_secs: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        newer_than_secs: Option<u64>,
    },
    /// Size bounds in bytes (inclusive).
    Size {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_bytes: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_bytes: Option<u64>,
    },
    /// `type/subtype` or `type/*`; matches when any entry matches.
    Mime { types: Vec<String> },
    /// The file lives on one of these nodes.
    Node { node_ids: Vec<NodeId> },
    /// The file's effective labels contain all (or any) of these.
    Label {
        labels: Vec<Label>,
        #[serde(default, rename = "match")]
        match_mode: LabelMatch,
    },
    /// A plugin's annotation exists, or has `field` equal to `value`.
    Annotation {
        plugin: PluginName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<serde_json::Value>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LabelMatch {
    #[default]
    All,
    Any,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMatch {
    Include,
    Exclude,
    Continue,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepResult {
    Include,
    Exclude,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Keep the path below the source prefix: subdirectories appear as subdirectories.
    PrefixReplace,
    /// Every matching file directly in the directory, by its name.
    Flatten,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The newest mtime shows.
    LastWriteWins,
    /// Both show; the later one is renamed `name (node).ext`. Wins when mounts disagree.
    SuffixNodeId,
}

impl VirtualDirectoryDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !super::file::is_normalized_abs(&self.virtual_path) {
            return Err(format!("virtual_path {:?} is not a normalized absolute path", self.virtual_path));
        }
        let expected_name = self.virtual_path.rsplit('/').next().unwrap_or("");
        if self.name != expected_name {
            return Err(format!("name must be {expected_name:?}"));
        }
        if (self.id == DirId::root()) != (self.virtual_path == "/") {
            return Err("only dir::root has virtual_path \"/\"".into());
        }
        if self.virtual_path == "/" && self.inode != Inode::ROOT {
            return Err("the root directory has inode 1".into());
        }
        if self.virtual_path != "/" && !self.inode.is_assigned() {
            return Err(format!("inode {} is below 1000", self.inode));
        }
        Ok(())
    }

    /// The root directory, created at start when absent.
    pub fn root(now: Timestamp) -> VirtualDirectoryDoc {
        VirtualDirectoryDoc {
            id: DirId::root(),
            rev: Rev::NONE,
            virtual_path: "/".into(),
            name: String::new(),
            inode: Inode::ROOT,
            system: true,
            enforce_steps_on_children: false,
            mounts: vec![],
            created_at: now,
            updated_at: now,
        }
    }
}
