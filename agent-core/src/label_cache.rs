//! The materialized label cache (plan §3.3, ARCHITECTURE §13.2): one [`LabelIndex`] per
//! process, built from the store's label assignments and rules at start, then kept current from
//! the store's own changes feed (whatever wrote them: the hub's API, or replication on an
//! agent). The rule engine's `label` op asks it per file: one hash lookup for the file's
//! assignment and a few per directory level for rules, never a store query.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::doc::{DocType, Document};
use crate::ids::{FileId, LabelRuleId, Seq};
use crate::labels::LabelIndex;
use crate::store::{Store, StoreError};

/// Label changes read per store query while catching up.
const BATCH: usize = 1000;

/// A shared, self-updating [`LabelIndex`].
#[derive(Clone)]
pub struct LabelCache {
    inner: Arc<RwLock<State>>,
}

struct State {
    index: LabelIndex,
    /// Every label change up to here is applied.
    seq: Seq,
}

impl Default for LabelCache {
    /// An empty cache at seq 0: its first [`LabelCache::catch_up`] replays every label change
    /// the store holds, which ends in the same state as [`LabelCache::build`].
    fn default() -> LabelCache {
        LabelCache { inner: Arc::new(RwLock::new(State { index: LabelIndex::default(), seq: Seq(0) })) }
    }
}

impl LabelCache {
    /// Builds the cache from the store (blocking: call it on the blocking pool).
    pub fn build(store: &Store) -> Result<LabelCache, StoreError> {
        // Read the position first: a change committed while listing is applied again by the
        // next catch-up, which is harmless (set/remove are idempotent).
        let seq = store.committed_seq();
        let mut index = LabelIndex::default();
        for doc in store.list_type(DocType::LabelAssignment)? {
            if let Document::LabelAssignment(a) = doc {
                index.set_assignment(&a);
            }
        }
        for doc in store.list_type(DocType::LabelRule)? {
            if let Document::LabelRule(r) = doc {
                index.set_rule(&r);
            }
        }
        Ok(LabelCache { inner: Arc::new(RwLock::new(State { index, seq })) })
    }

    /// Runs `f` with the index as of the last catch-up (a readdir holds it for its whole
    /// evaluation, so it sees one consistent version).
    pub fn with<R>(&self, f: impl FnOnce(&LabelIndex) -> R) -> R {
        f(&self.inner.read().unwrap_or_else(|p| p.into_inner()).index)
    }

    /// The store seq the cache reflects.
    pub fn seq(&self) -> Seq {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).seq
    }

    /// Applies the label changes committed since the last call (blocking). Returns how many.
    pub fn catch_up(&self, store: &Store) -> Result<usize, StoreError> {
        let target = store.committed_seq();
        let mut applied = 0;
        for doc_type in [DocType::LabelAssignment, DocType::LabelRule] {
            let mut since = self.seq();
            loop {
                let changes = store.changes_of_type_since(doc_type, since, BATCH)?;
                let mut state = self.inner.write().unwrap_or_else(|p| p.into_inner());
                for change in &changes {
                    apply_change(&mut state.index, &change.id, change.deleted, &change.body);
                    since = change.seq;
                    applied += 1;
                }
                if changes.len() < BATCH {
                    break;
                }
            }
        }
        let mut state = self.inner.write().unwrap_or_else(|p| p.into_inner());
        state.seq = state.seq.max(target);
        Ok(applied)
    }

    /// Follows the store: catches up whenever its committed seq moves (looked at every
    /// `every`), until the returned sender is dropped or fired.
    pub fn follow(
        &self,
        store: Store,
        every: Duration,
    ) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
        let cache = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if store.committed_seq() <= cache.seq() {
                    continue;
                }
                let (c, s) = (cache.clone(), store.clone());
                match tokio::task::spawn_blocking(move || c.catch_up(&s)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(operation = "labels.follow", error = %e, "label cache not updated")
                    }
                    Err(e) => {
                        tracing::warn!(operation = "labels.follow", error = %e, "label cache not updated")
                    }
                }
            }
        });
        (stop_tx, task)
    }
}

