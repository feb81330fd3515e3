//! `agent.toml`: parsed, validated and defaulted into [`AgentConfig`].
//!
//! Each section is its own module with its raw (as written) form, its validated form and its
//! defaults, written once in the validated form's `Default`: `paths` (`data_dir`,
//! `watch_paths`, `exclude`), `control_plane`, `heartbeat`, `sync`, `crawler`, `watcher`,
//! `vfs`, `transfer`, `cache`, `log`. This module reads the file and hands each section to its
//! validator. Every problem is one [`ConfigError`] that names the file and the field, for example
//! `/etc/mosaicfs/agent.toml: watcher.debounce_ms: invalid type: string "x", expected u64`.
//! The host prints it on one line and exits with status 2.

mod cache;
mod control_plane;
mod crawler;
mod fields;
mod heartbeat;
mod log;
mod paths;
mod sync;
mod transfer;
mod vfs;
mod watcher;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use cache::CacheConfig;
pub use control_plane::{ControlPlane, SecretRef};
pub use crawler::{CrawlerConfig, DEFAULT_BATCH_SIZE};
pub use heartbeat::DEFAULT_HEARTBEAT_INTERVAL;
pub use log::LogConfig;
pub use paths::default_data_dir;
pub use sync::SyncConfig;
pub use transfer::{TransferConfig, DEFAULT_TRANSFER_PORT};
pub use vfs::{desktop_mount_point, is_desktop_user, VfsConfig};
pub use watcher::WatcherConfig;

use crate::ids::NodeId;

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

/// The file as written: one raw value per section, each validated by its module.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<PathBuf>,
    watch_paths: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    control_plane: Option<control_plane::RawControlPlane>,
    #[serde(default)]
    heartbeat: heartbeat::RawHeartbeat,
    #[serde(default)]
    sync: sync::RawSync,
    #[serde(default)]
    crawler: crawler::RawCrawler,
    #[serde(default)]
    watcher: watcher::RawWatcher,
    #[serde(default)]
    vfs: vfs::RawVfs,
    #[serde(default)]
    transfer: transfer::RawTransfer,
    #[serde(default)]
    cache: cache::RawCache,
    #[serde(default)]
    log: log::RawLog,
}

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
        let whole = fields::Fields::new(path, "");
        let de = toml::Deserializer::parse(text).map_err(|e| whole.err("", e.message()))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { String::new() } else { field };
            whole.err(&field, e.inner().message())
        })?;

        let data_dir = paths::data_dir(path, raw.data_dir)?;
        let control_plane = raw.control_plane.map(|cp| cp.validate(path)).transpose()?;
        let watch_paths = paths::watch_paths(path, &raw.watch_paths, control_plane.is_some())?;
        paths::exclude(path, &raw.exclude)?;
        Ok(AgentConfig {
            source: path.to_owned(),
            heartbeat_interval: raw.heartbeat.validate(path)?,
            sync: raw.sync.validate(path)?,
            crawler: raw.crawler.validate(path)?,
            watcher: raw.watcher.validate(path)?,
            vfs: raw.vfs.validate(path, &watch_paths)?,
            transfer: raw.transfer.validate(path)?,
            cache: raw.cache.validate(path)?,
            log: raw.log.validate(path, &data_dir)?,
            data_dir,
            watch_paths,
            exclude: raw.exclude,
            control_plane,
        })
    }

    /// Directories never indexed, whatever the watch paths: the data directory and the mount
    /// point (the agent's own writes, and the tree it serves).
    pub fn never_indexed(&self) -> Vec<PathBuf> {
        std::iter::once(self.data_dir.clone()).chain(self.vfs.mount_point.clone()).collect()
    }

    /// A configuration for ad-hoc use (the `index` commands without a config file, tests):
    /// every section at its defaults.
    pub fn ephemeral(data_dir: PathBuf, watch_paths: Vec<PathBuf>) -> AgentConfig {
        AgentConfig {
            source: PathBuf::from("(command line)"),
            log: LogConfig::default_for(&data_dir),
            data_dir,
            watch_paths,
            exclude: vec![],
            control_plane: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            sync: SyncConfig::default(),
            crawler: CrawlerConfig::default(),
            watcher: WatcherConfig::default(),
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
            crate::private_files::create_dirs(dir)
                .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
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

#[cfg(test)]
mod tests;
