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
//! Not built yet (issue 7): the transfer server and client that fill it, the reads through the
//! mount that use it, shared in-flight fetches.

pub mod block_map;
pub mod index;
pub mod store;

use sha2::{Digest, Sha256};

use crate::ids::NodeId;

/// The cache key of a file: lowercase hex SHA-256 of `{node_id}::{export_path}`.
pub fn cache_key(node: &NodeId, export_path: &str) -> String {
    hex::encode(Sha256::digest(format!("{node}::{export_path}").as_bytes()))
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
