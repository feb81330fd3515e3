//! Reconciles the store with the disk: the one place that turns what `stat` says into file
//! documents. The crawler (whole trees) and the watcher (single paths, renames) both drive it, on
//! one indexing thread, so a file document has exactly one local writer.
//!
//! Writes are buffered and committed `batch_size` documents per transaction.

mod listing;

use std::path::Path;
use std::time::{Instant, SystemTime};

pub use listing::{list_dir, DirListing, Listed};

use crate::doc::{self, CrawlSummary, Document, FileDoc, FileSource, FileStatus, Timestamp};
use crate::ids::{FileId, Inode, NodeId, Rev};
use crate::store::{FileEntry, Store, StoreError};

/// What `stat` says about one regular file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileStat {
    pub fn from_metadata(m: &std::fs::Metadata) -> FileStat {
        let mtime_ns = match m.modified() {
            Ok(t) => match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
            },
            Err(_) => 0,
        };
        FileStat { size: m.len(), mtime_ns }
    }

    fn mtime(&self) -> Timestamp {
        chrono::DateTime::from_timestamp_nanos(self.mtime_ns)
    }
}

/// Counters for one unit of indexing work (a crawl, or a batch of watcher events).
pub type Counters = CrawlSummary;

pub struct Indexer {
    store: Store,
    node: NodeId,
    batch_size: usize,
    pending: Vec<Document>,
    pub counters: Counters,
}

