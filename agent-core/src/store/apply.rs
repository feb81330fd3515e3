//! Receiving documents another store wrote: the hub applying an agent's push.
//!
//! Unlike `put` (optimistic concurrency on a base revision, the writer's own documents), apply
//! keeps the sender's revision: a document is written iff its `_rev` is higher than the stored
//! one, otherwise it is `Stale` (the hub already has it or something newer). The stored body is
//! the JSON as received, with `origin = 1`.
//!
//! Node documents have two owners and are merged (ARCHITECTURE §4.2): the agent's revision of
//! its part is kept in `merged_docs`, and the document in `docs` is the merge with the hub's own
//! revision counter.

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::write::{delete_projection, existing, project_file, SeqCounter, Written};
use super::{PutError, Result, Store};
use crate::doc::{DocType, Document, NodeDoc, Timestamp};
use crate::ids::{DocId, NodeId, Rev, Seq};

/// What happened to one applied document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Applied {
    Written(Written),
    /// Not newer than what is stored (`current_rev`: the stored revision of the sender's part).
    Stale {
        id: DocId,
        current_rev: Rev,
    },
}

/// A document as received: its typed form (`None` for a tombstone) and the raw JSON.
pub(super) struct Incoming {
    pub(super) id: DocId,
    pub(super) doc_type: DocType,
    pub(super) rev: Rev,
    pub(super) doc: Option<Document>,
    pub(super) raw: serde_json::Value,
}

