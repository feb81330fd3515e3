//! The agent's side of the push (ARCHITECTURE §5.1): the push checkpoint, the outbox depth, and
//! raising a document's revision above the hub's after the hub answered `stale` for a revision
//! it already held (this store was lost and rebuilt; the owner's latest content is the truth).

use rusqlite::{params, OptionalExtension};

use super::write::Written;
use super::{Result, Store};
use crate::ids::{DocId, Rev, Seq};
use crate::wire::HubEpoch;

/// The `meta` key of the highest local seq the hub has answered for.
pub const PUSH_CHECKPOINT: &str = "push_checkpoint";
/// The `meta` key of the epoch of the hub the checkpoints refer to.
pub const HUB_EPOCH: &str = "hub_epoch";

/// What [`Store::observe_hub_epoch`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EpochSeen {
    /// The first answer of any hub: remembered.
    First,
    Same,
    /// Another epoch than the checkpoints refer to: both were reset.
    Changed {
        previous: HubEpoch,
    },
}

impl Store {
    /// The highest local seq whose document the hub has answered (0 before the first push).
    pub fn push_checkpoint(&self) -> Result<Seq> {
        Ok(Seq(self.meta_get(PUSH_CHECKPOINT)?.and_then(|v| v.parse().ok()).unwrap_or(0)))
    }

