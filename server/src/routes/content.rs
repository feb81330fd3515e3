//! `GET /api/files/{file_id}/content`: the bytes of a file, with `Range` (one range) and
//! `Content-Disposition`, streamed without buffering the file.
//!
//! - A file of the node that runs in this process (`mosaicfs up`) is read from disk. Only files
//!   whose canonical path lies under one of the node's watch paths are served, so a symlink or a
//!   crafted document cannot reach other files.
//! - A file of another node is fetched from that node's transfer server (tier 4, ARCHITECTURE
//!   §10) with a token the hub signs for itself (`sub: control_plane`), over TLS pinned to the
//!   certificate in the node document, and streamed through while its SHA-256 is computed, the
//!   last chunk held back until the `Digest` trailer matched: on a mismatch the response is cut
//!   short (the client sees a broken transfer, never a complete wrong file). An owner that cannot be reached is a 503
//!   `node_unavailable` that names it.

use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use agent_core::doc::{Document, FileDoc, FileStatus};
use agent_core::ids::{DocId, FileId};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt;

use crate::auth::Session;
use crate::error::ApiError;
use crate::state::{AppState, LocalNode};

/// The one byte range a response covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    /// Inclusive.
    pub end: u64,
}

/// A parsed `Range` header against a file of `len` bytes: `Ok(None)` = send everything (no
/// header, or a form we do not serve partially, like several ranges), `Err(())` = 416.
pub fn parse_range(header: Option<&str>, len: u64) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = header.map(str::trim) else { return Ok(None) };
    let Some(set) = spec.strip_prefix("bytes=") else { return Ok(None) };
    if set.contains(',') {
        return Ok(None);
    }
    let (a, b) = set.trim().split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Err(()),
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 || len == 0 {
                return Err(());
            }
            ByteRange { start: len.saturating_sub(n), end: len - 1 }
        }
        (false, _) => {
            let start: u64 = a.parse().map_err(|_| ())?;
            let end: u64 = if b.is_empty() { u64::MAX } else { b.parse().map_err(|_| ())? };
            if start >= len || end < start {
                return Err(());
            }
            ByteRange { start, end: end.min(len - 1) }
        }
    };
    Ok(Some(range))
}

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Opens `export_path` if its canonical form lies under a canonical watch path.
fn open_under_watch_paths(local: &LocalNode, export_path: &str) -> Result<(std::fs::File, u64), ApiError> {
    let gone = || ApiError::NotFound(format!("{export_path} is no longer at its source"));
    let real = std::fs::canonicalize(export_path).map_err(|_| gone())?;
    let inside = local
        .watch_paths
        .iter()
        .filter_map(|w| std::fs::canonicalize(w).ok())
        .any(|w: PathBuf| real.starts_with(&w));
    if !inside {
        tracing::warn!(export_path, resolved = %real.display(), "content refused: outside the watch paths");
        return Err(ApiError::Forbidden);
    }
    let file = std::fs::File::open(&real).map_err(|_| gone())?;
    let meta = file.metadata().map_err(|_| gone())?;
    if !meta.is_file() {
        return Err(gone());
    }
    Ok((file, meta.len()))
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

#[utoipa::path(
    get,
    path = "/api/files/{file_id}/content",
    operation_id = "get_file_content",
    tag = "files",
    params(
        ("file_id" = String, Path, description = "File id, with or without its `file::` prefix"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. bytes=0-1023"),
    ),
    responses(
        (status = 200, description = "The whole file", content(("application/octet-stream"))),
        (status = 206, description = "The requested range", content(("application/octet-stream"))),
        (status = 503, description = "The file's node cannot be reached", body = crate::error::ErrorBody),
        crate::error::ErrorResponses,
    ),
    security(("bearer" = [])),
)]
pub async fn content(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let full = if raw.starts_with("file::") { raw } else { format!("file::{raw}") };
    let id: FileId = full.parse()?;
    let key = DocId::from(&id);
    let file: FileDoc = match state.store.run(move |s| s.get(&key)).await? {
        Some(Document::File(f)) if f.status == FileStatus::Active => f,
        _ => return Err(ApiError::NotFound(format!("file {id}"))),
    };
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let local = match &state.local {
        Some(l) if l.node_id == file.source.node_id => l.clone(),
        _ => return remote_content(&state, &file, range_header.as_deref()).await,
    };
    let path = file.source.export_path.clone();
    let (std_file, len) = tokio::task::spawn_blocking(move || open_under_watch_paths(&local, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;

    let range = match parse_range(range_header.as_deref(), len) {
        Ok(r) => r,
        Err(()) => return Ok(unsatisfiable(len)),
    };
    let (start, count) = match range {
        Some(r) => (r.start, r.end - r.start + 1),
        None => (0, len),
    };
    let std_file = tokio::task::spawn_blocking(move || {
        let mut f = std_file;
        f.seek(SeekFrom::Start(start)).map(|_| f)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let reader = tokio::fs::File::from_std(std_file).take(count);
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024));
    tracing::info!(operation = "files.content", file_id = %file.id, bytes = count, partial = range.is_some(), "serving file content");
    Ok(content_response(&file, body, range, len))
}

/// 416 with the file's length.
fn unsatisfiable(len: u64) -> Response {
    let body = serde_json::json!({"error": {"code": "range_not_satisfiable",
        "message": format!("the file has {len} bytes")}});
    let mut resp = (StatusCode::RANGE_NOT_SATISFIABLE, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{len}")));
    resp
}

/// The response around `body`: 200 or 206, type, length, disposition, last-modified.
fn content_response(file: &FileDoc, body: Body, range: Option<ByteRange>, len: u64) -> Response {
    let (status, count) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.end - r.start + 1),
        None => (StatusCode::OK, len),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let mime = file.mime.as_deref().unwrap_or("application/octet-stream");
    h.insert(header::CONTENT_TYPE, header_value(mime));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_DISPOSITION, header_value(&content_disposition(&file.name)));
    h.insert(
        header::LAST_MODIFIED,
        header_value(&file.mtime.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
    );
    if let Some(r) = range {
        h.insert(header::CONTENT_RANGE, header_value(&format!("bytes {}-{}/{len}", r.start, r.end)));
    }
    resp
}

/// A file of another node, through its transfer server (one attempt: the client may retry).
async fn remote_content(
    state: &AppState,
    file: &FileDoc,
    range_header: Option<&str>,
) -> Result<Response, ApiError> {
    use agent_core::transfer::client::{FetchError, Peer};
    let node_id = file.source.node_id.clone();
    let key = DocId::from(&agent_core::ids::NodeDocId::for_node(&node_id));
    let node = match state.store.run(move |s| s.get(&key)).await? {
        Some(Document::Node(n)) => n,
        _ => {
            return Err(ApiError::Unavailable(format!(
                "file {} is on node {node_id}, which is not known",
                file.id
            )))
        }
    };
    let Some(endpoint) = node.transfer else {
        return Err(ApiError::Unavailable(format!(
            "file {} is on node {node_id} ({}), which serves no files now (offline, or not started)",
            file.id, node.friendly_name
        )));
    };
    let range = match parse_range(range_header, file.size) {
        Ok(r) => r,
        Err(()) => return Ok(unsatisfiable(file.size)),
    };
    let now = chrono::Utc::now().timestamp();
    let (token, _) = state
        .transfer
        .issue("control_plane", &node_id, &file.id, now, agent_core::transfer_token::MAX_TTL_SECS)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let peer = Peer {
        node_id: node_id.clone(),
        endpoint: endpoint.endpoint,
        fingerprint: endpoint.cert_fingerprint,
    };
    let incoming =
        state.transfers.get(&peer, &token, &file.id, range.map(|r| (r.start, r.end + 1))).await.map_err(
            |e| match e {
                FetchError::Refused { status: 404, .. } => {
                    ApiError::NotFound(format!("file {} at its source", file.id))
                }
                FetchError::Refused { status: 409, .. } => ApiError::Conflict(format!(
                    "file {} changed at its source since it was indexed; try again after the next sync",
                    file.id
                )),
                other => ApiError::Unavailable(format!("file {} is on node {node_id}: {other}", file.id)),
            },
        )?;
    let file_id = file.id.clone();
    // Chunks as they arrive, each held back until the next one is in: the last one goes out only
    // once the digest matched, so with `Content-Length` a mismatch leaves the client short of
    // bytes (a broken transfer), never with a complete wrong file.
    let chunks = futures_util::stream::unfold(Some((incoming, None::<bytes::Bytes>)), move |state| {
        let file_id = file_id.clone();
        async move {
            let (mut incoming, mut held) = state?;
            loop {
                match incoming.chunk().await {
                    Ok(Some(bytes)) => match held.replace(bytes) {
                        Some(previous) => return Some((Ok(previous), Some((incoming, held)))),
                        None => continue,
                    },
                    Ok(None) => return held.map(|last| (Ok(last), None)),
                    Err(e) => {
                        tracing::warn!(operation = "files.content", file_id = %file_id, error = %e, "remote content cut short");
                        return Some((Err(std::io::Error::other(e.to_string())), None));
                    }
                }
            }
        }
    });
    tracing::info!(operation = "files.content", file_id = %file.id, node_id = %peer.node_id, partial = range.is_some(), "serving remote file content");
    Ok(content_response(file, Body::from_stream(chunks), range, file.size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str, len| parse_range(Some(h), len);
        assert_eq!(r("bytes=0-9", 100), Ok(Some(ByteRange { start: 0, end: 9 })));
        assert_eq!(r("bytes=90-", 100), Ok(Some(ByteRange { start: 90, end: 99 })));
        assert_eq!(r("bytes=-10", 100), Ok(Some(ByteRange { start: 90, end: 99 })));
        assert_eq!(r("bytes=-500", 100), Ok(Some(ByteRange { start: 0, end: 99 })));
        assert_eq!(r("bytes=50-5000", 100), Ok(Some(ByteRange { start: 50, end: 99 })));
        assert_eq!(r("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(r("items=0-1", 100), Ok(None));
        assert_eq!(parse_range(None, 100), Ok(None));
        for bad in ["bytes=100-", "bytes=5-1", "bytes=-0", "bytes=x-1", "bytes=-", "bytes=0-"] {
            let len = if bad == "bytes=0-" { 0 } else { 100 };
            assert_eq!(r(bad, len), Err(()), "{bad}");
        }
    }

    #[test]
    fn disposition_has_an_ascii_fallback_and_the_utf8_name() {
        assert_eq!(
            content_disposition("Ré\"port 1.pdf"),
            "attachment; filename=\"R__port 1.pdf\"; filename*=UTF-8''R%C3%A9%22port%201%2Epdf"
        );
    }
}
