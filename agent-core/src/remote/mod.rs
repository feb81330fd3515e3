//! Tier 4 (plan §4.5–4.9, ARCHITECTURE §10): another node's file, fetched from its transfer
//! server through the cache.
//!
//! - **Small files** (below `[cache] full_file_threshold_mib`, 50 MiB by default) are fetched
//!   whole at `open`, staged in `cache/tmp/`, committed only when the digest and size match, and
//!   then read from the cache file (so the kernel may read them directly, like local files).
//! - **Large files** are read by ranges ([`block::BlockFile`]): a miss fetches the missing part
//!   around the read — 256 KiB for a random read, a window that doubles up to 16 MiB while the
//!   reads are sequential — verifies it, writes it into the sparse cache file and records it in
//!   the block map. Past 1,000 intervals the entry is promoted to a full download.
//! - **One fetch at a time per file**: readers of the same file wait on its lock and then find
//!   the bytes present, so concurrent readers of the same missing data share one request.
//! - **Bounded retries** ([`fetch`]): a few attempts within seconds (a new token after a 401,
//!   the owner's endpoint re-read from its node document), then EIO with a log line naming the
//!   node and the file. A read never waits on an offline owner for longer than that.
//! - **When the cache cannot hold the bytes** (over its cap even after eviction) the verified
//!   range is served from memory, uncached.
//!
//! The futures here run through `Handle::block_on` on the caller's thread (a FUSE data worker),
//! never on a runtime worker: blocking file writes inside them are fine.

mod block;
mod fetch;
mod flights;

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex};

use crate::cache::store::{Cache, CacheError, Hit, Source};
use crate::doc::FileDoc;
use crate::ids::FileId;
use crate::store::Store;
use crate::transfer::client::Transfers;
use crate::vfs::{Content, VfsError};

pub use fetch::Tokens;

/// What is being read: the file, its owner, and the version the cache must match.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub file_id: FileId,
    pub node: crate::ids::NodeId,
    pub path: String,
    pub src: Source,
}

impl Target {
    fn of(f: &FileDoc) -> Target {
        Target {
            file_id: f.id.clone(),
            node: f.source.node_id.clone(),
            path: f.source.export_path.clone(),
            src: Source {
                key: crate::cache::cache_key(&f.source.node_id, &f.source.export_path),
                file_id: f.id.clone(),
                size: f.size,
                mtime_ns: f.mtime.timestamp_nanos_opt().unwrap_or(i64::MAX),
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

/// Reads other nodes' files through the cache.
pub struct Remote {
    store: Store,
    cache: Arc<Cache>,
    fetcher: fetch::Fetcher,
    rt: tokio::runtime::Handle,
    options: RemoteOptions,
    /// One lock per cache key: held while that file is fetched whole.
    fetching: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Ranges being fetched, per cache key.
    flights: Arc<flights::Flights>,
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
    _pin: Pin,
}

impl Content for Cached {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
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
        }
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn key_lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        // Drop locks nobody holds, so the map stays as small as the set of files being read.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_owned()).or_default().clone()
    }

    /// Opens another node's file (blocking: a small file is fetched now).
    pub fn open(self: &Arc<Self>, f: &FileDoc) -> Result<Box<dyn Content>, VfsError> {
        let t = Target::of(f);
        if t.src.size == 0 {
            return Ok(Box::new(Empty));
        }
        let pin = Pin::new(&self.cache, &t.src.key);
        match self.lookup(&t)? {
            Some(Hit::Full(file)) => return Ok(Box::new(Cached { file, _pin: pin })),
            Some(Hit::Block(file, map)) => {
                return Ok(Box::new(block::BlockFile::new(self.clone(), t, pin, Some((file, map)))))
            }
            None => {}
        }
        let whole =
            t.src.size < self.options.full_file_threshold && t.src.size <= self.options.cache_max_bytes;
        if whole {
            match self.fetch_whole(&t) {
                Ok(file) => return Ok(Box::new(Cached { file, _pin: pin })),
                Err(FetchWhole::NoRoom) => {} // read it by ranges, uncached
                Err(FetchWhole::Failed(e)) => return Err(e),
            }
        }
        Ok(Box::new(block::BlockFile::new(self.clone(), t, pin, None)))
    }

    fn lookup(&self, t: &Target) -> Result<Option<Hit>, VfsError> {
        self.cache.lookup(&t.src).map_err(|e| cache_error(t, e))
    }

    /// Fetches the whole file into the cache (once, however many open it at the same time).
    fn fetch_whole(&self, t: &Target) -> Result<File, FetchWhole> {
        let lock = self.key_lock(&t.src.key);
        let _fetching = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Hit::Full(file)) = self.lookup(t).map_err(FetchWhole::Failed)? {
            return Ok(file); // another reader fetched it meanwhile
        }
        match self.rt.block_on(self.fetcher.whole(t, &self.cache)) {
            Ok(()) => {}
            Err(fetch::WholeError::NoRoom) => return Err(FetchWhole::NoRoom),
            Err(fetch::WholeError::Failed(e)) => return Err(FetchWhole::Failed(e)),
        }
        match self.lookup(t).map_err(FetchWhole::Failed)? {
            Some(Hit::Full(file)) => Ok(file),
            // Evicted between commit and open: only possible when the cap is tiny.
            _ => Err(FetchWhole::NoRoom),
        }
    }
}

enum FetchWhole {
    NoRoom,
    Failed(VfsError),
}

fn cache_error(t: &Target, e: CacheError) -> VfsError {
    tracing::warn!(operation = "cache", file_id = %t.file_id, error = %e, "cache unusable for this read");
    VfsError::Io(std::io::Error::other(e.to_string()))
}
