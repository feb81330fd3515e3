//! `agent.toml`: parsed, validated and defaulted in one place into [`AgentConfig`].
//!
//! Every problem is one [`ConfigError`] that names the file and the field, for example
//! `/etc/mosaicfs/agent.toml: watcher.debounce_ms: invalid type: string "x", expected u64`.
//! The host prints it on one line and exits with status 2.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::ids::{AccessKeyId, NodeId};

/// A configuration problem: the file, the field (dotted path, empty for the whole file) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}{message}", file.display(), if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct ConfigError {
    pub file: PathBuf,
    pub field: String,
    pub message: String,
}

/// The validated agent configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The file it was read from (for messages and for re-reading the log level).
    pub source: PathBuf,
    pub data_dir: PathBuf,
    /// Absolute, normalized, none inside another.
    pub watch_paths: Vec<PathBuf>,
    /// Globs matched against each entry's path below its watch path; matches are not indexed.
    pub exclude: Vec<String>,
    pub control_plane: Option<ControlPlane>,
    pub heartbeat_interval: Duration,
    pub sync: SyncConfig,
    pub crawler: CrawlerConfig,
    pub watcher: WatcherConfig,
    pub vfs: VfsConfig,
    pub transfer: TransferConfig,
    pub cache: CacheConfig,
    pub log: LogConfig,
}

/// How this node reaches its hub. Present once the node has joined a control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    pub url: String,
    pub access_key_id: AccessKeyId,
    /// Where the secret lives; the secret itself is never in agent.toml.
    pub secret: SecretRef,
    /// SHA-256 of the hub's certificate (lowercase hex), pinned at join.
    pub server_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `file:/path` — a file readable only by the agent (mode 0600).
    File(PathBuf),
    /// `keyring:service/account` — the OS keychain.
    Keyring { service: String, account: String },
    /// `env:VAR` — an environment variable.
    Env(String),
}

/// Replication with the control plane (ARCHITECTURE §5).
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// How long the hub may hold a pull when nothing changed (long-poll).
    pub pull_wait: Duration,
    /// The cap of the retry backoff (1 s, ×2, this cap, ±25 % jitter).
    pub retry_cap: Duration,
    /// How often the `agent_status` document is rewritten.
    pub status_interval: Duration,
    /// How often a `utilization_snapshot` is taken.
    pub utilization_interval: Duration,
    /// An outage at least this long is followed by a reconciliation crawl on reconnect.
    pub reconcile_after: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            pull_wait: Duration::from_secs(30),
            retry_cap: Duration::from_secs(60),
            status_interval: Duration::from_secs(60),
            utilization_interval: Duration::from_secs(3600),
            reconcile_after: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrawlerConfig {
    /// Documents per store transaction during a crawl.
    pub batch_size: usize,
    pub progress_interval: Duration,
    /// How often directories that cannot be watched are crawled.
    pub fallback_interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatcherConfig {
    pub enabled: bool,
    pub debounce: Duration,
    pub storm_events_per_sec: u64,
    pub storm_duration: Duration,
    /// At most this many directory watches; `None` means the system limit.
    pub max_watches: Option<u64>,
}

/// The mount of the virtual tree (`[vfs]`).
#[derive(Debug, Clone, PartialEq)]
pub struct VfsConfig {
    /// Where the tree is mounted; `None`: not mounted.
    pub mount_point: Option<PathBuf>,
    /// How long a directory listing is reused while nothing relevant changed (zero: never).
    pub readdir_ttl: Duration,
    /// How long the kernel may keep names and attributes before asking again.
    pub attr_ttl: Duration,
    /// Let the kernel read local files directly (FUSE passthrough) when it can.
    pub passthrough: bool,
    /// Let other users see the mount (non-root needs `user_allow_other` in /etc/fuse.conf).
    pub allow_other: bool,
}

impl Default for VfsConfig {
    fn default() -> Self {
        VfsConfig {
            mount_point: None,
            readdir_ttl: Duration::from_secs(5),
            attr_ttl: Duration::from_secs(1),
            passthrough: true,
            allow_other: false,
        }
    }
}

/// The transfer server other agents fetch this node's files from (`[transfer]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Serve at all (only a node that has joined a control plane does: tokens come from the hub).
    pub enabled: bool,
    /// Where to listen (default `0.0.0.0:7443`).
    pub listen: std::net::SocketAddr,
    /// Whether `listen` was written in the file (if not, a busy default port falls back to any
    /// free port instead of failing).
    pub listen_explicit: bool,
    /// The URL other agents use (`https://host:port`); default: this machine's address on the
    /// route to the control plane, and the port listened on.
    pub advertise: Option<String>,
}

