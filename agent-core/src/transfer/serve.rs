//! The transfer endpoint an agent serves to other agents (ARCHITECTURE §6.4, §10.1):
//! `GET /api/agent/transfer/{file_id}?version=SIZE-MTIME_NS` with
//! `Authorization: Bearer <transfer token>`.
//!
//! - The token must be the hub's, for this node and this file, unexpired ([`TransferVerifier`]).
//! - The file must be this node's and active; it is opened through the one safe open under the
//!   watch paths ([`crate::content::open`]). What is sent is decided and streamed by
//!   [`crate::content::serve`], as the hub's content route does: one `Range`, the `version`
//!   precondition (409 `changed`), `If-Range`, an `ETag`, and a `Digest` trailer of exactly the
//!   bytes sent (the request must say `TE: trailers`; HTTP/1.1 sends trailers only then).
//! - Refusals are 4xx/503 with the JSON error body; internal details are logged, not sent.
//! - What was sent is counted ([`Sent`]) for `/health` and `agent_status`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::content::serve::{self, Ask, Ended, Faults, Refusal};
use crate::content::{FileVersion, LocalSource, OpenError};
use crate::doc::{Document, FileDoc, FileStatus};
use crate::ids::{FileId, NodeId};
use crate::store::Store;
use crate::transfer_token::TransferVerifier;
use crate::wire::ErrorCode;

/// What the endpoint serves from.
pub struct Served {
    pub store: Store,
    pub node_id: NodeId,
    pub files: Arc<dyn LocalSource>,
    /// The hub's key; until it is known (fetched from the hub at start) requests get 503.
    pub verifier: std::sync::OnceLock<TransferVerifier>,
    /// What was sent.
    pub sent: Sent,
    /// Fault injection (builds with the `fault-injection` feature only): while above zero, each
    /// response has one byte flipped after it was hashed (so its digest no longer matches).
    pub flip_faults: std::sync::atomic::AtomicU32,
}

/// Counts of what the endpoint sent, since the process started.
#[derive(Debug, Default)]
pub struct Sent {
    /// Responses whose every byte and digest trailer went out.
    pub responses: AtomicU64,
    pub bytes: AtomicU64,
    /// Responses broken off because the file changed or could not be read.
    pub broken: AtomicU64,
    /// Responses abandoned by their client (gone, or stalled past [`serve::STALL`]).
    pub abandoned: AtomicU64,
}

impl Sent {
    pub fn snapshot(&self) -> SentCounts {
        SentCounts {
            responses: self.responses.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            broken: self.broken.load(Ordering::Relaxed),
            abandoned: self.abandoned.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SentCounts {
    pub responses: u64,
    pub bytes: u64,
    pub broken: u64,
    pub abandoned: u64,
}

/// The environment variable that arms [`Served::flip_faults`] (fault-injection builds only).
pub const FAULT_FLIP_ENV: &str = "MOSAICFS_FAULT_FLIP_BYTES";

impl Served {
    /// The flip faults to arm at start: the environment's, in a fault-injection build.
    pub fn flip_faults_from_env() -> u32 {
        if cfg!(feature = "fault-injection") {
            std::env::var(FAULT_FLIP_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0)
        } else {
            0
        }
    }
}

pub fn router(served: Arc<Served>) -> axum::Router {
    axum::Router::new()
        .route("/api/agent/transfer/{file_id}", axum::routing::get(transfer))
        .route("/health", axum::routing::get(health))
        .with_state(served)
}

/// `GET /health`: no authentication, no secrets; says whether tokens can be checked yet, and
/// what was sent.
async fn health(State(s): State<Arc<Served>>) -> Response {
    let ready = s.verifier.get().is_some();
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "degraded" },
        "role": "transfer",
        "node_id": s.node_id,
        "version": env!("CARGO_PKG_VERSION"),
        "subsystems": {"transfer_key": {"status": if ready { "ok" } else { "degraded" },
            "message": if ready { "the hub's transfer key is known" } else { "waiting for the hub's transfer key" }}},
        "sent": s.sent.snapshot(),
    });
    axum::Json(body).into_response()
}

fn refusal(r: Refusal) -> Response {
    r.response::<Body>()
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    refusal(Refusal::new(code, message))
}

async fn transfer(
    State(s): State<Arc<Served>>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match answer(s, raw, query, headers).await {
        Ok(r) | Err(r) => r,
    }
}

