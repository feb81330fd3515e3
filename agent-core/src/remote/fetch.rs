//! Fetching with a bounded retry budget: [`ATTEMPTS`] tries, [`BACKOFF`] apart. Before each
//! attempt the owner's endpoint is read again from its node document (it may have restarted on
//! another port) and a token is taken from the hub (reused while it has 30 s left, renewed after
//! a 401). A refusal other than 401/5xx ends the attempts at once.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Target;
use crate::cache::store::{Cache, CacheError};
use crate::doc::Document;
use crate::ids::{FileId, NodeDocId};
use crate::store::Store;
use crate::transfer::client::{FetchError, Peer, Transfers, Verified};
use crate::vfs::VfsError;

pub const ATTEMPTS: usize = 3;
pub const BACKOFF: [Duration; 2] = [Duration::from_millis(300), Duration::from_secs(1)];
/// A cached token is reused while it has at least this long to live.
const TOKEN_MARGIN_SECS: i64 = 30;

/// A token and its expiry (Unix seconds), or why there is none.
pub type Issued<'a> = Pin<Box<dyn Future<Output = Result<(String, i64), String>> + Send + 'a>>;

/// Where transfer tokens come from (the hub; tests may stand in).
pub trait Tokens: Send + Sync {
    /// A token to fetch `file` from its owner.
    fn issue<'a>(&'a self, file: &'a FileId) -> Issued<'a>;
}

impl Tokens for crate::sync::HubClient {
    fn issue<'a>(&'a self, file: &'a FileId) -> Issued<'a> {
        Box::pin(async move { self.transfer_token(file).await.map_err(|e| e.to_string()) })
    }
}

pub(super) enum WholeError {
    /// Verified, but the cache cannot hold it.
    NoRoom,
    Failed(VfsError),
}

/// Why one attempt failed.
enum Failure {
    Fetch(FetchError),
    /// No token, no endpoint, a cache write that failed the digest: worth another try.
    Other(String),
    /// Not worth another try.
    Fatal(VfsError),
}

pub(super) struct Fetcher {
    store: Store,
    tokens: Arc<dyn Tokens>,
    transfers: Transfers,
    issued: Mutex<HashMap<FileId, (String, i64)>>,
}

impl Fetcher {
    pub fn new(store: Store, tokens: Arc<dyn Tokens>, transfers: Transfers) -> Fetcher {
        Fetcher { store, tokens, transfers, issued: Mutex::new(HashMap::new()) }
    }

    /// The owner's endpoint, from its node document as replicated here.
    fn peer(&self, t: &Target) -> Result<Peer, String> {
        let doc = self.store.get(&NodeDocId::for_node(&t.node).into()).map_err(|e| e.to_string())?;
        let Some(Document::Node(node)) = doc else {
            return Err(format!("node {} is not known here yet", t.node));
        };
        let transfer = node.transfer.ok_or_else(|| {
            format!("node {} advertises no transfer server (it has not started one)", t.node)
        })?;
        Ok(Peer {
            node_id: t.node.clone(),
            endpoint: transfer.endpoint,
            fingerprint: transfer.cert_fingerprint,
        })
    }

