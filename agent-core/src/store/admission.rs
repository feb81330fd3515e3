//! What the hub requires of a pushed document before it applies it (ARCHITECTURE §5.1, §5.3),
//! beyond its own validation: checked inside the push's transaction against what is stored, so
//! one node cannot change what the others see of another node's documents.
//!
//! - **Ownership**, of the pushed document and of the one it would replace. A tombstone records
//!   its owner (`_owner`) when the hub applies it, so a later tombstone or a document reusing
//!   the id is checked against that owner too; a tombstone with no owner on record (written
//!   before this existed, or by the hub) may not be tombstoned again by a node.
//! - An **annotation** is of a file of the signer's own.
//! - A file's **inode** is not any other file's, nor a virtual directory's: a random draw can
//!   collide too, so the refusal (`inode_taken`) makes the agent draw a new one and push again.
//!
//! [`stamp`] then writes what only the hub may say: a file's `received_at` and a tombstone's
//! `_owner`, over whatever the agent sent.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction};

use super::apply::{rejected, stored_document, Incoming};
use super::PutError;
use crate::doc::{Document, Owner, Timestamp};
use crate::ids::{DocId, FileId, Inode, NodeId};

/// The key a tombstone's owner is kept under in its stored body.
pub const TOMBSTONE_OWNER: &str = "_owner";

/// Inodes held by virtual directories (hub-owned, few): read once per push.
pub(super) struct TakenInodes(HashSet<u64>);

impl TakenInodes {
    pub(super) fn of_directories(tx: &Transaction<'_>) -> rusqlite::Result<TakenInodes> {
        let mut st = tx.prepare_cached(
            "SELECT json_extract(body, '$.inode') FROM docs WHERE type = 'virtual_directory' AND deleted = 0",
        )?;
        let inodes = st.query_map([], |r| r.get::<_, Option<i64>>(0))?;
        let mut set = HashSet::new();
        for i in inodes {
            if let Some(i) = i? {
                set.insert(i as u64);
            }
        }
        Ok(TakenInodes(set))
    }
}

fn owned_by(doc: &Document, signer: &NodeId) -> Result<(), String> {
    match doc.owner() {
        Owner::Node(n) if n == *signer => Ok(()),
        Owner::Node(n) => Err(format!("{} {} is owned by node {n}", doc.doc_type().as_str(), doc.id())),
        Owner::Hub => Err(format!("{} is owned by the hub", doc.doc_type().as_str())),
    }
}

/// What the hub holds under an id.
enum Stored {
    Live(Box<Document>),
    /// A tombstone, with the owner it recorded (none: older, or the hub's).
    Tombstone(Option<NodeId>),
    Absent,
}

fn stored(tx: &Transaction<'_>, id: &DocId) -> Result<Stored, PutError> {
    if let Some(doc) = stored_document(tx, id)? {
        return Ok(Stored::Live(Box::new(doc)));
    }
    let row: Option<(bool, String)> = tx
        .prepare_cached("SELECT deleted, body FROM docs WHERE id = ?1")
        .and_then(|mut st| st.query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(rejected(id))?;
    Ok(match row {
        None => Stored::Absent,
        Some((true, body)) => Stored::Tombstone(
            serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get(TOMBSTONE_OWNER)?.as_str()?.parse().ok()),
        ),
        // A live body that does not parse: whoever owns the id may repair it.
        Some((false, _)) => Stored::Absent,
    })
}

/// Whether `signer` may write `inc` (see the module docs).
pub(super) fn admit(
    tx: &Transaction<'_>,
    inc: &Incoming,
    signer: &NodeId,
    directories: &TakenInodes,
) -> Result<(), PutError> {
    let id = inc.id.to_string();
    let not_owner = |reason: String| PutError::NotOwner { id: id.clone(), reason };
    if let Some(doc) = &inc.doc {
        owned_by(doc, signer).map_err(not_owner)?;
    }
    match stored(tx, &inc.id)? {
        Stored::Live(doc) => owned_by(&doc, signer).map_err(not_owner)?,
        Stored::Tombstone(Some(owner)) if owner == *signer => {}
        Stored::Tombstone(Some(owner)) => {
            return Err(not_owner(format!("{} was deleted by its owner, node {owner}", inc.id)))
        }
        Stored::Tombstone(None) if inc.doc.is_none() => {
            return Err(not_owner("a tombstone over a document deleted with no owner on record".into()))
        }
        // An older tombstone: a live document may take the id again (it is the signer's).
        Stored::Tombstone(None) => {}
        Stored::Absent if inc.doc.is_none() => {
            return Err(not_owner("a tombstone for a document the hub does not hold".into()))
        }
        Stored::Absent => {}
    }
    match &inc.doc {
        Some(Document::Annotation(a)) => match file_owner(tx, &a.file_id)? {
            Some(owner) if owner == *signer => Ok(()),
            Some(owner) => Err(not_owner(format!("annotation of {}, a file of node {owner}", a.file_id))),
            None => Err(not_owner(format!("annotation of {}, a file the hub does not hold", a.file_id))),
        },
        Some(Document::File(f)) => inode_free(tx, &f.id, f.inode, directories),
        _ => Ok(()),
    }
}

/// The node of a live file document.
fn file_owner(tx: &Transaction<'_>, file: &FileId) -> Result<Option<NodeId>, PutError> {
    let id = DocId::from(file);
    let node: Option<Option<String>> = tx
        .prepare_cached(
            "SELECT json_extract(body, '$.source.node_id') FROM docs WHERE id = ?1 AND type = 'file' AND deleted = 0",
        )
        .and_then(|mut st| st.query_row([id.as_str()], |r| r.get(0)).optional())
        .map_err(rejected(&id))?;
    Ok(node.flatten().and_then(|n| n.parse().ok()))
}

fn inode_free(tx: &Transaction<'_>, file: &FileId, inode: Inode, dirs: &TakenInodes) -> Result<(), PutError> {
    let taken = |by: String| PutError::InodeTaken {
        id: file.to_string(),
        reason: format!("inode {inode} belongs to {by}; draw another"),
    };
    if dirs.0.contains(&inode.0) {
        return Err(taken("a virtual directory".into()));
    }
    let other: Option<String> = tx
        .prepare_cached("SELECT id FROM files WHERE inode = ?1 AND id <> ?2 LIMIT 1")
        .and_then(|mut st| {
            st.query_row(rusqlite::params![inode.0 as i64, file.as_str()], |r| r.get(0)).optional()
        })
        .map_err(rejected(&DocId::from(file)))?;
    match other {
        Some(other) => Err(taken(other)),
        None => Ok(()),
    }
}

/// Writes what only the hub says into an admitted document: a file's `received_at` (its
/// receipt now, whatever the agent sent), a tombstone's owner.
pub(super) fn stamp(inc: &mut Incoming, signer: &NodeId, now: Timestamp) {
    match &mut inc.doc {
        Some(Document::File(f)) => {
            f.received_at = Some(now);
            if let Ok(v) = serde_json::to_value(now) {
                inc.raw["received_at"] = v;
            }
        }
        None => inc.raw[TOMBSTONE_OWNER] = serde_json::Value::String(signer.to_string()),
        Some(_) => {}
    }
}
