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
    /// The sender may not write this document (it is owned by the hub or another node).
    #[error("{id}: {reason}")]
    NotOwner { id: String, reason: String },
    /// A pushed file's inode is another file's or directory's: its writer draws another.
    #[error("{id}: {reason}")]
    InodeTaken { id: String, reason: String },
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
        self.put_batch(docs.into_iter().map(|d| Ok((d, None))).collect())
    }

    /// Like [`Store::put_many`] for untrusted JSON (from the network): a value that is not a
    /// valid document gets its own `Invalid` result; the others are written. The stored body is
    /// the JSON as received (with its new `_rev`), so fields this build does not know are kept.
    pub fn put_many_json(&self, docs: Vec<serde_json::Value>) -> Result<Vec<Result<Written, PutError>>> {
        let parsed = docs
            .into_iter()
            .map(|value| {
                let id = value.get("_id").and_then(|v| v.as_str()).unwrap_or("?").to_owned();
                match <Document as serde::Deserialize>::deserialize(&value) {
                    Ok(doc) if value.is_object() => Ok((doc, Some(value))),
                    Ok(_) => Err(PutError::Invalid { id, reason: "not a JSON object".into() }),
                    Err(e) => Err(PutError::Invalid { id, reason: e.to_string() }),
                }
            })
            .collect();
        self.put_batch(parsed)
    }

    /// The batch runs first without savepoints (a crawl's documents practically never fail
    /// after their checks pass). If a document fails after it started writing, the whole
    /// transaction is rolled back and the batch is redone with a savepoint per document.
    fn put_batch(
        &self,
        batch: Vec<Result<(Document, Option<serde_json::Value>), PutError>>,
    ) -> Result<Vec<Result<Written, PutError>>> {
        let fast = self.transaction_if(|tx, seq| {
            let mut out = Vec::with_capacity(batch.len());
            for item in &batch {
                match item {
                    Err(e) => out.push(Err(e.clone())),
                    Ok((doc, raw)) => match put_one(tx, seq, doc, raw.as_ref()) {
                        Ok(w) => out.push(Ok(w)),
                        Err(Failure::Refused(e)) => out.push(Err(e)),
                        Err(Failure::Partial(_)) => return Ok(None),
                    },
                }
            }
            Ok(Some(out))
        });
        if let Some(out) = fast? {
            return Ok(out);
        }
        self.transaction(|tx, seq| {
            Ok(batch
                .into_iter()
                .map(|item| item.and_then(|(doc, raw)| put_isolated(tx, seq, &doc, raw.as_ref())))
                .collect())
        })
    }

    /// A hub edit of a two-owner document (a PATCH of a node's hub-owned fields): a `put`, and
    /// the document's `merged_docs.hub_fields_seq` set to the new seq in the same transaction
    /// (the pull filter sends a node its own document only after such an edit; ARCHITECTURE §5.4).
    pub fn put_hub_edit(&self, doc: Document) -> Result<Written> {
        self.transaction(|tx, seq| {
            let w = put_one(tx, seq, &doc, None).map_err(Failure::into_error)?;
            tx.prepare_cached("UPDATE merged_docs SET hub_fields_seq = ?2 WHERE id = ?1")?
                .execute(params![w.id.as_str(), w.seq.0 as i64])?;
            Ok(w)
        })
    }

    /// The hub seq of the last hub edit of a two-owner document (0: never edited by the hub).
    pub fn hub_fields_seq(&self, id: &DocId) -> Result<Seq> {
        self.read(|c| {
            let v: Option<i64> = c
                .prepare_cached("SELECT hub_fields_seq FROM merged_docs WHERE id = ?1")?
                .query_row([id.as_str()], |r| r.get(0))
                .optional()?;
            Ok(Seq(v.unwrap_or(0) as u64))
        })
    }

    /// Replaces a document by a tombstone (`_deleted: true`). `base` is the revision read.
    pub fn delete(&self, id: &DocId, base: Rev) -> Result<Written> {
        self.transaction(|tx, seq| {
            let old = existing(tx, id.as_str())?;
            let Some(old) = old.filter(|o| !o.deleted) else {
                return Err(
                    PutError::Rejected { id: id.to_string(), reason: "no such document".into() }.into()
                );
            };
            if old.rev != base {
                return Err(PutError::Conflict { id: id.to_string(), stored: old.rev, given: base }.into());
            }
            let rev = base.next();
            let body = serde_json::json!({"_id": id, "_rev": rev, "type": old.doc_type, "_deleted": true});
            let s = seq.take();
            tx.prepare_cached(
                "UPDATE docs SET rev = ?2, seq = ?3, deleted = 1, origin = 0, body = ?4 WHERE id = ?1",
            )?
            .execute(params![id.as_str(), rev.0 as i64, s.0 as i64, body.to_string()])?;
            if let Some(key) = old.file_key {
                delete_projection(tx, &key, id.as_str())?;
            }
            Ok(Written { id: id.clone(), rev, seq: s })
        })
    }

    /// Runs `f` in one write transaction with the sequence counter; commits if `f` succeeds.
    pub(super) fn transaction<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut SeqCounter) -> Result<R>,
    ) -> Result<R> {
        match self.transaction_if(|tx, seq| f(tx, seq).map(Some))? {
            Some(out) => Ok(out),
            None => unreachable!("the closure above never returns None"),
        }
    }

    /// Like [`Store::transaction`], but `Ok(None)` from `f` rolls everything back.
    pub(super) fn transaction_if<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut SeqCounter) -> Result<Option<R>>,
    ) -> Result<Option<R>> {
        let mut guard = self.writer();
        let Writer { conn, next_seq } = &mut *guard;
        let tx = conn.transaction()?;
        let mut seq = SeqCounter(*next_seq);
        let Some(out) = f(&tx, &mut seq)? else {
            return Ok(None); // dropping `tx` rolls back
        };
        tx.commit()?;
        *next_seq = seq.0;
        self.inner.committed.store(seq.0 - 1, std::sync::atomic::Ordering::Release);
        Ok(Some(out))
    }
}

