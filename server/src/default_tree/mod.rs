//! The default tree (ARCHITECTURE §13.6): virtual directories the hub — the single writer of
//! virtual directories — keeps in step with the node documents it merges.
//!
//! - `/machines/{machine}/{watch path}` (system directories): one per enabled node and watch
//!   path, a `prefix_replace` mount of that path; renamed with the node, removed while it is
//!   disabled and back (same ids, same inodes) when it is enabled again ([`plan`]).
//! - Starter directories (ordinary, deletable): `/recent` and `/by-type/{documents,images,audio,
//!   video}`, made once on the first start of a new hub ([`starter`]); while a starter
//!   directory's mounts are still the ones the hub generated, nodes and watch paths that appear
//!   later are added; once a user edits or deletes it, it is left alone.
//!
//! One task follows the store's node documents ([`spawn`]): whenever one changes (a push
//! merged, a PATCH, the liveness sweep) it reconciles, under the same lock as the REST
//! handlers that write virtual directories. Reconciling writes only what differs.

pub mod plan;
pub mod starter;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use agent_core::doc::{self, DocType, Document, NodeDoc, VirtualDirectoryDoc};
use agent_core::ids::{DocId, Rev, Seq};
use agent_core::store::Store;

use plan::PlannedDir;

/// How often the task looks for a new committed seq.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// What one reconcile wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub written: usize,
    pub removed: usize,
}

fn nodes_of(store: &Store) -> agent_core::store::Result<Vec<NodeDoc>> {
    Ok(store
        .list_type(DocType::Node)?
        .into_iter()
        .filter_map(|d| match d {
            Document::Node(n) => Some(n),
            _ => None,
        })
        .collect())
}

fn dirs_of(store: &Store) -> agent_core::store::Result<Vec<VirtualDirectoryDoc>> {
    Ok(store
        .list_type(DocType::VirtualDirectory)?
        .into_iter()
        .filter_map(|d| match d {
            Document::VirtualDirectory(v) => Some(v),
            _ => None,
        })
        .collect())
}

/// Writes `want` as a system directory unless it is already so: a live document is updated
/// in place (keeping its inode and creation time), a tombstoned one is brought back over its
/// revision. Returns whether it wrote.
fn put_system(
    store: &Store,
    want: &PlannedDir,
    live: Option<&VirtualDirectoryDoc>,
) -> agent_core::store::Result<bool> {
    let now = doc::now();
    let mut d = match live {
        Some(d) if d.virtual_path == want.virtual_path && d.mounts == want.mounts && d.system => {
            return Ok(false)
        }
        Some(d) => d.clone(),
        None => {
            let rev = store.get_raw(&DocId::from(&want.id))?.map(|r| r.rev).unwrap_or(Rev::NONE);
            VirtualDirectoryDoc {
                id: want.id.clone(),
                rev,
                virtual_path: String::new(),
                name: String::new(),
                inode: plan::inode_of(&want.id),
                system: true,
                enforce_steps_on_children: false,
                mounts: vec![],
                created_at: now,
                updated_at: now,
            }
        }
    };
    d.virtual_path = want.virtual_path.clone();
    d.name = want.name().to_owned();
    d.mounts = want.mounts.clone();
    d.system = true;
    d.updated_at = now;
    store.put(Document::VirtualDirectory(d))?;
    Ok(true)
}

/// Brings `/machines` in line with the node documents, then the starter directories' mounts.
/// Blocking (store calls): run it on the store's blocking pool.
pub fn reconcile(store: &Store) -> agent_core::store::Result<Outcome> {
    let nodes = nodes_of(store)?;
    let dirs = dirs_of(store)?;
    // Each node's machine directory name now (kept when another node wants it too).
    let current = nodes
        .iter()
        .filter_map(|n| {
            let id = plan::machine_id(&n.node_id);
            dirs.iter().find(|d| d.id == id).map(|d| (n.node_id.clone(), d.name.clone()))
        })
        .collect();
    let wanted = plan::machines(&nodes, &current);
    let mut out = Outcome::default();

    let wanted_ids: HashSet<&str> = wanted.iter().map(|d| d.id.as_str()).collect();
    let by_id: BTreeMap<&str, &VirtualDirectoryDoc> = dirs.iter().map(|d| (d.id.as_str(), d)).collect();
    // Removed first (a disabled node's paths may be taken by a renamed one), deepest first.
    let mut gone: Vec<&VirtualDirectoryDoc> = dirs
        .iter()
        .filter(|d| d.id.as_str().starts_with(plan::MACHINE_ID_PREFIX) && !wanted_ids.contains(d.id.as_str()))
        .collect();
    gone.sort_by_key(|d| std::cmp::Reverse(d.virtual_path.matches('/').count()));
    for d in gone {
        store.delete(&DocId::from(&d.id), d.rev)?;
        out.removed += 1;
    }
    // A path someone else's directory holds is skipped (with everything below it).
    let mut blocked: Vec<String> = Vec::new();
    for want in &wanted {
        if blocked.iter().any(|b| want.virtual_path.starts_with(&format!("{b}/"))) {
            continue;
        }
        let generated = |d: &VirtualDirectoryDoc| {
            d.id == plan::machines_id() || d.id.as_str().starts_with(plan::MACHINE_ID_PREFIX)
        };
        // Generated directories may pass each other's paths during one pass (a rename).
        let taken =
            dirs.iter().any(|d| d.virtual_path == want.virtual_path && d.id != want.id && !generated(d));
        if taken {
            tracing::info!(virtual_path = %want.virtual_path, "default tree: the path is another directory's; not made");
            blocked.push(want.virtual_path.clone());
            continue;
        }
        if put_system(store, want, by_id.get(want.id.as_str()).copied())? {
            out.written += 1;
        }
    }
    out.written += starter::follow_nodes(store, &nodes)?;
    if out != Outcome::default() {
        tracing::info!(written = out.written, removed = out.removed, "default tree updated");
    }
    Ok(out)
}

/// At start: the starter directories (first start of a new hub only), then a reconcile; then,
/// whenever a node document changes, a reconcile. `writes` is the REST handlers' lock for
/// virtual directories.
pub fn spawn(store: Store, writes: std::sync::Arc<tokio::sync::Mutex<()>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = Seq(0);
        let mut first = true;
        loop {
            let committed = store.committed_seq();
            if first || committed > seen {
                let s = store.clone();
                let since = seen;
                let guard = writes.lock().await;
                let done = s
                    .run(move |s| {
                        let changed = !s.changes_of_type_since(DocType::Node, since, 1)?.is_empty();
                        if first {
                            starter::seed_once(s)?;
                        }
                        if first || changed {
                            reconcile(s)?;
                        }
                        Ok(())
                    })
                    .await;
                drop(guard);
                match done {
                    Ok(()) => {
                        seen = committed;
                        first = false;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "default tree: reconcile failed; retried in 5 s");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    })
}

#[cfg(test)]
mod tests;
