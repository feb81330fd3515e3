//! `[watcher]`: filesystem events, debounce and storms (ARCHITECTURE §8.4).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct WatcherConfig {
    pub enabled: bool,
    pub debounce: Duration,
    pub storm_events_per_sec: u64,
    pub storm_duration: Duration,
    /// At most this many directory watches; `None` means the system limit.
    pub max_watches: Option<u64>,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            enabled: true,
            debounce: Duration::from_millis(500),
            storm_events_per_sec: 1000,
            storm_duration: Duration::from_secs(5),
            max_watches: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatcher {
    enabled: Option<bool>,
    debounce_ms: Option<u64>,
    storm_events_per_sec: Option<u64>,
    storm_secs: Option<u64>,
    max_watches: Option<u64>,
}

impl RawWatcher {
    pub(super) fn validate(self, file: &Path) -> Result<WatcherConfig, ConfigError> {
        let f = Fields::new(file, "watcher");
        let d = WatcherConfig::default();
        Ok(WatcherConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            debounce: f.millis("debounce_ms", self.debounce_ms, d.debounce)?,
            storm_events_per_sec: f.positive(
                "storm_events_per_sec",
                self.storm_events_per_sec,
                d.storm_events_per_sec,
            )?,
            storm_duration: f.secs("storm_secs", self.storm_secs, d.storm_duration)?,
            max_watches: self.max_watches.map(|m| f.positive("max_watches", Some(m), 1)).transpose()?,
        })
    }
}