/// Hands out sequence numbers inside one transaction; published only on commit.
pub(super) struct SeqCounter(pub(super) u64);

impl SeqCounter {
    fn peek(&self) -> Seq {
        Seq(self.0)
    }

    pub(super) fn take(&mut self) -> Seq {
        let s = Seq(self.0);
        self.0 += 1;
        s
    }
}

/// The primary key of a `files` row.
#[derive(PartialEq, Eq)]
pub(super) struct FileKey {
    node: String,
    parent: String,
    name: String,
}

impl FileKey {
    fn of(f: &FileDoc) -> FileKey {
        FileKey {
            node: f.source.node_id.to_string(),
            parent: f.source.export_parent.clone(),
            name: f.name.clone(),
        }
    }
}

pub(super) fn delete_projection(tx: &Transaction<'_>, key: &FileKey, id: &str) -> rusqlite::Result<usize> {
    tx.prepare_cached(
        "DELETE FROM files WHERE node_id = ?1 AND export_parent = ?2 AND name = ?3 AND id = ?4",
    )?
    .execute(params![key.node, key.parent, key.name, id])
}

pub(super) struct Existing {
    pub(super) rev: Rev,
    pub(super) deleted: bool,
    pub(super) doc_type: String,
    /// Where a stored file document sits in the `files` projection.
    pub(super) file_key: Option<FileKey>,
}

pub(super) fn existing(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Existing>> {
    tx.prepare_cached(
        "SELECT rev, deleted, type,
                CASE WHEN type = 'file' THEN json_extract(body, '$.source.node_id') END,
                CASE WHEN type = 'file' THEN json_extract(body, '$.source.export_parent') END,
                CASE WHEN type = 'file' THEN json_extract(body, '$.name') END
         FROM docs WHERE id = ?1",
    )?
    .query_row([id], |r| {
        let key = match (r.get(3)?, r.get(4)?, r.get(5)?) {
            (Some(node), Some(parent), Some(name)) => Some(FileKey { node, parent, name }),
            _ => None,
        };
        Ok(Existing {
            rev: Rev(r.get::<_, i64>(0)? as u64),
            deleted: r.get(1)?,
            doc_type: r.get(2)?,
            file_key: key,
        })
    })
    .optional()
}

/// Why [`put_one`] did not write a document.
enum Failure {
    /// Refused by the checks, before anything was written.
    Refused(PutError),
    /// Failed after part of it was written: the caller must roll back (to a savepoint).
    Partial(PutError),
}

impl Failure {
    fn into_error(self) -> PutError {
        match self {
            Failure::Refused(e) | Failure::Partial(e) => e,
        }
    }
}

/// One document inside its own savepoint.
fn put_isolated(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    doc: &Document,
    raw: Option<&serde_json::Value>,
) -> Result<Written, PutError> {
    let id = doc.id();
    let sql_err = |e: rusqlite::Error| PutError::Rejected { id: id.to_string(), reason: e.to_string() };
    let run = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([])).map_err(sql_err);
    run("SAVEPOINT doc")?;
    let before = seq.0;
    let result = put_one(tx, seq, doc, raw);
    if result.is_err() {
        seq.0 = before;
        run("ROLLBACK TO doc")?;
    }
    run("RELEASE doc")?;
    result.map_err(Failure::into_error)
}

