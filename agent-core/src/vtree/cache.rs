//! The readdir cache (plan §3.7): listings kept for a short time (5 s by default), keyed by
//! virtual path and checked against the directory document's revision. The caller also asks
//! [`super::changed_since`] whether the changes feed holds anything that affects the listing
//! since it was made, so an edit shows at once; the TTL bounds what that check cannot see.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Listing;
use crate::ids::DirId;

/// Entries kept at most (the oldest is dropped first).
const MAX_ENTRIES: usize = 4096;

pub struct ReaddirCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Listing)>>,
}

impl ReaddirCache {
    pub fn new(ttl: Duration) -> ReaddirCache {
        ReaddirCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The listing of `path` if it is younger than the TTL and was made from this revision of
    /// its directory.
    pub fn get(&self, path: &str, dir: &DirId, rev: crate::ids::Rev) -> Option<Listing> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (at, listing) = entries.get(path)?;
        (at.elapsed() < self.ttl && listing.dir_id == *dir && listing.dir_rev == rev).then(|| listing.clone())
    }

    pub fn put(&self, listing: Listing) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Inode, Rev};

    fn listing(path: &str, dir: &DirId, rev: u64) -> Listing {
        Listing {
            path: path.into(),
            inode: Inode(1),
            dir_id: dir.clone(),
            dir_rev: Rev(rev),
            entries: vec![],
            seq: crate::ids::Seq(0),
        }
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
