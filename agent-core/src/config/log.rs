//! `[log]`: the tracing filter and where the JSON log goes (ARCHITECTURE §11).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter (`info`, `agent_core=debug,info`).
    pub level: String,
    pub dir: PathBuf,
}

impl LogConfig {
    /// The defaults: `info`, in `{data_dir}/logs`.
    pub fn default_for(data_dir: &Path) -> LogConfig {
        LogConfig { level: "info".into(), dir: data_dir.join("logs") }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    level: Option<String>,
    dir: Option<PathBuf>,
}

impl RawLog {
    pub(super) fn validate(self, file: &Path, data_dir: &Path) -> Result<LogConfig, ConfigError> {
        let f = Fields::new(file, "log");
        let d = LogConfig::default_for(data_dir);
        let level = self.level.unwrap_or(d.level);
        if level.trim().is_empty() {
            return Err(f.err("level", "is empty"));
        }
        Ok(LogConfig { level, dir: f.absolute("dir", self.dir)?.unwrap_or(d.dir) })
    }
}
