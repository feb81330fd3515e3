//! `GET /api/files/{file_id}/content`: the bytes of a file, as the transfer server sends them
//! (one shared module, `agent_core::content`): one `Range` (RFC 9110: a malformed header is
//! ignored), `?version=` (409 `changed` when the file is not that version), `If-Range`, an
//! `ETag`, `Content-Disposition`, and a `Digest` trailer when the client asks for trailers
//! (`TE: trailers`; without it, HTTP/1.1 gets a `Content-Length` instead).
//!
//! - A file of the node that runs in this process (`mosaicfs up`) is opened through the one
//!   safe open under its watch paths and streamed from disk.
//! - A file of another node is fetched from that node's transfer server (tier 4, ARCHITECTURE
//!   §10) with a token the hub signs for itself (`sub: control_plane`), over TLS pinned to the
//!   certificate in the node document, at the version of the hub's document. It is streamed
//!   through while its SHA-256 is computed; the last chunk is held back until the owner's
//!   `Digest` trailer matched, and that digest is forwarded as this answer's trailer. On a
//!   mismatch the response is cut short (the client sees a broken transfer, never a complete
//!   wrong file). An owner that cannot be reached is a 503 `node_unavailable` that names it.

use agent_core::content::serve::{self, Ask, Ended, Faults, Plan};
use agent_core::content::{FileVersion, OpenError};
use agent_core::doc::{Document, FileDoc, FileStatus};
use agent_core::ids::{DocId, FileId};
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use http_body::Frame;

use crate::auth::Session;
use crate::error::ApiError;
use crate::state::{AppState, LocalNode};

/// `attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
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
        ("version" = Option<String>, Query, description = "The version expected, SIZE-MTIME_NS (the ETag without quotes); another one is a 409"),
        ("Range" = Option<String>, Header, description = "One byte range, e.g. bytes=0-1023"),
        ("If-Range" = Option<String>, Header, description = "An ETag: the range applies only while the file is that version"),
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
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let full = if raw.starts_with("file::") { raw } else { format!("file::{raw}") };
    let id: FileId = full.parse()?;
    let key = DocId::from(&id);
    let file: FileDoc = match state.store.run(move |s| s.get(&key)).await? {
        Some(Document::File(f)) if f.status == FileStatus::Active => f,
        _ => return Err(ApiError::NotFound(format!("file {id}"))),
    };
    let ask = match Ask::from_request(&headers, query.as_deref()) {
        Ok(a) => Owned::of(&a),
        Err(r) => return Ok(r.response()),
    };
    let trailers = serve::wants_trailers(&headers);
    match &state.local {
        Some(l) if l.node_id == file.source.node_id => local_content(l.clone(), &file, ask, trailers).await,
        _ => remote_content(&state, &file, ask, trailers).await,
    }
}

/// An [`Ask`] that owns its strings (it crosses an `await`).
struct Owned {
    range: Option<String>,
    if_range: Option<String>,
    expect: Option<FileVersion>,
}

impl Owned {
    fn of(a: &Ask<'_>) -> Owned {
        Owned { range: a.range.map(str::to_owned), if_range: a.if_range.map(str::to_owned), expect: a.expect }
    }

    fn ask(&self) -> Ask<'_> {
        Ask { range: self.range.as_deref(), if_range: self.if_range.as_deref(), expect: self.expect }
    }
}

