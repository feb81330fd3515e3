//! The crawler: walks every watch path and reconciles the store with what is on disk.
//!
//! Policy (docs/ARCHITECTURE.md, "Crawler"):
//! - One directory at a time: list it (one `fstatat` per regular file), diff its files against
//!   the store's rows for that directory in one query, then descend into its subdirectories.
//! - Unchanged files — same (export_path, size, mtime) — are skipped without a write.
//! - Symlinks are never followed, so the crawl can neither loop nor leave a watch path.
//! - Unreadable directories, non-UTF-8 names and files that vanish mid-crawl are logged and
//!   counted; an unreadable directory keeps its files as they were (a permission glitch or an
//!   unplugged drive must not mark a whole tree deleted).
//! - Directories that vanished entirely are found at the end by comparing the directories
//!   visited with the store's distinct parent directories under the watch path.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::GlobSet;

use crate::doc::CrawlSummary;
use crate::indexer::{list_dir, DirListing, Indexer, Listed};
use crate::store::StoreError;

pub struct CrawlOptions {
    pub progress_interval: Duration,
    /// Entries whose path relative to their watch path matches are not indexed.
    pub exclude: GlobSet,
    /// Lower this thread's CPU and I/O priority for the crawl.
    pub low_priority: bool,
    /// Directories never indexed wherever they are (absolute): the agent's data directory and
    /// the mount point, so the agent never indexes its own store or the tree it serves.
    pub skip_dirs: Vec<PathBuf>,
}

impl CrawlOptions {
    pub fn new(exclude: &[String], progress_interval: Duration) -> Result<CrawlOptions, globset::Error> {
        let mut b = globset::GlobSetBuilder::new();
        for g in exclude {
            b.add(globset::Glob::new(g)?);
        }
        Ok(CrawlOptions { progress_interval, exclude: b.build()?, low_priority: true, skip_dirs: vec![] })
    }

    /// These options, never entering `dirs` (see [`CrawlOptions::skip_dirs`]).
    pub fn skipping(mut self, dirs: impl IntoIterator<Item = PathBuf>) -> CrawlOptions {
        self.skip_dirs.extend(dirs);
        self
    }

    /// Whether `path` is one of the skipped directories or below one.
    pub fn skips(&self, path: &Path) -> bool {
        self.skip_dirs.iter().any(|d| path.starts_with(d))
    }
}

/// Called by the crawl for every directory it is about to list (the watcher adds its watch
/// there, before the listing, so no change in between is missed).
pub trait CrawlObserver {
    fn before_dir(&mut self, _dir: &Path) {}
    /// Asked between directories; `true` abandons the crawl (shutdown).
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that does nothing.
pub struct NoObserver;
impl CrawlObserver for NoObserver {}

/// Crawls every root and returns the summary, which is also logged.
pub fn crawl(
    indexer: &mut Indexer,
    roots: &[PathBuf],
    opts: &CrawlOptions,
    observer: &mut (dyn CrawlObserver + Send),
) -> Result<CrawlSummary, StoreError> {
    let _priority = opts.low_priority.then(priority::lower);
    let started = Instant::now();
    indexer.flush()?;
    let before = indexer.take_counters();
    let mut progress = Progress::new(opts.progress_interval);
    for root in roots {
        if observer.should_stop() {
            break;
        }
        crawl_root(indexer, root, opts, observer, &mut progress)?;
    }
    indexer.flush()?;
    let mut summary = std::mem::replace(&mut indexer.counters, before);
    summary.duration_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        operation = "crawl",
        node_id = %indexer.node(),
        seen = summary.seen,
        added = summary.added,
        changed = summary.changed,
        deleted = summary.deleted,
        skipped = summary.skipped,
        symlinks = summary.symlinks,
        errors = summary.errors,
        dirs = summary.dirs,
        duration_ms = summary.duration_ms,
        files_per_sec = rate(summary.seen, started.elapsed()),
        "crawl finished"
    );
    Ok(summary)
}

/// Reconciles one directory alone, without descending (periodic crawl of unwatched directories).
pub fn crawl_dir_shallow(indexer: &mut Indexer, dir: &Path) -> Result<(), StoreError> {
    let Some(dir_str) = dir.to_str() else {
        return Ok(());
    };
    match list_dir(dir) {
        Listed::Ok(listing) => indexer.reconcile_dir(dir_str, &listing.files)?,
        Listed::Missing => indexer.mark_deleted_at(dir_str)?,
        Listed::Unreadable(e) => tracing::warn!(dir = dir_str, error = %e, "cannot read directory"),
    }
    indexer.flush()
}

/// What the walker thread found in one directory.
enum Walked {
    Listed { dir: String, listing: DirListing },
    Missing { dir: String },
    Unreadable { dir: String, error: std::io::Error },
}

/// Directories in flight between the walker and the indexer.
const WALK_QUEUE: usize = 64;