    /// Moves the push checkpoint from `from` forward to `to`, if it is still at `from` (a new
    /// hub epoch may have reset it while the batch was out, §5.8). `false` when it did not move.
    pub fn advance_push_checkpoint(&self, from: Seq, to: Seq) -> Result<bool> {
        if to <= from {
            return Ok(false);
        }
        let mut w = self.writer();
        let tx = w.conn.transaction()?;
        let current: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", [PUSH_CHECKPOINT], |r| r.get(0))
            .optional()?;
        if current.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) != from.0 {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![PUSH_CHECKPOINT, to.0.to_string()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Records the hub's epoch as an answer reports it (§5.8). A hub seen for the first time is
    /// remembered; a hub whose epoch changed (restored from a backup) resets both checkpoints in
    /// the same transaction, so everything is pushed again and the whole feed pulled again.
    pub fn observe_hub_epoch(&self, epoch: &HubEpoch) -> Result<EpochSeen> {
        let mut w = self.writer();
        let tx = w.conn.transaction()?;
        let stored: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = ?1", [HUB_EPOCH], |r| r.get(0)).optional()?;
        let seen = match stored {
            Some(s) if s == epoch.0 => return Ok(EpochSeen::Same),
            Some(previous) => {
                for key in [PUSH_CHECKPOINT, super::apply::PULL_CHECKPOINT] {
                    tx.execute("DELETE FROM meta WHERE key = ?1", [key])?;
                }
                EpochSeen::Changed { previous: HubEpoch(previous) }
            }
            None => EpochSeen::First,
        };
        tx.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![HUB_EPOCH, epoch.0],
        )?;
        tx.commit()?;
        Ok(seen)
    }

    /// How many of this node's documents wait to be pushed.
    pub fn outbox_depth(&self, after: Seq) -> Result<u64> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM docs WHERE seq > ?1 AND origin = 0")?
                .query_row([after.0 as i64], |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    /// Rewrites this node's own document `id` at revision `above + 1` (same content, new seq,
    /// so it is pushed again and wins). `None` when the local revision is already higher or the
    /// document is not this node's own.
    pub fn raise_rev(&self, id: &DocId, above: Rev) -> Result<Option<Written>> {
        self.transaction(|tx, seq| {
            let row: Option<(i64, String)> = tx
                .prepare_cached("SELECT rev, body FROM docs WHERE id = ?1 AND origin = 0")?
                .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((rev, body)) = row else { return Ok(None) };
            if rev as u64 > above.0 {
                return Ok(None);
            }
            let rev = above.next();
            let mut value: serde_json::Value = serde_json::from_str(&body)?;
            value["_rev"] = serde_json::json!(rev.0);
            let s = seq.take();
            tx.prepare_cached("UPDATE docs SET rev = ?2, seq = ?3, body = ?4 WHERE id = ?1")?
                .execute(params![id.as_str(), rev.0 as i64, s.0 as i64, value.to_string()])?;
            tx.prepare_cached("UPDATE files SET rev = ?2 WHERE id = ?1")?
                .execute(params![id.as_str(), rev.0 as i64])?;
            Ok(Some(Written { id: id.clone(), rev, seq: s }))
        })
    }

    /// Gives this node's own file `id` a new random inode (the hub answered `inode_taken`:
    /// another file or directory holds the old one) at the next revision, with a new seq, so it
    /// is pushed again. `None` when the file is not this node's own or is gone.
    pub fn reinode(&self, id: &crate::ids::FileId) -> Result<Option<(Written, crate::ids::Inode)>> {
        self.transaction(|tx, seq| {
            let row: Option<(i64, String)> = tx
                .prepare_cached("SELECT rev, body FROM docs WHERE id = ?1 AND origin = 0 AND deleted = 0")?
                .query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((rev, body)) = row else { return Ok(None) };
            let mut value: serde_json::Value = serde_json::from_str(&body)?;
            if value.get("type").and_then(|t| t.as_str()) != Some("file") {
                return Ok(None);
            }
            let inode = crate::ids::Inode::generate();
            let rev = Rev(rev as u64).next();
            value["_rev"] = serde_json::json!(rev.0);
            value["inode"] = serde_json::json!(inode.0);
            let s = seq.take();
            tx.prepare_cached("UPDATE docs SET rev = ?2, seq = ?3, body = ?4 WHERE id = ?1")?
                .execute(params![id.as_str(), rev.0 as i64, s.0 as i64, value.to_string()])?;
            tx.prepare_cached("UPDATE files SET rev = ?2, inode = ?3 WHERE id = ?1")?.execute(params![
                id.as_str(),
                rev.0 as i64,
                inode.0 as i64
            ])?;
            Ok(Some((Written { id: DocId::from(id), rev, seq: s }, inode)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::fixtures;

    #[test]
    fn a_file_whose_inode_is_taken_gets_a_new_one_and_is_pushed_again() {
        let store = Store::open_in_memory().unwrap();
        let mut file = fixtures::file("/data/x.txt");
        file.rev = Rev::NONE;
        let first = store.put(file.clone().into()).unwrap();
        store.advance_push_checkpoint(Seq(0), first.seq).unwrap();
        let (w, inode) = store.reinode(&file.id).unwrap().expect("an own file");
        assert_ne!(inode, file.inode);
        assert!(inode.is_assigned());
        assert_eq!(w.rev, first.rev.next());
        assert!(w.seq > first.seq);
        assert_eq!(store.outbox_depth(first.seq).unwrap(), 1, "in the outbox again");
        let Some(crate::doc::Document::File(now)) = store.get(&DocId::from(&file.id)).unwrap() else {
            panic!("the file")
        };
        assert_eq!((now.inode, now.rev, now.source.export_path.as_str()), (inode, w.rev, "/data/x.txt"));
        let by_path = store.file_by_path(&now.source.node_id, "/data/x.txt").unwrap().unwrap();
        assert_eq!(by_path.inode, inode, "the projection too");
        assert!(store.reinode(&crate::ids::FileId::generate()).unwrap().is_none());
    }

    #[test]
    fn checkpoint_depth_and_raise() {
        let store = Store::open_in_memory().unwrap();
        let mut file = fixtures::file("/data/x.txt");
        file.rev = Rev::NONE;
        let id = DocId::from(file.id.clone());
        let w = store.put(file.into()).unwrap();
        assert_eq!(store.push_checkpoint().unwrap(), Seq(0));
        assert_eq!(store.outbox_depth(Seq(0)).unwrap(), 1);
        assert!(!store.advance_push_checkpoint(Seq(3), w.seq).unwrap(), "not at 3: does not move");
        assert!(store.advance_push_checkpoint(Seq(0), w.seq).unwrap());
        assert!(!store.advance_push_checkpoint(w.seq, Seq(0)).unwrap(), "never back");
        assert_eq!(store.push_checkpoint().unwrap(), w.seq);
        assert_eq!(store.outbox_depth(w.seq).unwrap(), 0);

        // The hub holds rev 7 of a document this store has at rev 1.
        let raised = store.raise_rev(&id, Rev(7)).unwrap().unwrap();
        assert_eq!(raised.rev, Rev(8));
        assert!(raised.seq > w.seq);
        let raw = store.get_raw(&id).unwrap().unwrap();
        assert_eq!(raw.rev, Rev(8));
        assert!(raw.body.contains("\"_rev\":8"));
        assert_eq!(store.outbox(w.seq, 10).unwrap().len(), 1);
        // Already higher: nothing to do.
        assert_eq!(store.raise_rev(&id, Rev(3)).unwrap(), None);
    }

    #[test]
    fn a_new_hub_epoch_resets_both_checkpoints_once() {
        let store = Store::open_in_memory().unwrap();
        let (e1, e2) = (HubEpoch("e1".into()), HubEpoch("e2".into()));
        assert_eq!(store.observe_hub_epoch(&e1).unwrap(), EpochSeen::First);
        store.advance_push_checkpoint(Seq(0), Seq(40)).unwrap();
        store.meta_set(crate::store::PULL_CHECKPOINT, "900").unwrap();
        assert_eq!(store.observe_hub_epoch(&e1).unwrap(), EpochSeen::Same);
        assert_eq!((store.push_checkpoint().unwrap(), store.pull_checkpoint().unwrap()), (Seq(40), Seq(900)));
        assert_eq!(store.observe_hub_epoch(&e2).unwrap(), EpochSeen::Changed { previous: e1 });
        assert_eq!((store.push_checkpoint().unwrap(), store.pull_checkpoint().unwrap()), (Seq(0), Seq(0)));
        // A batch pushed before the reset cannot move the checkpoint past what the new hub lacks.
        assert!(!store.advance_push_checkpoint(Seq(40), Seq(60)).unwrap());
        assert_eq!(store.observe_hub_epoch(&e2).unwrap(), EpochSeen::Same, "reset once");
    }
}
