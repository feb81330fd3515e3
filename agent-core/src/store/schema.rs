//! Numbered migrations, tracked in `PRAGMA user_version`. Migration `i` (1-based) upgrades a
//! database from version `i - 1` to `i`; each runs in one transaction with its version bump.
//! Never edit a migration that has shipped: add a new one.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: documents, the file projection (clustered by directory), store metadata.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
     CREATE TABLE docs (
         id      TEXT PRIMARY KEY,
         type    TEXT NOT NULL,
         rev     INTEGER NOT NULL,
         seq     INTEGER NOT NULL,
         deleted INTEGER NOT NULL DEFAULT 0,
         origin  INTEGER NOT NULL DEFAULT 0,
         body    TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE UNIQUE INDEX docs_by_seq ON docs(seq);
     CREATE INDEX docs_by_type ON docs(type, id) WHERE type <> 'file';
     CREATE TABLE files (
         node_id       TEXT NOT NULL,
         export_parent TEXT NOT NULL,
         name          TEXT NOT NULL,
         id            TEXT NOT NULL,
         size          INTEGER NOT NULL,
         mtime_ns      INTEGER NOT NULL,
         inode         INTEGER NOT NULL,
         status        INTEGER NOT NULL,
         rev           INTEGER NOT NULL,
         PRIMARY KEY (node_id, export_parent, name)
     ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const CURRENT_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`CURRENT_VERSION`]. Refuses a database from a newer build.
/// Each step reads the version inside an immediate (write-locked) transaction, so two
/// processes opening a fresh file at once cannot both apply the same migration.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > CURRENT_VERSION {
            return Err(StoreError::NewerSchema { found, known: CURRENT_VERSION });
        }
        let Some(sql) = MIGRATIONS.get(found as usize) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", found + 1)?;
        tx.commit()?;
        tracing::debug!(version = found + 1, "store migration applied");
    }
}
