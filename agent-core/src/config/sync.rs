//! `[sync]`: replication with the control plane (ARCHITECTURE §5).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

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

/// The hub holds a pull at most this long.
const MAX_PULL_WAIT: Duration = Duration::from_secs(60);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSync {
    pull_wait_secs: Option<u64>,
    retry_cap_secs: Option<u64>,
    status_interval_secs: Option<u64>,
    utilization_interval_secs: Option<u64>,
    reconcile_after_secs: Option<u64>,
}

impl RawSync {
    pub(super) fn validate(self, file: &Path) -> Result<SyncConfig, ConfigError> {
        let f = Fields::new(file, "sync");
        let d = SyncConfig::default();
        let sync = SyncConfig {
            pull_wait: f.secs("pull_wait_secs", self.pull_wait_secs, d.pull_wait)?,
            retry_cap: f.secs("retry_cap_secs", self.retry_cap_secs, d.retry_cap)?,
            status_interval: f.secs("status_interval_secs", self.status_interval_secs, d.status_interval)?,
            utilization_interval: f.secs(
                "utilization_interval_secs",
                self.utilization_interval_secs,
                d.utilization_interval,
            )?,
            reconcile_after: f.secs("reconcile_after_secs", self.reconcile_after_secs, d.reconcile_after)?,
        };
        if sync.pull_wait > MAX_PULL_WAIT {
            return Err(f.err("pull_wait_secs", "must be at most 60 (the hub holds a pull at most 60 s)"));
        }
        Ok(sync)
    }
}
