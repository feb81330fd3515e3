//! `AppState`: what every handler shares. Cheap to clone.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_core::ids::NodeId;
use agent_core::store::Store;
use agent_core::transfer_token::TransferSigner;

/// The node that runs in the same process as the hub (`mosaicfs up`): the hub serves the
/// content of its files directly from disk, and only from under its watch paths.
#[derive(Clone, Debug)]
pub struct LocalNode {
    pub node_id: NodeId,
    pub watch_paths: Vec<std::path::PathBuf>,
    /// Its files, opened only through the one safe open under the watch paths.
    pub files: Arc<agent_core::content::WatchedFiles>,
}

impl LocalNode {
    /// The node `node_id` whose files live under `watch_paths` (blocking: opens the watch
    /// path directories).
    pub fn new(node_id: NodeId, watch_paths: Vec<std::path::PathBuf>) -> LocalNode {
        let files = Arc::new(agent_core::content::WatchedFiles::new(&watch_paths));
        LocalNode { node_id, watch_paths, files }
    }
}

/// How long a directory listing is served from the readdir cache.
pub const READDIR_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// Signs transfer tokens (EdDSA); its public key is published to agents.
    pub transfer: Arc<TransferSigner>,
    pub local: Option<Arc<LocalNode>>,
    /// SHA-256 of the hub's TLS certificate (reported by `/health`).
    pub cert_fingerprint: Arc<str>,
    pub started: Instant,
    /// Serializes virtual-directory changes (path uniqueness and parent checks).
    pub vdir_writes: Arc<tokio::sync::Mutex<()>>,
    pub jwt: Arc<crate::auth::JwtKeys>,
    /// Guarded: login attempts per client IP in the current window.
    pub login_limiter: Arc<Mutex<LoginLimiter>>,
    /// Guarded: `jti` of tokens logged out, with their expiry (unix seconds).
    pub revoked: Arc<Mutex<HashMap<String, i64>>>,
    /// Guarded: signed agent requests seen within the time window.
    pub replay: Arc<Mutex<agent_core::auth::ReplayGuard>>,
    /// Effective labels for the rule engine; brought up to date (`catch_up`) before each use.
    pub labels: agent_core::label_cache::LabelCache,
    /// Directory listings of `GET /api/vfs`: the tree, these labels and the readdir cache (5 s).
    pub listings: Arc<agent_core::vtree::Listings>,
    /// Guarded: per node, the `since` of its last pull (what its replica has applied) and when
    /// (in memory: a restarted hub learns it again at each node's next pull).
    pub pulls: Arc<Mutex<HashMap<NodeId, PullMark>>>,
    /// Fetches other nodes' files from their transfer servers (`/api/files/{id}/content`).
    pub transfers: Arc<agent_core::transfer::client::Transfers>,
    /// Long-polls held right now, waiting for a change (`GET /api/agent/changes`).
    pub waiting_pulls: Arc<std::sync::atomic::AtomicUsize>,
}

/// How far a node's replica is, as its last pull said.
#[derive(Clone, Copy, Debug)]
pub struct PullMark {
    pub applied_hub_seq: u64,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl AppState {
    /// What every push and changes answer says about this hub (protocol version, epoch).
    pub fn hub_info(&self) -> agent_core::wire::sync::HubInfo {
        let epoch =
            self.store.hub_epoch().cloned().unwrap_or_else(|| agent_core::wire::HubEpoch(String::new()));
        agent_core::wire::sync::HubInfo::current(epoch)
    }

    pub fn new(
        store: Store,
        jwt: crate::auth::JwtKeys,
        login_per_minute: u32,
        revoked: HashMap<String, i64>,
        transfer: TransferSigner,
    ) -> AppState {
        let labels = agent_core::label_cache::LabelCache::default();
        AppState {
            store,
            transfer: Arc::new(transfer),
            local: None,
            cert_fingerprint: Arc::from(""),
            started: Instant::now(),
            vdir_writes: Arc::new(tokio::sync::Mutex::new(())),
            jwt: Arc::new(jwt),
            login_limiter: Arc::new(Mutex::new(LoginLimiter::new(login_per_minute))),
            revoked: Arc::new(Mutex::new(revoked)),
            replay: Arc::new(Mutex::new(agent_core::auth::ReplayGuard::default())),
            labels: labels.clone(),
            listings: Arc::new(agent_core::vtree::Listings::new(labels, READDIR_TTL)),
            pulls: Arc::new(Mutex::new(HashMap::new())),
            transfers: Arc::new(agent_core::transfer::client::Transfers::new()),
            waiting_pulls: Default::default(),
        }
    }
}

/// At most `per_minute` login attempts per IP in a sliding minute.
pub struct LoginLimiter {
    per_minute: u32,
    attempts: HashMap<IpAddr, Vec<Instant>>,
}

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter { per_minute, attempts: HashMap::new() }
    }

    /// Records an attempt; `Err(seconds until the next is allowed)` when over the limit.
    pub fn attempt(&mut self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        const WINDOW: Duration = Duration::from_secs(60);
        if self.attempts.len() > 10_000 {
            self.attempts.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        let list = self.attempts.entry(ip).or_default();
        list.retain(|t| now.duration_since(*t) < WINDOW);
        if list.len() as u32 >= self.per_minute {
            let oldest = list.first().copied().unwrap_or(now);
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        list.push(now);
        Ok(())
    }
}
