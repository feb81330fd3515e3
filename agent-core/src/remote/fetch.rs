//! Fetching with a bounded retry budget: [`ATTEMPTS`] tries, [`BACKOFF`] apart. Before each
//! attempt the owner's endpoint is read again from its node document (it may have restarted on
//! another port) and a token is taken from the hub (reused while it has 30 s left, renewed after
//! a 401). A refusal other than 401/5xx — a changed file above all — ends the attempts at once.
//! Every request names the version it expects, so bytes of another version are never taken.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::RemoteError;
use super::Target;
use crate::cache::store::{Cache, CacheError};
use crate::doc::Document;
use crate::ids::{FileId, NodeDocId};
use crate::store::Store;
use crate::sync::HubError;
use crate::transfer::client::{FetchError, Peer, Transfers, Verified};

pub const ATTEMPTS: usize = 3;
pub const BACKOFF: [Duration; 2] = [Duration::from_millis(300), Duration::from_secs(1)];
/// A cached token is reused while it has at least this long to live.
const TOKEN_MARGIN_SECS: i64 = 30;

/// A token and its expiry (Unix seconds), or why there is none.
pub type Issued<'a> = Pin<Box<dyn Future<Output = Result<(String, i64), HubError>> + Send + 'a>>;

/// Where transfer tokens come from (the hub; tests may stand in).
pub trait Tokens: Send + Sync {
    /// A token to fetch `file` from its owner.
    fn issue<'a>(&'a self, file: &'a FileId) -> Issued<'a>;
}

impl Tokens for crate::sync::HubClient {
    fn issue<'a>(&'a self, file: &'a FileId) -> Issued<'a> {
        Box::pin(self.transfer_token(file))
    }
}

/// What was fetched since the process started (the `cache` subsystem reports it).
#[derive(Debug, Default)]
pub struct Fetched {
    pub ranges: AtomicU64,
    pub range_bytes: AtomicU64,
    pub whole_files: AtomicU64,
    pub whole_bytes: AtomicU64,
    pub failed_attempts: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchedCounts {
    pub ranges: u64,
    pub range_bytes: u64,
    pub whole_files: u64,
    pub whole_bytes: u64,
    pub failed_attempts: u64,
}

impl Fetched {
    pub fn snapshot(&self) -> FetchedCounts {
        FetchedCounts {
            ranges: self.ranges.load(Ordering::Relaxed),
            range_bytes: self.range_bytes.load(Ordering::Relaxed),
            whole_files: self.whole_files.load(Ordering::Relaxed),
            whole_bytes: self.whole_bytes.load(Ordering::Relaxed),
            failed_attempts: self.failed_attempts.load(Ordering::Relaxed),
        }
    }
}

/// How a whole-file fetch ended when it did not fail.
pub(super) enum Whole {
    Cached,
    /// Verified, but the cache cannot hold it.
    NoRoom,
}

pub(super) struct Fetcher {
    store: Store,
    tokens: Arc<dyn Tokens>,
    transfers: Transfers,
    issued: Mutex<HashMap<FileId, (String, i64)>>,
    pub(super) fetched: Fetched,
}

impl Fetcher {
    pub fn new(store: Store, tokens: Arc<dyn Tokens>, transfers: Transfers) -> Fetcher {
        Fetcher { store, tokens, transfers, issued: Mutex::new(HashMap::new()), fetched: Fetched::default() }
    }

    /// The owner's endpoint, from its node document as replicated here.
    fn peer(&self, t: &Target) -> Result<Peer, RemoteError> {
        let doc = self
            .store
            .get(&NodeDocId::for_node(&t.node).into())
            .map_err(|e| RemoteError::Io(std::io::Error::other(e.to_string())))?;
        let Some(Document::Node(node)) = doc else {
            return Err(RemoteError::NoEndpoint {
                node: t.node.clone(),
                why: "its node document is not here yet",
            });
        };
        let transfer = node.transfer.ok_or_else(|| RemoteError::NoEndpoint {
            node: t.node.clone(),
            why: "it advertises no transfer server (offline, or not started)",
        })?;
        Ok(Peer {
            node_id: t.node.clone(),
            endpoint: transfer.endpoint,
            fingerprint: transfer.cert_fingerprint,
        })
    }