/// Walks one watch path. Two threads: the walker lists directories (syscalls) while this
/// thread diffs and writes (SQLite), so the walk hides behind the write path.
fn crawl_root(
    indexer: &mut Indexer,
    root: &Path,
    opts: &CrawlOptions,
    observer: &mut (dyn CrawlObserver + Send),
    progress: &mut Progress,
) -> Result<(), StoreError> {
    let Some(root_str) = root.to_str().map(str::to_owned) else {
        indexer.counters.errors += 1;
        tracing::error!(path = %root.display(), "watch path is not valid UTF-8; skipped");
        return Ok(());
    };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            indexer.counters.errors += 1;
            tracing::error!(
                path = root_str,
                "watch path is not a directory; its indexed files are kept as they were"
            );
            return Ok(());
        }
        Err(e) => {
            indexer.counters.errors += 1;
            tracing::error!(path = root_str, error = %e, "watch path is not accessible; its indexed files are kept as they were");
            return Ok(());
        }
    }

    let mut visited: HashSet<String> = HashSet::new();
    let mut stopped = false;
    std::thread::scope(|scope| -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Walked>(WALK_QUEUE);
        let walker_root = root_str.clone();
        let low_priority = opts.low_priority;
        let exclude = &opts.exclude;
        let skip = &opts.skip_dirs;
        let observer = &mut *observer;
        let walker = scope.spawn(move || {
            let _priority = low_priority.then(priority::lower);
            walk(&walker_root, exclude, skip, observer, &tx)
        });
        for walked in rx {
            match walked {
                Walked::Listed { dir, listing } => {
                    indexer.counters.dirs += 1;
                    indexer.counters.symlinks += listing.symlinks;
                    indexer.counters.errors += listing.errors;
                    indexer.reconcile_dir(&dir, &listing.files)?;
                    visited.insert(dir);
                    progress.tick(indexer.counters.seen);
                }
                Walked::Missing { dir } => {
                    indexer.counters.errors += 1;
                    tracing::debug!(dir, "directory vanished during the crawl");
                    // not visited: the sweep below marks its files deleted
                }
                Walked::Unreadable { dir, error } => {
                    indexer.counters.errors += 1;
                    tracing::warn!(dir, error = %error, "cannot read directory; its indexed files are kept");
                    visited.insert(dir);
                }
            }
        }
        stopped = walker.join().unwrap_or(true);
        Ok(())
    })?;
    indexer.flush()?;
    if stopped {
        return Ok(()); // an interrupted walk proves nothing about what vanished
    }

    // Directories the store knows under this root that were not visited have vanished (or are
    // excluded now): their files are marked deleted.
    for parent in indexer.store().parents_under(indexer.node(), &root_str)? {
        if !visited.contains(&parent) {
            indexer.mark_dir_deleted(&parent)?;
        }
    }
    Ok(())
}

/// The walker thread: depth-first, children in name order. Returns `true` if it was stopped.
fn walk(
    root: &str,
    exclude: &GlobSet,
    skip: &[PathBuf],
    observer: &mut (dyn CrawlObserver + Send),
    tx: &std::sync::mpsc::SyncSender<Walked>,
) -> bool {
    let mut stack: Vec<String> = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        if observer.should_stop() {
            return true;
        }
        observer.before_dir(Path::new(&dir));
        let walked = match list_dir(Path::new(&dir)) {
            Listed::Ok(mut listing) => {
                let excluded = |name: &str| {
                    let full = crate::indexer::join(&dir, name);
                    exclude.is_match(full.strip_prefix(root).unwrap_or(&full).trim_start_matches('/'))
                };
                if !exclude.is_empty() {
                    listing.files.retain(|(n, _)| !excluded(n));
                    listing.subdirs.retain(|n| !excluded(n));
                }
                if !skip.is_empty() {
                    listing.subdirs.retain(|n| {
                        let full = PathBuf::from(crate::indexer::join(&dir, n));
                        !skip.iter().any(|d| full.starts_with(d))
                    });
                }
                for sub in listing.subdirs.iter().rev() {
                    stack.push(crate::indexer::join(&dir, sub));
                }
                Walked::Listed { dir, listing }
            }
            Listed::Missing => Walked::Missing { dir },
            Listed::Unreadable(error) => Walked::Unreadable { dir, error },
        };
        if tx.send(walked).is_err() {
            return true; // the indexer gave up (store error)
        }
    }
    false
}

struct Progress {
    interval: Duration,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(interval: Duration) -> Progress {
        let now = Instant::now();
        Progress { interval, started: now, last: now }
    }

    fn tick(&mut self, seen: u64) {
        if self.last.elapsed() >= self.interval {
            self.last = Instant::now();
            tracing::info!(
                operation = "crawl",
                seen,
                files_per_sec = rate(seen, self.started.elapsed()),
                "crawl progress"
            );
        }
    }
}

fn rate(n: u64, d: Duration) -> u64 {
    (n as f64 / d.as_secs_f64().max(1e-6)) as u64
}

/// Lowers the calling thread's CPU (nice 10) and I/O (best-effort, lowest level) priority, and
/// restores them when the guard drops. Best effort: failures are ignored.
mod priority {
    pub struct Guard {
        #[cfg(target_os = "linux")]
        nice: libc::c_int,
    }

    #[cfg(target_os = "linux")]
    pub fn lower() -> Guard {
        // SAFETY: plain syscalls on the calling thread's id; no memory is passed.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
            libc::setpriority(libc::PRIO_PROCESS, tid, (nice + 10).min(19));
            // ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7))
            const IOPRIO_CLASS_BE: libc::c_long = 2;
            libc::syscall(
                libc::SYS_ioprio_set,
                1 as libc::c_long,
                tid as libc::c_long,
                (IOPRIO_CLASS_BE << 13) | 7,
            );
            Guard { nice }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn lower() -> Guard {
        Guard {}
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            #[cfg(target_os = "linux")]
            // SAFETY: as above. Raising priority back may fail without privileges; that is fine.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, self.nice);
                libc::syscall(
                    libc::SYS_ioprio_set,
                    1 as libc::c_long,
                    tid as libc::c_long,
                    0 as libc::c_long,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
