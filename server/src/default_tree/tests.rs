//! The default tree against a real (in-memory) hub store.

use agent_core::doc::{Document, NodeDoc, StepOp, VirtualDirectoryDoc};
use agent_core::ids::{DocId, NodeDocId};
use agent_core::store::Store;

use super::plan::tests::node;
use super::{reconcile, starter};

fn put_node(store: &Store, n: NodeDoc) {
    let mut n = n;
    if let Some(Document::Node(old)) = store.get(&NodeDocId::for_node(&n.node_id).into()).unwrap() {
        n.rev = old.rev;
    }
    store.put(Document::Node(n)).unwrap();
}

fn dirs(store: &Store) -> Vec<VirtualDirectoryDoc> {
    let mut d = super::dirs_of(store).unwrap();
    d.sort_by(|a, b| a.virtual_path.cmp(&b.virtual_path));
    d
}

fn paths(store: &Store) -> Vec<String> {
    dirs(store).into_iter().map(|d| d.virtual_path).collect()
}

fn store() -> Store {
    let s = Store::open_hub_in_memory().unwrap();
    s.put(Document::VirtualDirectory(VirtualDirectoryDoc::root(agent_core::doc::now()))).unwrap();
    s
}

#[test]
fn machines_follow_nodes_through_rename_disable_and_enable() {
    let s = store();
    put_node(&s, node("node-a", "laptop", &["/home/me/Documents"]));
    reconcile(&s).unwrap();
    assert_eq!(paths(&s), ["/", "/machines", "/machines/laptop", "/machines/laptop/Documents"]);
    let first = dirs(&s);
    assert!(first.iter().skip(1).all(|d| d.system));
    // Idempotent: nothing to write the second time.
    assert_eq!(reconcile(&s).unwrap(), super::Outcome::default());

    let mut renamed = node("node-a", "Work laptop", &["/home/me/Documents"]);
    put_node(&s, renamed.clone());
    reconcile(&s).unwrap();
    assert_eq!(paths(&s), ["/", "/machines", "/machines/Work laptop", "/machines/Work laptop/Documents"]);
    let inode_of = |s: &Store, p: &str| dirs(s).into_iter().find(|d| d.virtual_path == p).map(|d| d.inode);
    assert_eq!(inode_of(&s, "/machines/Work laptop/Documents"), Some(first[3].inode));

    renamed.enabled = false;
    put_node(&s, renamed.clone());
    reconcile(&s).unwrap();
    assert_eq!(paths(&s), ["/", "/machines"]);

    renamed.enabled = true;
    put_node(&s, renamed);
    reconcile(&s).unwrap();
    assert_eq!(paths(&s), ["/", "/machines", "/machines/Work laptop", "/machines/Work laptop/Documents"]);
    assert_eq!(inode_of(&s, "/machines/Work laptop/Documents"), Some(first[3].inode));
}

#[test]
fn a_new_watch_path_and_a_second_node_with_the_same_name() {
    let s = store();
    put_node(&s, node("node-b", "pc", &["/x/Music"]));
    reconcile(&s).unwrap();
    put_node(&s, node("node-b", "pc", &["/x/Music", "/y/Music"]));
    put_node(&s, node("node-c", "pc", &["/z"]));
    reconcile(&s).unwrap();
    assert_eq!(
        paths(&s),
        [
            "/",
            "/machines",
            "/machines/pc",
            "/machines/pc (node-c)",
            "/machines/pc (node-c)/z",
            "/machines/pc/Music",
            "/machines/pc/Music (2)"
        ]
    );
}

#[test]
fn a_users_directory_on_a_generated_path_is_left_alone() {
    let s = store();
    let mut mine = VirtualDirectoryDoc::root(agent_core::doc::now());
    mine.id = agent_core::ids::DirId::generate();
    mine.virtual_path = "/machines".into();
    mine.name = "machines".into();
    mine.inode = agent_core::ids::Inode::generate();
    mine.system = false;
    s.put(Document::VirtualDirectory(mine)).unwrap();
    put_node(&s, node("node-a", "laptop", &["/d"]));
    reconcile(&s).unwrap();
    assert_eq!(paths(&s), ["/", "/machines"]);
}

#[test]
fn starter_directories_are_seeded_once_follow_new_nodes_until_edited() {
    let s = store();
    put_node(&s, node("node-a", "laptop", &["/d"]));
    assert_eq!(starter::seed_once(&s).unwrap(), 6);
    reconcile(&s).unwrap();
    let get = |s: &Store, id: &str| match s.get(&id.parse::<DocId>().unwrap()).unwrap() {
        Some(Document::VirtualDirectory(d)) => Some(d),
        _ => None,
    };
    let recent = get(&s, "dir::starter::recent").unwrap();
    assert_eq!(recent.mounts.len(), 1);
    assert!(matches!(recent.mounts[0].steps[0].op, StepOp::Age { newer_than_secs: Some(604800), .. }));
    assert!(agent_core::rules::check_mounts(&recent.mounts).is_ok());

    // A node that joins later is added.
    put_node(&s, node("node-b", "desk", &["/e", "/f"]));
    reconcile(&s).unwrap();
    assert_eq!(get(&s, "dir::starter::recent").unwrap().mounts.len(), 3);
    assert_eq!(get(&s, "dir::starter::by-type::documents").unwrap().mounts.len(), 3);

    // Edited by a user: left alone from then on.
    let mut docs = get(&s, "dir::starter::by-type::documents").unwrap();
    docs.mounts.truncate(1);
    s.put(Document::VirtualDirectory(docs)).unwrap();
    // Deleted by a user: not made again.
    let images = get(&s, "dir::starter::by-type::images").unwrap();
    s.delete(&DocId::from(&images.id), images.rev).unwrap();
    put_node(&s, node("node-c", "nas", &["/g"]));
    reconcile(&s).unwrap();
    assert_eq!(starter::seed_once(&s).unwrap(), 0);
    assert_eq!(get(&s, "dir::starter::recent").unwrap().mounts.len(), 4);
    assert_eq!(get(&s, "dir::starter::by-type::documents").unwrap().mounts.len(), 1);
    assert!(get(&s, "dir::starter::by-type::images").is_none());
}

#[test]
fn a_hub_with_users_directories_gets_no_starters() {
    let s = store();
    let mut mine = VirtualDirectoryDoc::root(agent_core::doc::now());
    mine.id = agent_core::ids::DirId::generate();
    mine.virtual_path = "/work".into();
    mine.name = "work".into();
    mine.inode = agent_core::ids::Inode::generate();
    mine.system = false;
    s.put(Document::VirtualDirectory(mine)).unwrap();
    assert_eq!(starter::seed_once(&s).unwrap(), 0);
    assert_eq!(paths(&s), ["/", "/work"]);
}
