//! The cache directory (ARCHITECTURE §10): verified bytes in, valid bytes out.
//!
//! - `files/ab/KEY`: whole files. A download is staged in `tmp/` while its SHA-256 is computed,
//!   and renamed into place only when the digest and the size match; otherwise it is deleted and
//!   nothing is recorded.
//! - `blocks/ab/KEY`: sparse files of block-mode entries. A range is written only after its
//!   digest matched; its block map is updated in the same index write. When the map covers the
//!   whole file the entry becomes a full one.
//! - Before anything is written, room is made under the size cap and above the free-space floor
//!   by evicting the least recently used entries, never one that is open ([`Cache::pin`]); bytes
//!   are counted as allocated on disk, so sparse files count what they hold. If room cannot be
//!   made the write is refused ([`CacheError::NoRoom`]) and the caller serves the read uncached.
//! - A lookup checks the entry against the file document's size and mtime; a stale entry is
//!   removed with its file.
//! - The index and the files survive restarts; leftovers in `tmp/` are removed at open.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::block_map::BlockMap;
use super::index::{allocated_bytes, CacheIndex, Entry, IndexError, Limits, Mode};
use crate::ids::FileId;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("cache: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not what the sender said: discarded, nothing cached.
    #[error("digest mismatch for {key}: discarded")]
    DigestMismatch { key: String },
    #[error("size mismatch for {key}: expected {expected} bytes, got {got}: discarded")]
    SizeMismatch { key: String, expected: u64, got: u64 },
    #[error("range [{start}, {end}) is outside the file ({size} bytes)")]
    OutOfRange { start: u64, end: u64, size: u64 },
    /// The limits cannot hold these bytes even after evicting everything not in use.
    #[error("no room in the cache for {bytes} bytes")]
    NoRoom { bytes: u64 },
}

/// What a cache entry is of: the file and the version of it (size and mtime of its document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub key: super::CacheKey,
    pub file_id: FileId,
    pub size: u64,
    pub mtime_ns: i64,
}

/// A valid entry found for reading.
#[derive(Debug)]
pub enum Hit {
    Full(File),
    /// The sparse file and which of its bytes are present.
    Block(File, BlockMap),
}

/// A download being staged in `tmp/`, hashed as it is written.
pub struct Staged {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    len: u64,
}

impl Write for Staged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Committed files were renamed away; anything else is discarded.
        let _ = std::fs::remove_file(&self.path);
    }
}

pub struct Cache {
    root: PathBuf,
    index: CacheIndex,
    limits: Limits,
    /// Open readers per key: never evicted while above zero.
    pinned: Mutex<HashMap<String, usize>>,
    /// Serializes writes, so room made for one write is not taken by another; lookups hold it
    /// too, so the file a lookup opens is the one its index entry describes (versions of a file
    /// share one path: a write of another version replaces the file between reading the entry
    /// and opening the path otherwise, and a reader would get one version's map over another's
    /// bytes).
    writes: Mutex<()>,
}