fn apply_change(index: &mut LabelIndex, id: &crate::ids::DocId, deleted: bool, body: &str) {
    if deleted {
        match id.prefix() {
            "label_file" => {
                let key = &id.as_str()["label_file::".len()..];
                if let Ok(file) = format!("file::{key}").parse::<FileId>() {
                    index.remove_assignment(&file);
                }
            }
            "label_rule" => {
                if let Ok(rule) = id.as_str().parse::<LabelRuleId>() {
                    index.remove_rule(&rule);
                }
            }
            _ => {}
        }
        return;
    }
    match serde_json::from_str::<Document>(body) {
        Ok(Document::LabelAssignment(a)) => index.set_assignment(&a),
        Ok(Document::LabelRule(r)) => index.set_rule(&r),
        Ok(_) => {}
        Err(e) => tracing::warn!(id = %id, error = %e, "unreadable label document skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{fixtures, LabelAssignmentDoc, LabelRuleDoc, NodeSelector};
    use crate::ids::{Label, LabelAssignmentId, Rev};

    fn label(s: &str) -> Label {
        s.parse().unwrap()
    }

    fn names(cache: &LabelCache, file: &crate::doc::FileDoc) -> Vec<String> {
        cache.with(|i| i.labels_of(file).into_iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn built_from_the_store_then_kept_current_from_its_changes() {
        let store = Store::open_in_memory().unwrap();
        let file = fixtures::file("/home/me/Work/plan.pdf");
        let assign = |labels: &[&str], rev: Rev| LabelAssignmentDoc {
            id: LabelAssignmentId::for_file(&file.id),
            rev,
            file_id: file.id.clone(),
            labels: labels.iter().map(|l| label(l)).collect(),
            updated_at: crate::doc::now(),
            updated_by: None,
        };
        let w = store.put(assign(&["urgent"], Rev::NONE).into()).unwrap();
        let cache = LabelCache::build(&store).unwrap();
        assert_eq!(names(&cache, &file), ["urgent"]);

        // A rule and a changed assignment arrive later (a pull, an API write).
        let rule = LabelRuleDoc {
            id: LabelRuleId::generate(),
            rev: Rev::NONE,
            name: "work".into(),
            node_id: NodeSelector::Any,
            path_prefix: "/home/me/Work/".into(),
            labels: vec![label("work")],
            enabled: true,
            created_at: crate::doc::now(),
            updated_at: crate::doc::now(),
        };
        let r = store.put(rule.clone().into()).unwrap();
        store.put(assign(&["later"], w.rev).into()).unwrap();
        assert_eq!(names(&cache, &file), ["urgent"], "not caught up yet");
        assert_eq!(cache.catch_up(&store).unwrap(), 2);
        assert_eq!(names(&cache, &file), ["later", "work"]);
        assert_eq!(cache.catch_up(&store).unwrap(), 0, "nothing new");

        // Tombstones remove.
        store.delete(&r.id, r.rev).unwrap();
        let a = store.get(&LabelAssignmentId::for_file(&file.id).into()).unwrap().unwrap();
        store.delete(&a.id(), w.rev.next()).unwrap();
        cache.catch_up(&store).unwrap();
        assert!(names(&cache, &file).is_empty());
        assert_eq!(cache.seq(), store.committed_seq());
    }

    #[tokio::test]
    async fn follows_the_store() {
        let store = Store::open_in_memory().unwrap();
        let cache = LabelCache::build(&store).unwrap();
        let (stop, task) = cache.follow(store.clone(), Duration::from_millis(10));
        let file = fixtures::file("/a/b.txt");
        let doc = LabelAssignmentDoc {
            id: LabelAssignmentId::for_file(&file.id),
            rev: Rev::NONE,
            file_id: file.id.clone(),
            labels: vec![label("x")],
            updated_at: crate::doc::now(),
            updated_by: None,
        };
        store.put(doc.into()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while names(&cache, &file).is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the follower never caught up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        task.await.unwrap();
    }
}
