//! `[cache]`: the cache of other nodes' files (ARCHITECTURE §10).

use std::path::Path;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes the cache may hold on disk (default 10 GiB).
    pub max_bytes: u64,
    /// Free space left on the cache's volume at least (default 1 GiB).
    pub min_free_bytes: u64,
    /// Files smaller than this are fetched whole; larger ones by ranges (default 50 MiB).
    pub full_file_threshold: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_bytes: 10 * 1024 * MIB, min_free_bytes: 1024 * MIB, full_file_threshold: 50 * MIB }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    max_mib: Option<u64>,
    min_free_mib: Option<u64>,
    full_file_threshold_mib: Option<u64>,
}

impl RawCache {
    pub(super) fn validate(self, file: &Path) -> Result<CacheConfig, ConfigError> {
        let f = Fields::new(file, "cache");
        let d = CacheConfig::default();
        let mib = |key: &str, v: Option<u64>, default: u64| -> Result<u64, ConfigError> {
            Ok(f.positive(key, v, default / MIB)?.saturating_mul(MIB))
        };
        Ok(CacheConfig {
            max_bytes: mib("max_mib", self.max_mib, d.max_bytes)?,
            min_free_bytes: self.min_free_mib.map_or(d.min_free_bytes, |m| m.saturating_mul(MIB)),
            full_file_threshold: mib(
                "full_file_threshold_mib",
                self.full_file_threshold_mib,
                d.full_file_threshold,
            )?,
        })
    }
}
