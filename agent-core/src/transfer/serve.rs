//! The transfer endpoint an agent serves to other agents (ARCHITECTURE §6.4, §10):
//! `GET /api/agent/transfer/{file_id}` with `Authorization: Bearer <transfer token>`.
//!
//! - The token must be the hub's, for this node and this file, unexpired ([`TransferVerifier`]).
//! - The file must be this node's, active, and readable under a watch path (the same check as
//!   the mount's tier 1: a symlink that leads out is refused). If the file on disk no longer
//!   has the size and mtime of its document, the answer is 409: the requester's view is stale.
//! - One `Range` is honoured (206 with `Content-Range`; 416 outside the file); otherwise the
//!   whole file is sent (200).
//! - The body streams from a blocking reader in 256 KiB chunks, never buffering the file, while
//!   a SHA-256 of exactly the bytes sent is computed; it ends with the trailer
//!   `Digest: sha-256=<base64>` (the request must say `TE: trailers`, HTTP/1.1 sends trailers
//!   only then). If the file changes while it is read, the stream is aborted (no trailer), so
//!   the requester discards what it got.
//! - Refusals are 4xx with a JSON body `{"error": {"code", "message"}}`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body::Frame;
use sha2::{Digest, Sha256};

use super::range::{self, Wanted};
use crate::doc::{Document, FileDoc, FileStatus};
use crate::ids::{FileId, NodeId};
use crate::store::Store;
use crate::transfer_token::TransferVerifier;
use crate::vfs::{Content, LocalSource, OpenError};

const CHUNK: usize = 256 * 1024;

/// What the endpoint serves from.
pub struct Served {
    pub store: Store,
    pub node_id: NodeId,
    pub files: Arc<dyn LocalSource>,
    /// The hub's key; until it is known (fetched from the hub at start) requests get 503.
    pub verifier: std::sync::OnceLock<TransferVerifier>,
    /// Fault injection for tests: while above zero, each response has one byte flipped after it
    /// was hashed (so its digest no longer matches) and the count goes down by one. Set from
    /// `MOSAICFS_FAULT_FLIP_BYTES` at start; zero otherwise.
    pub flip_faults: std::sync::atomic::AtomicU32,
}

/// The environment variable that arms [`Served::flip_faults`].
pub const FAULT_FLIP_ENV: &str = "MOSAICFS_FAULT_FLIP_BYTES";

pub fn router(served: Arc<Served>) -> axum::Router {
    axum::Router::new()
        .route("/api/agent/transfer/{file_id}", axum::routing::get(transfer))
        .route("/health", axum::routing::get(health))
        .with_state(served)
}

/// `GET /health`: no authentication, no secrets; says whether tokens can be checked yet.
async fn health(State(s): State<Arc<Served>>) -> Response {
    let ready = s.verifier.get().is_some();
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "degraded" },
        "role": "transfer",
        "node_id": s.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "subsystems": {"transfer_key": {"status": if ready { "ok" } else { "degraded" },
            "message": if ready { "the hub's transfer key is known" } else { "waiting for the hub's transfer key" }}},
    });
    axum::Json(body).into_response()
}

/// A 4xx/503 answer with the JSON error body.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into() }
}

/// The file's size and mtime on disk (what the document must still say).
fn disk_version(content: &dyn Content) -> Option<(u64, std::time::SystemTime)> {
    let meta = content.file()?.metadata().ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

async fn transfer(State(s): State<Arc<Served>>, Path(raw): Path<String>, headers: HeaderMap) -> Response {
    match answer(s, raw, headers).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(),
    }
}

