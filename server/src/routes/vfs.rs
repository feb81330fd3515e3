//! The virtual tree through the API (ARCHITECTURE §13.1): `GET /api/vfs?path=` lists a
//! directory with the rule engine (the same `agent_core::vtree` code every agent's mount runs),
//! `GET /api/vfs/tree` is the directory skeleton, and `POST /api/vfs/directories/{path}/preview`
//! evaluates draft mounts without saving them.

use agent_core::doc::VirtualDirectoryDoc;
use agent_core::vtree::{self, Listing, Tree, VtreeError};
use agent_core::wire::vdirs::{Preview, TreeNode, VfsQuery};
use axum::extract::State;
use axum::Json;

use crate::auth::Session;
use crate::error::{ApiError, QueryParams};
use crate::state::AppState;

impl From<VtreeError> for ApiError {
    fn from(e: VtreeError) -> Self {
        match e {
            VtreeError::Rule(r) => ApiError::BadRequest(r.to_string()),
            VtreeError::Store(s) => s.into(),
        }
    }
}

/// `/a/b` from what a user typed (`a/b/`, `/a//b`); 400 for `.`/`..` components.
fn normalize(raw: &str) -> Result<String, ApiError> {
    let mut parts = Vec::new();
    for part in raw.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.chars().any(char::is_control) || part.len() > 255 {
            return Err(ApiError::BadRequest(format!("path component {part:?} is not allowed")));
        }
        parts.push(part);
    }
    if parts.len() > 256 {
        return Err(ApiError::BadRequest("path is too deep".into()));
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Brings the label cache up to date and runs `f` with the store, the tree and the labels.
async fn with_tree<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&agent_core::store::Store, &Tree, &agent_core::labels::LabelIndex) -> Result<R, ApiError>
        + Send
        + 'static,
) -> Result<R, ApiError> {
    let labels = state.labels.clone();
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        labels.catch_up(&store)?;
        let tree = Tree::load(&store)?;
        labels.with(|index| f(&store, &tree, index))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// `GET /api/vfs?path=`: a directory's entries (virtual subdirectories, synthesized
/// subdirectories, files), evaluated by the rule engine; cached per path for `--readdir-ttl-secs`
/// (5 s) while the directory's revision holds and the changes feed shows nothing that affects it.
#[utoipa::path(
    get,
    path = "/api/vfs",
    operation_id = "list_vfs",
    tag = "vfs",
    params(VfsQuery),
    responses((status = 200, body = Listing), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _s: Session,
    QueryParams(q): QueryParams<VfsQuery>,
) -> Result<Json<Listing>, ApiError> {
    let path = normalize(&q.path)?;
    let (store, listings) = (state.store.clone(), state.listings.clone());
    let listing = tokio::task::spawn_blocking(move || match listings.list(&store, &path)? {
        Some(listing) => Ok(listing),
        None => Err(ApiError::NotFound(format!("directory {path}"))),
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(Json(Listing::clone(&listing)))
}

fn node_of(tree: &Tree, dir: &VirtualDirectoryDoc) -> TreeNode {
    TreeNode {
        path: dir.virtual_path.clone(),
        name: dir.name.clone(),
        dir_id: dir.id.clone(),
        inode: dir.inode,
        mounts: dir.mounts.len(),
        enforce_steps_on_children: dir.enforce_steps_on_children,
        children: tree.children(&dir.virtual_path).into_iter().map(|c| node_of(tree, c)).collect(),
    }
}

/// `GET /api/vfs/tree`: every virtual directory as a tree from the root (no files).
#[utoipa::path(
    get,
    path = "/api/vfs/tree",
    operation_id = "vfs_tree",
    tag = "vfs",
    responses((status = 200, body = TreeNode), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn tree(State(state): State<AppState>, _s: Session) -> Result<Json<TreeNode>, ApiError> {
    let root = with_tree(&state, |_, tree, _| {
        let root = tree.get("/").ok_or_else(|| ApiError::Internal("no root directory".into()))?;
        Ok(node_of(tree, root))
    })
    .await?;
    Ok(Json(root))
}

/// `POST /api/vfs/directories/{path}/preview`: what the directory would list with `mounts`
/// (nothing is saved; the path need not exist, its ancestors' enforced steps apply).
#[utoipa::path(
    post,
    path = "/api/vfs/directories/{path}/preview",
    operation_id = "preview_directory",
    tag = "vfs",
    params(("path" = String, Path, description = "Virtual path below the root, e.g. work/pdfs")),
    request_body = Preview,
    responses((status = 200, body = Listing), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn preview(state: &AppState, path: String, body: Preview) -> Result<Json<Listing>, ApiError> {
    agent_core::rules::check_mounts(&body.mounts).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let listing = with_tree(state, move |store, tree, labels| {
        Ok(vtree::preview(store, tree, labels, &path, &body.mounts, agent_core::doc::now())?)
    })
    .await?;
    Ok(Json(listing))
}
