//! The indexing worker: one thread that owns the [`Indexer`] (so file documents have one local
//! writer), runs the first crawl, then keeps the index current from filesystem events.
//!
//! - Watches are added directory by directory *during* the first crawl (before each directory is
//!   listed) and events are queued until the crawl ends, so nothing that changes meanwhile is lost.
//! - Events are debounced per path ([`debounce::Debouncer`], 500 ms by default); a rename pair
//!   moves the same document (directories: every file below), before the paths are re-checked.
//! - More than `storm_events_per_sec` events in each of `storm_secs` seconds is a storm: pending
//!   events are dropped and a full crawl runs once the storm calms down.
//! - Memory is bounded under any storm: the queue from notify holds at most [`QUEUE_CAPACITY`]
//!   events, and pending work is coalesced per path ([`debounce`]). When the queue is full (the
//!   worker fell behind), when the pending work passes [`debounce::Debouncer::MAX_PENDING`], or
//!   when the kernel's own queue overflowed, events are being lost: what is pending is dropped,
//!   the worker treats it as a storm, and one full crawl runs once it calms down.
//! - Directories that cannot be watched (watch limit) are crawled every
//!   `crawler.fallback_crawl_interval_secs`.

pub mod debounce;
mod watches;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};

use crate::config::AgentConfig;
use crate::crawler::{crawl, CrawlObserver, CrawlOptions};
use crate::doc::CrawlSummary;
use crate::ids::NodeId;
use crate::indexer::{list_dir, Indexer, Listed, PathKind};
use crate::store::{Store, StoreError};
use debounce::{Debouncer, Storm, StormDetector};
pub use watches::system_watch_limit;
use watches::Watches;

/// What the worker has done so far; shared with the agent for status reporting.
#[derive(Clone, Debug, Default)]
pub struct WorkerStatus {
    /// Set when the first crawl has finished (the index is complete from then on).
    pub first_crawl: Option<CrawlSummary>,
    pub last_crawl: Option<CrawlSummary>,
    pub full_crawls: u64,
    pub storms: u64,
    /// Times events were lost (kernel queue, the worker's queue or its pending work full).
    pub overflows: u64,
    /// Events dropped because the worker's queue was full.
    pub dropped_events: u64,
    pub events: u64,
    pub watched_dirs: u64,
    pub unwatched_dirs: u64,
}

/// Events queued for the worker, at most. An event takes a few hundred bytes: a few MiB in all.
pub const QUEUE_CAPACITY: usize = 16 * 1024;

enum Msg {
    /// An event, stamped when the watcher thread received it (storm detection uses event time,
    /// not the time a busy worker gets to it).
    Fs(notify::Result<notify::Event>, Instant),
    /// Look at the flags (a crawl was requested, or stop).
    Wake,
}

