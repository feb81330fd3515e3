//! Reads: documents by id, the changes feed, file lookups by path and directory, name search,
//! statistics.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{Result, Store};
use crate::doc::{DocType, Document, FileDoc, FileStatus};
use crate::ids::{DocId, FileId, Inode, NodeId, Rev, Seq};

/// A stored document as the store keeps it: metadata plus the JSON body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RawDoc {
    pub id: DocId,
    pub rev: Rev,
    pub seq: Seq,
    pub deleted: bool,
    pub body: String,
}

/// One entry of the changes feed: the latest state of a document changed after a given seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub seq: Seq,
    pub id: DocId,
    pub rev: Rev,
    pub deleted: bool,
    pub body: String,
}

/// A row of the `files` projection: what the crawler compares against the disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    pub id: FileId,
    pub export_path: String,
    pub name: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: Inode,
    pub status: FileStatus,
    pub rev: Rev,
}

/// An active file as listings see it (its `files` row).
#[derive(Clone, Debug, PartialEq)]
pub struct ListedFile {
    pub id: FileId,
    pub node_id: NodeId,
    pub export_path: String,
    pub name: String,
    pub size: u64,
    pub mtime: chrono::DateTime<chrono::Utc>,
    pub mime: Option<String>,
    pub inode: Inode,
    /// When the hub received this revision (see `FileDoc::received_at`).
    pub received_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ListedFile {
    /// What `last_write_wins` orders by: `min(mtime, received_at + 5 min)`.
    pub fn ordering_time(&self) -> chrono::DateTime<chrono::Utc> {
        crate::doc::ordering_time(self.mtime, self.received_at)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Live (not tombstoned) documents per type.
    pub docs_by_type: Vec<(String, u64)>,
    pub files_active: u64,
    pub files_deleted: u64,
    pub bytes_active: u64,
    pub nodes_with_files: u64,
    pub last_seq: u64,
    pub schema_version: u32,
}

pub(super) fn parse_id<T: std::str::FromStr>(s: String, col: usize) -> rusqlite::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse::<T>()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e)))
}

fn file_status(v: i64) -> FileStatus {
    if v == 0 {
        FileStatus::Active
    } else {
        FileStatus::Deleted
    }
}

/// The SQL of the indexed queries, in one place so a test can check each one's query plan.
pub(super) mod sql {
    macro_rules! entry_columns {
        () => {
            "id, export_parent, name, size, mtime_ns, inode, status, rev"
        };
    }
    /// Rows whose parent is `?2` or lies below it (`?3` = `dir/`, `?4` = `dir0`): one range
    /// scan of the primary key from `dir` to `dir0`, skipping siblings such as `dir-x`.
    macro_rules! under {
        () => {
            "node_id = ?1 AND export_parent >= ?2 AND export_parent < ?4 AND (export_parent = ?2 OR export_parent >= ?3)"
        };
    }
    pub const LIST_TYPE: &str =
        "SELECT body FROM docs WHERE type = ?1 AND type <> 'file' AND deleted = 0 ORDER BY id";
    pub const ID_PREFIX_ASC: &str =
        "SELECT body FROM docs WHERE id >= ?1 AND id < ?2 AND deleted = 0 ORDER BY id LIMIT ?3";
    pub const ID_PREFIX_DESC: &str =
        "SELECT body FROM docs WHERE id >= ?1 AND id < ?2 AND deleted = 0 ORDER BY id DESC LIMIT ?3";
    /// This node's own documents (origin 0) changed after a seq: the push outbox.
    pub const OUTBOX: &str =
        "SELECT seq, id, rev, deleted, body FROM docs WHERE seq > ?1 AND seq <= ?3 AND origin = 0 ORDER BY seq LIMIT ?2";
    pub const CHANGES_OF_TYPE_SINCE: &str =
        "SELECT seq, id, rev, deleted, body FROM docs WHERE seq > ?1 AND type = ?2 ORDER BY seq LIMIT ?3";
    pub const CHANGES_SINCE: &str =
        "SELECT seq, id, rev, deleted, body FROM docs WHERE seq > ?1 ORDER BY seq LIMIT ?2";
    pub const FILE_AT: &str = "SELECT id FROM files WHERE node_id = ?1 AND export_parent = ?2 AND name = ?3";
    pub const ENTRIES_IN_DIR: &str = concat!(
        "SELECT ",
        entry_columns!(),
        " FROM files WHERE node_id = ?1 AND export_parent = ?2 ORDER BY name"
    );
    pub const ENTRIES_UNDER: &str =
        concat!("SELECT ", entry_columns!(), " FROM files WHERE ", under!(), " ORDER BY export_parent, name");
    /// What a listing needs, from the `files` projection alone (no document is parsed).
    macro_rules! listed_columns {
        () => {
            "id, export_parent, name, size, mtime_ns, inode, mime, received_ns FROM files WHERE "
        };
    }
    pub const FILES_IN_DIR: &str = concat!(
        "SELECT ",
        listed_columns!(),
        "node_id = ?1 AND export_parent = ?2 AND status = 0 ORDER BY name"
    );
    pub const FILES_UNDER: &str =
        concat!("SELECT ", listed_columns!(), under!(), " AND status = 0 ORDER BY export_parent, name");
    /// Keyset pagination over every node's files in primary-key order.
    pub const FILES_PAGE: &str = "SELECT id, node_id, export_parent, name FROM files
        WHERE status = 0 AND (node_id, export_parent, name) > (?1, ?2, ?3)
        ORDER BY node_id, export_parent, name LIMIT ?4";
    pub const COUNT_UNDER: &str =
        concat!("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files WHERE ", under!(), " AND status = 0");
    pub const PARENTS_UNDER: &str = concat!("SELECT DISTINCT export_parent FROM files WHERE ", under!());
    pub const ACTIVE_PARENTS_UNDER: &str =
        concat!("SELECT DISTINCT export_parent FROM files WHERE ", under!(), " AND status = 0");
}