pub const DEFAULT_TRANSFER_PORT: u16 = 7443;

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], DEFAULT_TRANSFER_PORT)),
            listen_explicit: false,
            advertise: None,
        }
    }
}

/// The cache of other nodes' files (`[cache]`, ARCHITECTURE §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes the cache may hold on disk (default 10 GiB).
    pub max_bytes: u64,
    /// Free space left on the cache's volume at least (default 1 GiB).
    pub min_free_bytes: u64,
    /// Files smaller than this are fetched whole; larger ones by ranges (default 50 MiB).
    pub full_file_threshold: u64,
}

const MIB: u64 = 1 << 20;

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_bytes: 10 * 1024 * MIB, min_free_bytes: 1024 * MIB, full_file_threshold: 50 * MIB }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `agent_core=debug,info`).
    pub level: String,
    pub dir: PathBuf,
}

// ---- the file as written --------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    watch_paths: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    control_plane: Option<RawControlPlane>,
    #[serde(default)]
    heartbeat: RawHeartbeat,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    crawler: RawCrawler,
    #[serde(default)]
    watcher: RawWatcher,
    #[serde(default)]
    vfs: RawVfs,
    #[serde(default)]
    transfer: RawTransfer,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    log: RawLog,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTransfer {
    enabled: Option<bool>,
    listen: Option<String>,
    advertise: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_mib: Option<u64>,
    min_free_mib: Option<u64>,
    full_file_threshold_mib: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVfs {
    mount_point: Option<PathBuf>,
    readdir_ttl_ms: Option<u64>,
    attr_ttl_ms: Option<u64>,
    passthrough: Option<bool>,
    allow_other: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControlPlane {
    url: String,
    access_key_id: String,
    secret: String,
    server_fingerprint: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    interval_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSync {
    pull_wait_secs: Option<u64>,
    retry_cap_secs: Option<u64>,
    status_interval_secs: Option<u64>,
    utilization_interval_secs: Option<u64>,
    reconcile_after_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCrawler {
    batch_size: Option<usize>,
    progress_interval_secs: Option<u64>,
    fallback_crawl_interval_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWatcher {
    enabled: Option<bool>,
    debounce_ms: Option<u64>,
    storm_events_per_sec: Option<u64>,
    storm_secs: Option<u64>,
    max_watches: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    dir: Option<PathBuf>,
}

pub const DEFAULT_BATCH_SIZE: usize = 4096;

impl AgentConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Validates the text of a config file; `path` is used in messages and to resolve nothing
    /// else (every path in the file must be absolute).
    pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            file: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        let de = toml::Deserializer::parse(text).map_err(|e| err("", e.message().to_owned()))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            err(&field, e.inner().message().to_owned())
        })?;

        let data_dir = match raw.data_dir {
            Some(d) if d.is_absolute() => d,
            Some(d) => return Err(err("data_dir", format!("{} is not an absolute path", d.display()))),
            None => default_data_dir(),
        };

        if raw.watch_paths.is_empty() && raw.control_plane.is_none() {
            return Err(err("watch_paths", "is empty: name at least one directory to index".into()));
        }
        let mut watch_paths: Vec<PathBuf> = Vec::new();
        for (i, p) in raw.watch_paths.iter().enumerate() {
            let field = format!("watch_paths[{i}]");
            let norm =
                normalize_abs(p).ok_or_else(|| err(&field, format!("{p:?} is not an absolute path")))?;
            for (j, other) in watch_paths.iter().enumerate() {
                if norm.starts_with(other) || other.starts_with(&norm) {
                    return Err(err(
                        &field,
                        format!("{p:?} overlaps watch_paths[{j}] ({})", other.display()),
                    ));
                }
            }
            watch_paths.push(norm);
        }
        for (i, g) in raw.exclude.iter().enumerate() {
            globset::Glob::new(g).map_err(|e| err(&format!("exclude[{i}]"), e.kind().to_string()))?;
        }

        let control_plane = raw.control_plane.map(|cp| parse_control_plane(cp, &err)).transpose()?;

        let positive = |field: &str, v: Option<u64>, default: u64| -> Result<u64, ConfigError> {
            match v {
                Some(0) => Err(err(field, "must be greater than 0".into())),
                Some(v) => Ok(v),
                None => Ok(default),
            }
        };
        let heartbeat_interval =
            Duration::from_secs(positive("heartbeat.interval_secs", raw.heartbeat.interval_secs, 30)?);
        let secs = |field: &str, v: Option<u64>, default: Duration| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(positive(field, v, default.as_secs())?))
        };
        let d = SyncConfig::default();
        let sync = SyncConfig {
            pull_wait: secs("sync.pull_wait_secs", raw.sync.pull_wait_secs, d.pull_wait)?,
            retry_cap: secs("sync.retry_cap_secs", raw.sync.retry_cap_secs, d.retry_cap)?,
            status_interval: secs(
                "sync.status_interval_secs",
                raw.sync.status_interval_secs,
                d.status_interval,
            )?,
            utilization_interval: secs(
                "sync.utilization_interval_secs",
                raw.sync.utilization_interval_secs,
                d.utilization_interval,
            )?,
            reconcile_after: secs(
                "sync.reconcile_after_secs",
                raw.sync.reconcile_after_secs,
                d.reconcile_after,
            )?,
        };
        if sync.pull_wait > Duration::from_secs(60) {
            return Err(err(
                "sync.pull_wait_secs",
                "must be at most 60 (the hub holds a pull at most 60 s)".into(),
            ));
        }
        let batch_size = positive(
            "crawler.batch_size",
            raw.crawler.batch_size.map(|b| b as u64),
            DEFAULT_BATCH_SIZE as u64,
        )?;
        if batch_size > 100_000 {
            return Err(err("crawler.batch_size", "must be at most 100000".into()));
        }
        let crawler = CrawlerConfig {
            batch_size: batch_size as usize,
            progress_interval: Duration::from_secs(positive(
                "crawler.progress_interval_secs",
                raw.crawler.progress_interval_secs,
                5,
            )?),
            fallback_interval: Duration::from_secs(positive(
                "crawler.fallback_crawl_interval_secs",
                raw.crawler.fallback_crawl_interval_secs,
                86_400,
            )?),
        };
        let watcher = WatcherConfig {
            enabled: raw.watcher.enabled.unwrap_or(true),
            debounce: Duration::from_millis(positive("watcher.debounce_ms", raw.watcher.debounce_ms, 500)?),
            storm_events_per_sec: positive(
                "watcher.storm_events_per_sec",
                raw.watcher.storm_events_per_sec,
                1000,
            )?,
            storm_duration: Duration::from_secs(positive("watcher.storm_secs", raw.watcher.storm_secs, 5)?),
            max_watches: raw
                .watcher
                .max_watches
                .map(|m| positive("watcher.max_watches", Some(m), 1))
                .transpose()?,
        };
        let dv = VfsConfig::default();
        let vfs = VfsConfig {
            mount_point: match raw.vfs.mount_point {
                Some(m) if m.is_absolute() => Some(m),
                Some(m) => {
                    return Err(err("vfs.mount_point", format!("{} is not an absolute path", m.display())))
                }
                None => None,
            },
            readdir_ttl: raw.vfs.readdir_ttl_ms.map(Duration::from_millis).unwrap_or(dv.readdir_ttl),
            attr_ttl: raw.vfs.attr_ttl_ms.map(Duration::from_millis).unwrap_or(dv.attr_ttl),
            passthrough: raw.vfs.passthrough.unwrap_or(dv.passthrough),
            allow_other: raw.vfs.allow_other.unwrap_or(dv.allow_other),
        };
        if let Some(mp) = &vfs.mount_point {
            if let Some(i) = watch_paths.iter().position(|w| mp.starts_with(w) || w.starts_with(mp)) {
                return Err(err(
                    "vfs.mount_point",
                    format!("{} overlaps watch_paths[{i}]: the mount would index itself", mp.display()),
                ));
            }
        }
        if vfs.attr_ttl > Duration::from_secs(3600) {
            return Err(err("vfs.attr_ttl_ms", "must be at most 3600000 (an hour)".into()));
        }
        let transfer = parse_transfer(raw.transfer, &err)?;
        let dc = CacheConfig::default();
        let mib = |field: &str, v: Option<u64>, default: u64| -> Result<u64, ConfigError> {
            Ok(positive(field, v, default / MIB)?.saturating_mul(MIB))
        };
        let cache = CacheConfig {
            max_bytes: mib("cache.max_mib", raw.cache.max_mib, dc.max_bytes)?,
            min_free_bytes: match raw.cache.min_free_mib {
                Some(m) => m.saturating_mul(MIB),
                None => dc.min_free_bytes,
            },
            full_file_threshold: mib(
                "cache.full_file_threshold_mib",
                raw.cache.full_file_threshold_mib,
                dc.full_file_threshold,
            )?,
        };
        let level = raw.log.level.unwrap_or_else(|| "info".into());
        if level.trim().is_empty() {
            return Err(err("log.level", "is empty".into()));
        }
        let log_dir = match raw.log.dir {
            Some(d) if d.is_absolute() => d,
            Some(d) => return Err(err("log.dir", format!("{} is not an absolute path", d.display()))),
            None => data_dir.join("logs"),
        };
        Ok(AgentConfig {
            source: path.to_owned(),
            data_dir,
            watch_paths,
            exclude: raw.exclude,
            control_plane,
            heartbeat_interval,
            sync,
            crawler,
            watcher,
            vfs,
            transfer,
            cache,
            log: LogConfig { level, dir: log_dir },
        })
    }

    /// A configuration for ad-hoc use (the `index` commands without a config file).
    pub fn ephemeral(data_dir: PathBuf, watch_paths: Vec<PathBuf>) -> AgentConfig {
        AgentConfig {
            source: PathBuf::from("(command line)"),
            log: LogConfig { level: "info".into(), dir: data_dir.join("logs") },
            data_dir,
            watch_paths,
            exclude: vec![],
            control_plane: None,
            heartbeat_interval: Duration::from_secs(30),
            sync: SyncConfig::default(),
            crawler: CrawlerConfig {
                batch_size: DEFAULT_BATCH_SIZE,
                progress_interval: Duration::from_secs(5),
                fallback_interval: Duration::from_secs(86_400),
            },
            watcher: WatcherConfig {
                enabled: true,
                debounce: Duration::from_millis(500),
                storm_events_per_sec: 1000,
                storm_duration: Duration::from_secs(5),
                max_watches: None,
            },
            vfs: VfsConfig::default(),
            transfer: TransferConfig::default(),
            cache: CacheConfig::default(),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("agent.db")
    }

    pub fn node_id_path(&self) -> PathBuf {
        self.data_dir.join("node_id")
    }

    /// Reads this node's id from `{data_dir}/node_id`, generating and keeping one on first run.
    pub fn load_or_create_node_id(&self) -> Result<NodeId, ConfigError> {
        load_or_create_node_id(&self.node_id_path())
    }
}