/// What other threads tell the worker, without waiting for room in its queue.
#[derive(Default)]
struct Signals {
    stop: AtomicBool,
    crawl: AtomicBool,
    /// Events dropped since the worker last looked (the queue was full).
    dropped: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start the filesystem watcher: {0}")]
    Watcher(#[from] notify::Error),
    #[error("invalid exclude glob: {0}")]
    Exclude(#[from] globset::Error),
    #[error("cannot start the indexing thread: {0}")]
    Thread(std::io::Error),
}

/// The running worker thread.
pub struct IndexWorker {
    tx: SyncSender<Msg>,
    signals: Arc<Signals>,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<WorkerStatus>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Settings {
    roots: Vec<PathBuf>,
    crawl: CrawlOptions,
    storm_per_sec: u64,
    storm_duration: Duration,
    fallback_interval: Duration,
    watch: bool,
}

impl IndexWorker {
    pub fn spawn(store: Store, node: NodeId, config: &AgentConfig) -> Result<IndexWorker, WorkerError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let signals = Arc::new(Signals::default());
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(WorkerStatus::default()));
        let settings = Settings {
            roots: config.watch_paths.clone(),
            crawl: CrawlOptions::new(&config.exclude, config.crawler.progress_interval)?
                .skipping(config.never_indexed()),
            storm_per_sec: config.watcher.storm_events_per_sec,
            storm_duration: config.watcher.storm_duration,
            fallback_interval: config.crawler.fallback_interval,
            watch: config.watcher.enabled,
        };
        let (events, dropped) = (tx.clone(), signals.clone());
        let watcher = notify::recommended_watcher(move |res| {
            // Never blocks notify's thread: a full queue drops the event and says so (the
            // worker then crawls); a gone worker needs nothing.
            if let Err(TrySendError::Full(_)) = events.try_send(Msg::Fs(res, Instant::now())) {
                dropped.dropped.fetch_add(1, Ordering::Relaxed);
            }
        })?;
        let watches = Watches::new(watcher, config.watcher.max_watches, stop.clone());
        let mut run = Run {
            indexer: Indexer::new(store, node, config.crawler.batch_size),
            watches,
            settings,
            status: status.clone(),
            stop: stop.clone(),
            signals: signals.clone(),
            debouncer: Debouncer::new(config.watcher.debounce),
            storm: StormDetector::new(config.watcher.storm_events_per_sec, config.watcher.storm_duration),
        };
        let thread = std::thread::Builder::new()
            .name("mosaicfs-indexer".into())
            .spawn(move || {
                crate::host::background_priority();
                if let Err(e) = run.main(rx) {
                    tracing::error!(operation = "index", error = %e, "indexing stopped after a store error");
                }
            })
            .map_err(WorkerError::Thread)?;
        Ok(IndexWorker { tx, signals, stop, status, thread: Some(thread) })
    }

    pub fn status(&self) -> WorkerStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Asks for a full crawl (it runs after what is in progress).
    pub fn request_crawl(&self) {
        self.signals.crawl.store(true, Ordering::Relaxed);
        let _ = self.tx.try_send(Msg::Wake); // a full queue wakes the worker anyway
    }

    /// [`IndexWorker::request_crawl`] as a function other tasks can keep.
    pub fn crawl_trigger(&self) -> impl Fn() + Send + Sync + 'static {
        let (tx, signals) = (self.tx.clone(), self.signals.clone());
        move || {
            signals.crawl.store(true, Ordering::Relaxed);
            let _ = tx.try_send(Msg::Wake);
        }
    }

