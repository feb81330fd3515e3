//! Tier 4 (plan §4.5–4.9, ARCHITECTURE §10.3): another node's file, fetched from its transfer
//! server through the cache. Layers point one way: the VFS calls this module; this module calls
//! the cache and the transfer client, and knows nothing of the VFS ([`RemoteError`] is its own).
//!
//! - **Small files** (below `[cache] full_file_threshold_mib`, 50 MiB by default) are fetched
//!   whole at `open`, staged in `cache/tmp/`, committed only when the digest and size match, and
//!   then read from the cache file (so the kernel may read them directly, like local files).
//! - **Large files** are read by ranges ([`block::BlockFile`]) as [`policy::Pattern`] decides:
//!   a random read fetches what it reads, page-aligned; a sequential reader's window doubles up
//!   to 16 MiB with a read-ahead in the background. Every range is verified, written into the
//!   sparse cache file and recorded in the block map. Past 1,000 intervals the entry is promoted
//!   to a full download.
//! - **Versions**: every request names the version of the file this node's document describes
//!   (the owner refuses another with 409); a handle whose file changed while it was open is
//!   [`Remote::superseded`] and serves nothing more (`ESTALE`), so a reader sees one version or
//!   an error, never a mix.
//! - **Fetches in flight are shared** per range ([`flights`]), and a whole-file fetch per file.
//! - **Bounded retries** ([`fetch`]): a few attempts within seconds, then an error with a log
//!   line naming the node and the file. A read never waits on an offline owner longer than that.
//! - **When the cache cannot hold the bytes** (over its cap even after eviction) the verified
//!   range is served from memory, uncached.
//!
//! The futures here run through `Handle::block_on` on the caller's thread (a FUSE data worker),
//! never on a runtime worker: blocking file writes inside them are fine.

mod block;
mod error;
mod fetch;
mod flights;
pub mod policy;

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::cache::store::{Cache, Hit, Source};
use crate::content::{Content, FileVersion};
use crate::doc::FileDoc;
use crate::ids::{FileId, NodeId};
use crate::store::Store;
use crate::transfer::client::Transfers;

pub use error::RemoteError;
pub use fetch::{FetchedCounts, Issued, Tokens};

/// What is being read: the file, its owner, and the version the cache and the owner must match.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub file_id: FileId,
    pub node: NodeId,
    pub path: String,
    pub version: FileVersion,
    pub src: Source,
}

impl Target {
    fn of(f: &FileDoc) -> Target {
        let version = FileVersion::of_doc(f);
        Target {
            file_id: f.id.clone(),
            node: f.source.node_id.clone(),
            path: f.source.export_path.clone(),
            version,
            src: Source {
                key: crate::cache::cache_key(&f.source.node_id, &f.source.export_path),
                file_id: f.id.clone(),
                size: version.size,
                mtime_ns: version.mtime_ns,
            },
        }
    }
}

/// Settings of remote reads.
#[derive(Clone, Copy, Debug)]
pub struct RemoteOptions {
    /// Files smaller than this are fetched whole.
    pub full_file_threshold: u64,
    /// The cache's size cap (a file larger than it is never fetched whole).
    pub cache_max_bytes: u64,
}

/// One open handle's version; set aside once its file changed.
#[derive(Debug)]
pub(crate) struct Handle {
    version: FileVersion,
    superseded: AtomicBool,
}

impl Handle {
    fn check(&self, file: &FileId) -> Result<(), RemoteError> {
        if self.superseded.load(Ordering::Acquire) {
            return Err(RemoteError::Superseded(file.clone()));
        }
        Ok(())
    }
}

/// Reads other nodes' files through the cache.
pub struct Remote {
    store: Store,
    cache: Arc<Cache>,
    fetcher: fetch::Fetcher,
    rt: tokio::runtime::Handle,
    options: RemoteOptions,
    /// Guarded: one lock per cache key, held while that file is fetched whole.
    fetching: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Ranges being fetched, per cache key.
    flights: Arc<flights::Flights>,
    /// Guarded: the open handles of each file, to set aside when the file changes.
    open: Mutex<HashMap<FileId, Vec<Weak<Handle>>>>,
}

/// Keeps a cache entry from eviction while a file is open.
pub(crate) struct Pin {
    cache: Arc<Cache>,
    key: String,
}

impl Pin {
    fn new(cache: &Arc<Cache>, key: &str) -> Pin {
        cache.pin(key);
        Pin { cache: cache.clone(), key: key.to_owned() }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.cache.unpin(&self.key);
    }
}

/// A file served from its verified full cache entry.
struct Cached {
    file: File,
    file_id: FileId,
    handle: Arc<Handle>,
    _pin: Pin,
}

