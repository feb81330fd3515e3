//! The pure half of the default tree: from the node documents, the directories the hub wants
//! (`/machines/{machine}/{watch path}`) and the mounts of the starter directories. No I/O.
//!
//! Naming (ARCHITECTURE §13.6):
//! - a machine directory is named by the node's friendly name (a `/` becomes `-`, control
//!   characters are dropped, an empty result is the node id); when two enabled nodes share a
//!   name, the one whose directory already has it keeps it (else the smallest node id) and the
//!   others are `name (node id)`;
//! - a watch path directory is named by the path's last component (`root` for `/`); when two
//!   watch paths of one node share it, the first keeps it and the others are `name (2)`,
//!   `name (3)`, ... in watch-path order;
//! - ids are derived from the node id and the watch path, so replanning is idempotent and a
//!   renamed machine keeps its directories' ids and inodes.

use std::collections::{BTreeMap, HashSet};

use agent_core::doc::{ConflictPolicy, MountEntry, MountSource, NodeDoc, Step, StepResult, Strategy};
use agent_core::ids::{DirId, Inode, NodeId};
use sha2::{Digest, Sha256};

/// The parent of every machine directory.
pub const MACHINES: &str = "/machines";
/// Ids of generated machine directories start with this (`dir::machines::{node}[::{path}]`).
pub const MACHINE_ID_PREFIX: &str = "dir::machines::";

/// One directory the hub maintains.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedDir {
    pub id: DirId,
    pub virtual_path: String,
    pub mounts: Vec<MountEntry>,
}

impl PlannedDir {
    pub fn name(&self) -> &str {
        self.virtual_path.rsplit('/').next().unwrap_or("")
    }
}

fn hash16(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..8])
}

fn dir_id(s: &str) -> DirId {
    // Every part is ascii-graphic without '/', so this parses.
    s.parse().unwrap_or_else(|_| DirId::generate())
}

/// The id of `/machines`.
pub fn machines_id() -> DirId {
    dir_id("dir::machines")
}

/// The id of a node's machine directory.
pub fn machine_id(node: &NodeId) -> DirId {
    dir_id(&format!("{MACHINE_ID_PREFIX}{node}"))
}

/// The id of the directory of one of a node's watch paths.
pub fn watch_path_id(node: &NodeId, watch_path: &str) -> DirId {
    dir_id(&format!("{MACHINE_ID_PREFIX}{node}::{}", hash16(watch_path)))
}

/// A generated directory's inode: derived from its id, in `1000..2^63` (stable across restarts,
/// the same after a directory was hidden and shown again).
pub fn inode_of(id: &DirId) -> Inode {
    let d = Sha256::digest(id.as_str().as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    let span = (1u64 << 63) - Inode::FIRST_ASSIGNED;
    Inode(Inode::FIRST_ASSIGNED + u64::from_le_bytes(b) % span)
}

/// A file or directory name made from free text: no `/`, no control characters, not `.`/`..`.
pub fn clean_name(raw: &str, fallback: &str) -> String {
    let s: String =
        raw.trim().chars().filter(|c| !c.is_control()).map(|c| if c == '/' { '-' } else { c }).collect();
    let s = s.trim().to_owned();
    let s: String = if s.len() > 200 { s.chars().take(200).collect() } else { s };
    if s.is_empty() || s == "." || s == ".." {
        fallback.to_owned()
    } else {
        s
    }
}

/// The last component of a watch path (`root` for `/`).
pub fn watch_path_name(path: &str) -> String {
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    clean_name(last, "root")
}

/// The machine directory name of each enabled node. A name two nodes want goes to the one
/// that already holds it (`current`: each node's machine directory name now), else to the
/// smallest node id; the others are `name (node id)`. So a machine's directory is not renamed
/// because another machine with the same name joined.
pub fn machine_names(nodes: &[NodeDoc], current: &BTreeMap<NodeId, String>) -> BTreeMap<NodeId, String> {
    let mut enabled: Vec<(&NodeDoc, String)> = nodes
        .iter()
        .filter(|n| n.enabled)
        .map(|n| (n, clean_name(&n.friendly_name, n.node_id.as_str())))
        .collect();
    // Holders of their plain name first, then by node id.
    enabled.sort_by_key(|(n, name)| (current.get(&n.node_id) != Some(name), n.node_id.clone()));
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = BTreeMap::new();
    let mut later = Vec::new();
    for (n, name) in enabled {
        if taken.insert(name.clone()) {
            out.insert(n.node_id.clone(), name);
        } else {
            later.push((n.node_id.clone(), name));
        }
    }
    for (node, name) in later {
        let mut candidate = format!("{name} ({node})");
        let mut i = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{name} ({node} {i})");
            i += 1;
        }
        out.insert(node, candidate);
    }
    out
}