/// A `seq, id, rev, deleted, body` row (the changes feed and the outbox).
fn change_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Change> {
    Ok(Change {
        seq: Seq(r.get::<_, i64>(0)? as u64),
        id: parse_id(r.get(1)?, 1)?,
        rev: Rev(r.get::<_, i64>(2)? as u64),
        deleted: r.get(3)?,
        body: r.get(4)?,
    })
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileEntry> {
    Ok(FileEntry {
        id: parse_id(r.get(0)?, 0)?,
        export_path: crate::doc::join_path(&r.get::<_, String>(1)?, &r.get::<_, String>(2)?),
        name: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        mtime_ns: r.get(4)?,
        inode: Inode(r.get::<_, i64>(5)? as u64),
        status: file_status(r.get(6)?),
        rev: Rev(r.get::<_, i64>(7)? as u64),
    })
}

/// The upper bound of the paths strictly below directory `dir` (`/` sorts just before `0`).
/// Parameters `?2..?4` of the `under!` condition for directory `dir`: the directory itself,
/// and the range of parents strictly below it (`/` sorts just before `0`).
fn under_params(dir: &str) -> [String; 3] {
    let base = dir.trim_end_matches('/');
    let exact = if base.is_empty() { "/".to_owned() } else { base.to_owned() };
    [exact, format!("{base}/"), format!("{base}0")]
}

fn listed_row(node: &NodeId, r: &rusqlite::Row<'_>) -> rusqlite::Result<ListedFile> {
    let name: String = r.get(2)?;
    Ok(ListedFile {
        id: parse_id(r.get(0)?, 0)?,
        node_id: node.clone(),
        export_path: crate::doc::join_path(&r.get::<_, String>(1)?, &name),
        name,
        size: r.get::<_, i64>(3)? as u64,
        mtime: chrono::DateTime::from_timestamp_nanos(r.get(4)?),
        inode: Inode(r.get::<_, i64>(5)? as u64),
        mime: r.get(6)?,
        received_at: r.get::<_, Option<i64>>(7)?.map(chrono::DateTime::from_timestamp_nanos),
    })
}

pub(super) fn bodies_of_files(
    conn: &Connection,
    ids: impl IntoIterator<Item = String>,
) -> Result<Vec<FileDoc>> {
    let mut st = conn.prepare_cached("SELECT body FROM docs WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in ids {
        let body: Option<String> = st.query_row([&id], |r| r.get(0)).optional()?;
        if let Some(body) = body {
            if let Document::File(f) = serde_json::from_str(&body)? {
                out.push(f);
            }
        }
    }
    Ok(out)
}

impl Store {
    /// The raw stored form of a document, tombstones included.
    pub fn get_raw(&self, id: &DocId) -> Result<Option<RawDoc>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT rev, seq, deleted, body FROM docs WHERE id = ?1")?
                .query_row([id.as_str()], |r| {
                    Ok(RawDoc {
                        id: id.clone(),
                        rev: Rev(r.get::<_, i64>(0)? as u64),
                        seq: Seq(r.get::<_, i64>(1)? as u64),
                        deleted: r.get(2)?,
                        body: r.get(3)?,
                    })
                })
                .optional()?)
        })
    }

    /// A live document (`None` when absent or tombstoned).
    pub fn get(&self, id: &DocId) -> Result<Option<Document>> {
        match self.get_raw(id)? {
            Some(raw) if !raw.deleted => Ok(Some(serde_json::from_str(&raw.body)?)),
            _ => Ok(None),
        }
    }

    /// Live documents of one type other than `file` (files: use the file queries).
    pub fn list_type(&self, doc_type: DocType) -> Result<Vec<Document>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::LIST_TYPE)?;
            let bodies: Vec<String> =
                st.query_map([doc_type.as_str()], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            bodies.iter().map(|b| Ok(serde_json::from_str(b)?)).collect()
        })
    }

    /// Live documents whose id starts with `prefix` (for example `utilization::{node}::`), in
    /// id order (`descending`: reversed), at most `limit`; ascending lists start after the id
    /// `after`. One range scan of the key.
    pub fn list_id_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        descending: bool,
    ) -> Result<Vec<Document>> {
        let hi = format!("{prefix}\u{10ffff}");
        let lo = match after {
            Some(a) if !descending && a >= prefix => format!("{a}\u{0}"),
            _ => prefix.to_owned(),
        };
        let sql = if descending { sql::ID_PREFIX_DESC } else { sql::ID_PREFIX_ASC };
        self.read(|c| {
            let mut st = c.prepare_cached(sql)?;
            let bodies: Vec<String> = st
                .query_map(params![lo, hi, limit as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            bodies.iter().map(|b| Ok(serde_json::from_str(b)?)).collect()
        })
    }

    /// The push outbox: documents this node wrote (origin 0) after `after` (its push
    /// checkpoint), in local sequence order, at most `limit`; each in its latest form.
    pub fn outbox(&self, after: Seq, limit: usize) -> Result<Vec<Change>> {
        Ok(self.outbox_batch(after, limit)?.0)
    }

    /// [`Store::outbox`], and the seq the push checkpoint may move to once the batch is
    /// answered: the last document's when the batch is full, else the store's highest seq at
    /// the time of reading (every own document up to it is in the batch). Moving past the
    /// documents pulled from the hub keeps the next scan short.
    pub fn outbox_batch(&self, after: Seq, limit: usize) -> Result<(Vec<Change>, Seq)> {
        self.read(|c| {
            let high: i64 =
                c.prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM docs")?.query_row([], |r| r.get(0))?;
            let mut st = c.prepare_cached(sql::OUTBOX)?;
            let rows = st.query_map(params![after.0 as i64, limit as i64, high], change_row)?;
            let batch: Vec<Change> = rows.collect::<rusqlite::Result<_>>()?;
            let upto = match batch.last() {
                Some(last) if batch.len() == limit => last.seq,
                _ => Seq((high as u64).max(after.0)),
            };
            Ok((batch, upto))
        })
    }

    /// Documents of one type changed after `since`, in sequence order, at most `limit` (a
    /// follower of one kind of document, such as the label cache).
    pub fn changes_of_type_since(&self, doc_type: DocType, since: Seq, limit: usize) -> Result<Vec<Change>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::CHANGES_OF_TYPE_SINCE)?;
            let rows = st.query_map(params![since.0 as i64, doc_type.as_str(), limit as i64], change_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Documents changed after `since`, in sequence order, at most `limit`.
    pub fn changes_since(&self, since: Seq, limit: usize) -> Result<Vec<Change>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::CHANGES_SINCE)?;
            let rows = st.query_map(params![since.0 as i64, limit as i64], change_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The file document at `export_path` on `node` (active or deleted).
    pub fn file_by_path(&self, node: &NodeId, export_path: &str) -> Result<Option<FileDoc>> {
        self.read(|c| {
            let Some(source) = crate::doc::FileSource::new(node.clone(), export_path) else {
                return Ok(None);
            };
            let id: Option<String> = c
                .prepare_cached(sql::FILE_AT)?
                .query_row([node.as_str(), &source.export_parent, source.name()], |r| r.get(0))
                .optional()?;
            Ok(bodies_of_files(c, id)?.pop())
        })
    }

    /// Projection rows of the files directly in directory `parent` on `node`, by name.
    pub fn file_entries_in_dir(&self, node: &NodeId, parent: &str) -> Result<Vec<FileEntry>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::ENTRIES_IN_DIR)?;
            let rows = st.query_map([node.as_str(), parent], entry_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Projection rows of every file below directory `dir` on `node`, directory by directory.
    pub fn file_entries_under(&self, node: &NodeId, dir: &str) -> Result<Vec<FileEntry>> {
        let [exact, lo, hi] = under_params(dir);
        self.read(|c| {
            let mut st = c.prepare_cached(sql::ENTRIES_UNDER)?;
            let rows = st.query_map([node.as_str(), &exact, &lo, &hi], entry_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// How many active files (and bytes) `node` has below directory `dir`.
    pub fn count_files_under(&self, node: &NodeId, dir: &str) -> Result<(u64, u64)> {
        let [exact, lo, hi] = under_params(dir);
        self.read(|c| {
            let (n, bytes): (i64, i64) = c
                .prepare_cached(sql::COUNT_UNDER)?
                .query_row([node.as_str(), &exact, &lo, &hi], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((n as u64, bytes as u64))
        })
    }

    /// Active file documents directly in directory `parent` on `node`, by name.
    pub fn files_in_dir(&self, node: &NodeId, parent: &str) -> Result<Vec<ListedFile>> {
        self.read(|c| {
            let mut st = c.prepare_cached(sql::FILES_IN_DIR)?;
            let rows = st.query_map([node.as_str(), parent], |r| listed_row(node, r))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Active file documents whose `export_parent` is `dir` or below it (a mount's candidates),
    /// in one range of the primary key.
    pub fn files_under(&self, node: &NodeId, dir: &str) -> Result<Vec<ListedFile>> {
        let [exact, lo, hi] = under_params(dir);
        self.read(|c| {
            let mut st = c.prepare_cached(sql::FILES_UNDER)?;
            let rows = st.query_map([node.as_str(), &exact, &lo, &hi], |r| listed_row(node, r))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Distinct parent directories of `node`'s known files at or below `dir` (any status).
    pub fn parents_under(&self, node: &NodeId, dir: &str) -> Result<Vec<String>> {
        let [exact, lo, hi] = under_params(dir);
        self.read(|c| {
            let mut st = c.prepare_cached(sql::PARENTS_UNDER)?;
            let rows = st.query_map([node.as_str(), &exact, &lo, &hi], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Distinct parent directories of `node`'s active files at or below `dir`.
    pub fn active_parents_under(&self, node: &NodeId, dir: &str) -> Result<Vec<String>> {
        let [exact, lo, hi] = under_params(dir);
        self.read(|c| {
            let mut st = c.prepare_cached(sql::ACTIVE_PARENTS_UNDER)?;
            let rows = st.query_map([node.as_str(), &exact, &lo, &hi], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// One page of active files (all nodes) in `(node_id, export_parent, name)` order, after the
    /// given position (`None`: from the start). Returns the page and the position of its last row.
    #[allow(clippy::type_complexity)]
    pub fn files_page(
        &self,
        after: Option<&(String, String, String)>,
        limit: usize,
    ) -> Result<(Vec<FileDoc>, Option<(String, String, String)>)> {
        self.read(|c| {
            let empty = (String::new(), String::new(), String::new());
            let (n, p, name) = after.unwrap_or(&empty);
            let mut st = c.prepare_cached(sql::FILES_PAGE)?;
            let rows: Vec<(String, (String, String, String))> = st
                .query_map(params![n, p, name, limit as i64], |r| {
                    Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let last = rows.last().map(|(_, k)| k.clone());
            let docs = bodies_of_files(c, rows.into_iter().map(|(id, _)| id))?;
            Ok((docs, last))
        })
    }

    pub fn stats(&self) -> Result<StoreStats> {
        self.read(|c| {
            let mut st =
                c.prepare("SELECT type, COUNT(*) FROM docs WHERE deleted = 0 GROUP BY type ORDER BY type")?;
            let docs_by_type = st
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<rusqlite::Result<_>>()?;
            let (files_active, files_deleted, bytes_active): (i64, i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(status = 0), 0), COALESCE(SUM(status <> 0), 0),
                        COALESCE(SUM(CASE WHEN status = 0 THEN size END), 0) FROM files",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let nodes_with_files: i64 =
                c.query_row("SELECT COUNT(DISTINCT node_id) FROM files", [], |r| r.get(0))?;
            let last_seq: Option<i64> = c.query_row("SELECT MAX(seq) FROM docs", [], |r| r.get(0))?;
            let schema_version: u32 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            Ok(StoreStats {
                docs_by_type,
                files_active: files_active as u64,
                files_deleted: files_deleted as u64,
                bytes_active: bytes_active as u64,
                nodes_with_files: nodes_with_files as u64,
                last_seq: last_seq.unwrap_or(0) as u64,
                schema_version,
            })
        })
    }
}