    async fn token(&self, file: &FileId) -> Result<String, RemoteError> {
        let now = chrono::Utc::now().timestamp();
        if let Some((token, exp)) = self.issued.lock().unwrap_or_else(|p| p.into_inner()).get(file) {
            if exp - now > TOKEN_MARGIN_SECS {
                return Ok(token.clone());
            }
        }
        let (token, exp) = self.tokens.issue(file).await.map_err(RemoteError::NoToken)?;
        let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
        issued.retain(|_, (_, e)| *e - now > TOKEN_MARGIN_SECS);
        issued.insert(file.clone(), (token.clone(), exp));
        Ok(token)
    }

    fn forget_token(&self, file: &FileId) {
        self.issued.lock().unwrap_or_else(|p| p.into_inner()).remove(file);
    }

    /// Runs `op` with the owner's endpoint and a token, up to [`ATTEMPTS`] times.
    async fn with_retries<T, F, Fut>(&self, t: &Target, what: &str, mut op: F) -> Result<T, RemoteError>
    where
        F: FnMut(Peer, String) -> Fut,
        Fut: Future<Output = Result<T, RemoteError>>,
    {
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(BACKOFF[(attempt - 2).min(BACKOFF.len() - 1)]).await;
            }
            let result = match self.peer(t) {
                Ok(peer) => match self.token(&t.file_id).await {
                    Ok(token) => op(peer, token).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let e = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            self.fetched.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                operation = "remote.fetch",
                node_id = %t.node,
                file_id = %t.file_id,
                path = %t.path,
                what,
                attempt,
                error = %e,
                "fetch attempt failed"
            );
            if let RemoteError::Fetch(f) = &e {
                if f.is_changed() {
                    return Err(RemoteError::Changed { node: t.node.clone(), path: t.path.clone() });
                }
                if matches!(f, FetchError::Refused { status: 401, .. }) {
                    self.forget_token(&t.file_id);
                }
            }
            if !e.is_retryable() {
                return Err(e);
            }
            last = Some(e);
        }
        let last = last.unwrap_or(RemoteError::NoEndpoint { node: t.node.clone(), why: "no attempt made" });
        Err(RemoteError::GaveUp { attempts: ATTEMPTS, last: Box::new(last) })
    }

    /// `[start, end)` of the file at the target's version, verified against its digest.
    pub async fn range(&self, t: &Target, start: u64, end: u64) -> Result<Verified, RemoteError> {
        let result = self
            .with_retries(t, "range", |peer, token| async move {
                let incoming =
                    self.transfers.get(&peer, &token, &t.file_id, t.version, Some((start, end))).await?;
                let verified = incoming.collect((end - start) as usize).await?;
                let got = verified.bytes().len() as u64;
                if got != end - start {
                    return Err(RemoteError::WrongLength { asked: end - start, got });
                }
                Ok(verified)
            })
            .await;
        if result.is_ok() {
            self.fetched.ranges.fetch_add(1, Ordering::Relaxed);
            self.fetched.range_bytes.fetch_add(end - start, Ordering::Relaxed);
        }
        result.map_err(|e| give_up(t, e))
    }

    /// The whole file into the cache: staged, verified, committed.
    pub async fn whole(&self, t: &Target, cache: &Cache) -> Result<Whole, RemoteError> {
        let result = self
            .with_retries(t, "whole file", |peer, token| async move {
                let mut incoming = self.transfers.get(&peer, &token, &t.file_id, t.version, None).await?;
                let mut staged = cache.stage()?;
                while let Some(chunk) = incoming.chunk().await? {
                    staged.write_all(&chunk)?;
                }
                let digest = incoming.digest().ok_or_else(|| FetchError::Broken {
                    node: t.node.clone(),
                    message: "no digest".into(),
                })?;
                match cache.commit_full(staged, &t.src, &digest) {
                    Ok(()) => Ok(Whole::Cached),
                    Err(CacheError::NoRoom { .. }) => Ok(Whole::NoRoom),
                    Err(e) => Err(e.into()),
                }
            })
            .await;
        if result.is_ok() {
            self.fetched.whole_files.fetch_add(1, Ordering::Relaxed);
            self.fetched.whole_bytes.fetch_add(t.src.size, Ordering::Relaxed);
        }
        result.map_err(|e| give_up(t, e))
    }
}

fn give_up(t: &Target, e: RemoteError) -> RemoteError {
    tracing::error!(
        operation = "remote.read",
        node_id = %t.node,
        file_id = %t.file_id,
        path = %t.path,
        error = %e,
        "remote read failed"
    );
    e
}