/// A node's watch paths with their directory names, clashes suffixed `name (2)`, ...
pub fn watch_path_names(watch_paths: &[String]) -> Vec<(String, String)> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for p in watch_paths {
        let base = watch_path_name(p);
        let mut candidate = base.clone();
        let mut i = 2;
        while !taken.insert(candidate.clone()) {
            candidate = format!("{base} ({i})");
            i += 1;
        }
        out.push((p.clone(), candidate));
    }
    out
}

fn mount(
    node: &NodeId,
    export_path: &str,
    steps: Vec<Step>,
    default_result: StepResult,
    strategy: Strategy,
) -> MountEntry {
    MountEntry {
        mount_id: format!("{node}-{}", &hash16(export_path)[..8]),
        source: MountSource { node_id: node.clone(), export_path: export_path.to_owned() },
        steps,
        default_result,
        strategy,
        conflict_policy: match strategy {
            Strategy::PrefixReplace => ConflictPolicy::LastWriteWins,
            Strategy::Flatten => ConflictPolicy::SuffixNodeId,
        },
    }
}

/// `/machines` and, per enabled node, `/machines/{machine}` and one `prefix_replace` directory
/// per watch path. Parents come before their children.
/// `current`: each node's machine directory name now (see [`machine_names`]).
pub fn machines(nodes: &[NodeDoc], current: &BTreeMap<NodeId, String>) -> Vec<PlannedDir> {
    let names = machine_names(nodes, current);
    let mut out = vec![PlannedDir { id: machines_id(), virtual_path: MACHINES.into(), mounts: vec![] }];
    let by_id: BTreeMap<&NodeId, &NodeDoc> = nodes.iter().map(|n| (&n.node_id, n)).collect();
    for (node, name) in &names {
        let Some(doc) = by_id.get(node) else { continue };
        let machine_path = format!("{MACHINES}/{name}");
        out.push(PlannedDir { id: machine_id(node), virtual_path: machine_path.clone(), mounts: vec![] });
        for (path, dir_name) in watch_path_names(&doc.watch_paths) {
            out.push(PlannedDir {
                id: watch_path_id(node, &path),
                virtual_path: format!("{machine_path}/{dir_name}"),
                mounts: vec![mount(node, &path, vec![], StepResult::Include, Strategy::PrefixReplace)],
            });
        }
    }
    out
}

