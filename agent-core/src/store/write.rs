//! The write path: put, bulk put (one result per document), tombstone delete.
//!
//! Each document of a bulk put runs inside its own savepoint within one transaction: a document
//! that fails (bad JSON, revision conflict, path taken by another file) is rolled back alone and
//! reported, and the rest of the batch commits together — wholly present or wholly absent after a
//! crash.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::{Result, Store, Writer};
use crate::doc::{Document, FileDoc, FileStatus};
use crate::ids::{DocId, Rev, Seq};

/// A document that was written: its id, new revision and sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Written {
    pub id: DocId,
    pub rev: Rev,
    pub seq: Seq,
}

/// Why one document was not written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum PutError {
    /// The writer's base revision is not the stored one (someone wrote in between).
    #[error("{id}: revision conflict (stored {stored}, given {given})")]
    Conflict { id: String, stored: Rev, given: Rev },
    /// Not a valid document of a known type.
    #[error("{id}: invalid document: {reason}")]
    Invalid { id: String, reason: String },
    /// SQLite refused the row (for example two files claiming one path).
    #[error("{id}: {reason}")]
    Rejected { id: String, reason: String },
}

impl Store {
    /// Writes one document. Its `_rev` is the base revision the caller read (`Rev::NONE` for a
    /// new document); the stored document gets `_rev + 1`.
    pub fn put(&self, doc: Document) -> Result<Written> {
        let mut results = self.put_many(vec![doc])?;
        Ok(results.pop().expect("one result per document")?)
    }

    /// Writes a batch in one transaction, with one result per document in input order.
    pub fn put_many(&self, docs: Vec<Document>) -> Result<Vec<Result<Written, PutError>>> {
        self.transaction(|tx, seq| Ok(docs.into_iter().map(|d| put_isolated(tx, seq, d)).collect()))
    }

    /// Like [`Store::put_many`] for untrusted JSON (from the network): a value that is not a
    /// valid document gets its own `Invalid` result; the others are written.
    pub fn put_many_json(
        &self,
        docs: Vec<serde_json::Value>,
    ) -> Result<Vec<Result<Written, PutError>>> {
        self.transaction(|tx, seq| {
            Ok(docs
                .into_iter()
                .map(|value| {
                    let id = value
                        .get("_id")
                        .and_then(|v| v.as_str())
                        .unwrap_or("?")
                        .to_owned();
                    match serde_json::from_value::<Document>(value) {
                        Ok(doc) => put_isolated(tx, seq, doc),
                        Err(e) => Err(PutError::Invalid {
                            id,
                            reason: e.to_string(),
                        }),
                    }
                })
                .collect())
        })
    }

    /// Replaces a document by a tombstone (`_deleted: true`). `base` is the revision read.
    pub fn delete(&self, id: &DocId, base: Rev) -> Result<Written> {
        self.transaction(|tx, seq| {
            let old = existing(tx, id.as_str())?;
            let Some(old) = old.filter(|o| !o.deleted) else {
                return Err(PutError::Rejected { id: id.to_string(), reason: "no such document".into() }.into());
            };
            if old.rev != base {
                return Err(PutError::Conflict { id: id.to_string(), stored: old.rev, given: base }.into());
            }
            let rev = base.next();
            let body = serde_json::json!({"_id": id, "_rev": rev, "type": old.doc_type, "_deleted": true});
            let s = seq.take();
            tx.prepare_cached("UPDATE docs SET rev = ?2, seq = ?3, deleted = 1, origin = 0, body = ?4 WHERE id = ?1")?
                .execute(params![id.as_str(), rev.0 as i64, s.0 as i64, body.to_string()])?;
            if let Some((node, path)) = old.file_key {
                tx.prepare_cached("DELETE FROM files WHERE node_id = ?1 AND export_path = ?2")?.execute([node, path])?;
            }
            Ok(Written { id: id.clone(), rev, seq: s })
        })
    }

    /// Runs `f` in one write transaction with the sequence counter; commits if `f` succeeds.
    fn transaction<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut SeqCounter) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.writer();
        let Writer { conn, next_seq } = &mut *guard;
        let tx = conn.transaction()?;
        let mut seq = SeqCounter(*next_seq);
        let out = f(&tx, &mut seq)?;
        tx.commit()?;
        *next_seq = seq.0;
        Ok(out)
    }
}

/// Hands out sequence numbers inside one transaction; published only on commit.
pub(super) struct SeqCounter(u64);

impl SeqCounter {
    fn take(&mut self) -> Seq {
        let s = Seq(self.0);
        self.0 += 1;
        s
    }
}

struct Existing {
    rev: Rev,
    deleted: bool,
    doc_type: String,
    /// (node_id, export_path) of a stored file document.
    file_key: Option<(String, String)>,
}

fn existing(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Existing>> {
    tx.prepare_cached(
        "SELECT rev, deleted, type,
                CASE WHEN type = 'file' THEN json_extract(body, '$.source.node_id') END,
                CASE WHEN type = 'file' THEN json_extract(body, '$.source.export_path') END
         FROM docs WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let node: Option<String> = r.get(3)?;
        let path: Option<String> = r.get(4)?;
        Ok(Existing {
            rev: Rev(r.get::<_, i64>(0)? as u64),
            deleted: r.get(1)?,
            doc_type: r.get(2)?,
            file_key: node.zip(path),
        })
    })
    .optional()
}

