//! The transfer endpoint over real HTTP on loopback (plain TCP here; the agent's TLS listener is
//! not built yet), with reqwest reading the `Digest` trailer as a requesting agent will.

use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::serve::{router, Served};
use crate::doc::fixtures;
use crate::ids::{FileId, NodeId, Rev};
use crate::store::Store;
use crate::transfer_token::{TransferSigner, TransferVerifier};
use crate::vfs::WatchedFiles;

fn me() -> NodeId {
    "node-serving".parse().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    watched: std::path::PathBuf,
    store: Store,
    signer: TransferSigner,
    base: String,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("watched");
    std::fs::create_dir_all(&watched).unwrap();
    let store = Store::open_in_memory().unwrap();
    let (signer, _private_pem) = TransferSigner::generate().unwrap();
    let public = signer.public_key().to_owned();
    let served = Arc::new(Served {
        store: store.clone(),
        node_id: me(),
        files: Arc::new(WatchedFiles::new(std::slice::from_ref(&watched))),
        verifier: TransferVerifier::from_public_key(&public).unwrap().into(),
        sent: Default::default(),
        flip_faults: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(served)).await;
    });
    Fixture { dir, watched, store, signer, base }
}

/// Writes a file and indexes it as this node's (size and mtime from the disk).
fn index(store: &Store, node: &NodeId, path: &Path, bytes: &[u8]) -> FileId {
    std::fs::write(path, bytes).unwrap();
    let mut f = fixtures::new_file(node, path.to_str().unwrap());
    f.size = bytes.len() as u64;
    f.mtime = chrono::DateTime::from(std::fs::metadata(path).unwrap().modified().unwrap());
    store.put(f.clone().into()).unwrap();
    f.id
}

struct Fetched {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
    trailers: Option<reqwest::header::HeaderMap>,
    broken: bool,
}

async fn fetch(base: &str, file: &FileId, token: Option<&str>, range: Option<&str>) -> Fetched {
    fetch_at(base, file, token, range, None).await
}

/// [`fetch`] naming the version expected (`?version=`).
async fn fetch_at(
    base: &str,
    file: &FileId,
    token: Option<&str>,
    range: Option<&str>,
    version: Option<&str>,
) -> Fetched {
    let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
    let mut rq = reqwest::Client::new()
        .get(format!("{base}/api/agent/transfer/{file}{query}"))
        .header("te", "trailers");
    if let Some(t) = token {
        rq = rq.bearer_auth(t);
    }
    if let Some(r) = range {
        rq = rq.header("range", r);
    }
    let resp: axum::http::Response<reqwest::Body> = rq.send().await.unwrap().into();
    let (parts, mut body) = resp.into_parts();
    let (mut bytes, mut trailers, mut broken) = (Vec::new(), None, false);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => bytes.extend_from_slice(&d),
                Err(f) => trailers = f.into_trailers().ok(),
            },
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    Fetched { status: parts.status.as_u16(), headers: parts.headers, body: bytes, trailers, broken }
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha-256={}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes)))
}

fn token(fx: &Fixture, server: &NodeId, file: &FileId) -> String {
    fx.signer.issue("node-asking", server, file, chrono::Utc::now().timestamp(), 60).unwrap().0
}

#[tokio::test]
async fn whole_files_and_ranges_end_with_the_digest_of_what_was_sent() {
    let fx = fixture().await;
    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let id = index(&fx.store, &me(), &fx.watched.join("big.bin"), &bytes);
    let t = token(&fx, &me(), &id);

    let got = fetch(&fx.base, &id, Some(&t), None).await;
    assert_eq!(got.status, 200);
    assert!(!got.broken);
    assert_eq!(got.body, bytes, "several chunks, in order");
    let trailer = got.trailers.expect("a Digest trailer");
    assert_eq!(trailer["digest"].to_str().unwrap(), digest_of(&bytes));
    assert_eq!(got.headers["accept-ranges"], "bytes");

    let got = fetch(&fx.base, &id, Some(&t), Some("bytes=300000-300099")).await;
    assert_eq!(got.status, 206);
    assert_eq!(got.headers["content-range"], "bytes 300000-300099/700000");
    assert_eq!(got.body, &bytes[300_000..300_100]);
    assert_eq!(got.trailers.unwrap()["digest"].to_str().unwrap(), digest_of(&bytes[300_000..300_100]));

    let got = fetch(&fx.base, &id, Some(&t), Some("bytes=-10")).await;
    assert_eq!((got.status, got.body.as_slice()), (206, &bytes[699_990..]));

    let got = fetch(&fx.base, &id, Some(&t), Some("bytes=700000-")).await;
    assert_eq!(got.status, 416);
    assert_eq!(got.headers["content-range"], "bytes */700000");

    let empty = index(&fx.store, &me(), &fx.watched.join("empty"), b"");
    let got = fetch(&fx.base, &empty, Some(&token(&fx, &me(), &empty)), None).await;
    assert_eq!((got.status, got.body.len()), (200, 0));
    assert_eq!(got.trailers.unwrap()["digest"].to_str().unwrap(), digest_of(b""));
}

