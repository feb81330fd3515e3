//! `cache/index.db` (ARCHITECTURE §10): one row per cached file — its source's size and mtime
//! when cached (staleness), the bytes it occupies on disk, the last access (LRU), full or block
//! mode with the block map. Blocking API (callers use the blocking pool); it survives restarts.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use super::block_map::{BlockMap, BlockMapError};
use crate::ids::FileId;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cache index: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cache index entry {key}: {source}")]
    BlockMap { key: String, source: BlockMapError },
    #[error("cache index entry {key}: bad {field}")]
    Field { key: String, field: &'static str },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The whole file, verified, at `cache/files/..`.
    Full,
    /// A sparse file at `cache/blocks/..`; the block map says which bytes are present.
    Block,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// SHA-256 hex of `{node_id}::{export_path}` ([`super::cache_key`]).
    pub key: String,
    pub file_id: FileId,
    /// The source's size and mtime when cached: the entry is valid only while they hold.
    pub size: u64,
    pub mtime_ns: i64,
    /// Bytes allocated on disk (`st_blocks` × 512: a sparse file counts what it holds).
    pub cached_bytes: u64,
    /// Unix milliseconds.
    pub last_access: i64,
    pub mode: Mode,
    /// Block mode only.
    pub block_map: Option<BlockMap>,
}

impl Entry {
    /// Whether the entry still describes the source (same size and mtime as its document).
    pub fn is_fresh_for(&self, size: u64, mtime_ns: i64) -> bool {
        self.size == size && self.mtime_ns == mtime_ns
    }
}

/// The cache's limits (`[cache]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total `cached_bytes` at most.
    pub max_bytes: u64,
    /// Free space on the cache's volume at least.
    pub min_free_bytes: u64,
}

/// What to evict before writing `incoming` bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eviction {
    /// Keys in eviction order (least recently used first).
    pub keys: Vec<String>,
    /// Whether the limits hold once they are gone; if not, the read is served uncached.
    pub fits: bool,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS entries (
    key          TEXT PRIMARY KEY,
    file_id      TEXT NOT NULL,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    cached_bytes INTEGER NOT NULL,
    last_access  INTEGER NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('full', 'block')),
    block_map    BLOB,
    source       TEXT NOT NULL DEFAULT 'remote'
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_by_access ON entries(last_access);";

pub struct CacheIndex {
    conn: Mutex<Connection>,
}