    async fn token(&self, file: &FileId) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        if let Some((token, exp)) = self.issued.lock().unwrap_or_else(|p| p.into_inner()).get(file) {
            if exp - now > TOKEN_MARGIN_SECS {
                return Ok(token.clone());
            }
        }
        let (token, exp) = self.tokens.issue(file).await.map_err(|e| format!("transfer token: {e}"))?;
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.retain(|_, (_, e)| *e - now > TOKEN_MARGIN_SECS);
        issued.insert(file.clone(), (token.clone(), exp));
        Ok(token)
    }

    fn forget_token(&self, file: &FileId) {
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).remove(file);
    }

    /// Runs `op` with the owner's endpoint and a token, up to [`ATTEMPTS`] times.
    async fn with_retries<T, F, Fut>(&self, t: &Target, what: &str, mut op: F) -> Result<T, Failure>
    where
        F: FnMut(Peer, String) -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(BACKOFF[(attempt - 2).min(BACKOFF.len() - 1)]).await;
            }
            let prepared = match self.peer(t) {
                Ok(peer) => self.token(&t.file_id).await.map(|token| (peer, token)),
                Err(e) => Err(e),
            };
            let result = match prepared {
                Ok((peer, token)) => op(peer, token).await,
                Err(e) => Err(Failure::Other(e)),
            };
            let failure = match result {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            last = match &failure {
                Failure::Fetch(e) => e.to_string(),
                Failure::Other(e) => e.clone(),
                Failure::Fatal(e) => e.to_string(),
            };
            tracing::warn!(
                operation = "remote.fetch",
                node_id = %t.node,
                file_id = %t.file_id,
                path = %t.path,
                what,
                attempt,
                error = %last,
                "fetch attempt failed"
            );
            match failure {
                Failure::Fatal(e) => return Err(Failure::Fatal(e)),
                Failure::Fetch(e) if e.is_changed() => {
                    return Err(Failure::Fatal(eio(format!(
                    "{} changed on node {} since it was indexed; its new version arrives with the next sync",
                    t.path, t.node
                ))))
                }
                Failure::Fetch(e) if !e.is_retryable() => return Err(Failure::Fatal(eio(e.to_string()))),
                Failure::Fetch(FetchError::Refused { status: 401, .. }) => self.forget_token(&t.file_id),
                _ => {}
            }
        }
        Err(Failure::Fatal(eio(format!("{ATTEMPTS} attempts failed; last: {last}"))))
    }

    /// `[start, end)` of the file, verified against its digest.
    pub async fn range(&self, t: &Target, start: u64, end: u64) -> Result<Verified, VfsError> {
        let result = self
            .with_retries(t, "range", |peer, token| async move {
                let incoming = self
                    .transfers
                    .get(&peer, &token, &t.file_id, Some((start, end)))
                    .await
                    .map_err(Failure::Fetch)?;
                let verified = incoming.collect((end - start) as usize).await.map_err(Failure::Fetch)?;
                if verified.bytes().len() as u64 != end - start {
                    return Err(Failure::Other(format!(
                        "asked for {} bytes, got {}",
                        end - start,
                        verified.bytes().len()
                    )));
                }
                Ok(verified)
            })
            .await;
        result.map_err(|f| give_up(t, f))
    }

    /// The whole file into the cache: staged, verified, committed.
    pub async fn whole(&self, t: &Target, cache: &Cache) -> Result<(), WholeError> {
        let result = self
            .with_retries(t, "whole file", |peer, token| async move {
                let mut incoming =
                    self.transfers.get(&peer, &token, &t.file_id, None).await.map_err(Failure::Fetch)?;
                let mut staged = cache.stage().map_err(|e| Failure::Fatal(eio(e.to_string())))?;
                while let Some(chunk) = incoming.chunk().await.map_err(Failure::Fetch)? {
                    staged.write_all(&chunk).map_err(|e| Failure::Fatal(VfsError::Io(e)))?;
                }
                let digest = incoming.digest().ok_or_else(|| Failure::Other("no digest".into()))?;
                match cache.commit_full(staged, &t.src, &digest) {
                    Ok(()) => Ok(true),
                    Err(CacheError::NoRoom { .. }) => Ok(false),
                    Err(e @ (CacheError::DigestMismatch { .. } | CacheError::SizeMismatch { .. })) => {
                        Err(Failure::Other(e.to_string()))
                    }
                    Err(e) => Err(Failure::Fatal(eio(e.to_string()))),
                }
            })
            .await;
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(WholeError::NoRoom),
            Err(f) => Err(WholeError::Failed(give_up(t, f))),
        }
    }
}

fn eio(message: String) -> VfsError {
    VfsError::Io(std::io::Error::other(Eio(message)))
}

/// An error that the mount reports as EIO, with its message.
#[derive(Debug)]
struct Eio(String);

impl std::fmt::Display for Eio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Eio {}

fn give_up(t: &Target, f: Failure) -> VfsError {
    let e = match f {
        Failure::Fatal(e) => e,
        Failure::Fetch(e) => eio(e.to_string()),
        Failure::Other(m) => eio(m),
    };
    tracing::error!(
        operation = "remote.read",
        node_id = %t.node,
        file_id = %t.file_id,
        path = %t.path,
        error = %e,
        "remote read failed: EIO"
    );
    e
}