#[tokio::test]
async fn tokens_files_and_paths_are_checked() {
    let fx = fixture().await;
    let id = index(&fx.store, &me(), &fx.watched.join("a.txt"), b"alpha");
    let other = index(&fx.store, &me(), &fx.watched.join("b.txt"), b"beta");
    let json_code = |f: &Fetched| -> String {
        let v: serde_json::Value = serde_json::from_slice(&f.body).unwrap();
        v["error"]["code"].as_str().unwrap().to_owned()
    };

    let got = fetch(&fx.base, &id, None, None).await;
    assert_eq!((got.status, json_code(&got)), (401, "unauthorized".into()));
    let got = fetch(&fx.base, &id, Some(&token(&fx, &me(), &other)), None).await;
    assert_eq!(got.status, 401, "a token for another file");
    let got = fetch(&fx.base, &id, Some(&token(&fx, &"node-else".parse().unwrap(), &id)), None).await;
    assert_eq!(got.status, 401, "a token for another node");
    let (stranger, _) = TransferSigner::generate().unwrap();
    let forged = stranger.issue("x", &me(), &id, chrono::Utc::now().timestamp(), 60).unwrap().0;
    assert_eq!(fetch(&fx.base, &id, Some(&forged), None).await.status, 401, "not the hub's key");

    // Another node's file is not served here, even with a valid token.
    let mut theirs = fixtures::file("/elsewhere/x");
    theirs.rev = Rev::NONE;
    fx.store.put(theirs.clone().into()).unwrap();
    let got = fetch(&fx.base, &theirs.id, Some(&token(&fx, &me(), &theirs.id)), None).await;
    assert_eq!((got.status, json_code(&got)), (404, "not_found".into()));

    // A symlink in the watched tree that leads out of it.
    let outside = fx.dir.path().join("secret");
    std::fs::write(&outside, b"s").unwrap();
    let link = fx.watched.join("link");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let mut l = fixtures::new_file(&me(), link.to_str().unwrap());
    l.size = 1;
    fx.store.put(l.clone().into()).unwrap();
    let got = fetch(&fx.base, &l.id, Some(&token(&fx, &me(), &l.id)), None).await;
    assert_eq!((got.status, json_code(&got)), (403, "forbidden".into()));

    // Changed on disk since the requester's document was made: it asks for the version it
    // knows and is refused, never given bytes of another version.
    let indexed = match fx.store.get(&id.clone().into()).unwrap() {
        Some(crate::doc::Document::File(f)) => crate::content::FileVersion::of_doc(&f),
        _ => unreachable!(),
    };
    let got = fetch_at(&fx.base, &id, Some(&token(&fx, &me(), &id)), None, Some(&indexed.token())).await;
    assert_eq!((got.status, got.body.as_slice()), (200, &b"alpha"[..]), "the version it knows");
    assert_eq!(got.headers["etag"].to_str().unwrap(), indexed.etag());
    std::fs::write(fx.watched.join("a.txt"), b"alpha, longer now").unwrap();
    let got = fetch_at(&fx.base, &id, Some(&token(&fx, &me(), &id)), None, Some(&indexed.token())).await;
    assert_eq!((got.status, json_code(&got)), (409, "changed".into()));
    let got =
        fetch_at(&fx.base, &id, Some(&token(&fx, &me(), &id)), Some("bytes=0-4"), Some(&indexed.token()))
            .await;
    assert_eq!(got.status, 409, "a range of another version is refused too");
    // Without a version, what is on disk now, with its ETag.
    let got = fetch(&fx.base, &id, Some(&token(&fx, &me(), &id)), None).await;
    assert_eq!((got.status, got.body.as_slice()), (200, &b"alpha, longer now"[..]));
    assert_ne!(got.headers["etag"].to_str().unwrap(), indexed.etag());
    // Gone from disk.
    std::fs::remove_file(fx.watched.join("b.txt")).unwrap();
    let got = fetch(&fx.base, &other, Some(&token(&fx, &me(), &other)), None).await;
    assert_eq!(got.status, 404);
    assert_eq!(fetch(&fx.base, &id, Some("x"), None).await.status, 401);
}

#[tokio::test]
async fn a_file_that_changes_while_it_is_sent_ends_without_a_digest() {
    let fx = fixture().await;
    let path = fx.watched.join("growing.bin");
    let bytes = vec![3u8; 8 << 20];
    let id = index(&fx.store, &me(), &path, &bytes);
    let t = token(&fx, &me(), &id);
    let rq = reqwest::Client::new()
        .get(format!("{}/api/agent/transfer/{id}", fx.base))
        .header("te", "trailers")
        .bearer_auth(&t);
    let resp: axum::http::Response<reqwest::Body> = rq.send().await.unwrap().into();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // The reader is at most a few chunks ahead (the channel is bounded): change the file now.
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    let (mut trailers, mut broken) = (None, false);
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(t) = f.into_trailers() {
                    trailers = Some(t);
                }
            }
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    assert!(broken, "the body is cut short");
    assert!(trailers.is_none(), "no digest vouches for what was sent");
}

#[tokio::test]
async fn health_answers_without_a_token_and_says_whether_tokens_can_be_checked() {
    let fx = fixture().await;
    let health: serde_json::Value =
        reqwest::get(format!("{}/health", fx.base)).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["node_id"], me().as_str());
    assert_eq!(health["role"], "transfer");
    assert_eq!(health["sent"]["responses"], 0);

    // What is sent is counted by the server itself.
    let id = index(&fx.store, &me(), &fx.watched.join("c.txt"), b"counted");
    let got = fetch(&fx.base, &id, Some(&token(&fx, &me(), &id)), None).await;
    assert_eq!(got.status, 200);
    // (counted as the reader thread ends, just after the trailer went out)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let health: serde_json::Value =
            reqwest::get(format!("{}/health", fx.base)).await.unwrap().json().await.unwrap();
        if health["sent"]["responses"] == 1 {
            assert_eq!(health["sent"]["bytes"], 7);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never counted: {health}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