async fn answer(
    s: Arc<Served>,
    raw: String,
    query: Option<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let Ok(file_id) = raw.parse::<FileId>() else {
        return Err(refuse(ErrorCode::BadRequest, format!("{raw:?} is not a file id")));
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| refuse(ErrorCode::Unauthorized, "a transfer token is required"))?;
    let verifier = s.verifier.get().ok_or_else(|| {
        refuse(ErrorCode::Unavailable, "this node does not know the hub's transfer key yet")
    })?;
    if let Err(e) = verifier.verify(token, &s.node_id, &file_id) {
        return Err(refuse(ErrorCode::Unauthorized, e.to_string()));
    }
    let ask = Ask::from_request(&headers, query.as_deref()).map_err(refusal)?;
    let (range, if_range, expect) =
        (ask.range.map(str::to_owned), ask.if_range.map(str::to_owned), ask.expect);
    let opened = {
        let s = s.clone();
        tokio::task::spawn_blocking(move || open(&s, &file_id)).await
    };
    let (content, doc, version) = match opened {
        Ok(opened) => opened.map_err(|r| *r)?,
        Err(e) => {
            tracing::error!(operation = "transfer.serve", error = %e, "open task failed");
            return Err(refuse(ErrorCode::Unavailable, "the file cannot be read now"));
        }
    };
    let ask = Ask { range: range.as_deref(), if_range: if_range.as_deref(), expect };
    let plan = serve::plan(version, &ask).map_err(refusal)?;
    let faults = Faults { flip_first_byte: take_flip_fault(&s, &doc.id) };
    let (began, served, file_id) = (std::time::Instant::now(), s.clone(), doc.id.clone());
    let body = serve::stream(content, plan, faults, move |ended| {
        count(&served, &file_id, plan.start, ended, began);
    });
    let mut response = Response::new(Body::new(body));
    *response.status_mut() = plan.status;
    plan.headers(response.headers_mut(), false);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    Ok(response)
}

fn take_flip_fault(s: &Served, file: &FileId) -> bool {
    let flip = s.flip_faults.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    if flip {
        tracing::warn!(operation = "transfer.serve", file_id = %file, "fault injection: one byte of this response flipped");
    }
    flip
}

fn count(s: &Served, file_id: &FileId, start: u64, ended: Ended, began: std::time::Instant) {
    let elapsed_ms = began.elapsed().as_millis() as u64;
    match ended {
        Ended::Sent { bytes } => {
            s.sent.responses.fetch_add(1, Ordering::Relaxed);
            s.sent.bytes.fetch_add(bytes, Ordering::Relaxed);
            tracing::info!(operation = "transfer.serve", file_id = %file_id, start, bytes, duration_ms = elapsed_ms, "transfer sent");
        }
        Ended::Broken => {
            s.sent.broken.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(operation = "transfer.serve", file_id = %file_id, start, duration_ms = elapsed_ms, "transfer broken off: the file changed or could not be read");
        }
        Ended::Abandoned => {
            s.sent.abandoned.fetch_add(1, Ordering::Relaxed);
            tracing::info!(operation = "transfer.serve", file_id = %file_id, start, duration_ms = elapsed_ms, "transfer abandoned by its client");
        }
    }
}

type Opened = (Box<dyn crate::content::Content>, FileDoc, FileVersion);

/// The file document, its open content and its version on disk, or the refusal (blocking).
fn open(s: &Served, file_id: &FileId) -> Result<Opened, Box<Response>> {
    let refuse = |code, message: &str| Box::new(refuse(code, message));
    let not_found = || refuse(ErrorCode::NotFound, &format!("file {file_id} is not served here"));
    let doc = match s.store.get(&file_id.clone().into()) {
        Ok(Some(Document::File(f))) if f.status == FileStatus::Active && f.source.node_id == s.node_id => f,
        Ok(_) => return Err(not_found()),
        Err(e) => {
            tracing::error!(operation = "transfer.serve", file_id = %file_id, error = %e, "store unreadable");
            return Err(refuse(ErrorCode::Unavailable, "the file cannot be read now"));
        }
    };
    let content = match s.files.open(&doc.source.export_path) {
        Ok(c) => c,
        Err(OpenError::Gone(_)) => return Err(not_found()),
        Err(e @ OpenError::Escapes { .. }) => {
            tracing::warn!(operation = "transfer.serve", file_id = %file_id, error = %e, "refused");
            return Err(refuse(ErrorCode::Forbidden, "the file is outside every watch path"));
        }
        Err(e) => {
            tracing::warn!(operation = "transfer.serve", file_id = %file_id, error = %e, "cannot open");
            return Err(refuse(ErrorCode::Unavailable, "the file cannot be read now"));
        }
    };
    let version = content.file().and_then(|f| f.metadata().ok()).and_then(|m| FileVersion::of(&m));
    let Some(version) = version else {
        tracing::warn!(operation = "transfer.serve", file_id = %file_id, "cannot stat the open file");
        return Err(refuse(ErrorCode::Unavailable, "the file cannot be read now"));
    };
    Ok((content, doc, version))
}
