//! Serving a node's own file over HTTP, the same way on both paths that do it: the transfer
//! server (to other agents) and the hub's `/api/files/{id}/content` (files of the node that runs
//! in the hub's process). [`plan`] decides from the version on disk and the request what to
//! send (pure, tested alone); [`stream`] sends it from a blocking reader, hashing what it sends,
//! and ends with the `Digest` trailer — or breaks off without one when the file changes under
//! it or the client stops reading.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body::Frame;
use sha2::{Digest, Sha256};

use super::open::Content;
use super::range::{self, Wanted};
use super::version::FileVersion;
use crate::wire::ErrorCode;

/// What a request asks of a file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ask<'a> {
    /// The `Range` header.
    pub range: Option<&'a str>,
    /// The `If-Range` header.
    pub if_range: Option<&'a str>,
    /// The version the caller expects (`?version=`); another version on disk is a 409.
    pub expect: Option<FileVersion>,
}

impl<'a> Ask<'a> {
    /// The range headers of a request, and the version named by a `version` query parameter.
    pub fn from_request(headers: &'a HeaderMap, query: Option<&str>) -> Result<Ask<'a>, Refusal> {
        let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
        let expect = match query.and_then(version_param) {
            Some(raw) => Some(FileVersion::parse_token(&raw).ok_or_else(|| {
                Refusal::new(
                    ErrorCode::BadRequest,
                    "version must be SIZE-MTIME_NS (the file's ETag without quotes)",
                )
            })?),
            None => None,
        };
        Ok(Ask { range: text(header::RANGE), if_range: text(header::IF_RANGE), expect })
    }
}

/// The value of the `version` parameter of a query string.
fn version_param(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    pairs.into_iter().find(|(k, _)| k == "version").map(|(_, v)| v)
}

/// What to send: `[start, end)` of a file of `size` bytes at `version`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub status: StatusCode,
    pub start: u64,
    pub end: u64,
    pub size: u64,
    pub version: FileVersion,
}

/// A request this file cannot answer: the error code (its status goes with it) and a message
/// for people. For 416 the file's size, for `Content-Range: bytes */SIZE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub unsatisfiable_size: Option<u64>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal { code, message: message.into(), unsatisfiable_size: None }
    }

    /// The error response: status, JSON error body, and `Content-Range` for a 416.
    pub fn response<B: From<Bytes>>(&self) -> http::Response<B> {
        let body =
            serde_json::to_vec(&crate::wire::ErrorBody::new(self.code, &self.message)).unwrap_or_default();
        let mut r = http::Response::new(B::from(Bytes::from(body)));
        *r.status_mut() = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(size) = self.unsatisfiable_size {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        r
    }
}

/// What to send of a file whose version on disk is `disk`, for `ask`.
pub fn plan(disk: FileVersion, ask: &Ask<'_>) -> Result<Plan, Refusal> {
    if let Some(want) = ask.expect.filter(|v| *v != disk) {
        return Err(Refusal::new(
            ErrorCode::Changed,
            format!(
                "the file changed at its source: {} bytes modified at {} ns now, {} bytes at {} ns expected",
                disk.size, disk.mtime_ns, want.size, want.mtime_ns
            ),
        ));
    }
    // If-Range names another version (or a date): the range does not apply, the whole file does.
    let range = match ask.if_range {
        Some(tag) if !disk.matches_if_range(tag) => None,
        _ => ask.range,
    };
    let whole = Plan { status: StatusCode::OK, start: 0, end: disk.size, size: disk.size, version: disk };
    match range::parse(range, disk.size) {
        Wanted::Whole => Ok(whole),
        Wanted::Part(start, end) => Ok(Plan { status: StatusCode::PARTIAL_CONTENT, start, end, ..whole }),
        Wanted::Unsatisfiable => Err(Refusal {
            code: ErrorCode::RangeNotSatisfiable,
            message: format!("the file has {} bytes", disk.size),
            unsatisfiable_size: Some(disk.size),
        }),
    }
}

impl Plan {
    /// The headers every answer carries: `ETag`, `Accept-Ranges`, `Content-Range` for a part,
    /// `Trailer: digest`, and `Content-Length` when `length` (a client that did not ask for
    /// trailers over HTTP/1.1 gets a length instead of a chunked body).
    pub fn headers(&self, h: &mut HeaderMap, length: bool) {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::TRAILER, HeaderValue::from_static("digest"));
        if let Ok(v) = HeaderValue::from_str(&self.version.etag()) {
            h.insert(header::ETAG, v);
        }
        if self.status == StatusCode::PARTIAL_CONTENT {
            if let Ok(v) =
                HeaderValue::from_str(&format!("bytes {}-{}/{}", self.start, self.end - 1, self.size))
            {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        if length {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(self.end - self.start));
        }
    }
}

