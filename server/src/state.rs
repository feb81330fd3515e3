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
    /// Seals and opens credential verifiers and runs Argon2id under a bound. `new` makes an
    /// ephemeral one; `start` replaces it with the data directory's ([`crate::vault::load`]).
    pub vault: Arc<crate::vault::Vault>,
    /// Guarded (held while the figures are recomputed, so concurrent calls share one scan):
    /// what `/health` last read from the store.
    pub health: Arc<tokio::sync::Mutex<Option<HealthFigures>>>,
    /// KiB of signed agent request bodies that may be held before their signatures are
    /// checked ([`crate::limits::AGENT_BODY_BUDGET_KIB`]).
    pub agent_bodies: Arc<tokio::sync::Semaphore>,
    /// The name the web UI shows in its top bar (`--instance-name`, default: the host name).
    pub instance_name: Arc<str>,
}

/// The store-derived part of `/health`, kept between calls: `/health` is unauthenticated, so
/// it must not scan tables per request (ARCHITECTURE §7.1).
#[derive(Clone)]
pub struct HealthFigures {
    pub at: Instant,
    /// The store's committed seq when they were read.
    pub seq: u64,
    /// `(status, store, nodes, auth)`, or the store's error.
    pub figures: Result<(&'static str, serde_json::Value, serde_json::Value, serde_json::Value), String>,
}

impl HealthFigures {
    /// Read again at most this often while the store changes…
    pub const REFRESH: Duration = Duration::from_secs(2);
    /// …and at least this often (a store that stopped answering is noticed).
    pub const MAX_AGE: Duration = Duration::from_secs(30);

    /// Whether these figures may still be served for a store at `seq` (an error never is).
    pub fn fresh(&self, seq: u64, now: Instant) -> bool {
        let age = now.saturating_duration_since(self.at);
        self.figures.is_ok() && age < Self::MAX_AGE && (seq == self.seq || age < Self::REFRESH)
    }
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
            vault: Arc::new(crate::vault::Vault::ephemeral()),
            health: Arc::new(tokio::sync::Mutex::new(None)),
            agent_bodies: Arc::new(tokio::sync::Semaphore::new(crate::limits::AGENT_BODY_BUDGET_KIB)),
            instance_name: agent_core::host::hostname().into(),
        }
    }
}

/// At most `per_minute` login attempts per client in a sliding minute. A client is an IPv4
/// address or an IPv6 /64 (one host usually holds a whole /64, so counting each /128 would let
/// it try without limit). The table is bounded: it holds only clients seen in the last minute,
/// at most [`LoginLimiter::MAX_CLIENTS`]; when that many are trying at once, a new client is
/// limited too until some of them age out.
pub struct LoginLimiter {
    per_minute: u32,
    attempts: HashMap<IpAddr, Vec<Instant>>,
}

impl LoginLimiter {
    pub const MAX_CLIENTS: usize = 10_000;
    const WINDOW: Duration = Duration::from_secs(60);

    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter { per_minute, attempts: HashMap::new() }
    }

    /// The key a client's attempts are counted under: the IPv4 address (also when written as
    /// an IPv4-mapped IPv6 address), or the /64 of an IPv6 address.
    pub fn client_of(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(std::net::Ipv6Addr::from(prefix))
                }
            },
        }
    }

    /// How many clients the table holds now.
    pub fn clients(&self) -> usize {
        self.attempts.len()
    }

    /// Records an attempt; `Err(seconds until the next is allowed)` when over the limit.
    pub fn attempt(&mut self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let client = Self::client_of(ip);
        if !self.attempts.contains_key(&client) && self.attempts.len() >= Self::MAX_CLIENTS {
            self.attempts.retain(|_, v| v.last().is_some_and(|t| now.duration_since(*t) < Self::WINDOW));
            if self.attempts.len() >= Self::MAX_CLIENTS {
                let oldest = self.attempts.values().filter_map(|v| v.last()).min().copied().unwrap_or(now);
                return Err(Self::WINDOW.saturating_sub(now.duration_since(oldest)).as_secs().max(1));
            }
        }
        let list = self.attempts.entry(client).or_default();
        list.retain(|t| now.duration_since(*t) < Self::WINDOW);
        if list.len() as u32 >= self.per_minute {
            let oldest = list.first().copied().unwrap_or(now);
            let wait = Self::WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        list.push(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_64_is_one_client_and_ipv4_mapped_is_ipv4() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut l = LoginLimiter::new(3);
        let t = Instant::now();
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"] {
            assert_eq!(l.attempt(ip(host), t), Ok(()));
        }
        assert!(l.attempt(ip("2001:db8:1:2:dead:beef::9"), t).is_err(), "a fourth address of the same /64");
        assert_eq!(l.attempt(ip("2001:db8:1:3::1"), t), Ok(()), "another /64");
        for _ in 0..3 {
            assert_eq!(l.attempt(ip("10.0.0.1"), t), Ok(()));
        }
        assert!(l.attempt(ip("::ffff:10.0.0.1"), t).is_err(), "IPv4-mapped is the same client");
        assert_eq!(l.attempt(ip("10.0.0.2"), t), Ok(()), "IPv4 addresses are counted one by one");
        assert_eq!(l.attempt(ip("2001:db8:1:2::1"), t + Duration::from_secs(61)), Ok(()), "a minute later");
    }

    #[test]
    fn health_figures_are_reused_until_the_store_changes_and_then_at_most_every_refresh() {
        let t = Instant::now();
        let ok = |seq| HealthFigures {
            at: t,
            seq,
            figures: Ok(("ok", serde_json::Value::Null, serde_json::Value::Null, serde_json::Value::Null)),
        };
        let s = Duration::from_secs;
        assert!(ok(5).fresh(5, t + s(29)), "nothing changed: kept up to MAX_AGE");
        assert!(!ok(5).fresh(5, t + s(30)));
        assert!(ok(5).fresh(6, t + s(1)), "changed: kept for REFRESH");
        assert!(!ok(5).fresh(6, t + s(2)));
        let failed = HealthFigures { at: t, seq: 5, figures: Err("disk I/O error".into()) };
        assert!(!failed.fresh(5, t), "an error is asked again");
    }

    #[test]
    fn the_table_stays_bounded_under_many_addresses() {
        let mut l = LoginLimiter::new(5);
        let t = Instant::now();
        for i in 0..(LoginLimiter::MAX_CLIENTS as u128 + 5_000) {
            let addr = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64) | 1);
            let _ = l.attempt(IpAddr::V6(addr), t);
        }
        assert_eq!(l.clients(), LoginLimiter::MAX_CLIENTS);
        assert!(l.attempt("192.0.2.1".parse().unwrap(), t).is_err(), "full: new clients wait");
        let later = t + Duration::from_secs(61);
        assert_eq!(l.attempt("192.0.2.1".parse().unwrap(), later), Ok(()), "the old ones aged out");
        assert_eq!(l.clients(), 1);
    }
}