/// Reads a node id file, or creates it (atomically: temp file, fsync, rename) when absent.
pub fn load_or_create_node_id(path: &Path) -> Result<NodeId, ConfigError> {
    let err = |message: String| ConfigError { file: path.to_owned(), field: String::new(), message };
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|e: crate::ids::IdError| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId::generate();
            let dir = path.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
            let tmp = path.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                writeln!(f, "{id}")?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
            };
            write().map_err(|e| err(format!("cannot write: {e}")))?;
            Ok(id)
        }
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

fn parse_transfer(
    raw: RawTransfer,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<TransferConfig, ConfigError> {
    let d = TransferConfig::default();
    let listen = match &raw.listen {
        Some(l) => l.trim().parse::<std::net::SocketAddr>().map_err(|_| {
            err("transfer.listen", format!("{l:?} is not an address and port (like \"0.0.0.0:7443\")"))
        })?,
        None => d.listen,
    };
    let advertise = match raw.advertise {
        Some(a) => {
            let url = reqwest::Url::parse(a.trim())
                .ok()
                .filter(|u| u.scheme() == "https" && u.host().is_some() && u.path() == "/")
                .ok_or_else(|| err("transfer.advertise", format!("{a:?} is not an https://host:port URL")))?;
            Some(url.as_str().trim_end_matches('/').to_owned())
        }
        None => None,
    };
    Ok(TransferConfig {
        enabled: raw.enabled.unwrap_or(d.enabled),
        listen,
        listen_explicit: raw.listen.is_some(),
        advertise,
    })
}

fn parse_control_plane(
    cp: RawControlPlane,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<ControlPlane, ConfigError> {
    let url = cp.url.trim_end_matches('/').to_owned();
    let host = url.strip_prefix("https://").unwrap_or("");
    if host.is_empty() || host.contains(['/', ' ', '?', '#']) {
        return Err(err("control_plane.url", format!("{:?} is not an https://host[:port] URL", cp.url)));
    }
    let access_key_id = cp
        .access_key_id
        .parse()
        .map_err(|e: crate::ids::IdError| err("control_plane.access_key_id", e.to_string()))?;
    let secret = parse_secret_ref(&cp.secret).ok_or_else(|| {
        err(
            "control_plane.secret",
            "must say where the secret lives (file:/path, keyring:service/account or env:VAR), never the secret itself".into(),
        )
    })?;
    let fp = cp.server_fingerprint.to_ascii_lowercase().replace(':', "");
    if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            "control_plane.server_fingerprint",
            "expected the SHA-256 of the hub's certificate as 64 hex digits".into(),
        ));
    }
    Ok(ControlPlane { url, access_key_id, secret, server_fingerprint: fp })
}