/// A file of the node in this process, from disk.
async fn local_content(
    local: std::sync::Arc<LocalNode>,
    file: &FileDoc,
    ask: Owned,
    trailers: bool,
) -> Result<Response, ApiError> {
    let path = file.source.export_path.clone();
    let file_id = file.id.clone();
    let opened = tokio::task::spawn_blocking(move || {
        use agent_core::content::LocalSource;
        let content = local.files.open(&path)?;
        let version = content.file().and_then(|f| f.metadata().ok()).and_then(|m| FileVersion::of(&m));
        Ok::<_, OpenError>((content, version))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (content, version) = match opened {
        Ok((c, Some(v))) => (c, v),
        Ok((_, None)) => return Err(ApiError::Internal(format!("cannot stat {}", file.source.export_path))),
        Err(OpenError::Gone(_)) => {
            return Err(ApiError::NotFound(format!("{} is no longer at its source", file.source.export_path)))
        }
        Err(e @ OpenError::Escapes { .. }) => {
            tracing::warn!(operation = "files.content", file_id = %file_id, error = %e, "content refused: outside the watch paths");
            return Err(ApiError::Forbidden);
        }
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    let plan = match serve::plan(version, &ask.ask()) {
        Ok(p) => p,
        Err(r) => return Ok(r.response()),
    };
    let body = serve::stream(content, plan, Faults::default(), move |ended| {
        if ended != (Ended::Sent { bytes: plan.end - plan.start }) {
            tracing::warn!(operation = "files.content", file_id = %file_id, ?ended, "content not sent in full");
        }
    });
    tracing::info!(operation = "files.content", file_id = %file.id, bytes = plan.end - plan.start, partial = plan.status == StatusCode::PARTIAL_CONTENT, "serving file content");
    Ok(content_response(file, Body::new(body), &plan, trailers))
}

/// The response around `body`: status, `ETag`, range headers, type, disposition, date.
fn content_response(file: &FileDoc, body: Body, plan: &Plan, trailers: bool) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = plan.status;
    let h = resp.headers_mut();
    plan.headers(h, !trailers);
    let mime = file.mime.as_deref().unwrap_or("application/octet-stream");
    h.insert(header::CONTENT_TYPE, header_value(mime));
    h.insert(header::CONTENT_DISPOSITION, header_value(&content_disposition(&file.name)));
    h.insert(
        header::LAST_MODIFIED,
        header_value(&file.mtime.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
    );
    resp
}

/// A file of another node, through its transfer server (one attempt: the client may retry).
async fn remote_content(
    state: &AppState,
    file: &FileDoc,
    ask: Owned,
    trailers: bool,
) -> Result<Response, ApiError> {
    use agent_core::transfer::client::{FetchError, Peer};
    // The hub answers for the version its document describes: the owner must still have it.
    let indexed = FileVersion::of_doc(file);
    let plan = match serve::plan(indexed, &ask.ask()) {
        Ok(p) => p,
        Err(r) => return Ok(r.response()),
    };
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
    let range = (plan.status == StatusCode::PARTIAL_CONTENT).then_some((plan.start, plan.end));
    let incoming = state.transfers.get(&peer, &token, &file.id, indexed, range).await.map_err(|e| match e {
        FetchError::Refused { status: 404, .. } => ApiError::NotFound(format!("file {} at its source", file.id)),
        ref f if f.is_changed() => ApiError::Changed(format!(
            "file {} changed at its source since it was indexed; try again after the next sync",
            file.id
        )),
        other => {
            tracing::warn!(operation = "files.content", file_id = %file.id, node_id = %node_id, error = %other, "owner unreachable");
            ApiError::Unavailable(format!("file {} is on node {node_id}, which cannot be reached now", file.id))
        }
    })?;
    tracing::info!(operation = "files.content", file_id = %file.id, node_id = %peer.node_id, partial = range.is_some(), "serving remote file content");
    Ok(content_response(file, Body::new(forwarded(incoming, file.id.clone())), &plan, trailers))
}

/// Where forwarding the owner's body stands.
enum Step {
    /// Receiving; the last chunk received is held back until the next one is in.
    Streaming(agent_core::transfer::client::Incoming, Option<bytes::Bytes>),
    /// Everything is out but the trailer.
    Trailer(HeaderMap),
    Done,
}

type Frames =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<bytes::Bytes>, std::io::Error>> + Send>>;

/// The owner's body, passed on: each chunk held back until the next one is in, the last one
/// only once the owner's digest matched (so with `Content-Length` a mismatch leaves the client
/// short of bytes, never with a complete wrong file), then that digest as the trailer.
fn forwarded(
    incoming: agent_core::transfer::client::Incoming,
    file_id: FileId,
) -> http_body_util::StreamBody<Frames> {
    let frames = futures_util::stream::unfold(Step::Streaming(incoming, None), move |step| {
        let file_id = file_id.clone();
        async move {
            let (mut incoming, mut held) = match step {
                Step::Done => return None,
                Step::Trailer(t) => return Some((Ok(Frame::trailers(t)), Step::Done)),
                Step::Streaming(incoming, held) => (incoming, held),
            };
            loop {
                match incoming.chunk().await {
                    Ok(Some(bytes)) => match held.replace(bytes) {
                        Some(previous) => {
                            return Some((Ok(Frame::data(previous)), Step::Streaming(incoming, held)))
                        }
                        None => continue,
                    },
                    Ok(None) => {
                        let mut trailers = HeaderMap::new();
                        let digest = incoming.digest().map(|d| serve::digest_header(&d));
                        if let Some(v) = digest.and_then(|d| HeaderValue::from_str(&d).ok()) {
                            trailers.insert("digest", v);
                        }
                        return Some(match held {
                            Some(last) => (Ok(Frame::data(last)), Step::Trailer(trailers)),
                            None => (Ok(Frame::trailers(trailers)), Step::Done),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(operation = "files.content", file_id = %file_id, error = %e, "remote content cut short");
                        return Some((
                            Err(std::io::Error::other("the transfer from the owner broke off")),
                            Step::Done,
                        ));
                    }
                }
            }
        }
    });
    http_body_util::StreamBody::new(Box::pin(frames) as Frames)
}