impl Indexer {
    pub fn new(store: Store, node: NodeId, batch_size: usize) -> Indexer {
        Indexer {
            store,
            node,
            batch_size: batch_size.max(1),
            pending: Vec::new(),
            counters: Counters::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Takes the counters accumulated so far, leaving zeros.
    pub fn take_counters(&mut self) -> Counters {
        std::mem::take(&mut self.counters)
    }

    /// Diffs one directory's regular files against the store's rows for that directory.
    /// `files` must hold every regular file of the directory (the listing is authoritative).
    pub fn reconcile_dir(&mut self, dir: &str, files: &[(String, FileStat)]) -> Result<(), StoreError> {
        let existing = self.store.file_entries_in_dir(&self.node, dir)?;
        let mut by_name: std::collections::HashMap<&str, &FileEntry> =
            existing.iter().map(|e| (e.name.as_str(), e)).collect();
        for (name, stat) in files {
            self.counters.seen += 1;
            match by_name.remove(name.as_str()) {
                Some(e)
                    if e.status == FileStatus::Active
                        && e.size == stat.size
                        && e.mtime_ns == stat.mtime_ns =>
                {
                    self.counters.skipped += 1;
                }
                Some(e) => self.update_existing(e, &join(dir, name), stat)?,
                None => self.add_new(&join(dir, name), stat),
            }
            self.maybe_flush()?;
        }
        for gone in by_name.into_values().filter(|e| e.status == FileStatus::Active) {
            self.mark_deleted(gone)?;
            self.maybe_flush()?;
        }
        Ok(())
    }

    /// Re-checks one path after a change event: indexes a file, marks what vanished deleted,
    /// and says what the path is (a directory is for the caller to crawl). Reads see only
    /// flushed writes: re-check a path at most once between flushes.
    pub fn reconcile_path(&mut self, path: &Path) -> Result<PathKind, StoreError> {
        let Some(path_str) = path.to_str() else {
            self.counters.errors += 1;
            tracing::warn!(path = %path.display(), "skipping a path that is not valid UTF-8");
            return Ok(PathKind::Other);
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() => {
                let stat = FileStat::from_metadata(&m);
                self.counters.seen += 1;
                match self.store.file_by_path(&self.node, path_str)? {
                    Some(f)
                        if f.status == FileStatus::Active
                            && f.size == stat.size
                            && store_mtime_ns(&f) == stat.mtime_ns =>
                    {
                        self.counters.skipped += 1
                    }
                    Some(f) => self.update_doc(f, path_str, &stat),
                    None => self.add_new(path_str, &stat),
                }
                self.maybe_flush()?;
                Ok(PathKind::File)
            }
            Ok(m) if m.is_dir() => Ok(PathKind::Dir),
            Ok(m) if m.file_type().is_symlink() => {
                self.counters.symlinks += 1;
                self.mark_deleted_at(path_str)?;
                Ok(PathKind::Other)
            }
            Ok(_) => Ok(PathKind::Other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.mark_deleted_at(path_str)?;
                Ok(PathKind::Missing)
            }
            Err(e) => {
                self.counters.errors += 1;
                tracing::warn!(path = path_str, error = %e, "cannot stat");
                Ok(PathKind::Other)
            }
        }
    }

    /// A path vanished: the file there, or every file below it if it was a directory, is
    /// marked deleted.
    pub fn mark_deleted_at(&mut self, path: &str) -> Result<(), StoreError> {
        self.flush()?;
        if let Some(f) = self.store.file_by_path(&self.node, path)? {
            if f.status == FileStatus::Active {
                self.push_deleted(f);
            }
        }
        for e in self.store.file_entries_under(&self.node, path)? {
            if e.status == FileStatus::Active {
                self.mark_deleted(&e)?;
                self.maybe_flush()?;
            }
        }
        Ok(())
    }

    /// Every active file directly in `dir` is marked deleted (the directory is gone).
    pub fn mark_dir_deleted(&mut self, dir: &str) -> Result<(), StoreError> {
        for e in self.store.file_entries_in_dir(&self.node, dir)? {
            if e.status == FileStatus::Active {
                self.mark_deleted(&e)?;
                self.maybe_flush()?;
            }
        }
        Ok(())
    }

    /// A rename observed by the watcher: the documents at `from` (a file, or every file below a
    /// directory) move to `to`, keeping their ids and inodes. Returns how many moved.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<u64, StoreError> {
        self.flush()?;
        let mut moved = 0;
        if let Some(f) = self.store.file_by_path(&self.node, from)? {
            self.move_doc(f, to)?;
            moved += 1;
        }
        for e in self.store.file_entries_under(&self.node, from)? {
            if let Some(Document::File(f)) = self.store.get(&e.id.clone().into())? {
                let new_path = format!("{to}{}", &e.export_path[from.len()..]);
                self.move_doc(f, &new_path)?;
                moved += 1;
            }
            self.maybe_flush()?;
        }
        self.flush()?;
        Ok(moved)
    }

    fn move_doc(&mut self, mut f: FileDoc, to: &str) -> Result<(), StoreError> {
        let Some(source) = FileSource::new(self.node.clone(), to) else {
            return Ok(());
        };
        // A file replaced by the rename keeps its document, marked deleted; the store hands its
        // path over to the moved file.
        if let Some(old) = self.store.file_by_path(&self.node, to)? {
            if old.id != f.id && old.status == FileStatus::Active {
                self.push_deleted(old);
            }
        }
        f.name = source.name().to_owned();
        f.source = source;
        self.counters.changed += 1;
        self.pending.push(f.into());
        Ok(())
    }

    fn add_new(&mut self, path: &str, stat: &FileStat) {
        let Some(source) = FileSource::new(self.node.clone(), path) else {
            self.counters.errors += 1;
            tracing::warn!(path, "skipping a path that is not a normalized absolute path");
            return;
        };
        let now = doc::now();
        let name = source.name().to_owned();
        let mime = mime_guess::from_path(&name).first_raw().map(str::to_owned);
        self.counters.added += 1;
        self.pending.push(Document::File(FileDoc {
            id: FileId::generate(),
            rev: Rev::NONE,
            name,
            source,
            size: stat.size,
            mtime: stat.mtime(),
            mime,
            inode: Inode::generate(),
            status: FileStatus::Active,
            first_seen: now,
            deleted_at: None,
            received_at: None,
        }));
    }

    fn update_existing(&mut self, e: &FileEntry, path: &str, stat: &FileStat) -> Result<(), StoreError> {
        match self.store.get(&e.id.clone().into())? {
            Some(Document::File(f)) => self.update_doc(f, path, stat),
            _ => self.add_new(path, stat),
        }
        Ok(())
    }

    /// Same document (id, inode, first_seen), new size/mtime; a deleted file becomes active again.
    fn update_doc(&mut self, mut f: FileDoc, path: &str, stat: &FileStat) {
        if f.status == FileStatus::Deleted {
            self.counters.added += 1;
        } else {
            self.counters.changed += 1;
        }
        f.size = stat.size;
        f.mtime = stat.mtime();
        f.status = FileStatus::Active;
        f.deleted_at = None;
        debug_assert_eq!(f.source.export_path, path);
        self.pending.push(f.into());
    }

    fn mark_deleted(&mut self, e: &FileEntry) -> Result<(), StoreError> {
        if let Some(Document::File(f)) = self.store.get(&e.id.clone().into())? {
            self.push_deleted(f);
        }
        Ok(())
    }

    fn push_deleted(&mut self, mut f: FileDoc) {
        f.status = FileStatus::Deleted;
        f.deleted_at = Some(doc::now());
        self.counters.deleted += 1;
        self.pending.push(f.into());
    }

    fn maybe_flush(&mut self) -> Result<(), StoreError> {
        if self.pending.len() >= self.batch_size {
            self.flush()?;
        }
        Ok(())
    }

    /// Commits buffered documents in one transaction. A document the store refuses is logged
    /// and counted; the rest of the batch is written.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let n = batch.len();
        let started = Instant::now();
        let results = self.store.put_many(batch)?;
        for r in results {
            if let Err(e) = r {
                self.counters.errors += 1;
                tracing::warn!(operation = "index.write", error = %e, "document not written");
            }
        }
        tracing::trace!(
            operation = "index.flush",
            docs = n,
            duration_ms = started.elapsed().as_millis() as u64
        );
        Ok(())
    }
}

/// What a re-checked path turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    File,
    Dir,
    Missing,
    Other,
}

fn store_mtime_ns(f: &FileDoc) -> i64 {
    f.mtime.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub use crate::doc::join_path as join;
