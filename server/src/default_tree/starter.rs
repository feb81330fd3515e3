//! Starter directories: examples of the rule engine made once, on the first start of a new hub
//! (README "Starter directories"). Ordinary directories: a user may edit or delete them.
//!
//! - `/recent`: files changed in the last 7 days (`age`), and `/by-type/{documents,images,
//!   audio,video}` (`mime`), each `flatten` over every (enabled node, watch path).
//! - The hub keeps, in its store's `meta` table, that it seeded them
//!   (`default_tree.starter_seeded`: never again, even after they are deleted) and a digest of
//!   the mounts it last generated for each (`default_tree.starter.{id}`). While a directory's
//!   mounts still have that digest, new nodes and watch paths are added to it; once they differ
//!   (the user edited them) it is left as it is.

use agent_core::doc::{self, Document, NodeDoc, OnMatch, Step, StepOp, VirtualDirectoryDoc};
use agent_core::ids::{DirId, DocId, Rev};
use agent_core::store::Store;
use sha2::{Digest, Sha256};

use super::plan;

const SEEDED: &str = "default_tree.starter_seeded";
const DIGEST_PREFIX: &str = "default_tree.starter.";

/// Seven days, in seconds.
pub const RECENT_SECS: u64 = 7 * 24 * 3600;

/// The mime types `/by-type/documents` shows.
pub const DOCUMENT_TYPES: &[&str] = &[
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/rtf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/epub+zip",
];

/// One starter directory: its id, path and the steps of each of its mounts (`None`: a parent
/// without mounts).
pub struct Starter {
    pub id: &'static str,
    pub virtual_path: &'static str,
    pub steps: Option<Vec<Step>>,
}

fn include(op: StepOp) -> Option<Vec<Step>> {
    Some(vec![Step { op, invert: false, on_match: OnMatch::Include }])
}

fn mime(types: &[&str]) -> Option<Vec<Step>> {
    include(StepOp::Mime { types: types.iter().map(|t| t.to_string()).collect() })
}

/// The starter directories, parents first.
pub fn starters() -> Vec<Starter> {
    vec![
        Starter {
            id: "dir::starter::recent",
            virtual_path: "/recent",
            steps: include(StepOp::Age { older_than_secs: None, newer_than_secs: Some(RECENT_SECS) }),
        },
        Starter { id: "dir::starter::by-type", virtual_path: "/by-type", steps: None },
        Starter {
            id: "dir::starter::by-type::documents",
            virtual_path: "/by-type/documents",
            steps: mime(DOCUMENT_TYPES),
        },
        Starter {
            id: "dir::starter::by-type::images",
            virtual_path: "/by-type/images",
            steps: mime(&["image/*"]),
        },
        Starter {
            id: "dir::starter::by-type::audio",
            virtual_path: "/by-type/audio",
            steps: mime(&["audio/*"]),
        },
        Starter {
            id: "dir::starter::by-type::video",
            virtual_path: "/by-type/video",
            steps: mime(&["video/*"]),
        },
    ]
}

fn digest(mounts: &[agent_core::doc::MountEntry]) -> String {
    let json = serde_json::to_vec(mounts).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

fn dir_id(s: &str) -> DirId {
    s.parse().unwrap_or_else(|_| DirId::generate())
}

/// Makes the starter directories if this hub never did and holds no directory of a user's
/// (then it is not new). Returns how many it made.
pub fn seed_once(store: &Store) -> agent_core::store::Result<usize> {
    if store.meta_get(SEEDED)?.is_some() {
        return Ok(0);
    }
    let dirs = super::dirs_of(store)?;
    let users = dirs.iter().any(|d| d.id != DirId::root() && !d.system);
    let mut made = 0;
    if !users {
        let nodes = super::nodes_of(store)?;
        let now = doc::now();
        for s in starters() {
            if dirs.iter().any(|d| d.virtual_path == s.virtual_path) {
                continue;
            }
            let id = dir_id(s.id);
            let mounts =
                s.steps.as_ref().map(|steps| plan::starter_mounts(&nodes, steps)).unwrap_or_default();
            let d = VirtualDirectoryDoc {
                id: id.clone(),
                rev: Rev::NONE,
                name: s.virtual_path.rsplit('/').next().unwrap_or("").to_owned(),
                virtual_path: s.virtual_path.to_owned(),
                inode: plan::inode_of(&id),
                system: false,
                enforce_steps_on_children: false,
                mounts,
                created_at: now,
                updated_at: now,
            };
            store.meta_set(&format!("{DIGEST_PREFIX}{}", s.id), &digest(&d.mounts))?;
            store.put(Document::VirtualDirectory(d))?;
            made += 1;
        }
        tracing::info!(directories = made, "starter directories made (/recent, /by-type)");
    }
    store.meta_set(SEEDED, &doc::now().to_rfc3339())?;
    Ok(made)
}

/// Adds nodes and watch paths to the starter directories the user has not edited (their
/// mounts still have the digest the hub wrote). Returns how many it rewrote.
pub fn follow_nodes(store: &Store, nodes: &[NodeDoc]) -> agent_core::store::Result<usize> {
    let mut written = 0;
    for s in starters() {
        let Some(steps) = &s.steps else { continue };
        let id = dir_id(s.id);
        let Some(Document::VirtualDirectory(mut d)) = store.get(&DocId::from(&id))? else { continue };
        let key = format!("{DIGEST_PREFIX}{}", s.id);
        if store.meta_get(&key)?.as_deref() != Some(digest(&d.mounts).as_str()) {
            continue; // edited by a user: theirs now
        }
        let mounts = plan::starter_mounts(nodes, steps);
        if mounts == d.mounts {
            continue;
        }
        d.mounts = mounts;
        d.updated_at = doc::now();
        let new_digest = digest(&d.mounts);
        store.put(Document::VirtualDirectory(d))?;
        store.meta_set(&key, &new_digest)?;
        written += 1;
    }
    Ok(written)
}
