//! What every section's validation needs: errors that name the file and the dotted field, and
//! the common checks (positive numbers, absolute paths).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;

/// The fields of one section of one file: `Fields::new(file, "watcher").err("debounce_ms", …)`
/// names `watcher.debounce_ms` in `file`.
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    file: &'a Path,
    section: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(file: &'a Path, section: &'static str) -> Fields<'a> {
        Fields { file, section }
    }

    /// The dotted name of `key` in this section.
    pub(super) fn name(&self, key: &str) -> String {
        match (self.section.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => self.section.to_owned(),
            (false, false) => format!("{}.{key}", self.section),
        }
    }

    pub(super) fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError { file: self.file.to_owned(), field: self.name(key), message: message.into() }
    }

    /// `v`, or `default` when absent; zero is refused.
    pub(super) fn positive(&self, key: &str, v: Option<u64>, default: u64) -> Result<u64, ConfigError> {
        match v {
            Some(0) => Err(self.err(key, "must be greater than 0")),
            Some(v) => Ok(v),
            None => Ok(default),
        }
    }

    /// A positive number of seconds, or `default`.
    pub(super) fn secs(&self, key: &str, v: Option<u64>, default: Duration) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.positive(key, v, default.as_secs())?))
    }

    /// A positive number of milliseconds, or `default`.
    pub(super) fn millis(
        &self,
        key: &str,
        v: Option<u64>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.positive(key, v, default.as_millis() as u64)?))
    }

    /// An absolute path as written, or `None` when absent.
    pub(super) fn absolute(&self, key: &str, v: Option<PathBuf>) -> Result<Option<PathBuf>, ConfigError> {
        match v {
            Some(p) if p.is_absolute() => Ok(Some(p)),
            Some(p) => Err(self.err(key, format!("{} is not an absolute path", p.display()))),
            None => Ok(None),
        }
    }
}