fn parse_incoming(value: serde_json::Value) -> Result<Incoming, PutError> {
    use crate::doc::bounds::{MAX_DOC_BYTES, MAX_REV};
    let id_text: String =
        value.get("_id").and_then(|v| v.as_str()).unwrap_or("?").chars().take(300).collect();
    let invalid = |reason: String| PutError::Invalid { id: id_text.clone(), reason };
    if !value.is_object() {
        return Err(invalid("not a JSON object".into()));
    }
    let size = serde_json::to_vec(&value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_DOC_BYTES {
        return Err(invalid(format!("{size} bytes of JSON (at most {MAX_DOC_BYTES})")));
    }
    let rev = value.get("_rev").and_then(|v| v.as_u64()).filter(|r| (1..=MAX_REV).contains(r));
    let rev = Rev(rev.ok_or_else(|| invalid(format!("_rev must be an integer from 1 to {MAX_REV}")))?);
    let doc_type = value
        .get("type")
        .and_then(|v| v.as_str())
        .and_then(DocType::parse)
        .ok_or_else(|| invalid("unknown or missing type".into()))?;
    if value.get("_deleted").and_then(|v| v.as_bool()) == Some(true) {
        let id: DocId = id_text.parse().map_err(|e: crate::ids::IdError| invalid(e.to_string()))?;
        if !id.as_str().starts_with(&format!("{}::", doc_type.id_prefix())) {
            return Err(invalid(format!("id does not belong to type {}", doc_type.as_str())));
        }
        return Ok(Incoming { id, doc_type, rev, doc: None, raw: value });
    }
    let doc = <Document as serde::Deserialize>::deserialize(&value).map_err(|e| invalid(e.to_string()))?;
    doc.validate().map_err(|e| invalid(e.reason))?;
    Ok(Incoming { id: doc.id(), doc_type, rev, doc: Some(doc), raw: value })
}

impl Store {
    /// Applies documents pushed by the node `signer`, in one transaction, with one result per
    /// document in input order. Each must pass [`super::admission::admit`] inside that
    /// transaction (DESIGN §3, ARCHITECTURE §5.1): the signer owns it and the document it would
    /// replace (a tombstone's owner is on record), an annotation is of the signer's own file,
    /// a file's inode is no other's. `now` is the hub's time: the files' `received_at` and the
    /// node's `last_seen` when its node document is merged.
    pub fn apply_pushed(
        &self,
        docs: Vec<serde_json::Value>,
        now: Timestamp,
        signer: &NodeId,
    ) -> Result<Vec<Result<Applied, PutError>>> {
        self.transaction(|tx, seq| {
            let taken = super::admission::TakenInodes::of_directories(tx)?;
            Ok(docs
                .into_iter()
                .map(|value| {
                    let mut incoming = parse_incoming(value)?;
                    super::admission::admit(tx, &incoming, signer, &taken)?;
                    super::admission::stamp(&mut incoming, signer, now);
                    isolated(tx, seq, &incoming.id, |tx, seq| match &incoming.doc {
                        Some(Document::Node(node)) => merge_node(tx, seq, &incoming, node, now),
                        _ => apply_one(tx, seq, &incoming),
                    })
                })
                .collect())
        })
    }
}

/// The live stored document with this id, if any (an unparsable stored body counts as absent:
/// whoever owns the id may repair it).
pub(super) fn stored_document(tx: &Transaction<'_>, id: &DocId) -> Result<Option<Document>, PutError> {
    let body: Option<String> = tx
        .prepare_cached("SELECT body FROM docs WHERE id = ?1 AND deleted = 0")
        .and_then(|mut st| st.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(rejected(id))?;
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

/// What one pulled batch did to the replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PullStats {
    /// Written (newer than the replica's revision), tombstones included.
    pub applied: u64,
    /// Already held at this or a newer revision.
    pub stale: u64,
    /// This node's own two-owner documents whose hub-owned fields were copied in (§5.4).
    pub own_merged: u64,
    /// Not a valid document (logged, skipped).
    pub invalid: u64,
    /// The batch was not applied: the pull checkpoint was no longer the `since` it was fetched
    /// from (a new hub epoch reset it meanwhile, §5.8).
    pub skipped: bool,
}

/// The `meta` key of the highest hub seq applied.
pub const PULL_CHECKPOINT: &str = "pull_checkpoint";

impl Store {
    /// Applies one batch of the hub's changes feed to this node's replica and moves the pull
    /// checkpoint to `last_seq`, in **one transaction** (ARCHITECTURE §5.2): after a crash the
    /// batch and its checkpoint are both there or both absent, so nothing is lost or applied
    /// twice. A document is replaced iff its revision is newer (origin 1, body as received);
    /// this node's own node document only takes the hub-owned fields (keeping its own revision
    /// and re-entering the outbox). Bad documents are counted and skipped. `since` is the
    /// checkpoint the batch was fetched from: if the stored checkpoint is no longer that (reset
    /// by a new hub epoch meanwhile), nothing is applied and the stats say `skipped`.
    pub fn apply_pulled(
        &self,
        own: &NodeId,
        docs: Vec<serde_json::Value>,
        since: Seq,
        last_seq: Seq,
    ) -> Result<PullStats> {
        let own_node = DocId::from(crate::ids::NodeDocId::for_node(own));
        let mut stats = PullStats::default();
        let mut incoming = Vec::with_capacity(docs.len());
        for value in docs {
            match parse_incoming(value) {
                Ok(i) => incoming.push(i),
                Err(e) => {
                    tracing::warn!(error = %e, "pulled document skipped");
                    stats.invalid += 1;
                }
            }
        }
        let apply = |tx: &Transaction<'_>, seq: &mut SeqCounter, inc: &Incoming| match &inc.doc {
            Some(Document::Node(hub)) if inc.id == own_node => {
                copy_hub_fields(tx, seq, &inc.id, hub).map(|w| w.map(Applied::Written))
            }
            _ => apply_one(tx, seq, inc).map(Some),
        };
        let count =
            |stats: &mut PullStats, inc: &Incoming, result: Result<Option<Applied>, PutError>| match result {
                Ok(Some(Applied::Written(_))) if inc.id == own_node => stats.own_merged += 1,
                Ok(Some(Applied::Written(_))) => stats.applied += 1,
                Ok(Some(Applied::Stale { .. })) | Ok(None) => stats.stale += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "pulled document not applied");
                    stats.invalid += 1;
                }
            };
        let checkpoint = |tx: &Transaction<'_>| -> rusqlite::Result<usize> {
            tx.prepare_cached(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![PULL_CHECKPOINT, last_seq.0.to_string()])
        };
        // Fast path: no savepoints (each one copies every page it touches). Pulled documents
        // practically never fail; if one does, everything is rolled back and the batch is
        // redone with a savepoint per document.
        let moved = |tx: &Transaction<'_>| -> rusqlite::Result<bool> {
            let current: Option<String> = tx
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([PULL_CHECKPOINT], |r| r.get(0))
                .optional()?;
            Ok(current.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) != since.0)
        };
        let skipped = PullStats { skipped: true, ..PullStats::default() };
        let fast = self.transaction_if(|tx, seq| {
            if moved(tx)? {
                return Ok(Some(skipped));
            }
            let mut fast_stats = stats;
            for inc in &incoming {
                match apply(tx, seq, inc) {
                    Err(_) => return Ok(None),
                    ok => count(&mut fast_stats, inc, ok),
                }
            }
            checkpoint(tx)?;
            Ok(Some(fast_stats))
        })?;
        if let Some(done) = fast {
            return Ok(done);
        }
        self.transaction(|tx, seq| {
            if moved(tx)? {
                return Ok(skipped);
            }
            for inc in &incoming {
                let result = isolated(tx, seq, &inc.id, |tx, seq| apply(tx, seq, inc));
                count(&mut stats, inc, result);
            }
            checkpoint(tx)?;
            Ok(stats)
        })
    }

    /// The highest hub seq applied to this replica (0 before the first pull).
    pub fn pull_checkpoint(&self) -> Result<Seq> {
        Ok(Seq(self.meta_get(PULL_CHECKPOINT)?.and_then(|v| v.parse().ok()).unwrap_or(0)))
    }

    /// Takes back this node's own documents from the hub after its store was lost (the
    /// bootstrap, ARCHITECTURE §5.2): each is stored at the hub's revision as this node's own
    /// (origin 0), and the push checkpoint moves past them (the hub has them), in one
    /// transaction. Returns how many were restored.
    pub fn restore_own(&self, docs: Vec<serde_json::Value>) -> Result<u64> {
        self.transaction(|tx, seq| {
            let (mut restored, mut high) = (0, Seq(0));
            for value in docs {
                let Ok(incoming) = parse_incoming(value) else { continue };
                let written = isolated(tx, seq, &incoming.id, |tx, seq| apply_one(tx, seq, &incoming));
                if let Ok(Applied::Written(w)) = written {
                    tx.prepare_cached("UPDATE docs SET origin = 0 WHERE id = ?1")?.execute([w.id.as_str()])?;
                    restored += 1;
                    high = high.max(w.seq);
                }
            }
            if restored == 0 {
                return Ok(0);
            }
            tx.prepare_cached(
                "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![super::PUSH_CHECKPOINT, high.0.to_string()])?;
            Ok(restored)
        })
    }

    /// Whether this store holds any file document of its own node (an empty one after a loss).
    pub fn has_own_files(&self) -> Result<bool> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT EXISTS(SELECT 1 FROM docs WHERE type = 'file' AND origin = 0)")?
                .query_row([], |r| r.get(0))?)
        })
    }
}

