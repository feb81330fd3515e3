use agent_core::doc::{Document, FileDoc, FileSource};
use agent_core::ids::{DocId, FileId, NodeId};
use agent_core::store::NameQuery;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;

use crate::auth::Session;
use crate::error::{ApiError, QueryParams};
use crate::state::AppState;

const MAX_LIMIT: usize = 1000;

fn limit(l: Option<usize>) -> Result<usize, ApiError> {
    match l.unwrap_or(100) {
        0 => Err(ApiError::BadRequest("limit must be at least 1".into())),
        n if n > MAX_LIMIT => Err(ApiError::BadRequest(format!("limit must be at most {MAX_LIMIT}"))),
        n => Ok(n),
    }
}

/// An opaque page cursor: the last row's key, hex-encoded.
fn encode_cursor(k: &(String, String, String)) -> String {
    hex::encode(format!("{}\u{1f}{}\u{1f}{}", k.0, k.1, k.2))
}

fn decode_cursor(c: &str) -> Result<(String, String, String), ApiError> {
    let bad = || ApiError::BadRequest("invalid cursor".into());
    let text = String::from_utf8(hex::decode(c).map_err(|_| bad())?).map_err(|_| bad())?;
    let mut parts = text.split('\u{1f}').map(str::to_owned);
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c), None) => Ok((a, b, c)),
        _ => Err(bad()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /api/files?limit=&cursor=`: every node's active files, a page at a time.
pub async fn list(
    State(state): State<AppState>,
    _session: Session,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let (files, last) = state.store.run(move |s| s.files_page(after.as_ref(), limit)).await?;
    let next = if files.len() == limit { last.as_ref().map(encode_cursor) } else { None };
    Ok(Json(serde_json::json!({"files": files, "next_cursor": next})))
}

/// `GET /api/files/{file_id}` (the id with or without its `file::` prefix).
pub async fn get(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
) -> Result<Json<FileDoc>, ApiError> {
    let full = if raw.starts_with("file::") { raw } else { format!("file::{raw}") };
    let id: FileId = full.parse().map_err(ApiError::from)?;
    let key = DocId::from(&id);
    match state.store.run(move |s| s.get(&key)).await? {
        Some(Document::File(f)) => Ok(Json(f)),
        _ => Err(ApiError::NotFound(format!("file {id}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByPath {
    node_id: String,
    path: String,
}

/// `GET /api/files/by-path?node_id=&path=`: the path must be absolute and normalized (no `.`,
/// `..`, empty components or trailing slash), so no request can name a path outside its form.
pub async fn by_path(
    State(state): State<AppState>,
    _session: Session,
    QueryParams(q): QueryParams<ByPath>,
) -> Result<Json<FileDoc>, ApiError> {
    let node: NodeId = q.node_id.parse().map_err(ApiError::from)?;
    if FileSource::new(node.clone(), &q.path).is_none() {
        return Err(ApiError::BadRequest(format!("path {:?} is not a normalized absolute path", q.path)));
    }
    let path = q.path.clone();
    let found = state.store.run(move |s| s.file_by_path(&node, &path)).await?;
    found.map(Json).ok_or_else(|| ApiError::NotFound(format!("file {}", q.path)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

/// `GET /api/search?q=&limit=`: names containing `q` (case-insensitive), or matching it as a
/// glob when it has `*?[{`.
pub async fn search(
    State(state): State<AppState>,
    _session: Session,
    QueryParams(q): QueryParams<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = limit(q.limit)?;
    if q.q.is_empty() || q.q.len() > 1000 {
        return Err(ApiError::BadRequest("q must be 1-1000 bytes".into()));
    }
    let query = NameQuery::parse(&q.q).map_err(|e| ApiError::BadRequest(format!("invalid glob: {e}")))?;
    let files = state.store.run(move |s| s.search_names(&query, limit)).await?;
    Ok(Json(serde_json::json!({"files": files})))
}