impl CacheIndex {
    pub fn open(path: &Path) -> Result<CacheIndex, IndexError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "busy_timeout", 10_000)?;
        conn.execute_batch(SCHEMA)?;
        Ok(CacheIndex { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &str) -> Result<Option<Entry>, IndexError> {
        let row = self
            .conn()
            .query_row(
                "SELECT file_id, size, mtime_ns, cached_bytes, last_access, mode, block_map
                 FROM entries WHERE key = ?1",
                [key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, Option<Vec<u8>>>(6)?,
                    ))
                },
            )
            .optional()?;
        let Some((file_id, size, mtime_ns, cached_bytes, last_access, mode, blob)) = row else {
            return Ok(None);
        };
        let field = |field| IndexError::Field { key: key.to_owned(), field };
        let mode = match mode.as_str() {
            "full" => Mode::Full,
            "block" => Mode::Block,
            _ => return Err(field("mode")),
        };
        let block_map = blob
            .map(|b| BlockMap::from_bytes(&b))
            .transpose()
            .map_err(|source| IndexError::BlockMap { key: key.to_owned(), source })?;
        Ok(Some(Entry {
            key: key.to_owned(),
            file_id: file_id.parse().map_err(|_| field("file_id"))?,
            size: size as u64,
            mtime_ns,
            cached_bytes: cached_bytes as u64,
            last_access,
            mode,
            block_map,
        }))
    }

    /// Inserts or replaces an entry.
    pub fn put(&self, e: &Entry) -> Result<(), IndexError> {
        let mode = match e.mode {
            Mode::Full => "full",
            Mode::Block => "block",
        };
        self.conn().execute(
            "INSERT INTO entries (key, file_id, size, mtime_ns, cached_bytes, last_access, mode, block_map)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(key) DO UPDATE SET file_id = excluded.file_id, size = excluded.size,
                 mtime_ns = excluded.mtime_ns, cached_bytes = excluded.cached_bytes,
                 last_access = excluded.last_access, mode = excluded.mode, block_map = excluded.block_map",
            params![
                e.key,
                e.file_id.as_str(),
                e.size as i64,
                e.mtime_ns,
                e.cached_bytes as i64,
                e.last_access,
                mode,
                e.block_map.as_ref().map(BlockMap::to_bytes),
            ],
        )?;
        Ok(())
    }

    pub fn touch(&self, key: &str, now_ms: i64) -> Result<(), IndexError> {
        self.conn().execute("UPDATE entries SET last_access = ?2 WHERE key = ?1", params![key, now_ms])?;
        Ok(())
    }

    pub fn remove(&self, key: &str) -> Result<(), IndexError> {
        self.conn().execute("DELETE FROM entries WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Total bytes the cache occupies on disk.
    /// Keys of the entries in `mode`.
    pub fn keys_in_mode(&self, mode: Mode) -> Result<Vec<String>, IndexError> {
        let conn = self.conn();
        let mut st = conn.prepare("SELECT key FROM entries WHERE mode = ?1")?;
        let name = match mode {
            Mode::Full => "full",
            Mode::Block => "block",
        };
        let keys = st.query_map([name], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
        Ok(keys)
    }

    /// Entries, and their bytes on disk.
    pub fn usage(&self) -> Result<(u64, u64), IndexError> {
        let (n, bytes): (i64, i64) = self.conn().query_row(
            "SELECT COUNT(*), COALESCE(SUM(cached_bytes), 0) FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((n as u64, bytes as u64))
    }

    pub fn total_bytes(&self) -> Result<u64, IndexError> {
        let total: i64 =
            self.conn().query_row("SELECT COALESCE(SUM(cached_bytes), 0) FROM entries", [], |r| r.get(0))?;
        Ok(total as u64)
    }

    /// Which entries to evict, least recently used first, so that `incoming` more bytes keep the
    /// total under `limits.max_bytes` and the volume's free space (`free_now`) at or above
    /// `limits.min_free_bytes`. Entries in `pinned` (open files) are never chosen.
    pub fn plan_eviction(
        &self,
        incoming: u64,
        limits: Limits,
        free_now: u64,
        pinned: &HashSet<String>,
    ) -> Result<Eviction, IndexError> {
        let mut total = self.total_bytes()?;
        let mut free = free_now;
        let fits = |total: u64, free: u64| {
            total.saturating_add(incoming) <= limits.max_bytes
                && free.saturating_sub(incoming) >= limits.min_free_bytes
                && free >= incoming
        };
        let mut keys = Vec::new();
        if fits(total, free) {
            return Ok(Eviction { keys, fits: true });
        }
        let conn = self.conn();
        let mut st =
            conn.prepare_cached("SELECT key, cached_bytes FROM entries ORDER BY last_access, key")?;
        let mut rows = st.query([])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            if pinned.contains(&key) {
                continue;
            }
            let bytes = row.get::<_, i64>(1)? as u64;
            total = total.saturating_sub(bytes);
            free = free.saturating_add(bytes);
            keys.push(key);
            if fits(total, free) {
                return Ok(Eviction { keys, fits: true });
            }
        }
        Ok(Eviction { keys, fits: false })
    }
}

/// Bytes a file occupies on disk (`st_blocks` × 512): what a sparse file really holds.
pub fn allocated_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)?.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, bytes: u64, last_access: i64) -> Entry {
        Entry {
            key: key.into(),
            file_id: FileId::generate(),
            size: bytes,
            mtime_ns: 1_700_000_000_000_000_000,
            cached_bytes: bytes,
            last_access,
            mode: Mode::Full,
            block_map: None,
        }
    }

    #[test]
    fn entries_round_trip_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.db");
        let index = CacheIndex::open(&path).unwrap();
        let mut block = entry("b", 4 << 20, 5);
        block.mode = Mode::Block;
        let mut map = BlockMap::new();
        map.insert(0, 1 << 20);
        map.insert(3 << 20, 4 << 20);
        block.block_map = Some(map);
        index.put(&block).unwrap();
        index.put(&entry("f", 100, 7)).unwrap();
        index.touch("b", 9).unwrap();
        drop(index);

        let index = CacheIndex::open(&path).unwrap();
        let got = index.get("b").unwrap().unwrap();
        assert_eq!(got, Entry { last_access: 9, ..block.clone() });
        assert!(got.is_fresh_for(4 << 20, block.mtime_ns));
        assert!(!got.is_fresh_for(4 << 20, block.mtime_ns + 1), "mtime changed: stale");
        assert!(!got.is_fresh_for(5, block.mtime_ns), "size changed: stale");
        assert_eq!(index.total_bytes().unwrap(), (4 << 20) + 100);
        index.remove("f").unwrap();
        assert!(index.get("f").unwrap().is_none());
    }

    #[test]
    fn a_corrupt_block_map_is_an_error_not_presence() {
        let dir = tempfile::tempdir().unwrap();
        let index = CacheIndex::open(&dir.path().join("index.db")).unwrap();
        index.put(&entry("x", 10, 1)).unwrap();
        index.conn().execute("UPDATE entries SET mode = 'block', block_map = x'0102'", []).unwrap();
        assert!(matches!(index.get("x"), Err(IndexError::BlockMap { .. })));
    }

    #[test]
    fn eviction_takes_the_least_recently_used_and_never_an_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let index = CacheIndex::open(&dir.path().join("index.db")).unwrap();
        for (key, at) in [("old", 1), ("open", 2), ("mid", 3), ("new", 4)] {
            index.put(&entry(key, 100, at)).unwrap();
        }
        let limits = Limits { max_bytes: 400, min_free_bytes: 0 };
        let pinned: HashSet<String> = ["open".to_string()].into();
        let plenty = u64::MAX / 2;
        // 400 cached, cap 400: room for nothing more without evicting.
        assert_eq!(
            index.plan_eviction(0, limits, plenty, &pinned).unwrap(),
            Eviction { keys: vec![], fits: true }
        );
        let e = index.plan_eviction(150, limits, plenty, &pinned).unwrap();
        assert_eq!(e, Eviction { keys: vec!["old".into(), "mid".into()], fits: true }, "open skipped");
        // More than everything evictable: what can go, and a no.
        let e = index.plan_eviction(350, limits, plenty, &pinned).unwrap();
        assert_eq!(e, Eviction { keys: vec!["old".into(), "mid".into(), "new".into()], fits: false });
        // The free-space floor decides even under the cap.
        let roomy = Limits { max_bytes: 10_000, min_free_bytes: 1_000 };
        let e = index.plan_eviction(100, roomy, 1_050, &pinned).unwrap();
        assert_eq!(e, Eviction { keys: vec!["old".into()], fits: true });
    }

    #[test]
    fn allocated_bytes_count_what_a_sparse_file_holds() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut f = std::fs::File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        f.seek(SeekFrom::Start(32 << 20)).unwrap();
        f.write_all(&[7u8; 1 << 20]).unwrap();
        f.sync_all().unwrap();
        let allocated = allocated_bytes(&path).unwrap();
        assert!((1 << 20..8 << 20).contains(&allocated), "64 MiB apparent, ~1 MiB held: {allocated}");
    }
}
