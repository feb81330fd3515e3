//! The inotify (or FSEvents) watches: one non-recursive watch per directory, so the agent knows
//! exactly which directories are watched and which fall back to periodic crawls.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use notify::{RecursiveMode, Watcher};

use crate::crawler::CrawlObserver;

pub struct Watches {
    watcher: notify::RecommendedWatcher,
    watched: BTreeSet<PathBuf>,
    /// Directories that could not be watched (limit reached, or the OS refused).
    unwatched: BTreeSet<PathBuf>,
    limit: u64,
    warned_near_limit: bool,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The per-user inotify watch limit (`fs.inotify.max_user_watches`).
pub fn system_watch_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").ok()?.trim().parse().ok()
}

impl Watches {
    pub fn new(
        watcher: notify::RecommendedWatcher,
        max_watches: Option<u64>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> Watches {
        // Leave a tenth of the system limit to the user's other programs.
        let limit = max_watches.unwrap_or_else(|| system_watch_limit().map_or(u64::MAX, |l| l - l / 10));
        Watches {
            watcher,
            watched: BTreeSet::new(),
            unwatched: BTreeSet::new(),
            limit,
            warned_near_limit: false,
            stop,
        }
    }

    pub fn watched_count(&self) -> usize {
        self.watched.len()
    }

    pub fn is_watched(&self, dir: &Path) -> bool {
        self.watched.contains(dir)
    }

    pub fn unwatched(&self) -> &BTreeSet<PathBuf> {
        &self.unwatched
    }

    /// Watches one directory (not its children).
    pub fn watch_dir(&mut self, dir: &Path) {
        if self.watched.contains(dir) {
            return;
        }
        if self.watched.len() as u64 >= self.limit {
            if self.unwatched.insert(dir.to_owned()) && self.unwatched.len() == 1 {
                tracing::warn!(
                    limit = self.limit,
                    dir = %dir.display(),
                    "directory watch limit reached: further directories are crawled periodically instead \
                     (raise fs.inotify.max_user_watches, e.g. to 524288)"
                );
            }
            return;
        }
        match self.watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched.insert(dir.to_owned());
                self.unwatched.remove(dir);
                let n = self.watched.len() as u64;
                if !self.warned_near_limit && self.limit != u64::MAX && n * 10 >= self.limit * 9 {
                    self.warned_near_limit = true;
                    tracing::warn!(watches = n, limit = self.limit, "directory watches are near the limit");
                }
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
            Err(e) => {
                if self.unwatched.insert(dir.to_owned()) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; it will be crawled periodically");
                }
            }
        }
    }

    /// Forgets every watch at or below `dir` (it vanished or moved away).
    pub fn unwatch_under(&mut self, dir: &Path) {
        let gone: Vec<PathBuf> = self.watched.iter().filter(|p| p.starts_with(dir)).cloned().collect();
        for p in gone {
            let _ = self.watcher.unwatch(&p); // the kernel may have dropped it already
            self.watched.remove(&p);
        }
        self.unwatched.retain(|p| !p.starts_with(dir));
    }

    /// Top-level unwatched directories (those without an unwatched ancestor).
    pub fn unwatched_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = Vec::new();
        for p in &self.unwatched {
            if !roots.iter().any(|r| p.starts_with(r)) {
                roots.push(p.clone());
            }
        }
        roots
    }
}

impl CrawlObserver for Watches {
    fn before_dir(&mut self, dir: &Path) {
        self.watch_dir(dir);
    }

    fn should_stop(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
    }
}