fn put_one(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    doc: &Document,
    raw: Option<&serde_json::Value>,
) -> Result<Written, Failure> {
    let id = doc.id();
    let refused = |e: PutError| Failure::Refused(e);
    let invalid = |reason: String| PutError::Invalid { id: id.to_string(), reason };
    let rejected = |e: rusqlite::Error| PutError::Rejected { id: id.to_string(), reason: e.to_string() };
    doc.validate().map_err(|e| refused(invalid(e.reason)))?;
    let doc_type = doc.doc_type();

    let base = doc.rev();
    let conflict =
        |stored: Rev| Failure::Refused(PutError::Conflict { id: id.to_string(), stored, given: base });
    // A new document (base 0) skips the lookup: its plain INSERT fails if the id exists.
    let old =
        if base == Rev::NONE { None } else { existing(tx, id.as_str()).map_err(|e| refused(rejected(e)))? };
    if base != Rev::NONE {
        match &old {
            None => return Err(conflict(Rev::NONE)),
            Some(o) if o.doc_type != doc_type.as_str() => {
                return Err(refused(invalid(format!("id already used by a {} document", o.doc_type))));
            }
            Some(o) if o.rev != base => return Err(conflict(o.rev)),
            Some(_) => {}
        }
    }
    let rev = base.next();
    let body = match raw {
        Some(value) => {
            let mut value = value.clone();
            value["_rev"] = rev.0.into();
            value.to_string()
        }
        None => {
            let mut doc = doc.clone();
            doc.set_rev(rev);
            serde_json::to_string(&doc).map_err(|e| refused(invalid(e.to_string())))?
        }
    };
    // The sequence number is consumed only once the document is written, so refused documents
    // leave no gap in the feed.
    let s = seq.peek();
    let sql = if base == Rev::NONE {
        "INSERT INTO docs (id, type, rev, seq, deleted, origin, body) VALUES (?1, ?2, ?3, ?4, 0, 0, ?5)"
    } else {
        "UPDATE docs SET rev = ?3, seq = ?4, deleted = 0, origin = 0, body = ?5 WHERE id = ?1 AND type = ?2"
    };
    let written = tx.prepare_cached(sql).and_then(|mut st| {
        st.execute(params![id.as_str(), doc_type.as_str(), rev.0 as i64, s.0 as i64, body])
    });
    match written {
        Ok(1) => {}
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            // The id exists although the writer thought the document was new. One statement
            // failed as a whole, so nothing of this document was written.
            let stored = existing(tx, id.as_str()).ok().flatten().map_or(Rev::NONE, |o| o.rev);
            return Err(conflict(stored));
        }
        Ok(n) => return Err(Failure::Partial(invalid(format!("{n} rows written")))),
        Err(e) => return Err(Failure::Partial(rejected(e))),
    }

    if let Document::File(file) = doc {
        let old_key = old.and_then(|o| o.file_key);
        project_file(tx, file, rev, old_key)
            .map_err(|reason| Failure::Partial(PutError::Rejected { id: id.to_string(), reason }))?;
    }
    seq.take();
    Ok(Written { id, rev, seq: s })
}

/// Keeps the `files` projection equal to the file document just written. At most one row per
/// (node, path): an active file takes over the row of a deleted document at the same path.
pub(super) fn project_file(
    tx: &Transaction<'_>,
    f: &FileDoc,
    rev: Rev,
    old_key: Option<FileKey>,
) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let key = FileKey::of(f);
    if let Some(old) = old_key.filter(|old| *old != key) {
        delete_projection(tx, &old, f.id.as_str()).map_err(sql)?;
    }
    let status = match f.status {
        FileStatus::Active => 0,
        FileStatus::Deleted => 1,
    };
    let changed = tx
        .prepare_cached(
            "INSERT INTO files (node_id, export_parent, name, id, size, mtime_ns, inode, status, rev, mime,
                                received_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(node_id, export_parent, name) DO UPDATE SET
                 id = excluded.id, size = excluded.size, mtime_ns = excluded.mtime_ns,
                 inode = excluded.inode, status = excluded.status, rev = excluded.rev,
                 mime = excluded.mime, received_ns = excluded.received_ns
             WHERE files.id = excluded.id OR files.status <> 0",
        )
        .and_then(|mut s| {
            s.execute(params![
                key.node,
                key.parent,
                key.name,
                f.id.as_str(),
                f.size as i64,
                mtime_ns(f),
                f.inode.0 as i64,
                status,
                rev.0 as i64,
                f.mime,
                f.received_at.and_then(|t| t.timestamp_nanos_opt())
            ])
        })
        .map_err(sql)?;
    // The path is held by another, active file. A deleted document simply loses its place in
    // the projection (the path belongs to someone else now); an active one is refused.
    if changed == 0 && f.status == FileStatus::Active {
        return Err(format!(
            "{} on {} already belongs to another file document",
            f.source.export_path, key.node
        ));
    }
    Ok(())
}

pub(super) fn mtime_ns(f: &FileDoc) -> i64 {
    f.mtime.timestamp_nanos_opt().unwrap_or(i64::MAX)
}