/// Present while no agent uses the cache, after a clean shutdown.
const CLEAN_MARKER: &str = "clean";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Cache {
    /// Opens (creating) the cache at `root`; removes leftovers of interrupted downloads, and
    /// the block-mode entries unless the last run ended with [`Cache::mark_clean`] (their ranges
    /// are not synced one by one, so after a crash a map may name bytes the disk lost).
    pub fn open(root: &Path, limits: Limits) -> Result<Cache, CacheError> {
        for sub in ["files", "blocks", "tmp"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        for leftover in std::fs::read_dir(root.join("tmp"))?.flatten() {
            let _ = std::fs::remove_file(leftover.path());
        }
        let index = CacheIndex::open(&root.join("index.db"))?;
        let cache = Cache {
            root: root.to_owned(),
            index,
            limits,
            pinned: Mutex::new(HashMap::new()),
            writes: Mutex::new(()),
        };
        let clean = root.join(CLEAN_MARKER);
        if clean.exists() {
            std::fs::remove_file(&clean)?;
        } else {
            let dropped = cache.drop_block_entries()?;
            if dropped > 0 {
                tracing::info!(
                    operation = "cache.open",
                    dropped,
                    "partial entries dropped after an unclean shutdown"
                );
            }
        }
        Ok(cache)
    }

    /// Records a clean shutdown: every range written is in the page cache or on disk, so the
    /// block maps can be trusted at the next open. Syncs the block files first.
    pub fn mark_clean(&self) -> Result<(), CacheError> {
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        for dir in std::fs::read_dir(self.root.join("blocks"))?.flatten() {
            for f in std::fs::read_dir(dir.path())?.flatten() {
                if let Ok(file) = File::open(f.path()) {
                    file.sync_data()?;
                }
            }
        }
        File::create(self.root.join(CLEAN_MARKER))?.sync_all()?;
        Ok(())
    }

    fn drop_block_entries(&self) -> Result<usize, CacheError> {
        let keys = self.index.keys_in_mode(Mode::Block)?;
        for key in &keys {
            if let Some(entry) = self.index.get(key)? {
                self.remove(&entry)?;
            }
        }
        Ok(keys.len())
    }

    pub fn index(&self) -> &CacheIndex {
        &self.index
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn path(&self, mode: Mode, key: &str) -> PathBuf {
        let dir = match mode {
            Mode::Full => "files",
            Mode::Block => "blocks",
        };
        self.root.join(dir).join(&key[..2.min(key.len())]).join(key)
    }

    /// Keeps `key` from eviction until the matching [`Cache::unpin`] (an open file).
    pub fn pin(&self, key: &str) {
        *self.pinned.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_owned()).or_default() += 1;
    }

    pub fn unpin(&self, key: &str) {
        let mut pinned = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = pinned.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                pinned.remove(key);
            }
        }
    }

    fn pinned_keys(&self) -> HashSet<String> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// A valid entry of `src` (same size and mtime), marked as just used; a stale one is removed.
    pub fn lookup(&self, src: &Source) -> Result<Option<Hit>, CacheError> {
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = self.index.get(&src.key)? else { return Ok(None) };
        if !entry.is_fresh_for(src.size, src.mtime_ns) {
            self.remove(&entry)?;
            return Ok(None);
        }
        let file = match File::open(self.path(entry.mode, &entry.key)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // The index outlived its file (removed by hand): forget it.
                self.index.remove(&entry.key)?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        self.index.touch(&entry.key, now_ms())?;
        Ok(Some(match (entry.mode, entry.block_map) {
            (Mode::Block, Some(map)) => Hit::Block(file, map),
            (Mode::Block, None) => Hit::Block(file, BlockMap::new()),
            (Mode::Full, _) => Hit::Full(file),
        }))
    }

    fn remove(&self, entry: &Entry) -> Result<(), CacheError> {
        match std::fs::remove_file(self.path(entry.mode, &entry.key)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.index.remove(&entry.key)?;
        Ok(())
    }

    /// Evicts until `incoming` more bytes fit, or says there is no room.
    fn make_room(&self, incoming: u64) -> Result<(), CacheError> {
        let free = crate::host::disk_space(&self.root).map_or(u64::MAX, |s| s.available_bytes);
        let plan = self.index.plan_eviction(incoming, self.limits, free, &self.pinned_keys())?;
        if !plan.fits {
            return Err(CacheError::NoRoom { bytes: incoming });
        }
        for key in plan.keys {
            if let Some(entry) = self.index.get(&key)? {
                tracing::debug!(operation = "cache.evict", key, bytes = entry.cached_bytes, "evicted");
                self.remove(&entry)?;
            }
        }
        Ok(())
    }

    /// Starts staging a full download.
    pub fn stage(&self) -> Result<Staged, CacheError> {
        let path = self.root.join("tmp").join(format!("dl-{}", uuid::Uuid::new_v4().as_simple()));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        Ok(Staged { file, path, hasher: Sha256::new(), len: 0 })
    }

    /// Verifies a staged download against `sha256` and the document's size, then makes it the
    /// full entry of `src`. On any mismatch the bytes are deleted and nothing is recorded.
    pub fn commit_full(&self, staged: Staged, src: &Source, sha256: &[u8; 32]) -> Result<(), CacheError> {
        let mut staged = staged;
        staged.file.flush()?;
        let digest: [u8; 32] = std::mem::take(&mut staged.hasher).finalize().into();
        if digest != *sha256 {
            return Err(CacheError::DigestMismatch { key: src.key.to_string() });
        }
        if staged.len != src.size {
            return Err(CacheError::SizeMismatch {
                key: src.key.to_string(),
                expected: src.size,
                got: staged.len,
            });
        }
        staged.file.sync_all()?;
        let bytes = allocated_bytes(&staged.path)?;
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = self.index.get(&src.key)? {
            self.remove(&old)?;
        }
        self.make_room(bytes)?;
        let dest = self.path(Mode::Full, &src.key);
        std::fs::create_dir_all(dest.parent().unwrap_or(&self.root))?;
        std::fs::rename(&staged.path, &dest)?;
        self.index.put(&Entry {
            key: src.key.to_string(),
            file_id: src.file_id.clone(),
            size: src.size,
            mtime_ns: src.mtime_ns,
            cached_bytes: bytes,
            last_access: now_ms(),
            mode: Mode::Full,
            block_map: None,
        })?;
        Ok(())
    }

    /// Writes one range of a block-mode entry after checking `sha256` of `bytes`; the block map
    /// records it in the same index write. Returns whether the entry became complete (full).
    pub fn write_range(
        &self,
        src: &Source,
        offset: u64,
        bytes: &[u8],
        sha256: &[u8; 32],
    ) -> Result<bool, CacheError> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if digest != *sha256 {
            return Err(CacheError::DigestMismatch { key: src.key.to_string() });
        }
        self.store_range(src, offset, bytes)
    }

    /// [`Cache::write_range`] of bytes the transfer client already verified against their
    /// digest as they arrived (no second hash).
    pub fn write_verified_range(
        &self,
        src: &Source,
        offset: u64,
        range: &crate::transfer::client::Verified,
    ) -> Result<bool, CacheError> {
        self.store_range(src, offset, range.bytes())
    }

    /// Writes verified bytes into the sparse file and records them. The data is not synced per
    /// range (that would halve sequential throughput): the block maps are trusted only after a
    /// clean shutdown ([`Cache::mark_clean`]); after any other, block entries are dropped at open.
    fn store_range(&self, src: &Source, offset: u64, bytes: &[u8]) -> Result<bool, CacheError> {
        let end = offset + bytes.len() as u64;
        if end > src.size {
            return Err(CacheError::OutOfRange { start: offset, end, size: src.size });
        }
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let mut map = match self.index.get(&src.key)? {
            Some(e) if e.mode == Mode::Block && e.is_fresh_for(src.size, src.mtime_ns) => {
                e.block_map.unwrap_or_default()
            }
            Some(e) if e.mode == Mode::Full && e.is_fresh_for(src.size, src.mtime_ns) => return Ok(true),
            Some(stale) => {
                self.remove(&stale)?;
                BlockMap::new()
            }
            None => BlockMap::new(),
        };
        let path = self.path(Mode::Block, &src.key);
        let before = allocated_bytes(&path).unwrap_or(0);
        // Pinned while written, so making room never evicts the entry being filled.
        self.pin(&src.key);
        let room = self.make_room(bytes.len() as u64);
        self.unpin(&src.key);
        room?;
        std::fs::create_dir_all(path.parent().unwrap_or(&self.root))?;
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
        if file.metadata()?.len() != src.size {
            file.set_len(src.size)?;
        }
        std::os::unix::fs::FileExt::write_all_at(&file, bytes, offset)?;
        map.insert(offset, end);
        let cached_bytes = allocated_bytes(&path)?.max(before);
        let complete = map.is_complete(src.size);
        let entry = Entry {
            key: src.key.to_string(),
            file_id: src.file_id.clone(),
            size: src.size,
            mtime_ns: src.mtime_ns,
            cached_bytes,
            last_access: now_ms(),
            mode: if complete { Mode::Full } else { Mode::Block },
            block_map: (!complete).then_some(map),
        };
        if complete {
            file.sync_data()?; // a full entry survives any crash
            let dest = self.path(Mode::Full, &src.key);
            std::fs::create_dir_all(dest.parent().unwrap_or(&self.root))?;
            std::fs::rename(&path, &dest)?;
        }
        self.index.put(&entry)?;
        Ok(complete)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::cache::block_map::BLOCK;

    fn source(name: &str, size: u64) -> Source {
        Source {
            key: crate::cache::cache_key(&"node-nas".parse().unwrap(), name),
            file_id: FileId::generate(),
            size,
            mtime_ns: 1_700_000_000_123_456_789,
        }
    }

    fn sha(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    fn stage(cache: &Cache, bytes: &[u8]) -> Staged {
        let mut s = cache.stage().unwrap();
        s.write_all(bytes).unwrap();
        s
    }

    fn read_hit(hit: Hit) -> Vec<u8> {
        let (Hit::Full(mut f) | Hit::Block(mut f, _)) = hit;
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        out
    }

    fn big() -> Limits {
        Limits { max_bytes: 1 << 40, min_free_bytes: 0 }
    }

    fn tmp_is_empty(root: &Path) -> bool {
        std::fs::read_dir(root.join("tmp")).unwrap().next().is_none()
    }

    #[test]
    fn a_verified_download_is_cached_and_a_bad_one_never_is() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), big()).unwrap();
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let src = source("/a.bin", bytes.len() as u64);

        // One flipped byte: refused, nothing recorded, nothing left behind.
        let mut flipped = bytes.clone();
        flipped[500] ^= 1;
        let e = cache.commit_full(stage(&cache, &flipped), &src, &sha(&bytes)).unwrap_err();
        assert!(matches!(e, CacheError::DigestMismatch { .. }), "{e}");
        assert!(cache.lookup(&src).unwrap().is_none());
        assert!(tmp_is_empty(dir.path()));
        // A short download with the right digest of what was sent: refused for its size.
        let e = cache.commit_full(stage(&cache, &bytes[..10]), &src, &sha(&bytes[..10])).unwrap_err();
        assert!(matches!(e, CacheError::SizeMismatch { .. }), "{e}");

        cache.commit_full(stage(&cache, &bytes), &src, &sha(&bytes)).unwrap();
        assert_eq!(read_hit(cache.lookup(&src).unwrap().unwrap()), bytes);
        assert!(tmp_is_empty(dir.path()));

        // The source changed (another mtime): the entry is stale and goes.
        let newer = Source { mtime_ns: src.mtime_ns + 1, ..src.clone() };
        assert!(cache.lookup(&newer).unwrap().is_none());
        assert!(cache.lookup(&src).unwrap().is_none(), "removed, not just skipped");
        assert_eq!(cache.index().total_bytes().unwrap(), 0);
    }

    #[test]
    fn the_cache_and_its_index_survive_a_restart_and_tmp_is_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let src = source("/keep.bin", 5);
        {
            let cache = Cache::open(dir.path(), big()).unwrap();
            cache.commit_full(stage(&cache, b"hello"), &src, &sha(b"hello")).unwrap();
            let interrupted = stage(&cache, b"half");
            std::mem::forget(interrupted); // a crash mid-download leaves its staging file
        }
        assert!(!tmp_is_empty(dir.path()));
        let cache = Cache::open(dir.path(), big()).unwrap();
        assert!(tmp_is_empty(dir.path()), "leftovers removed at open");
        assert_eq!(read_hit(cache.lookup(&src).unwrap().unwrap()), b"hello");
    }

    #[test]
    fn partial_entries_survive_a_clean_shutdown_only() {
        let dir = tempfile::tempdir().unwrap();
        let (src, part) = (source("/big.bin", 4 * BLOCK), vec![7u8; BLOCK as usize]);
        let whole = source("/small.bin", 5);
        {
            let cache = Cache::open(dir.path(), big()).unwrap();
            cache.write_range(&src, BLOCK, &part, &sha(&part)).unwrap();
            cache.commit_full(stage(&cache, b"hello"), &whole, &sha(b"hello")).unwrap();
            cache.mark_clean().unwrap();
        }
        let cache = Cache::open(dir.path(), big()).unwrap();
        let Some(Hit::Block(_, map)) = cache.lookup(&src).unwrap() else { panic!("kept after a clean stop") };
        assert_eq!(map.intervals(), [(BLOCK, 2 * BLOCK)]);
        drop(cache); // no mark_clean: as after a crash
        let cache = Cache::open(dir.path(), big()).unwrap();
        assert!(cache.lookup(&src).unwrap().is_none(), "a partial entry is not trusted after a crash");
        assert_eq!(
            read_hit(cache.lookup(&whole).unwrap().unwrap()),
            b"hello",
            "full entries are synced: kept"
        );
    }

    #[test]
    fn eviction_keeps_the_cache_under_its_cap_and_spares_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let cap = 3 * (1 << 20) + 64 * 1024; // three 1 MiB files and change
        let cache = Cache::open(dir.path(), Limits { max_bytes: cap, min_free_bytes: 0 }).unwrap();
        let mib = vec![7u8; 1 << 20];
        let sources: Vec<Source> = (0..9).map(|i| source(&format!("/f{i}"), mib.len() as u64)).collect();
        cache.pin(&sources[0].key); // an open file
        for (i, src) in sources.iter().enumerate() {
            cache.commit_full(stage(&cache, &mib), src, &sha(&mib)).unwrap();
            assert!(cache.index().total_bytes().unwrap() <= cap, "after {i}: under the cap");
            std::thread::sleep(std::time::Duration::from_millis(2)); // distinct access times
        }
        assert!(cache.lookup(&sources[0]).unwrap().is_some(), "the open file was never evicted");
        assert!(cache.lookup(&sources[8]).unwrap().is_some(), "the newest is there");
        assert!(cache.lookup(&sources[1]).unwrap().is_none(), "the least recently used went");
        // Everything else pinned too: no room, and the read would be served uncached.
        for s in &sources {
            cache.pin(&s.key);
        }
        let extra = source("/extra", mib.len() as u64);
        let e = cache.commit_full(stage(&cache, &mib), &extra, &sha(&mib)).unwrap_err();
        assert!(matches!(e, CacheError::NoRoom { .. }), "{e}");
        assert!(tmp_is_empty(dir.path()));
    }

    #[test]
    fn block_mode_writes_verified_ranges_into_a_sparse_file_until_it_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path(), big()).unwrap();
        let size = 8 * BLOCK;
        let src = source("/film.mp4", size);
        let block = |i: u64| vec![i as u8 + 1; BLOCK as usize];

        assert!(!cache.write_range(&src, 6 * BLOCK, &block(6), &sha(&block(6))).unwrap());
        let mut bad = block(2);
        bad[9] ^= 0xff;
        let e = cache.write_range(&src, 2 * BLOCK, &bad, &sha(&block(2))).unwrap_err();
        assert!(matches!(e, CacheError::DigestMismatch { .. }), "{e}");
        let e = cache.write_range(&src, 8 * BLOCK, &block(0), &sha(&block(0))).unwrap_err();
        assert!(matches!(e, CacheError::OutOfRange { .. }), "{e}");
        assert!(!cache.write_range(&src, 7 * BLOCK, &block(7), &sha(&block(7))).unwrap());

        let Some(Hit::Block(file, map)) = cache.lookup(&src).unwrap() else { panic!("a block entry") };
        assert_eq!(map.intervals(), [(6 * BLOCK, 8 * BLOCK)], "adjacent ranges merged; the bad one absent");
        let mut buf = vec![0u8; 16];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 7 * BLOCK).unwrap();
        assert_eq!(buf, vec![8u8; 16]);
        let entry = cache.index().get(&src.key).unwrap().unwrap();
        assert!(
            entry.cached_bytes >= 2 * BLOCK && entry.cached_bytes < 4 * BLOCK,
            "a sparse file counts what it holds: {}",
            entry.cached_bytes
        );

        for i in 0..6 {
            let done = cache.write_range(&src, i * BLOCK, &block(i), &sha(&block(i))).unwrap();
            assert_eq!(done, i == 5);
        }
        let Some(Hit::Full(mut f)) = cache.lookup(&src).unwrap() else { panic!("promoted to full") };
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, size);
        assert!((0..8).all(|i| all[(i * BLOCK) as usize] == i as u8 + 1));
    }

    #[test]
    fn block_writes_respect_the_cap_too() {
        let dir = tempfile::tempdir().unwrap();
        let cap = 2 * BLOCK + 64 * 1024;
        let cache = Cache::open(dir.path(), Limits { max_bytes: cap, min_free_bytes: 0 }).unwrap();
        let old = source("/old.bin", BLOCK);
        let data = vec![1u8; BLOCK as usize];
        cache.commit_full(stage(&cache, &data), &old, &sha(&data)).unwrap();
        let film = source("/film.mkv", 100 * BLOCK); // 100 MiB apparent, sparse
        for i in [10, 50] {
            cache.write_range(&film, i * BLOCK, &data, &sha(&data)).unwrap();
            assert!(cache.index().total_bytes().unwrap() <= cap);
        }
        assert!(cache.lookup(&old).unwrap().is_none(), "evicted to make room");
        let e = cache.write_range(&film, 70 * BLOCK, &data, &sha(&data)).unwrap_err();
        assert!(
            matches!(e, CacheError::NoRoom { .. }),
            "the entry being filled is not evicted for itself: {e}"
        );
    }
}
