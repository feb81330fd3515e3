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
    // 2: hub tables. Agents leave them empty: the name index is maintained by triggers that
    // only a hub store creates (`Store::open_hub`), so crawls never pay for it.
    "CREATE TABLE merged_docs (
         id             TEXT PRIMARY KEY,
         agent_rev      INTEGER NOT NULL,
         agent_body     TEXT NOT NULL,
         hub_fields_seq INTEGER NOT NULL DEFAULT 0
     ) WITHOUT ROWID;
     CREATE TABLE name_rows (
         row     INTEGER PRIMARY KEY,
         file_id TEXT NOT NULL UNIQUE
     );
     CREATE VIRTUAL TABLE name_fts USING fts5(name, content='', contentless_delete=1, tokenize='trigram');",
    // 3: each file's mime in the projection, so a directory listing reads one table and parses
    // no document (ARCHITECTURE §3.1).
    "ALTER TABLE files ADD COLUMN mime TEXT;
     UPDATE files SET mime = (SELECT json_extract(body, '$.mime') FROM docs WHERE docs.id = files.id);",
    // 4: when the hub received each file's revision (NULL for the writer's own files and for
    // revisions received before this), so `last_write_wins` can cap far-future mtimes
    // (ARCHITECTURE §13.1) from the projection alone.
    "ALTER TABLE files ADD COLUMN received_ns INTEGER;",
];

/// Hub-only indexes (agents do not pay for them on every crawl): the pushed-inode uniqueness
/// check looks files up by inode. Idempotent.
pub(super) fn enable_hub_indexes(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE INDEX IF NOT EXISTS files_by_inode ON files(inode);")?;
    Ok(())
}

/// The triggers that keep `name_rows`/`name_fts` equal to the active rows of `files`
/// (hub stores only). A row enters on insert, and is replaced when an update changes the file
/// id or its status; the name cannot change in place (it is part of the key).
pub(super) const NAME_INDEX_TRIGGERS: &str = "
    CREATE TRIGGER name_index_insert AFTER INSERT ON files WHEN new.status = 0 BEGIN
        INSERT INTO name_rows(file_id) VALUES (new.id);
        INSERT INTO name_fts(rowid, name) VALUES (last_insert_rowid(), new.name);
    END;
    CREATE TRIGGER name_index_delete AFTER DELETE ON files WHEN old.status = 0 BEGIN
        DELETE FROM name_fts WHERE rowid = (SELECT row FROM name_rows WHERE file_id = old.id);
        DELETE FROM name_rows WHERE file_id = old.id;
    END;
    CREATE TRIGGER name_index_update AFTER UPDATE OF id, status ON files
        WHEN old.id <> new.id OR old.status <> new.status BEGIN
        DELETE FROM name_fts WHERE old.status = 0
            AND rowid = (SELECT row FROM name_rows WHERE file_id = old.id);
        DELETE FROM name_rows WHERE old.status = 0 AND file_id = old.id;
        INSERT INTO name_rows(file_id) SELECT new.id WHERE new.status = 0;
        INSERT INTO name_fts(rowid, name) SELECT last_insert_rowid(), new.name WHERE new.status = 0;
    END;
    INSERT INTO name_rows(file_id) SELECT id FROM files WHERE status = 0;
    INSERT INTO name_fts(rowid, name)
        SELECT r.row, f.name FROM name_rows r JOIN files f ON f.id = r.file_id AND f.status = 0;";

/// Creates the name-index triggers (and fills the index from `files`) once. Idempotent.
pub(super) fn enable_name_index(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let present: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'name_index_insert')",
        [],
        |r| r.get(0),
    )?;
    if !present {
        tx.execute_batch(NAME_INDEX_TRIGGERS)?;
    }
    tx.commit()?;
    Ok(())
}

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