fn parse_secret_ref(s: &str) -> Option<SecretRef> {
    let (scheme, rest) = s.split_once(':')?;
    match scheme {
        "file" if Path::new(rest).is_absolute() => Some(SecretRef::File(PathBuf::from(rest))),
        "keyring" => {
            let (service, account) = rest.split_once('/')?;
            (!service.is_empty() && !account.is_empty())
                .then(|| SecretRef::Keyring { service: service.into(), account: account.into() })
        }
        "env" if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            Some(SecretRef::Env(rest.into()))
        }
        _ => None,
    }
}

/// `/a/b/` → `/a/b`; `None` for relative paths or paths with `.`/`..` components.
fn normalize_abs(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::RootDir => {}
            std::path::Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

/// DESIGN §9: headless nodes (running as root, e.g. a system service or container) keep data in
/// `/var/lib/mosaicfs`; a desktop user in the platform's per-user data directory.
/// `MOSAICFS_DATA_DIR` overrides both.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MOSAICFS_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/lib/mosaicfs");
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/MosaicFS");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(x) => PathBuf::from(x).join("mosaicfs"),
        None => home.join(".local/share/mosaicfs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(text, Path::new("/etc/agent.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("data_dir = \"/d\"\nwatch_paths = [\"/home/me/Docs/\"]").unwrap();
        assert_eq!(c.watch_paths, vec![PathBuf::from("/home/me/Docs")]);
        assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
        assert_eq!(c.watcher.debounce, Duration::from_millis(500));
        assert_eq!(c.log.dir, PathBuf::from("/d/logs"));
        assert_eq!(c.store_path(), PathBuf::from("/d/agent.db"));
        assert!(c.control_plane.is_none());
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let cases = [
            ("data_dir = \"/d\"", "missing field `watch_paths`"),
            ("watch_paths = [\"rel\"]", "watch_paths[0]"),
            ("watch_paths = [\"/a\", \"/a/b\"]", "watch_paths[1]: \"/a/b\" overlaps"),
            ("watch_paths = [\"/a\"]\n[watcher]\ndebounce_ms = \"x\"", "watcher.debounce_ms: invalid type"),
            (
                "watch_paths = [\"/a\"]\n[watcher]\ndebounce_ms = 0",
                "watcher.debounce_ms: must be greater than 0",
            ),
            ("watch_paths = [\"/a\"]\ncolour = 1", "unknown field `colour`"),
            ("watch_paths = [\"/a\"]\nexclude = [\"[\"]", "exclude[0]"),
            (
                "watch_paths = [\"/a\"]\n[vfs]\nmount_point = \"mnt\"",
                "vfs.mount_point: mnt is not an absolute",
            ),
            ("watch_paths = [\"/a\"]\n[vfs]\nmount_point = \"/a/mnt\"", "vfs.mount_point: /a/mnt overlaps"),
            ("watch_paths = [\"/a\"]\n[vfs]\npassthrough = 1", "vfs.passthrough: invalid type"),
            ("watch_paths = [\"/a\"\n", "/etc/agent.toml: "),
            (
                "watch_paths = [\"/a\"]\n[transfer]\nlisten = \"x\"",
                "transfer.listen: \"x\" is not an address",
            ),
            (
                "watch_paths = [\"/a\"]\n[transfer]\nadvertise = \"http://h:1\"",
                "transfer.advertise: \"http://h:1\" is not an https",
            ),
            ("watch_paths = [\"/a\"]\n[cache]\nmax_mib = 0", "cache.max_mib: must be greater than 0"),
            ("watch_paths = [\"/a\"]\n[cache]\nsize = 1", "unknown field `size`"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with("/etc/agent.toml: "), "{e}");
            assert!(e.contains(want), "{text:?} gave {e:?}, wanted {want:?}");
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }

    #[test]
    fn transfer_and_cache_sections_have_defaults_and_take_values() {
        let c = parse("watch_paths = [\"/a\"]").unwrap();
        assert_eq!(c.transfer, TransferConfig::default());
        assert_eq!(c.cache.full_file_threshold, 50 << 20);
        assert_eq!(c.cache.max_bytes, 10 << 30);
        let c = parse(
            "watch_paths = [\"/a\"]\n[transfer]\nlisten = \"127.0.0.2:0\"\nadvertise = \"https://nas.lan:9000/\"\n\
             [cache]\nmax_mib = 20\nmin_free_mib = 0\nfull_file_threshold_mib = 4",
        )
        .unwrap();
        assert_eq!(c.transfer.listen.to_string(), "127.0.0.2:0");
        assert!(c.transfer.listen_explicit);
        assert_eq!(c.transfer.advertise.as_deref(), Some("https://nas.lan:9000"));
        assert_eq!(
            (c.cache.max_bytes, c.cache.min_free_bytes, c.cache.full_file_threshold),
            (20 << 20, 0, 4 << 20)
        );
    }

    #[test]
    fn control_plane_fields_are_required_together_and_secret_is_a_reference() {
        let base = "watch_paths = [\"/a\"]\n[control_plane]\nurl = \"https://hub:8443/\"\naccess_key_id = \"MFSABCDEFGHIJKLMNOPQ\"\n";
        let fp = format!("server_fingerprint = \"{}\"\n", "AB".repeat(32));
        let e = parse(&format!("{base}{fp}")).unwrap_err().to_string();
        assert!(e.contains("control_plane: missing field `secret`"), "{e}");
        let e = parse(&format!("{base}{fp}secret = \"hunter2\"\n")).unwrap_err().to_string();
        assert!(e.contains("control_plane.secret: must say where"), "{e}");
        let c = parse(&format!("{base}{fp}secret = \"file:/var/lib/mosaicfs/secrets/agent\"\n")).unwrap();
        let cp = c.control_plane.unwrap();
        assert_eq!(cp.url, "https://hub:8443");
        assert_eq!(cp.server_fingerprint, "ab".repeat(32));
        assert_eq!(cp.secret, SecretRef::File("/var/lib/mosaicfs/secrets/agent".into()));
        assert!(parse(&format!("{base}{fp}secret = \"keyring:mosaicfs/MFSABCDEFGHIJKLMNOPQ\"\n")).is_ok());
        let e = parse(&format!("{base}{fp}secret = \"env:X\"\nurl2 = 1\n")).unwrap_err().to_string();
        assert!(e.contains("url2"), "{e}");
        let e = parse(&base.replace("https://hub:8443/", "http://hub")).unwrap_err().to_string();
        assert!(e.contains("control_plane"), "{e}");
    }

    #[test]
    fn node_id_is_generated_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node_id");
        let a = load_or_create_node_id(&path).unwrap();
        let b = load_or_create_node_id(&path).unwrap();
        assert_eq!(a, b);
        std::fs::write(&path, "Not A Node Id").unwrap();
        let e = load_or_create_node_id(&path).unwrap_err().to_string();
        assert!(e.contains("node_id") && e.contains("invalid node id"), "{e}");
    }
}