/// Copies the hub-owned fields of the hub's merged node document into this node's own one
/// (which keeps its revision and origin 0, and gets a new local seq so it is pushed again).
/// `None` when this node has no node document yet.
fn copy_hub_fields(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    id: &DocId,
    hub: &NodeDoc,
) -> Result<Option<Written>, PutError> {
    let Some(Document::Node(mut mine)) = stored_document(tx, id)? else { return Ok(None) };
    mine.friendly_name = hub.friendly_name.clone();
    mine.enabled = hub.enabled;
    mine.network_mounts = hub.network_mounts.clone();
    mine.observed_status = hub.observed_status;
    mine.last_seen = hub.last_seen;
    let body = serde_json::to_string(&Document::Node(mine.clone()))
        .map_err(|e| PutError::Invalid { id: id.to_string(), reason: e.to_string() })?;
    let s = seq.take();
    tx.prepare_cached("UPDATE docs SET seq = ?2, body = ?3, origin = 0 WHERE id = ?1")
        .and_then(|mut st| st.execute(params![id.as_str(), s.0 as i64, body]))
        .map_err(rejected(id))?;
    Ok(Some(Written { id: id.clone(), rev: mine.rev, seq: s }))
}

/// Runs `f` inside a savepoint, rolled back (with the sequence counter) if it fails.
fn isolated<T>(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    id: &DocId,
    f: impl FnOnce(&Transaction<'_>, &mut SeqCounter) -> Result<T, PutError>,
) -> Result<T, PutError> {
    let sql_err = |e: rusqlite::Error| PutError::Rejected { id: id.to_string(), reason: e.to_string() };
    let exec = |sql: &str| tx.prepare_cached(sql).and_then(|mut st| st.execute([])).map_err(sql_err);
    exec("SAVEPOINT apply")?;
    let before = seq.0;
    let result = f(tx, seq);
    if result.is_err() {
        seq.0 = before;
        exec("ROLLBACK TO apply")?;
    }
    exec("RELEASE apply")?;
    result
}

pub(super) fn rejected(id: &DocId) -> impl Fn(rusqlite::Error) -> PutError + '_ {
    move |e| PutError::Rejected { id: id.to_string(), reason: e.to_string() }
}