/// Whether the client asked for trailers (`TE: trailers`); HTTP/1.1 sends them only then.
pub fn wants_trailers(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::TE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("trailers")))
}

/// Bytes per chunk read and sent.
pub const CHUNK: usize = 256 * 1024;
/// A client that takes no chunk for this long is dropped (its reader thread ends).
pub const STALL: Duration = Duration::from_secs(30);

/// How a stream ended, for the caller's log and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every byte and the digest trailer went out.
    Sent { bytes: u64 },
    /// The file changed or could not be read: the body was broken off.
    Broken,
    /// The client went away or stopped reading.
    Abandoned,
}

/// Test-only fault: flip one byte after hashing it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub flip_first_byte: bool,
}

/// A body fed by a reader thread: data frames, then the `Digest` trailer.
pub struct ContentBody(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl http_body::Body for ContentBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx)
    }
}

/// Streams `plan`'s bytes of `content` (opened at `plan.version`) from a blocking thread,
/// hashing them; `done` learns how it ended. Must be called inside a tokio runtime.
pub fn stream(
    content: Box<dyn Content>,
    plan: Plan,
    faults: Faults,
    done: impl FnOnce(Ended) + Send + 'static,
) -> ContentBody {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || done(feed(content.as_ref(), plan, faults, &tx, &rt)));
    ContentBody(rx)
}

type Tx = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

fn feed(content: &dyn Content, plan: Plan, faults: Faults, tx: &Tx, rt: &tokio::runtime::Handle) -> Ended {
    let send = |frame| match rt.block_on(tokio::time::timeout(STALL, tx.send(frame))) {
        Ok(Ok(())) => true,
        Ok(Err(_)) | Err(_) => false, // gone, or stalled past STALL
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let (mut at, mut flip) = (plan.start, faults.flip_first_byte);
    while at < plan.end {
        let n = CHUNK.min((plan.end - at) as usize);
        let got = match content.read_at(&mut buf[..n], at) {
            Ok(0) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file got shorter")),
            other => other,
        };
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                send(Err(e));
                return Ended::Broken;
            }
        };
        hasher.update(&buf[..got]);
        if std::mem::take(&mut flip) {
            buf[0] ^= 0x01;
        }
        if !send(Ok(Frame::data(Bytes::copy_from_slice(&buf[..got])))) {
            return Ended::Abandoned;
        }
        at += got as u64;
    }
    let now = content.file().and_then(|f| f.metadata().ok()).and_then(|m| FileVersion::of(&m));
    if now != Some(plan.version) {
        send(Err(std::io::Error::other("the file changed while it was sent")));
        return Ended::Broken;
    }
    let mut trailers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&digest_header(&hasher.finalize().into())) {
        trailers.insert("digest", v);
    }
    if send(Ok(Frame::trailers(trailers))) {
        Ended::Sent { bytes: plan.end - plan.start }
    } else {
        Ended::Abandoned
    }
}

