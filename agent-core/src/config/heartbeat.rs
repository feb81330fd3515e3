//! `[heartbeat]`: how often the node document is rewritten (ARCHITECTURE §8.5).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeartbeat {
    interval_secs: Option<u64>,
}

impl RawHeartbeat {
    pub(super) fn validate(self, file: &Path) -> Result<Duration, ConfigError> {
        Fields::new(file, "heartbeat").secs("interval_secs", self.interval_secs, DEFAULT_HEARTBEAT_INTERVAL)
    }
}