/// A single-owner document (or a tombstone): written at the sender's revision if newer.
fn apply_one(tx: &Transaction<'_>, seq: &mut SeqCounter, inc: &Incoming) -> Result<Applied, PutError> {
    let id = &inc.id;
    let old = existing(tx, id.as_str()).map_err(rejected(id))?;
    if let Some(o) = &old {
        if o.doc_type != inc.doc_type.as_str() {
            return Err(PutError::Invalid {
                id: id.to_string(),
                reason: format!("id already used by a {} document", o.doc_type),
            });
        }
        if o.rev >= inc.rev {
            return Ok(Applied::Stale { id: id.clone(), current_rev: o.rev });
        }
    }
    let s = seq.take();
    let deleted = inc.doc.is_none();
    tx.prepare_cached(
        "INSERT INTO docs (id, type, rev, seq, deleted, origin, body) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)
         ON CONFLICT(id) DO UPDATE SET rev = excluded.rev, seq = excluded.seq,
             deleted = excluded.deleted, origin = 1, body = excluded.body",
    )
    .and_then(|mut st| {
        st.execute(params![
            id.as_str(),
            inc.doc_type.as_str(),
            inc.rev.0 as i64,
            s.0 as i64,
            deleted,
            inc.raw.to_string()
        ])
    })
    .map_err(rejected(id))?;
    let old_key = old.and_then(|o| o.file_key);
    match &inc.doc {
        Some(Document::File(f)) => project_file(tx, f, inc.rev, old_key)
            .map_err(|reason| PutError::Rejected { id: id.to_string(), reason })?,
        None => {
            if let Some(key) = old_key {
                delete_projection(tx, &key, id.as_str()).map_err(rejected(id))?;
            }
        }
        Some(_) => {}
    }
    Ok(Applied::Written(Written { id: id.clone(), rev: inc.rev, seq: s }))
}

/// A node document pushed by its agent, merged with the hub-owned fields (ARCHITECTURE §4.2).
fn merge_node(
    tx: &Transaction<'_>,
    seq: &mut SeqCounter,
    inc: &Incoming,
    pushed: &NodeDoc,
    now: Timestamp,
) -> Result<Applied, PutError> {
    let id = &inc.id;
    let agent_rev: Option<i64> = tx
        .prepare_cached("SELECT agent_rev FROM merged_docs WHERE id = ?1")
        .and_then(|mut st| st.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(rejected(id))?;
    if let Some(agent_rev) = agent_rev.map(|r| Rev(r as u64)).filter(|r| *r >= inc.rev) {
        return Ok(Applied::Stale { id: id.clone(), current_rev: agent_rev });
    }
    let stored_body: Option<(i64, bool, String)> = tx
        .prepare_cached("SELECT rev, deleted, body FROM docs WHERE id = ?1")
        .and_then(|mut st| st.query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(rejected(id))?;
    let (hub_rev, stored) = match &stored_body {
        Some((rev, false, body)) => match serde_json::from_str::<Document>(body) {
            Ok(Document::Node(n)) => (Rev(*rev as u64), Some(n)),
            _ => (Rev(*rev as u64), None),
        },
        Some((rev, true, _)) => (Rev(*rev as u64), None),
        None => (Rev::NONE, None),
    };
    let mut merged = pushed.clone().merged_with_hub_fields(stored.as_ref(), now);
    let rev = hub_rev.next();
    merged.rev = rev;
    let body = serde_json::to_string(&Document::Node(merged))
        .map_err(|e| PutError::Invalid { id: id.to_string(), reason: e.to_string() })?;
    let s = seq.take();
    tx.prepare_cached(
        "INSERT INTO docs (id, type, rev, seq, deleted, origin, body) VALUES (?1, 'node', ?2, ?3, 0, 0, ?4)
         ON CONFLICT(id) DO UPDATE SET rev = excluded.rev, seq = excluded.seq, deleted = 0,
             origin = 0, body = excluded.body",
    )
    .and_then(|mut st| st.execute(params![id.as_str(), rev.0 as i64, s.0 as i64, body]))
    .map_err(rejected(id))?;
    tx.prepare_cached(
        "INSERT INTO merged_docs (id, agent_rev, agent_body) VALUES (?1, ?2, ?3)
         ON CONFLICT(id) DO UPDATE SET agent_rev = excluded.agent_rev, agent_body = excluded.agent_body",
    )
    .and_then(|mut st| st.execute(params![id.as_str(), inc.rev.0 as i64, inc.raw.to_string()]))
    .map_err(rejected(id))?;
    Ok(Applied::Written(Written { id: id.clone(), rev, seq: s }))
}
