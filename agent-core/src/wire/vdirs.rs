//! `/api/vfs`: virtual directories (definitions), listings, the directory skeleton, previews.
//! A listing is [`crate::vtree::Listing`].

use serde::{Deserialize, Serialize};

use crate::doc::MountEntry;
use crate::ids::{DirId, Inode, Rev};

/// `POST /api/vfs/directories/{*path}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDir {
    #[serde(default)]
    pub enforce_steps_on_children: bool,
    #[serde(default)]
    pub mounts: Vec<MountEntry>,
}

/// `PATCH /api/vfs/directories/{*path}` against the revision read.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirPatch {
    #[serde(rename = "_rev")]
    pub rev: Rev,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_steps_on_children: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<MountEntry>>,
}

/// `POST /api/vfs/directories/{*path}/preview`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// The draft mounts, as they would be saved.
    pub mounts: Vec<MountEntry>,
}

/// `GET /api/vfs?path=`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VfsQuery {
    /// A virtual path (`/`, `/work/pdfs`, or a subdirectory a mount brings, `/docs/2024`).
    pub path: String,
}

/// One directory of the skeleton (`GET /api/vfs/tree`).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TreeNode {
    pub path: String,
    pub name: String,
    pub dir_id: DirId,
    pub inode: Inode,
    pub mounts: usize,
    pub enforce_steps_on_children: bool,
    #[schema(no_recursion)]
    pub children: Vec<TreeNode>,
}
