//! `GET /api/files/{file_id}/content`: the bytes of a file on the node that runs in this process
//! (`mosaicfs up`), with `Range` (one range) and `Content-Disposition`, streamed from disk
//! without buffering the file. Only files whose canonical path lies under one of the node's
//! watch paths are served, so a symlink or a crafted document cannot reach other files. Files on
//! other nodes come through the transfer server (issue 7): 501 until then.

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
        (status = 501, description = "The file is on another node (transfer server not yet available)", body = crate::error::ErrorBody),
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
    let local = match &state.local {
        Some(l) if l.node_id == file.source.node_id => l.clone(),
        _ => {
            return Err(ApiError::NotImplemented(format!(
                "file {id} is on node {}: content of files on other nodes is served through their \
                 transfer server, which this build does not have yet",
                file.source.node_id
            )))
        }
    };
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let path = file.source.export_path.clone();
    let (std_file, len) = tokio::task::spawn_blocking(move || open_under_watch_paths(&local, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;

    let range = match parse_range(range_header.as_deref(), len) {
        Ok(r) => r,
        Err(()) => {
            let body = serde_json::json!({"error": {"code": "range_not_satisfiable",
                "message": format!("the file has {len} bytes")}});
            let mut resp = (StatusCode::RANGE_NOT_SATISFIABLE, axum::Json(body)).into_response();
            resp.headers_mut().insert(header::CONTENT_RANGE, header_value(&format!("bytes */{len}")));
            return Ok(resp);
        }
    };
    let (status, start, count) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.start, r.end - r.start + 1),
        None => (StatusCode::OK, 0, len),
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
    tracing::info!(operation = "files.content", file_id = %file.id, bytes = count, partial = range.is_some(), "serving file content");
    Ok(resp)
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
