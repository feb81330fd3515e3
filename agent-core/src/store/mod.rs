//! The embedded document store: one SQLite file per node (rusqlite, bundled SQLite, WAL).
//!
//! - Tables, indexes and the write path are documented in docs/ARCHITECTURE.md ("Agent store").
//! - The API is blocking. Async code calls it through [`Store::run`], which moves the call to
//!   tokio's blocking pool: no SQLite call ever runs on an async worker thread.
//! - One writer connection behind a mutex (SQLite has one writer anyway; the mutex makes the
//!   in-memory sequence counter exact) and a small pool of reader connections, which WAL lets
//!   run beside the writer.
//! - Every write takes the next sequence number; a document keeps only its latest, so the
//!   changes feed returns each changed document once.

mod admission;
mod apply;
mod outbox;
pub(crate) mod query;
mod schema;
mod search;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

pub use apply::{Applied, PullStats, PULL_CHECKPOINT};
pub use outbox::{EpochSeen, HUB_EPOCH, PUSH_CHECKPOINT};
pub use query::{Change, FileEntry, ListedFile, RawDoc, StoreStats};
pub use schema::CURRENT_VERSION;
pub use search::{NameHits, NameQuery};
pub use write::{PutError, Written};

use crate::ids::{NodeId, Rev, Seq};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("document JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot open store {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error("the store was written by a newer MosaicFS (schema {found}, this build knows {known})")]
    NewerSchema { found: u32, known: u32 },
    #[error("the store belongs to node {found}, not {expected}")]
    WrongNode { found: String, expected: NodeId },
    #[error(transparent)]
    Put(#[from] PutError),
    #[error("store task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// The conflict behind a failed `put`, if that is what happened.
    pub fn as_conflict(&self) -> Option<(Rev, Rev)> {
        match self {
            StoreError::Put(PutError::Conflict { stored, given, .. }) => Some((*stored, *given)),
            _ => None,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle to the store. Cheap to clone; all clones share the same connections.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` for an in-memory store (reads then go through the writer connection).
    path: Option<PathBuf>,
    /// Guarded: the writer connection and the next sequence number it hands out.
    writer: Mutex<Writer>,
    /// Idle reader connections. Never held while `writer` is locked by the same thread.
    readers: Mutex<Vec<Connection>>,
    /// A hub store: the trigram name index is maintained and searches use it.
    name_index: bool,
    /// The last committed sequence number, readable without the writer lock (long-polls).
    committed: std::sync::atomic::AtomicU64,
    /// A hub store's epoch (`meta.hub_epoch`, drawn when the store is created): sent with every
    /// push and changes answer so agents notice a hub restored from a backup.
    hub_epoch: Option<crate::wire::HubEpoch>,
}

struct Writer {
    conn: Connection,
    next_seq: u64,
}

const MAX_IDLE_READERS: usize = 4;

/// Page cache of the writer connection. 64 MiB did not make a replica's cold start measurably
/// faster but tripled a crawl's peak RSS (bench/RESULTS.md, issue 4), so it stays at 16 MiB.
const WRITER_CACHE_KIB: i64 = 16 * 1024;

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store at `path` and applies pending migrations.
    pub fn open(path: &Path) -> Result<Store> {
        Self::open_with(path, false)
    }

    /// Opens a hub store: like [`Store::open`], plus the trigram index on file names that
    /// `search_names` uses (filled from the existing files on first use, then kept by triggers).
    pub fn open_hub(path: &Path) -> Result<Store> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, hub: bool) -> Result<Store> {
        // The database (and so its WAL and SHM files) is 0600 whatever the umask; missing
        // directories are made 0700 (ARCHITECTURE §6.6).
        crate::private_files::prepare_sqlite(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(e.to_string()),
            ),
        })?;
        let mut conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        configure(&conn, WRITER_CACHE_KIB)
            .map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        // Bulk writes: checkpoint less often (pages rewritten within a window are copied once).
        conn.pragma_update(None, "wal_autocheckpoint", 32768)?;
        schema::migrate(&mut conn)?;
        if hub {
            schema::enable_name_index(&mut conn)?;
            schema::enable_hub_indexes(&mut conn)?;
        }
        Self::with_writer(Some(path.to_owned()), conn, hub)
    }

    /// A private in-memory store, for tests.
    pub fn open_in_memory() -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        schema::migrate(&mut conn)?;
        Self::with_writer(None, conn, false)
    }

    /// A private in-memory hub store (with the name index), for tests.
    pub fn open_hub_in_memory() -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        schema::migrate(&mut conn)?;
        schema::enable_name_index(&mut conn)?;
        Self::with_writer(None, conn, true)
    }

    fn with_writer(path: Option<PathBuf>, conn: Connection, name_index: bool) -> Result<Store> {
        let hub_epoch = if name_index {
            conn.execute(
                "INSERT INTO meta(key, value) VALUES ('hub_epoch', ?1) ON CONFLICT(key) DO NOTHING",
                [crate::wire::HubEpoch::generate().0],
            )?;
            let epoch: String =
                conn.query_row("SELECT value FROM meta WHERE key = 'hub_epoch'", [], |r| r.get(0))?;
            Some(crate::wire::HubEpoch(epoch))
        } else {
            None
        };
        let last: Option<i64> = conn.query_row("SELECT MAX(seq) FROM docs", [], |r| r.get(0))?;
        let last = last.unwrap_or(0) as u64;
        let writer = Writer { conn, next_seq: last + 1 };
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                hub_epoch,
                name_index,
                committed: std::sync::atomic::AtomicU64::new(last),
            }),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Runs blocking store work on tokio's blocking pool and awaits it.
    pub async fn run<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Store) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store)).await.map_err(|e| StoreError::Task(e.to_string()))?
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave SQLite half-written (the transaction rolls
        // back on drop), so a poisoned lock is still safe to use.
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with a reader connection (the writer's, for in-memory stores).
    fn read<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let Some(path) = &self.inner.path else {
            return f(&self.writer().conn);
        };
        let pooled = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.pragma_update(None, "busy_timeout", 10_000)?;
                c.pragma_update(None, "cache_size", -4096)?;
                c
            }
        };
        let out = f(&conn);
        let mut idle = self.inner.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        out
    }

    /// The node this store belongs to, recorded on first use. A store never changes owner.
    pub fn ensure_node_id(&self, node: &NodeId) -> Result<()> {
        match self.meta_get("node_id")? {
            Some(found) if found != node.as_str() => {
                Err(StoreError::WrongNode { found, expected: node.clone() })
            }
            Some(_) => Ok(()),
            None => {
                self.meta_set("created_at", &crate::doc::now().to_rfc3339())?;
                self.meta_set("node_id", node.as_str())
            }
        }
    }

    /// Draws a new epoch for the hub store at `path` (closed): what a restore from a backup does,
    /// so that agents push everything again and pull the whole feed (ARCHITECTURE §5.8).
    pub fn renew_hub_epoch(path: &Path) -> Result<crate::wire::HubEpoch> {
        let epoch = crate::wire::HubEpoch::generate();
        let conn =
            Connection::open(path).map_err(|source| StoreError::Open { path: path.to_owned(), source })?;
        conn.execute(
            "INSERT INTO meta(key, value) VALUES ('hub_epoch', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [&epoch.0],
        )?;
        Ok(epoch)
    }

    /// A hub store's epoch (`None` for an agent store).
    pub fn hub_epoch(&self) -> Option<&crate::wire::HubEpoch> {
        self.inner.hub_epoch.as_ref()
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        use rusqlite::OptionalExtension;
        self.read(|c| {
            Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
        })
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.writer().conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Every `meta` entry whose key starts with `prefix`, in key order.
    pub fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let hi = format!("{prefix}\u{10ffff}");
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT key, value FROM meta WHERE key >= ?1 AND key < ?2 ORDER BY key")?;
            let rows = st.query_map([prefix, hi.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub fn meta_delete(&self, key: &str) -> Result<()> {
        self.writer().conn.execute("DELETE FROM meta WHERE key = ?1", [key])?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: `Ok` when SQLite reports `ok`, else the problems it lists.
    pub fn integrity_check(&self) -> Result<Result<(), String>> {
        let w = self.writer();
        let mut st = w.conn.prepare("PRAGMA integrity_check")?;
        let rows: Vec<String> = st.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        Ok(if rows == ["ok"] { Ok(()) } else { Err(rows.join("; ")) })
    }

    /// Checkpoints the WAL into the main file and closes every connection.
    pub fn close(self) -> Result<()> {
        let w = self.writer();
        if self.inner.path.is_some() {
            w.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA optimize;")?;
        }
        self.inner.readers.lock().unwrap_or_else(|p| p.into_inner()).clear();
        // The writer connection itself closes when the last clone of the handle drops.
        Ok(())
    }

    /// The last sequence number written (0 for an empty store).
    pub fn last_seq(&self) -> Seq {
        Seq(self.writer().next_seq - 1)
    }

    /// The last committed sequence number, without waiting for a write in progress: cheap
    /// enough to poll from async code (long-polls wait for it to move).
    pub fn committed_seq(&self) -> Seq {
        Seq(self.inner.committed.load(std::sync::atomic::Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests;
