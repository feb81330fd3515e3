use agent_core::doc::{Document, FileDoc, FileSource};
use agent_core::ids::{DocId, FileId, Label, NodeId};
use agent_core::store::NameQuery;
use agent_core::wire::files::{ByPath, FilesPage, PageQuery as ListQuery, SearchPage};
use axum::extract::{Path, RawQuery, State};
use axum::Json;

use crate::auth::Session;
use crate::error::{ApiError, QueryParams};
use crate::state::AppState;

const MAX_LIMIT: usize = 1000;

pub(super) fn limit(l: Option<usize>) -> Result<usize, ApiError> {
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

/// `GET /api/files?limit=&cursor=`: every node's active files, a page at a time.
#[utoipa::path(
    get,
    path = "/api/files",
    operation_id = "list_files",
    tag = "files",
    params(ListQuery),
    responses((status = 200, body = FilesPage), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _session: Session,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<FilesPage>, ApiError> {
    let limit = limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let (files, last) = state.store.run(move |s| s.files_page(after.as_ref(), limit)).await?;
    let next = if files.len() == limit { last.as_ref().map(encode_cursor) } else { None };
    Ok(Json(FilesPage { files, next_cursor: next }))
}

/// `GET /api/files/{file_id}` (the id with or without its `file::` prefix).
#[utoipa::path(
    get,
    path = "/api/files/{file_id}",
    operation_id = "get_file",
    tag = "files",
    params(
        ("file_id" = String, Path, description = "File id, with or without its `file::` prefix"),
    ),
    responses((status = 200, body = FileDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
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

/// `GET /api/files/by-path?node_id=&path=`: the path must be absolute and normalized (no `.`,
/// `..`, empty components or trailing slash), so no request can name a path outside its form.
#[utoipa::path(
    get,
    path = "/api/files/by-path",
    operation_id = "get_file_by_path",
    tag = "files",
    params(ByPath),
    responses((status = 200, body = FileDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
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

/// The query of `GET /api/search`. `label` may repeat (labels are ANDed), so the query string
/// is read as pairs rather than through a struct.
#[derive(Debug, Default)]
pub struct SearchQuery {
    q: Option<String>,
    labels: Vec<Label>,
    limit: Option<usize>,
    cursor: Option<String>,
    count: bool,
}

impl SearchQuery {
    fn parse(raw: Option<&str>) -> Result<SearchQuery, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("query string: {e}")))?;
        let mut q = SearchQuery::default();
        for (k, v) in pairs {
            match k.as_str() {
                "q" => q.q = Some(v),
                "label" => q.labels.push(v.parse()?),
                "limit" => {
                    q.limit = Some(
                        v.parse()
                            .map_err(|_| ApiError::BadRequest(format!("limit {v:?} is not a number")))?,
                    )
                }
                "cursor" => q.cursor = Some(v),
                "count" => {
                    q.count =
                        v.parse().map_err(|_| ApiError::BadRequest("count must be true or false".into()))?
                }
                other => return Err(ApiError::BadRequest(format!("unknown query parameter {other:?}"))),
            }
        }
        Ok(q)
    }
}

/// `GET /api/search?q=&label=&limit=&cursor=&count=`: active files whose name contains `q`
/// (case-insensitive) or matches it as a glob when it has `*?[{`, and that carry every `label`.
/// Through the hub's trigram index (ARCHITECTURE §4.1); `count=true` adds the exact number of
/// name matches when the index can count them.
#[utoipa::path(
    get,
    path = "/api/search",
    operation_id = "search",
    tag = "files",
    params(
        ("q" = Option<String>, Query, description = "Substring of the name, or a glob when it has *?[{"),
        ("label" = Option<Vec<String>>, Query, description = "Required label; repeat to AND several"),
        ("limit" = Option<u32>, Query, description = "1-1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
        ("count" = Option<bool>, Query, description = "Also count the name matches"),
    ),
    responses((status = 200, body = SearchPage), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn search(
    State(state): State<AppState>,
    _session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Json<SearchPage>, ApiError> {
    search_files(&state, raw.as_deref()).await.map(Json)
}

/// A search as `GET /api/search` takes it (its raw query string): the API and the web UI's
/// search page both run this.
pub(crate) async fn search_files(state: &AppState, raw: Option<&str>) -> Result<SearchPage, ApiError> {
    let q = SearchQuery::parse(raw)?;
    let limit = limit(q.limit)?;
    let term = match &q.q {
        Some(t) if t.is_empty() || t.len() > 1000 => {
            return Err(ApiError::BadRequest("q must be 1-1000 bytes".into()))
        }
        Some(t) => Some(NameQuery::parse(t).map_err(|e| ApiError::BadRequest(format!("invalid glob: {e}")))?),
        None if q.labels.is_empty() => return Err(ApiError::BadRequest("give q, label, or both".into())),
        None => None,
    };
    let labels = q.labels.clone();
    let (count, cursor) = (q.count, q.cursor.clone());
    let cache = state.labels.clone();
    let (files, next, total) = state
        .store
        .run(move |s| {
            if !labels.is_empty() {
                cache.catch_up(s)?;
            }
            cache.with(|index| {
                let keep = |f: &FileDoc| labels.is_empty() || index.has_all(f, &labels);
                match term {
                    Some(term) => {
                        let after = match cursor
                            .as_deref()
                            .map(|c| c.strip_prefix('r').and_then(|r| r.parse::<i64>().ok()))
                        {
                            Some(None) => return Ok(Err(ApiError::BadRequest("invalid cursor".into()))),
                            Some(Some(r)) => Some(r),
                            None => None,
                        };
                        let hits = s.search_page(&term, after, limit, &keep)?;
                        // A complete first page of an unfiltered indexed query is its own count.
                        let complete = after.is_none()
                            && hits.next.is_none()
                            && hits.files.len() < limit
                            && labels.is_empty();
                        let total = match count {
                            true if complete && s.has_name_index() => Some(hits.files.len() as u64),
                            true => s.count_names(&term)?,
                            false => None,
                        };
                        Ok(Ok((hits.files, hits.next.map(|r| format!("r{r}")), total)))
                    }
                    None => {
                        // Labels only: walk every file in path order, a page at a time.
                        let mut after = match cursor.as_deref().map(decode_cursor) {
                            Some(Err(e)) => return Ok(Err(e)),
                            Some(Ok(k)) => Some(k),
                            None => None,
                        };
                        let mut out = Vec::new();
                        loop {
                            let (page, last) = s.files_page(after.as_ref(), 1000)?;
                            let done = page.len() < 1000;
                            for f in page {
                                if keep(&f) {
                                    out.push(f);
                                    if out.len() == limit {
                                        let f = &out[limit - 1];
                                        let k = (
                                            f.source.node_id.to_string(),
                                            f.source.export_parent.clone(),
                                            f.name.clone(),
                                        );
                                        return Ok(Ok((out, Some(encode_cursor(&k)), None)));
                                    }
                                }
                            }
                            if done || last.is_none() {
                                return Ok(Ok((out, None, None)));
                            }
                            after = last;
                        }
                    }
                }
            })
        })
        .await??;
    Ok(SearchPage { files, next_cursor: next, total })
}
