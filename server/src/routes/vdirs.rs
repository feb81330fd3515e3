//! `/api/vfs/directories`: virtual directory documents (hub-owned). A directory's contents are
//! `GET /api/vfs` (`routes::vfs`); `POST …/{path}/preview` is dispatched from here because the
//! catch-all path parameter must be last in a route (so `preview` is a reserved name).

use agent_core::doc::{self, DocType, Document, MountEntry, VirtualDirectoryDoc};
use agent_core::ids::{DirId, DocId, Inode, Rev};
use agent_core::wire::vdirs::{DirPatch, NewDir};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Session;
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// Deepest virtual path accepted (components below the root).
pub const MAX_DEPTH: usize = 32;

/// The virtual path of a `{*path}` route parameter: `work/pdfs` → `/work/pdfs`. Checked:
/// normalized, not the root, not under `/federation/` (reserved), at most [`MAX_DEPTH`] deep,
/// components of at most 255 bytes without control characters.
pub fn virtual_path(raw: &str) -> Result<String, ApiError> {
    let path = format!("/{}", raw.trim_start_matches('/'));
    let bad = |why: &str| Err(ApiError::BadRequest(format!("virtual_path {path:?}: {why}")));
    if path == "/" {
        return bad("the root directory is a system directory");
    }
    if !doc::is_normalized_abs(&path) {
        return bad("not a normalized absolute path (no empty, '.' or '..' components, no trailing '/')");
    }
    if path == "/federation" || path.starts_with("/federation/") {
        return bad("/federation/ is reserved");
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    if parts.len() > MAX_DEPTH {
        return bad(&format!("deeper than {MAX_DEPTH} levels"));
    }
    if parts.iter().any(|p| p.len() > 255 || p.chars().any(char::is_control)) {
        return bad("components must be at most 255 bytes, without control characters");
    }
    Ok(path)
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A directory may not be called this: `POST /api/vfs/directories/{path}/preview` previews.
const RESERVED_NAME: &str = "preview";

/// A directory's mounts as the rule engine accepts them (400 naming the bad one).
pub(crate) fn check_mounts(mounts: &[MountEntry]) -> Result<(), ApiError> {
    agent_core::rules::check_mounts(mounts).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn dirs_of(docs: Vec<Document>) -> Vec<VirtualDirectoryDoc> {
    docs.into_iter()
        .filter_map(|d| match d {
            Document::VirtualDirectory(v) => Some(v),
            _ => None,
        })
        .collect()
}

async fn all_dirs(state: &AppState) -> Result<Vec<VirtualDirectoryDoc>, ApiError> {
    Ok(dirs_of(state.store.run(|s| s.list_type(DocType::VirtualDirectory)).await?))
}

async fn find(state: &AppState, path: &str) -> Result<VirtualDirectoryDoc, ApiError> {
    all_dirs(state)
        .await?
        .into_iter()
        .find(|d| d.virtual_path == path)
        .ok_or_else(|| ApiError::NotFound(format!("directory {path}")))
}

/// `GET /api/vfs/directories`: every virtual directory document, by path.
#[utoipa::path(
    get,
    path = "/api/vfs/directories",
    operation_id = "list_directories",
    tag = "vfs",
    responses((status = 200, body = Vec<VirtualDirectoryDoc>), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _s: Session,
) -> Result<Json<Vec<VirtualDirectoryDoc>>, ApiError> {
    let mut dirs = all_dirs(&state).await?;
    dirs.sort_by(|a, b| a.virtual_path.cmp(&b.virtual_path));
    Ok(Json(dirs))
}

/// `GET /api/vfs/directories/{*path}`
#[utoipa::path(
    get,
    path = "/api/vfs/directories/{*path}",
    operation_id = "get_directory",
    tag = "vfs",
    params(("path" = String, Path, description = "Virtual path below the root, e.g. work/pdfs")),
    responses((status = 200, body = VirtualDirectoryDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    _s: Session,
    Path(raw): Path<String>,
) -> Result<Json<VirtualDirectoryDoc>, ApiError> {
    let path = if raw.trim_matches('/').is_empty() { "/".to_owned() } else { virtual_path(&raw)? };
    Ok(Json(find(&state, &path).await?))
}

/// `POST /api/vfs/directories/{*path}`: creates a directory under an existing parent (409 if the
/// path exists or the parent does not).
#[utoipa::path(
    post,
    path = "/api/vfs/directories/{*path}",
    operation_id = "create_directory",
    tag = "vfs",
    params(("path" = String, Path, description = "Virtual path below the root, e.g. work/pdfs")),
    request_body = NewDir,
    responses((status = 201, body = VirtualDirectoryDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    _s: Session,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<serde_json::Value>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let parse_err = |e: serde_json::Error| ApiError::BadRequest(format!("request body: {e}"));
    let trimmed = raw.trim_matches('/');
    if let Some(dir) = trimmed.strip_suffix(RESERVED_NAME).filter(|d| d.is_empty() || d.ends_with('/')) {
        let dir = dir.trim_matches('/');
        let path = if dir.is_empty() { "/".to_owned() } else { virtual_path(dir)? };
        let body = serde_json::from_value(body).map_err(parse_err)?;
        return Ok(super::vfs::preview(&state, path, body).await?.into_response());
    }
    let body: NewDir = serde_json::from_value(body).map_err(parse_err)?;
    let path = virtual_path(&raw)?;
    check_mounts(&body.mounts)?;
    let _guard = state.vdir_writes.lock().await;
    let dirs = all_dirs(&state).await?;
    if dirs.iter().any(|d| d.virtual_path == path) {
        return Err(ApiError::Conflict(format!("directory {path} exists")));
    }
    let parent = parent_of(&path);
    if !dirs.iter().any(|d| d.virtual_path == parent) {
        return Err(ApiError::Conflict(format!("parent directory {parent} does not exist; create it first")));
    }
    let now = doc::now();
    let mut dir = VirtualDirectoryDoc {
        id: DirId::generate(),
        rev: Rev::NONE,
        name: path.rsplit('/').next().unwrap_or_default().to_owned(),
        virtual_path: path,
        inode: Inode::generate(),
        system: false,
        enforce_steps_on_children: body.enforce_steps_on_children,
        mounts: body.mounts,
        created_at: now,
        updated_at: now,
    };
    let d = dir.clone();
    dir.rev = state.store.run(move |s| s.put(d.into())).await?.rev;
    tracing::info!(virtual_path = %dir.virtual_path, "virtual directory created");
    Ok((StatusCode::CREATED, Json(dir)).into_response())
}

/// `PATCH /api/vfs/directories/{*path}` against the revision read (`_rev`; 409 when stale).
/// The root directory's mounts and flags can be edited too.
#[utoipa::path(
    patch,
    path = "/api/vfs/directories/{*path}",
    operation_id = "patch_directory",
    tag = "vfs",
    params(("path" = String, Path, description = "Virtual path below the root, e.g. work/pdfs")),
    request_body = DirPatch,
    responses((status = 200, body = VirtualDirectoryDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn patch(
    State(state): State<AppState>,
    s: Session,
    Path(raw): Path<String>,
    JsonBody(p): JsonBody<DirPatch>,
) -> Result<Json<VirtualDirectoryDoc>, ApiError> {
    if let Some(m) = &p.mounts {
        check_mounts(m)?;
    }
    let _guard = state.vdir_writes.lock().await;
    let Json(mut dir) = get(State(state.clone()), s, Path(raw)).await?;
    if dir.rev != p.rev {
        return Err(ApiError::Conflict(format!("directory is at revision {}, not {}", dir.rev, p.rev)));
    }
    if let Some(v) = p.enforce_steps_on_children {
        dir.enforce_steps_on_children = v;
    }
    if let Some(m) = p.mounts {
        dir.mounts = m;
    }
    dir.updated_at = doc::now();
    let d = dir.clone();
    dir.rev = state.store.run(move |s| s.put(d.into())).await?.rev;
    Ok(Json(dir))
}

/// `DELETE /api/vfs/directories/{*path}`: system directories cannot be deleted (400), nor a
/// directory that still has subdirectories (409).
#[utoipa::path(
    delete,
    path = "/api/vfs/directories/{*path}",
    operation_id = "delete_directory",
    tag = "vfs",
    params(("path" = String, Path, description = "Virtual path below the root, e.g. work/pdfs")),
    responses((status = 204, description = "Deleted"), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    _s: Session,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    if raw.trim_matches('/').is_empty() {
        return Err(ApiError::BadRequest(
            "the root directory is a system directory and cannot be deleted".into(),
        ));
    }
    let path = virtual_path(&raw)?;
    let _guard = state.vdir_writes.lock().await;
    let dirs = all_dirs(&state).await?;
    let dir = dirs
        .iter()
        .find(|d| d.virtual_path == path)
        .ok_or_else(|| ApiError::NotFound(format!("directory {path}")))?;
    if dir.system {
        return Err(ApiError::BadRequest(format!("{path} is a system directory and cannot be deleted")));
    }
    let prefix = format!("{path}/");
    if dirs.iter().any(|d| d.virtual_path.starts_with(&prefix)) {
        return Err(ApiError::Conflict(format!("{path} has subdirectories; delete them first")));
    }
    let (id, rev) = (DocId::from(&dir.id), dir.rev);
    state.store.run(move |s| s.delete(&id, rev)).await?;
    tracing::info!(virtual_path = %path, "virtual directory deleted");
    Ok(StatusCode::NO_CONTENT)
}
