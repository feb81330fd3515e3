//! `/api/labels`: direct assignments, rules, labels in use, effective labels.

use serde::{Deserialize, Serialize};

use crate::doc::{Document, LabelAssignmentDoc, NodeSelector};
use crate::ids::{FileId, Label, Rev};

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelsInUse {
    pub labels: Vec<LabelInUse>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabelInUse {
    pub label: Label,
    /// Direct assignments carrying it.
    pub files: u64,
    /// Enabled rules giving it.
    pub rules: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignmentsPage {
    pub assignments: Vec<Document>,
    pub next_cursor: Option<String>,
}

/// `PUT /api/labels/assignments/{file_id}`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLabels {
    pub labels: Vec<Label>,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssignmentAnswer {
    /// `null` when the label list was empty (the assignment was removed).
    pub assignment: Option<LabelAssignmentDoc>,
}

/// `POST /api/labels/rules`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub name: String,
    /// `"*"` or a node id.
    pub node_id: NodeSelector,
    /// A directory prefix starting and ending with `/`.
    pub path_prefix: String,
    pub labels: Vec<Label>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/labels/rules/{rule_id}` against the revision read.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(rename = "_rev")]
    pub rev: Rev,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Label>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `GET /api/labels/effective?file_id=`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EffectiveQuery {
    pub file_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectiveAnswer {
    pub file_id: FileId,
    pub effective: crate::labels::Effective,
}
