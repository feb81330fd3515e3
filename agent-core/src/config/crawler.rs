//! `[crawler]`: how crawls write and report (ARCHITECTURE §8.3).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

pub const DEFAULT_BATCH_SIZE: usize = 4096;
const MAX_BATCH_SIZE: u64 = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub struct CrawlerConfig {
    /// Documents per store transaction during a crawl.
    pub batch_size: usize,
    pub progress_interval: Duration,
    /// How often directories that cannot be watched are crawled.
    pub fallback_interval: Duration,
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            batch_size: DEFAULT_BATCH_SIZE,
            progress_interval: Duration::from_secs(5),
            fallback_interval: Duration::from_secs(86_400),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCrawler {
    batch_size: Option<u64>,
    progress_interval_secs: Option<u64>,
    fallback_crawl_interval_secs: Option<u64>,
}

impl RawCrawler {
    pub(super) fn validate(self, file: &Path) -> Result<CrawlerConfig, ConfigError> {
        let f = Fields::new(file, "crawler");
        let d = CrawlerConfig::default();
        let batch_size = f.positive("batch_size", self.batch_size, d.batch_size as u64)?;
        if batch_size > MAX_BATCH_SIZE {
            return Err(f.err("batch_size", format!("must be at most {MAX_BATCH_SIZE}")));
        }
        Ok(CrawlerConfig {
            batch_size: batch_size as usize,
            progress_interval: f.secs(
                "progress_interval_secs",
                self.progress_interval_secs,
                d.progress_interval,
            )?,
            fallback_interval: f.secs(
                "fallback_crawl_interval_secs",
                self.fallback_crawl_interval_secs,
                d.fallback_interval,
            )?,
        })
    }
}
