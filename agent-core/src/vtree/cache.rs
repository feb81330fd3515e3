//! The readdir cache (plan §3.7): listings kept for a short time (5 s by default), keyed by
//! virtual path and checked against the directory document's revision. The caller also asks
//! [`super::changed_since`] whether the changes feed holds anything that affects the listing
//! since it was made, so an edit shows at once; the TTL bounds what that check cannot see.
//!
//! [`Listings`] puts the pieces together for a caller that lists paths (the hub's `GET /api/vfs`
//! and the mount): the directory tree (reloaded only when a virtual-directory document changed),
//! the label cache and the readdir cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{changed_since, list, Listing, Tree, VtreeError};
use crate::doc::DocType;
use crate::ids::{DirId, Seq};
use crate::label_cache::LabelCache;
use crate::store::{Store, StoreError};

/// Entries kept at most (the oldest is dropped first).
const MAX_ENTRIES: usize = 4096;

pub struct ReaddirCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Listing>)>>,
}

impl ReaddirCache {
    pub fn new(ttl: Duration) -> ReaddirCache {
        ReaddirCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The listing of `path` if it is younger than the TTL and was made from this revision of
    /// its directory.
    pub fn get(&self, path: &str, dir: &DirId, rev: crate::ids::Rev) -> Option<Arc<Listing>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, listing) = entries.get(path)?;
        (at.elapsed() < self.ttl && listing.dir_id == *dir && listing.dir_rev == rev).then(|| listing.clone())
    }

    pub fn put(&self, listing: Arc<Listing>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(listing.path.clone(), (Instant::now(), listing));
    }

    /// Drops everything (a label or directory change that must show at once).
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// The directory tree, loaded from the store and reloaded only when a `virtual_directory`
/// document changed since (so a lookup does not parse every directory document).
#[derive(Default)]
pub struct TreeCache {
    /// The tree and the store seq it reflects.
    loaded: Mutex<Option<(Seq, Arc<Tree>)>>,
}

impl TreeCache {
    /// The current tree (blocking).
    pub fn get(&self, store: &Store) -> Result<Arc<Tree>, StoreError> {
        let now = store.committed_seq();
        let cached = self.loaded.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some((seq, tree)) = cached {
            if seq == now || store.changes_of_type_since(DocType::VirtualDirectory, seq, 1)?.is_empty() {
                let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
                if loaded.as_ref().is_some_and(|(s, _)| *s < now) {
                    *loaded = Some((now, tree.clone()));
                }
                return Ok(tree);
            }
        }
        // The position is read before loading: a change committed meanwhile is seen next time.
        let tree = Arc::new(Tree::load(store)?);
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, tree.clone()));
        Ok(tree)
    }
}

/// Listings of virtual paths for one store: the tree, the labels and the readdir cache.
pub struct Listings {
    trees: TreeCache,
    labels: LabelCache,
    readdir: ReaddirCache,
}

impl Listings {
    /// `ttl` is the readdir cache's (zero: every listing is evaluated afresh).
    pub fn new(labels: LabelCache, ttl: Duration) -> Listings {
        Listings { trees: TreeCache::default(), labels, readdir: ReaddirCache::new(ttl) }
    }

    pub fn tree(&self, store: &Store) -> Result<Arc<Tree>, StoreError> {
        self.trees.get(store)
    }

    pub fn labels(&self) -> &LabelCache {
        &self.labels
    }

    /// Lists `path` (blocking): from the readdir cache while nothing relevant changed,
    /// otherwise evaluated with labels brought up to date. `Ok(None)` when the path names nothing.
    pub fn list(&self, store: &Store, path: &str) -> Result<Option<Arc<Listing>>, VtreeError> {
        let tree = self.trees.get(store)?;
        let Some((dir, _)) = tree.resolve(path) else { return Ok(None) };
        if let Some(hit) = self.readdir.get(path, &dir.id, dir.rev) {
            if !changed_since(store, dir, hit.seq)? {
                return Ok(Some(hit));
            }
        }
        let started = Instant::now();
        if self.labels.seq() < store.committed_seq() {
            self.labels.catch_up(store)?;
        }
        let listing = self.labels.with(|index| list(store, &tree, index, path, crate::doc::now()))?;
        tracing::debug!(
            operation = "vtree.list",
            path,
            entries = listing.as_ref().map_or(0, |l| l.entries.len()),
            elapsed_us = started.elapsed().as_micros() as u64,
            "listing evaluated"
        );
        Ok(listing.map(|l| {
            let l = Arc::new(l);
            self.readdir.put(l.clone());
            l
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Inode, Rev};

    fn listing(path: &str, dir: &DirId, rev: u64) -> Arc<Listing> {
        Arc::new(Listing {
            path: path.into(),
            inode: Inode(1),
            dir_id: dir.clone(),
            dir_rev: Rev(rev),
            entries: vec![],
            seq: crate::ids::Seq(0),
        })
    }

    #[test]
    fn hits_within_the_ttl_for_the_same_revision_only() {
        let cache = ReaddirCache::new(Duration::from_millis(200));
        let dir = DirId::generate();
        cache.put(listing("/a", &dir, 3));
        assert!(cache.get("/a", &dir, Rev(3)).is_some());
        assert!(cache.get("/a", &dir, Rev(4)).is_none(), "the directory changed");
        assert!(cache.get("/a", &DirId::generate(), Rev(3)).is_none(), "another directory at that path");
        assert!(cache.get("/b", &dir, Rev(3)).is_none());
        std::thread::sleep(Duration::from_millis(250));
        assert!(cache.get("/a", &dir, Rev(3)).is_none(), "expired");
        cache.put(listing("/a", &dir, 3));
        cache.clear();
        assert!(cache.get("/a", &dir, Rev(3)).is_none());
    }
}