    /// [`IndexWorker::status`] as a function other tasks can keep.
    pub fn status_source(&self) -> impl Fn() -> WorkerStatus + Send + Sync + 'static {
        let status = self.status.clone();
        move || status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops the worker (an ongoing crawl stops between directories) and waits for it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.signals.stop.store(true, Ordering::Relaxed);
        let _ = self.tx.try_send(Msg::Wake);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for IndexWorker {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

/// The worker thread's state.
struct Run {
    indexer: Indexer,
    watches: Watches,
    settings: Settings,
    status: Arc<Mutex<WorkerStatus>>,
    stop: Arc<AtomicBool>,
    signals: Arc<Signals>,
    debouncer: Debouncer,
    storm: StormDetector,
}

/// An observer for when watching is switched off: it only honours the stop flag.
struct StopOnly(Arc<AtomicBool>);
impl CrawlObserver for StopOnly {
    fn should_stop(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Run {
    fn main(&mut self, rx: Receiver<Msg>) -> Result<(), StoreError> {
        let summary = self.full_crawl()?;
        self.update(|s| s.first_crawl = Some(summary));
        let mut next_fallback = Instant::now() + self.settings.fallback_interval;
        loop {
            if self.stop.load(Ordering::Relaxed) || self.signals.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let dropped = self.signals.dropped.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                self.events_lost(&format!("{dropped} events dropped: the indexing queue was full"), dropped)?;
            }
            if self.signals.crawl.swap(false, Ordering::Relaxed) {
                self.debouncer.clear();
                self.full_crawl()?;
            }
            let now = Instant::now();
            let mut deadline = next_fallback.min(now + Duration::from_secs(1));
            if let Some(d) = self.debouncer.next_deadline() {
                deadline = deadline.min(d);
            }
            match rx.recv_timeout(deadline.saturating_duration_since(now)) {
                Ok(Msg::Fs(Ok(event), at)) => self.on_event(event, at)?,
                Ok(Msg::Fs(Err(e), _)) => {
                    tracing::warn!(operation = "watch", error = %e, "watcher error")
                }
                Ok(Msg::Wake) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {
                    // A quiet moment closes the current window too (it may start or end a storm).
                    let state = self.storm.record(0, Instant::now());
                    self.on_storm_state(state)?;
                }
            }
            if self.debouncer.len() > Debouncer::MAX_PENDING {
                let n = self.debouncer.len() as u64;
                self.events_lost(&format!("{n} paths pending"), 0)?;
            }
            if !self.storm.in_storm() {
                self.apply_due()?;
            }
            if Instant::now() >= next_fallback {
                self.fallback_crawl()?;
                next_fallback = Instant::now() + self.settings.fallback_interval;
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut WorkerStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
        s.watched_dirs = self.watches.watched_count() as u64;
        s.unwatched_dirs = self.watches.unwatched().len() as u64;
    }

    fn crawl_roots(&mut self, roots: &[PathBuf]) -> Result<CrawlSummary, StoreError> {
        if self.settings.watch {
            crawl(&mut self.indexer, roots, &self.settings.crawl, &mut self.watches)
        } else {
            crawl(&mut self.indexer, roots, &self.settings.crawl, &mut StopOnly(self.stop.clone()))
        }
    }

    fn full_crawl(&mut self) -> Result<CrawlSummary, StoreError> {
        let roots = self.settings.roots.clone();
        let summary = self.crawl_roots(&roots)?;
        self.update(|s| {
            s.full_crawls += 1;
            s.last_crawl = Some(summary.clone());
        });
        Ok(summary)
    }

    fn on_event(&mut self, mut event: notify::Event, now: Instant) -> Result<(), StoreError> {
        self.update(|s| s.events += 1);
        if event.need_rescan() {
            return self.events_lost("the kernel's event queue overflowed", 0);
        }
        // The data directory and the mount point are never indexed (their own writes would
        // otherwise feed the watcher forever).
        let before = event.paths.len();
        event.paths.retain(|p| !self.settings.crawl.skips(p));
        if before > 0 && event.paths.is_empty() {
            return Ok(());
        }
        let state = self.storm.record(event.paths.len().max(1) as u64, now);
        self.on_storm_state(state)?;
        if self.storm.in_storm() {
            return Ok(()); // the full crawl after the storm covers this event
        }
        match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if event.paths.len() == 2 => {
                let mut paths = event.paths.into_iter();
                if let (Some(from), Some(to)) = (paths.next(), paths.next()) {
                    self.debouncer.rename(from, to, now);
                }
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => self.touch_all(event.paths, now),
            EventKind::Access(_) => {}
            _ => self.touch_all(event.paths, now),
        }
        Ok(())
    }

    fn touch_all(&mut self, paths: Vec<PathBuf>, now: Instant) {
        for p in paths {
            self.debouncer.touch(p, now);
        }
    }

    fn on_storm_state(&mut self, state: Storm) -> Result<(), StoreError> {
        match state {
            Storm::Started => {
                tracing::warn!(
                    operation = "watch",
                    per_sec = self.settings.storm_per_sec,
                    secs = self.settings.storm_duration.as_secs(),
                    "event storm: pausing per-event indexing, a full crawl follows when it calms down"
                );
                self.update(|s| s.storms += 1);
                self.debouncer.clear();
                Ok(())
            }
            Storm::Ended => self.after_storm(),
            Storm::Ongoing | Storm::Calm => Ok(()),
        }
    }

    /// Events were lost (`why`; `dropped` of them counted): what is pending is dropped and the
    /// worker is in a storm from now on, so one full crawl runs once it calms down. While it
    /// lasts, the queue is only drained: memory stays bounded however long it goes on.
    fn events_lost(&mut self, why: &str, dropped: u64) -> Result<(), StoreError> {
        self.debouncer.clear();
        self.update(|s| {
            s.overflows += 1;
            s.dropped_events += dropped;
        });
        let now = Instant::now();
        if self.storm.in_storm() {
            self.storm.record(dropped, now);
            return Ok(());
        }
        tracing::warn!(
            operation = "watch",
            reason = why,
            "events lost; a full crawl follows once the events calm down"
        );
        let state = self.storm.force(now);
        self.on_storm_state(state)
    }

    fn after_storm(&mut self) -> Result<(), StoreError> {
        tracing::info!(operation = "watch", "event storm over; running a full crawl");
        self.debouncer.clear();
        self.full_crawl().map(|_| ())
    }

    fn fallback_crawl(&mut self) -> Result<(), StoreError> {
        let roots =
            if self.settings.watch { self.watches.unwatched_roots() } else { self.settings.roots.clone() };
        if !roots.is_empty() {
            tracing::info!(
                operation = "crawl",
                dirs = roots.len(),
                "periodic crawl of directories without a watch"
            );
            let summary = self.crawl_roots(&roots)?;
            self.update(|s| s.last_crawl = Some(summary));
        }
        Ok(())
    }

    /// Applies what the debouncer released: renames first, then the re-checks, grouped by
    /// directory (many changes in one directory are reconciled with one listing).
    fn apply_due(&mut self) -> Result<(), StoreError> {
        let due = self.debouncer.take_due(Instant::now());
        if due.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let before = self.indexer.take_counters();
        let n_renames = due.renames.len();
        for (from, to) in due.renames {
            let (Some(f), Some(t)) = (from.to_str(), to.to_str()) else {
                continue;
            };
            let moved = self.indexer.rename(f, t)?;
            tracing::debug!(from = f, to = t, moved, "rename");
            if std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
                self.watches.unwatch_under(&from);
                self.crawl_subtree(&to)?;
            }
        }
        let mut by_parent: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        for p in due.paths {
            let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
            by_parent.entry(parent).or_default().push(p);
        }
        for (parent, paths) in by_parent {
            self.recheck(&parent, paths)?;
        }
        self.indexer.flush()?;
        let c = std::mem::replace(&mut self.indexer.counters, before);
        tracing::info!(
            operation = "watch",
            renames = n_renames,
            added = c.added,
            changed = c.changed,
            deleted = c.deleted,
            errors = c.errors,
            duration_ms = started.elapsed().as_millis() as u64,
            "applied filesystem changes"
        );
        Ok(())
    }

    const GROUP_LISTING_THRESHOLD: usize = 32;

    fn recheck(&mut self, parent: &Path, paths: Vec<PathBuf>) -> Result<(), StoreError> {
        let listing = match (paths.len() >= Self::GROUP_LISTING_THRESHOLD, parent.to_str()) {
            (true, Some(dir)) => match list_dir(parent) {
                Listed::Ok(l) => Some((dir.to_owned(), l)),
                _ => None,
            },
            _ => None,
        };
        if let Some((dir, listing)) = listing {
            self.indexer.reconcile_dir(&dir, &listing.files)?;
            for p in paths {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if listing.subdirs.iter().any(|s| s == name) {
                    if !self.is_watched(&p) {
                        self.crawl_subtree(&p)?;
                    }
                } else if !listing.files.iter().any(|(n, _)| n == name) {
                    if let Some(s) = p.to_str() {
                        self.indexer.mark_deleted_at(s)?;
                    }
                    self.watches.unwatch_under(&p);
                }
            }
            return Ok(());
        }
        for p in paths {
            match self.indexer.reconcile_path(&p)? {
                PathKind::Dir if !self.is_watched(&p) => self.crawl_subtree(&p)?,
                PathKind::Missing => self.watches.unwatch_under(&p),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether a directory is already covered: watched, or known to the fallback crawl.
    fn is_watched(&self, dir: &Path) -> bool {
        !self.settings.watch || self.watches.is_watched(dir) || self.watches.unwatched().contains(dir)
    }

    /// A directory that appeared (created or moved in): crawl it, watching as we go.
    fn crawl_subtree(&mut self, dir: &Path) -> Result<(), StoreError> {
        if !self.settings.roots.iter().any(|r| dir.starts_with(r)) {
            return Ok(());
        }
        let summary = self.crawl_roots(&[dir.to_owned()])?;
        let c = &mut self.indexer.counters;
        c.added += summary.added;
        c.changed += summary.changed;
        c.deleted += summary.deleted;
        c.errors += summary.errors;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
