//! The local cache of remote files (ARCHITECTURE §10), built for remote reads through the mount.
//!
//! - [`cache_key`]: where a file's bytes are cached, SHA-256 of `{node_id}::{export_path}`.
//! - [`block_map`]: which byte ranges of a large (block-mode) file are present.
//! - [`index`]: `cache/index.db` — entries, staleness, LRU eviction planning under a size cap and
//!   a free-space floor, counting bytes actually allocated on disk.
//! - [`store`]: the cache directory — staged full downloads committed only when their digest
//!   and size match, verified ranges written into sparse files, eviction on the insert path,
//!   open files pinned, stale entries dropped at lookup.
//!
//! Tier 4 ([`crate::remote`]) fills it and reads through it.

pub mod block_map;
pub mod index;
pub mod store;

use sha2::{Digest, Sha256};

use crate::ids::NodeId;

/// Where a file's bytes are cached: lowercase hex SHA-256 of `{node_id}::{export_path}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for CacheKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for CacheKey {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// The cache key of a file.
pub fn cache_key(node: &NodeId, export_path: &str) -> CacheKey {
    CacheKey(hex::encode(Sha256::digest(format!("{node}::{export_path}").as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_sha256_of_node_and_path() {
        let node: NodeId = "node-nas".parse().unwrap();
        // printf '%s' 'node-nas::/srv/films/a.mkv' | sha256sum
        assert_eq!(
            cache_key(&node, "/srv/films/a.mkv"),
            "da83caeba75dca2d0ca53e8a86a1a2f85b39083f6fddc95297ac3cd32fb18952"
        );
        assert_eq!(cache_key(&node, "/a").len(), 64);
        assert_ne!(cache_key(&node, "/a"), cache_key(&node, "/b"));
        let other: NodeId = "node-laptop".parse().unwrap();
        assert_ne!(cache_key(&node, "/a"), cache_key(&other, "/a"));
    }
}