/// One document inside its own savepoint.
fn put_isolated(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    doc: Document,
) -> Result<Written, PutError> {
    let id = doc.id();
    let sql_err = |e: rusqlite::Error| PutError::Rejected {
        id: id.to_string(),
        reason: e.to_string(),
    };
    tx.prepare_cached("SAVEPOINT doc")
        .and_then(|mut s| s.execute([]))
        .map_err(sql_err)?;
    let before = seq.0;
    let result = put_one(tx, seq, doc);
    let end = if result.is_ok() {
        "RELEASE doc"
    } else {
        "ROLLBACK TO doc"
    };
    if result.is_err() {
        seq.0 = before;
    }
    tx.prepare_cached(end)
        .and_then(|mut s| s.execute([]))
        .map_err(sql_err)?;
    if result.is_err() {
        tx.prepare_cached("RELEASE doc")
            .and_then(|mut s| s.execute([]))
            .map_err(sql_err)?;
    }
    result
}

fn put_one(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    mut doc: Document,
) -> Result<Written, PutError> {
    let id = doc.id();
    let invalid = |reason: String| PutError::Invalid {
        id: id.to_string(),
        reason,
    };
    let rejected = |e: rusqlite::Error| PutError::Rejected {
        id: id.to_string(),
        reason: e.to_string(),
    };
    doc.validate().map_err(|e| invalid(e.reason))?;
    let doc_type = doc.doc_type();

    let old = existing(tx, id.as_str()).map_err(rejected)?;
    let stored = old.as_ref().map_or(Rev::NONE, |o| o.rev);
    if let Some(o) = &old {
        if o.doc_type != doc_type.as_str() {
            return Err(invalid(format!(
                "id already used by a {} document",
                o.doc_type
            )));
        }
    }
    let base = doc.rev();
    if base != stored {
        return Err(PutError::Conflict {
            id: id.to_string(),
            stored,
            given: base,
        });
    }
    let rev = base.next();
    doc.set_rev(rev);
    let body = serde_json::to_string(&doc).map_err(|e| invalid(e.to_string()))?;
    let s = seq.take();
    tx.prepare_cached(
        "INSERT INTO docs (id, type, rev, seq, deleted, origin, body) VALUES (?1, ?2, ?3, ?4, 0, 0, ?5)
         ON CONFLICT(id) DO UPDATE SET rev = excluded.rev, seq = excluded.seq, deleted = 0, origin = 0,
                                       body = excluded.body",
    )
    .and_then(|mut st| st.execute(params![id.as_str(), doc_type.as_str(), rev.0 as i64, s.0 as i64, body]))
    .map_err(rejected)?;

    if let Document::File(file) = &doc {
        let old_key = old.and_then(|o| o.file_key);
        project_file(tx, file, old_key).map_err(|reason| PutError::Rejected {
            id: id.to_string(),
            reason,
        })?;
    }
    Ok(Written { id, rev, seq: s })
}

/// Keeps the `files` projection equal to the file document just written. At most one row per
/// (node, path): an active file takes over the row of a deleted document at the same path.
fn project_file(
    tx: &Transaction<'_>,
    f: &FileDoc,
    old_key: Option<(String, String)>,
) -> Result<(), String> {
    let node = f.source.node_id.as_str();
    let path = f.source.export_path.as_str();
    let sql = |e: rusqlite::Error| e.to_string();
    if let Some((old_node, old_path)) = old_key {
        if old_node != node || old_path != path {
            tx.prepare_cached(
                "DELETE FROM files WHERE node_id = ?1 AND export_path = ?2 AND id = ?3",
            )
            .and_then(|mut s| s.execute(params![old_node, old_path, f.id.as_str()]))
            .map_err(sql)?;
        }
    }
    let status = match f.status {
        FileStatus::Active => 0,
        FileStatus::Deleted => 1,
    };
    let changed = tx
        .prepare_cached(
            "INSERT INTO files (node_id, export_path, id, export_parent, name, size, mtime_ns, inode, status, rev)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(node_id, export_path) DO UPDATE SET
                 id = excluded.id, export_parent = excluded.export_parent, name = excluded.name, size = excluded.size,
                 mtime_ns = excluded.mtime_ns, inode = excluded.inode, status = excluded.status,
                 rev = excluded.rev
             WHERE files.id = excluded.id OR files.status <> 0",
        )
        .and_then(|mut s| {
            s.execute(params![
                node,
                path,
                f.id.as_str(),
                f.source.export_parent,
                f.name,
                f.size as i64,
                mtime_ns(f),
                f.inode.0 as i64,
                status,
                f.rev.0 as i64
            ])
        })
        .map_err(sql)?;
    // The path is held by another, active file. A deleted document simply loses its place in
    // the projection (the path belongs to someone else now); an active one is refused.
    if changed == 0 && f.status == FileStatus::Active {
        return Err(format!(
            "{path} on {node} already belongs to another file document"
        ));
    }
    Ok(())
}

pub(super) fn mtime_ns(f: &FileDoc) -> i64 {
    f.mtime.timestamp_nanos_opt().unwrap_or(i64::MAX)
}