async fn answer(s: Arc<Served>, raw: String, headers: HeaderMap) -> Result<Response, Refusal> {
    let Ok(file_id) = raw.parse::<FileId>() else {
        return Err(refuse(StatusCode::BAD_REQUEST, "bad_request", format!("{raw:?} is not a file id")));
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Err(refuse(StatusCode::UNAUTHORIZED, "unauthorized", "a transfer token is required"));
    };
    let Some(verifier) = s.verifier.get() else {
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this node does not know the hub's transfer key yet",
        ));
    };
    if let Err(e) = verifier.verify(token, &s.node_id, &file_id) {
        return Err(refuse(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()));
    }
    let wanted_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let opened = {
        let s = s.clone();
        tokio::task::spawn_blocking(move || open(&s, &file_id)).await
    };
    let (content, doc, version) = match opened {
        Ok(opened) => opened?,
        Err(e) => return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())),
    };
    let size = doc.size;
    let (status, start, end) = match range::parse(wanted_header.as_deref(), size) {
        Wanted::Whole => (StatusCode::OK, 0, size),
        Wanted::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Wanted::Unsatisfiable => {
            let mut r =
                refuse(StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable", "outside the file")
                    .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let flip = s
        .flip_faults
        .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
            n.checked_sub(1)
        })
        .is_ok();
    if flip {
        tracing::warn!(operation = "transfer.serve", file_id = %doc.id, "fault injection: one byte of this response flipped");
    }
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let sent = Sent { file_id: doc.id.clone(), start, end, flip, began: std::time::Instant::now() };
    tokio::task::spawn_blocking(move || stream(content, version, sent, tx));
    let mut response = Response::new(Body::new(Frames(rx)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::TRAILER, HeaderValue::from_static("digest"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(response)
}

type Opened = (Box<dyn Content>, FileDoc, (u64, std::time::SystemTime));

/// The file document and its open content, or the refusal (blocking).
fn open(s: &Served, file_id: &FileId) -> Result<Opened, Refusal> {
    let not_found =
        || refuse(StatusCode::NOT_FOUND, "not_found", format!("file {file_id} is not served here"));
    let doc = match s.store.get(&file_id.clone().into()) {
        Ok(Some(Document::File(f))) if f.status == FileStatus::Active && f.source.node_id == s.node_id => f,
        Ok(_) => return Err(not_found()),
        Err(e) => return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())),
    };
    let content = match s.files.open(&doc.source.export_path) {
        Ok(c) => c,
        Err(OpenError::Gone(_)) => return Err(not_found()),
        Err(e @ OpenError::Escapes { .. }) => {
            tracing::warn!(operation = "transfer.serve", file_id = %file_id, error = %e, "refused");
            return Err(refuse(StatusCode::FORBIDDEN, "forbidden", "the file is outside every watch path"));
        }
        Err(e) => return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string())),
    };
    let Some(version) = disk_version(content.as_ref()) else {
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "cannot stat the file"));
    };
    let indexed = (doc.size, std::time::SystemTime::from(doc.mtime));
    if version != indexed {
        return Err(refuse(
            StatusCode::CONFLICT,
            "changed",
            "the file changed since it was indexed; fetch its document again",
        ));
    }
    Ok((content, doc, version))
}

/// Reads `[start, end)` into the channel, hashing it; ends with the digest trailer, or with an
/// error if the file changed meanwhile or could not be read (the requester then sees a broken
/// body and discards it). Stops early when the requester is gone.
/// One response being sent.
struct Sent {
    file_id: FileId,
    start: u64,
    end: u64,
    /// Fault injection: flip one byte after hashing it.
    flip: bool,
    began: std::time::Instant,
}

fn stream(
    content: Box<dyn Content>,
    version: (u64, std::time::SystemTime),
    sent: Sent,
    tx: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
) {
    let Sent { start, end, mut flip, .. } = sent;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < end {
        let n = CHUNK.min((end - at) as usize);
        let got = match content.read_at(&mut buf[..n], at) {
            Ok(0) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file got shorter")),
            Ok(got) => Ok(got),
            Err(e) => Err(e),
        };
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        hasher.update(&buf[..got]);
        if std::mem::take(&mut flip) {
            buf[0] ^= 0x01;
        }
        if tx.blocking_send(Ok(Frame::data(Bytes::copy_from_slice(&buf[..got])))).is_err() {
            return;
        }
        at += got as u64;
    }
    if disk_version(content.as_ref()) != Some(version) {
        let _ = tx.blocking_send(Err(std::io::Error::other("the file changed while it was sent")));
        return;
    }
    let digest = base64::engine::general_purpose::STANDARD.encode(hasher.finalize());
    let mut trailers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("sha-256={digest}")) {
        trailers.insert("digest", v);
    }
    if tx.blocking_send(Ok(Frame::trailers(trailers))).is_ok() {
        tracing::info!(
            operation = "transfer.serve",
            file_id = %sent.file_id,
            start,
            bytes = end - start,
            elapsed_ms = sent.began.elapsed().as_millis() as u64,
            "transfer sent"
        );
    }
}

/// A body fed by the reader thread.
struct Frames(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx)
    }
}