impl Content for Cached {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.handle.check(&self.file_id).map_err(RemoteError::into_io)?;
        Content::read_at(&self.file, buf, offset)
    }

    fn file(&self) -> Option<&File> {
        Some(&self.file)
    }
}

/// An empty file: nothing to fetch.
struct Empty;

impl Content for Empty {
    fn read_at(&self, _buf: &mut [u8], _offset: u64) -> std::io::Result<usize> {
        Ok(0)
    }

    fn file(&self) -> Option<&File> {
        None
    }
}

impl Remote {
    /// Must be called inside a tokio runtime (whose handle the fetches use).
    pub fn new(store: Store, cache: Arc<Cache>, tokens: Arc<dyn Tokens>, options: RemoteOptions) -> Remote {
        Remote {
            fetcher: fetch::Fetcher::new(store.clone(), tokens, Transfers::new()),
            store,
            cache,
            rt: tokio::runtime::Handle::current(),
            options,
            fetching: Mutex::new(HashMap::new()),
            flights: Default::default(),
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What was fetched since the process started.
    pub fn fetched(&self) -> FetchedCounts {
        self.fetcher.fetched.snapshot()
    }

    fn key_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        // Drop locks nobody holds, so the map stays as small as the set of files being read.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_owned()).or_default().clone()
    }

    fn register(&self, t: &Target) -> Arc<Handle> {
        let handle = Arc::new(Handle { version: t.version, superseded: AtomicBool::new(false) });
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let handles = open.entry(t.file_id.clone()).or_default();
        handles.retain(|h| h.strong_count() > 0);
        handles.push(Arc::downgrade(&handle));
        handle
    }

    /// Whether any handle of `file` is open (cheap; for the follower that watches changes).
    pub fn has_open(&self, file: &FileId) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(file).is_some_and(|hs| hs.iter().any(|h| h.strong_count() > 0))
    }

    /// `file` is now at `now` (its document changed): every open handle of another version is
    /// set aside and serves nothing more. Returns how many were.
    pub fn superseded(&self, file: &FileId, now: FileVersion) -> usize {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let Some(handles) = open.get_mut(file) else { return 0 };
        handles.retain(|h| h.strong_count() > 0);
        let mut n = 0;
        for h in handles.iter().filter_map(Weak::upgrade) {
            if h.version != now && !h.superseded.swap(true, Ordering::AcqRel) {
                n += 1;
            }
        }
        if handles.is_empty() {
            open.remove(file);
        }
        n
    }

    /// Opens another node's file (blocking: a small file is fetched now).
    pub fn open(self: &Arc<Self>, f: &FileDoc) -> Result<Box<dyn Content>, RemoteError> {
        let t = Target::of(f);
        if t.src.size == 0 {
            return Ok(Box::new(Empty));
        }
        let handle = self.register(&t);
        let pin = Pin::new(&self.cache, &t.src.key);
        match self.lookup(&t)? {
            Some(Hit::Full(file)) => {
                return Ok(Box::new(Cached { file, file_id: t.file_id, handle, _pin: pin }));
            }
            Some(Hit::Block(file, map)) => {
                return Ok(Box::new(block::BlockFile::new(self.clone(), t, handle, pin, Some((file, map)))))
            }
            None => {}
        }
        let whole =
            t.src.size < self.options.full_file_threshold && t.src.size <= self.options.cache_max_bytes;
        if whole {
            if let Some(file) = self.fetch_whole(&t)? {
                return Ok(Box::new(Cached { file, file_id: t.file_id, handle, _pin: pin }));
            } // else the cache has no room: read it by ranges, uncached
        }
        Ok(Box::new(block::BlockFile::new(self.clone(), t, handle, pin, None)))
    }

    fn lookup(&self, t: &Target) -> Result<Option<Hit>, RemoteError> {
        self.cache.lookup(&t.src).map_err(|e| {
            tracing::warn!(operation = "cache", file_id = %t.file_id, error = %e, "cache unusable for this read");
            RemoteError::Cache(e)
        })
    }

    /// Fetches the whole file into the cache (once, however many open it at the same time);
    /// `None` when the cache has no room for it.
    fn fetch_whole(&self, t: &Target) -> Result<Option<File>, RemoteError> {
        let lock = self.key_lock(&t.src.key);
        let _fetching = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Hit::Full(file)) = self.lookup(t)? {
            return Ok(Some(file)); // another reader fetched it meanwhile
        }
        match self.rt.block_on(self.fetcher.whole(t, &self.cache))? {
            fetch::Whole::Cached => {}
            fetch::Whole::NoRoom => return Ok(None),
        }
        match self.lookup(t)? {
            Some(Hit::Full(file)) => Ok(Some(file)),
            // Evicted between commit and open: only possible when the cap is tiny.
            _ => Ok(None),
        }
    }
}