/// The mounts of a starter directory: one `flatten` mount per (enabled node, watch path), each
/// with `steps`, in node-id then watch-path order.
pub fn starter_mounts(nodes: &[NodeDoc], steps: &[Step]) -> Vec<MountEntry> {
    let mut enabled: Vec<&NodeDoc> = nodes.iter().filter(|n| n.enabled).collect();
    enabled.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    enabled
        .iter()
        .flat_map(|n| {
            n.watch_paths
                .iter()
                .map(|p| mount(&n.node_id, p, steps.to_vec(), StepResult::Exclude, Strategy::Flatten))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use agent_core::doc::{NodeStatus, Platform};
    use agent_core::ids::{NodeDocId, Rev};

    pub(crate) fn node(id: &str, name: &str, paths: &[&str]) -> NodeDoc {
        let node_id: NodeId = id.parse().unwrap();
        let t = agent_core::doc::now();
        NodeDoc {
            id: NodeDocId::for_node(&node_id),
            rev: Rev::NONE,
            node_id,
            friendly_name: name.into(),
            enabled: true,
            network_mounts: vec![],
            platform: Platform::current(),
            hostname: "host".into(),
            agent_version: "0.1.0".into(),
            role: None,
            transfer: None,
            capabilities: vec![],
            watch_paths: paths.iter().map(|p| p.to_string()).collect(),
            status: NodeStatus::Online,
            started_at: t,
            last_heartbeat: t,
            observed_status: None,
            last_seen: None,
        }
    }

    fn machines_now(nodes: &[NodeDoc]) -> Vec<PlannedDir> {
        machines(nodes, &BTreeMap::new())
    }

    fn paths(plan: &[PlannedDir]) -> Vec<&str> {
        plan.iter().map(|d| d.virtual_path.as_str()).collect()
    }

    #[test]
    fn each_watch_path_is_named_by_its_last_component() {
        let plan = machines_now(&[node("node-a", "laptop", &["/home/me/Documents", "/srv/photos/"])]);
        assert_eq!(
            paths(&plan),
            ["/machines", "/machines/laptop", "/machines/laptop/Documents", "/machines/laptop/photos"]
        );
        let m = &plan[2].mounts[0];
        assert_eq!(
            (m.source.export_path.as_str(), m.strategy),
            ("/home/me/Documents", Strategy::PrefixReplace)
        );
        assert_eq!(m.source.node_id.as_str(), "node-a");
    }

    #[test]
    fn clashing_names_are_suffixed() {
        let plan = machines_now(&[
            node("node-b", "laptop", &["/a/Documents", "/b/Documents", "/c/Documents"]),
            node("node-a", "laptop", &["/"]),
        ]);
        assert_eq!(
            paths(&plan),
            [
                "/machines",
                "/machines/laptop",
                "/machines/laptop/root",
                "/machines/laptop (node-b)",
                "/machines/laptop (node-b)/Documents",
                "/machines/laptop (node-b)/Documents (2)",
                "/machines/laptop (node-b)/Documents (3)",
            ]
        );
    }

    #[test]
    fn a_machine_keeps_its_name_when_another_with_that_name_joins() {
        let current = BTreeMap::from([("node-b".parse().unwrap(), "laptop".to_owned())]);
        let plan = machines(&[node("node-b", "laptop", &[]), node("node-a", "laptop", &[])], &current);
        assert_eq!(paths(&plan), ["/machines", "/machines/laptop (node-a)", "/machines/laptop"]);
    }

    #[test]
    fn a_rename_keeps_ids_and_inodes() {
        let before = machines_now(&[node("node-a", "laptop", &["/x/Music"])]);
        let after = machines_now(&[node("node-a", "Work/laptop", &["/x/Music"])]);
        assert_eq!(paths(&after), ["/machines", "/machines/Work-laptop", "/machines/Work-laptop/Music"]);
        let ids = |p: &[PlannedDir]| p.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&before), ids(&after));
        assert_eq!(inode_of(&before[2].id), inode_of(&after[2].id));
        assert!(inode_of(&before[2].id).is_assigned());
    }

    #[test]
    fn a_disabled_node_has_no_directory() {
        let mut off = node("node-b", "desk", &["/d"]);
        off.enabled = false;
        let plan = machines_now(&[node("node-a", "laptop", &["/x"]), off.clone()]);
        assert_eq!(paths(&plan), ["/machines", "/machines/laptop", "/machines/laptop/x"]);
        assert!(starter_mounts(&[off], &[]).is_empty());
    }

    #[test]
    fn names_from_free_text_are_valid_components() {
        assert_eq!(clean_name("  a/b\u{7}c ", "x"), "a-bc");
        assert_eq!(clean_name("..", "x"), "x");
        assert_eq!(clean_name("", "node-a"), "node-a");
        assert_eq!(watch_path_name("/"), "root");
    }

    #[test]
    fn starter_mounts_cover_every_watch_path_of_enabled_nodes() {
        let m = starter_mounts(&[node("node-b", "b", &["/p", "/q"]), node("node-a", "a", &["/r"])], &[]);
        let src: Vec<_> =
            m.iter().map(|m| (m.source.node_id.as_str(), m.source.export_path.as_str())).collect();
        assert_eq!(src, [("node-a", "/r"), ("node-b", "/p"), ("node-b", "/q")]);
        assert!(m.iter().all(|m| m.strategy == Strategy::Flatten && m.default_result == StepResult::Exclude));
    }
}
