//! `label_assignment` and `label_rule`. Owner: the hub.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::default_true;
use crate::ids::{FileId, Label, LabelAssignmentId, LabelRuleId, NodeId, Rev};

/// Labels put on one file directly. Keyed on the file id, so labels follow the file across
/// renames and re-crawls.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelAssignmentDoc {
    #[serde(rename = "_id")]
    pub id: LabelAssignmentId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub file_id: FileId,
    pub labels: Vec<Label>,
    pub updated_at: DateTime<Utc>,
    /// Access key id or user that made the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// Labels for every file under a path prefix on one node (or any node).
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelRuleDoc {
    #[serde(rename = "_id")]
    pub id: LabelRuleId,
    #[serde(rename = "_rev")]
    pub rev: Rev,
    pub name: String,
    pub node_id: NodeSelector,
    /// A directory prefix ending in `/`: `/home/me/Work/`.
    pub path_prefix: String,
    pub labels: Vec<Label>,
    #[serde(default = "default_true")]
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `"*"` for every node, or one node id.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum NodeSelector {
    Any,
    Node(NodeId),
}

/// On the wire: a string, `"*"` or a node id.
impl utoipa::PartialSchema for NodeSelector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("\"*\" for every node, or one node id"))
            .into()
    }
}

impl utoipa::ToSchema for NodeSelector {}

impl Serialize for NodeSelector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeSelector::Any => s.serialize_str("*"),
            NodeSelector::Node(n) => n.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for NodeSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "*" {
            Ok(NodeSelector::Any)
        } else {
            s.parse().map(NodeSelector::Node).map_err(serde::de::Error::custom)
        }
    }
}

impl LabelRuleDoc {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !self.path_prefix.starts_with('/') || !self.path_prefix.ends_with('/') {
            return Err(format!("path_prefix {:?} must start and end with '/'", self.path_prefix));
        }
        Ok(())
    }
}