/// `sha-256=<base64>` (RFC 3230 `Digest`).
pub fn digest_header(sha256: &[u8; 32]) -> String {
    use base64::Engine;
    format!("sha-256={}", base64::engine::general_purpose::STANDARD.encode(sha256))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: FileVersion = FileVersion { size: 100, mtime_ns: 7 };

    fn ask<'a>(range: Option<&'a str>, if_range: Option<&'a str>, expect: Option<FileVersion>) -> Ask<'a> {
        Ask { range, if_range, expect }
    }

    #[test]
    fn one_range_or_the_whole_file_and_every_malformed_header_ignored() {
        assert_eq!(plan(V, &ask(None, None, None)).unwrap().status, StatusCode::OK);
        let p = plan(V, &ask(Some("bytes=10-19"), None, None)).unwrap();
        assert_eq!((p.status, p.start, p.end), (StatusCode::PARTIAL_CONTENT, 10, 20));
        // RFC 9110: a header that is not one valid byte range is ignored: the whole file.
        for ignored in ["bytes=x-5", "bytes=9-3", "bytes=0-5,10-20", "items=0-5", "bytes=-", "garbage"] {
            let p = plan(V, &ask(Some(ignored), None, None)).unwrap();
            assert_eq!((p.status, p.start, p.end), (StatusCode::OK, 0, 100), "{ignored}");
        }
        for unsatisfiable in ["bytes=100-", "bytes=-0", "bytes=500-600"] {
            let r = plan(V, &ask(Some(unsatisfiable), None, None)).unwrap_err();
            assert_eq!((r.code, r.unsatisfiable_size), (ErrorCode::RangeNotSatisfiable, Some(100)));
        }
    }

    #[test]
    fn another_version_is_a_conflict_and_if_range_never_mixes_versions() {
        let older = FileVersion { size: 100, mtime_ns: 6 };
        assert_eq!(plan(V, &ask(Some("bytes=0-9"), None, Some(older))).unwrap_err().code, ErrorCode::Changed);
        assert!(plan(V, &ask(Some("bytes=0-9"), None, Some(V))).is_ok());
        // A resumed download of the version it started with gets the rest; of another, all of it.
        let resumed = plan(V, &ask(Some("bytes=50-"), Some(&V.etag()), None)).unwrap();
        assert_eq!((resumed.status, resumed.start), (StatusCode::PARTIAL_CONTENT, 50));
        let restarted = plan(V, &ask(Some("bytes=50-"), Some(&older.etag()), None)).unwrap();
        assert_eq!((restarted.status, restarted.start, restarted.end), (StatusCode::OK, 0, 100));
    }

    #[test]
    fn headers_name_the_version_and_the_part() {
        let p = plan(V, &ask(Some("bytes=90-"), None, None)).unwrap();
        let mut h = HeaderMap::new();
        p.headers(&mut h, true);
        assert_eq!(h[header::ETAG], "\"100-7\"");
        assert_eq!(h[header::CONTENT_RANGE], "bytes 90-99/100");
        assert_eq!(h[header::CONTENT_LENGTH], "10");
        let mut te = HeaderMap::new();
        te.insert(header::TE, HeaderValue::from_static("gzip, Trailers"));
        assert!(wants_trailers(&te));
        assert!(!wants_trailers(&HeaderMap::new()));
    }

    #[test]
    fn the_version_parameter_is_read_from_the_query() {
        let h = HeaderMap::new();
        let a = Ask::from_request(&h, Some("nonce=1&version=100-7")).unwrap();
        assert_eq!(a.expect, Some(V));
        assert_eq!(Ask::from_request(&h, Some("version=nope")).unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(Ask::from_request(&h, None).unwrap().expect, None);
    }

    /// A file whose reads after the first wait until the test drops the gate's sender.
    struct Gated {
        file: std::fs::File,
        gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl Content for Gated {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
            if offset > 0 {
                let _ = self.gate.lock().map(|g| g.recv());
            }
            Content::read_at(&self.file, buf, offset)
        }
        fn file(&self) -> Option<&std::fs::File> {
            Some(&self.file)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_ends_with_the_digest_of_what_it_sent_or_breaks_off_when_the_file_changes() {
        use http_body_util::BodyExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 600_000]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let version = FileVersion::of(&file.metadata().unwrap()).unwrap();
        let p = plan(version, &ask(Some("bytes=1000-"), None, None)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let body = stream(Box::new(file), p, Faults::default(), move |e| tx.send(e).unwrap());
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned().expect("a digest trailer");
        let bytes = collected.to_bytes();
        assert_eq!(bytes.len(), 599_000);
        let want = digest_header(&Sha256::digest(&bytes).into());
        assert_eq!(trailers["digest"], want.as_str());
        assert_eq!(rx.recv().unwrap(), Ended::Sent { bytes: 599_000 });

        // The file grows while it is read: the body ends in an error, not a trailer. The reader
        // is held before its second chunk until the file has changed, so the change always
        // lands mid-stream (the feeder may otherwise send all three chunks first).
        let (open_gate, gate) = std::sync::mpsc::channel::<()>();
        let file = Gated { file: std::fs::File::open(&path).unwrap(), gate: std::sync::Mutex::new(gate) };
        let p = plan(version, &ask(None, None, None)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut body = stream(Box::new(file), p, Faults::default(), move |e| tx.send(e).unwrap());
        let first = body.frame().await.unwrap().unwrap();
        assert!(first.is_data());
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().set_len(700_000).unwrap();
        drop(open_gate); // every later read goes on
        let mut broke = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Err(_) => broke = true,
                Ok(f) => assert!(f.is_data(), "no trailer after a change"),
            }
        }
        assert!(broke);
        assert_eq!(rx.recv().unwrap(), Ended::Broken);
    }
}
