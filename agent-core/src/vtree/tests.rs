//! Listings over an in-memory store: both strategies, both conflict policies, synthesized and
//! virtual subdirectories, inherited steps, labels, deleted files, shared inodes, previews.

use chrono::Duration;

use super::*;
use crate::doc::{fixtures, FileDoc, FileSource, FileStatus, MountSource, OnMatch, Step, StepOp};
use crate::ids::Rev;

fn now() -> DateTime<Utc> {
    fixtures::ts("2026-11-25T12:00:00Z")
}

fn put_file(store: &Store, node: &str, path: &str, age_days: i64) -> FileDoc {
    let mut f = fixtures::file(path);
    f.source = FileSource::new(node.parse().unwrap(), path).unwrap();
    f.name = f.source.name().to_owned();
    f.rev = Rev::NONE;
    f.inode = Inode::generate();
    f.mtime = now() - Duration::days(age_days);
    let w = store.put(f.clone().into()).unwrap();
    f.rev = w.rev;
    f
}

fn mount(
    node: &str,
    prefix: &str,
    steps: Vec<Step>,
    strategy: Strategy,
    policy: ConflictPolicy,
) -> MountEntry {
    MountEntry {
        mount_id: format!("{node}{prefix}"),
        source: MountSource { node_id: node.parse().unwrap(), export_path: prefix.into() },
        steps,
        default_result: StepResult::Include,
        strategy,
        conflict_policy: policy,
    }
}

fn pr(node: &str, prefix: &str) -> MountEntry {
    mount(node, prefix, vec![], Strategy::PrefixReplace, ConflictPolicy::LastWriteWins)
}

fn vdir(path: &str, mounts: Vec<MountEntry>, enforce: bool) -> VirtualDirectoryDoc {
    VirtualDirectoryDoc {
        id: if path == "/" { DirId::root() } else { DirId::generate() },
        rev: Rev(1),
        virtual_path: path.into(),
        name: path.rsplit('/').next().unwrap_or("").into(),
        inode: if path == "/" { Inode::ROOT } else { Inode::generate() },
        system: path == "/",
        enforce_steps_on_children: enforce,
        mounts,
        created_at: now(),
        updated_at: now(),
    }
}

fn names(l: &Listing) -> Vec<String> {
    l.entries.iter().map(|e| e.name.clone()).collect()
}

fn ls(store: &Store, tree: &Tree, path: &str) -> Listing {
    list(store, tree, &LabelIndex::default(), path, now())
        .unwrap()
        .unwrap_or_else(|| panic!("{path} resolves"))
}

#[test]
fn prefix_replace_lists_files_and_synthesized_subdirectories() {
    let store = Store::open_in_memory().unwrap();
    put_file(&store, "node-a", "/home/me/Docs/a.pdf", 1);
    put_file(&store, "node-a", "/home/me/Docs/2024/b.pdf", 1);
    put_file(&store, "node-a", "/home/me/Docs/2024/deep/c.txt", 1);
    put_file(&store, "node-a", "/home/me/Other/x.pdf", 1);
    let mut gone = put_file(&store, "node-a", "/home/me/Docs/gone.pdf", 1);
    gone.status = FileStatus::Deleted;
    gone.deleted_at = Some(now());
    store.put(gone.into()).unwrap();
    let tree = Tree::from_docs([
        vdir("/", vec![], false),
        vdir("/docs", vec![pr("node-a", "/home/me/Docs")], false),
    ]);

    let top = ls(&store, &tree, "/docs");
    assert_eq!(names(&top), ["2024", "a.pdf"], "deleted files never listed; other dirs not mounted");
    assert!(matches!(top.entries[0].kind, EntryKind::Directory { dir_id: None }));
    let sub = ls(&store, &tree, "/docs/2024");
    assert_eq!(names(&sub), ["b.pdf", "deep"]);
    assert_eq!(sub.inode, top.entries[0].inode, "a synthesized directory's inode is stable");
    assert_eq!(names(&ls(&store, &tree, "/docs/2024/deep")), ["c.txt"]);
    assert!(list(&store, &tree, &LabelIndex::default(), "/docs/nope", now()).unwrap().is_none());
    assert_eq!(names(&ls(&store, &tree, "/")), ["docs"]);
}

#[test]
fn flatten_lists_every_matching_file_by_name() {
    let store = Store::open_in_memory().unwrap();
    put_file(&store, "node-a", "/d/a.pdf", 1);
    put_file(&store, "node-a", "/d/x/b.pdf", 1);
    put_file(&store, "node-a", "/d/x/y/c.txt", 1);
    let pdfs =
        Step { op: StepOp::Glob { pattern: "**/*.pdf".into() }, invert: true, on_match: OnMatch::Exclude };
    let m = mount("node-a", "/d", vec![pdfs], Strategy::Flatten, ConflictPolicy::LastWriteWins);
    let tree = Tree::from_docs([vdir("/", vec![], false), vdir("/pdfs", vec![m], false)]);
    assert_eq!(names(&ls(&store, &tree, "/pdfs")), ["a.pdf", "b.pdf"]);
}

#[test]
fn last_write_wins_keeps_the_newest_and_suffix_keeps_both() {
    let store = Store::open_in_memory().unwrap();
    let old = put_file(&store, "node-a", "/a/report.pdf", 10);
    let new = put_file(&store, "node-b", "/b/report.pdf", 1);
    let lww = Tree::from_docs([
        vdir("/", vec![], false),
        vdir("/r", vec![pr("node-a", "/a"), pr("node-b", "/b")], false),
    ]);
    let l = ls(&store, &lww, "/r");
    assert_eq!(names(&l), ["report.pdf"]);
    assert!(matches!(&l.entries[0].kind, EntryKind::File { file_id, .. } if *file_id == new.id));

    // The mounts disagree: the conservative policy applies; the older keeps the plain name.
    let suffix = mount("node-b", "/b", vec![], Strategy::PrefixReplace, ConflictPolicy::SuffixNodeId);
    let mixed =
        Tree::from_docs([vdir("/", vec![], false), vdir("/r", vec![pr("node-a", "/a"), suffix], false)]);
    let l = ls(&store, &mixed, "/r");
    assert_eq!(names(&l), ["report (node-b).pdf", "report.pdf"]);
    assert!(matches!(&l.entries[1].kind, EntryKind::File { file_id, .. } if *file_id == old.id));
}

#[test]
fn a_far_future_mtime_wins_only_until_five_minutes_after_the_hub_received_it() {
    let store = Store::open_in_memory().unwrap();
    let put_received = |node: &str, path: &str, mtime: DateTime<Utc>, received: DateTime<Utc>| {
        let mut f = fixtures::file(path);
        f.source = FileSource::new(node.parse().unwrap(), path).unwrap();
        f.name = f.source.name().to_owned();
        f.rev = Rev::NONE;
        f.inode = Inode::generate();
        f.mtime = mtime;
        f.received_at = Some(received);
        store.put(f.clone().into()).unwrap();
        f
    };
    // Pushed a day ago with a 2099 date; the honest file was written (and pushed) an hour ago.
    let t0 = now() - Duration::days(1);
    let liar = put_received("node-evil", "/e/photo.jpg", fixtures::ts("2099-01-01T00:00:00Z"), t0);
    let honest =
        put_received("node-a", "/a/photo.jpg", now() - Duration::hours(1), now() - Duration::hours(1));
    let tree = Tree::from_docs([
        vdir("/", vec![], false),
        vdir("/p", vec![pr("node-evil", "/e"), pr("node-a", "/a")], false),
    ]);
    let l = ls(&store, &tree, "/p");
    assert!(
        matches!(&l.entries[0].kind, EntryKind::File { file_id, mtime, .. } if *file_id == honest.id && *mtime == honest.mtime),
        "{l:?}"
    );
    // Within five minutes of its receipt, the future mtime still counts as the newest; and the
    // listing shows mtimes as pushed.
    let early = put_received("node-evil", "/e/clip.mp4", fixtures::ts("2099-01-01T00:00:00Z"), now());
    put_received("node-a", "/a/clip.mp4", now() + Duration::minutes(4), now() + Duration::minutes(4));
    let l = ls(&store, &tree, "/p");
    assert!(
        matches!(&l.entries[0].kind, EntryKind::File { file_id, mtime, .. } if *file_id == early.id && *mtime == early.mtime),
        "{l:?}"
    );
    assert_ne!(liar.id, honest.id);
}

#[test]
fn child_directories_win_over_synthesized_ones_and_files_make_way() {
    let store = Store::open_in_memory().unwrap();
    put_file(&store, "node-a", "/s/work/a.txt", 1);
    put_file(&store, "node-a", "/s/notes", 1); // a file named like a child directory
    let tree = Tree::from_docs([
        vdir("/", vec![], false),
        vdir("/v", vec![pr("node-a", "/s")], false),
        vdir("/v/work", vec![], false),
        vdir("/v/notes", vec![], false),
    ]);
    let l = ls(&store, &tree, "/v");
    assert_eq!(names(&l), ["notes", "notes (node-a)", "work"]);
    let work = &l.entries[2];
    assert!(
        matches!(&work.kind, EntryKind::Directory { dir_id: Some(id) } if *id == tree.get("/v/work").unwrap().id)
    );
    assert!(names(&ls(&store, &tree, "/v/work")).is_empty(), "the virtual directory has no mounts");
}

#[test]
fn the_same_file_in_two_directories_has_one_inode() {
    let store = Store::open_in_memory().unwrap();
    let f = put_file(&store, "node-a", "/s/a.txt", 1);
    let tree = Tree::from_docs([
        vdir("/", vec![], false),
        vdir("/one", vec![pr("node-a", "/s")], false),
        vdir("/two", vec![pr("node-a", "/s"), pr("node-a", "/")], false),
    ]);
    let one = ls(&store, &tree, "/one");
    let two = ls(&store, &tree, "/two");
    assert_eq!(one.entries[0].inode, f.inode);
    assert_eq!(
        two.entries.iter().filter(|e| e.inode == f.inode).count(),
        1,
        "listed once despite two mounts"
    );
}

#[test]
fn enforced_ancestor_steps_and_labels_apply() {
    let store = Store::open_in_memory().unwrap();
    let secret = put_file(&store, "node-a", "/s/secret.txt", 1);
    put_file(&store, "node-a", "/s/plain.txt", 1);
    put_file(&store, "node-a", "/s/old.txt", 400);
    let no_old = Step {
        op: StepOp::Age { older_than_secs: Some(365 * 86_400), newer_than_secs: None },
        invert: false,
        on_match: OnMatch::Exclude,
    };
    let no_private = Step {
        op: StepOp::Label {
            labels: vec!["private".parse().unwrap()],
            match_mode: crate::doc::LabelMatch::All,
        },
        invert: false,
        on_match: OnMatch::Exclude,
    };
    let root_rules = mount(
        "node-a",
        "/",
        vec![no_old, no_private],
        Strategy::PrefixReplace,
        ConflictPolicy::LastWriteWins,
    );
    let tree =
        Tree::from_docs([vdir("/", vec![root_rules], true), vdir("/s", vec![pr("node-a", "/s")], false)]);
    let mut labels = LabelIndex::default();
    labels.set_assignment(&crate::doc::LabelAssignmentDoc {
        id: crate::ids::LabelAssignmentId::for_file(&secret.id),
        rev: Rev(1),
        file_id: secret.id.clone(),
        labels: vec!["private".parse().unwrap()],
        updated_at: now(),
        updated_by: None,
    });
    let l = list(&store, &tree, &labels, "/s", now()).unwrap().unwrap();
    assert_eq!(names(&l), ["plain.txt"]);
}

#[test]
fn preview_evaluates_draft_mounts_and_bad_steps_are_named() {
    let store = Store::open_in_memory().unwrap();
    put_file(&store, "node-a", "/s/a.txt", 1);
    let tree = Tree::from_docs([vdir("/", vec![], false)]);
    let l = preview(&store, &tree, &LabelIndex::default(), "/new", &[pr("node-a", "/s")], now()).unwrap();
    assert_eq!(names(&l), ["a.txt"]);
    let bad = Step {
        op: StepOp::Regex { pattern: "(".into(), case_insensitive: false },
        invert: false,
        on_match: OnMatch::Include,
    };
    let m = mount("node-a", "/s", vec![bad], Strategy::PrefixReplace, ConflictPolicy::LastWriteWins);
    match preview(&store, &tree, &LabelIndex::default(), "/new", &[pr("node-a", "/x"), m], now()) {
        Err(VtreeError::Rule(e)) => assert_eq!(e.location, "mounts[1].steps[0]"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_get_suffixes_before_the_extension() {
    assert_eq!(suffixed("a.tar.gz", "n"), "a.tar (n).gz");
    assert_eq!(suffixed(".bashrc", "n"), ".bashrc (n)");
    assert_eq!(suffixed("README", "n 2"), "README (n 2)");
}

#[test]
fn the_changes_feed_says_which_changes_affect_a_listing() {
    let store = Store::open_in_memory().unwrap();
    put_file(&store, "node-a", "/s/a.txt", 1);
    let d = vdir("/v", vec![pr("node-a", "/s")], false);
    let tree = Tree::from_docs([vdir("/", vec![], false), d.clone()]);
    let l = ls(&store, &tree, "/v");
    assert!(!changed_since(&store, &d, l.seq).unwrap(), "nothing happened");
    put_file(&store, "node-b", "/s/elsewhere.txt", 1);
    put_file(&store, "node-a", "/t/outside.txt", 1);
    assert!(!changed_since(&store, &d, l.seq).unwrap(), "other nodes and other paths do not matter");
    let seq = store.committed_seq();
    put_file(&store, "node-a", "/s/deep/b.txt", 1);
    assert!(changed_since(&store, &d, seq).unwrap(), "a file below a mount does");
    let seq = store.committed_seq();
    let rule = crate::doc::LabelRuleDoc {
        id: crate::ids::LabelRuleId::generate(),
        rev: Rev::NONE,
        name: "r".into(),
        node_id: crate::doc::NodeSelector::Any,
        path_prefix: "/".into(),
        labels: vec!["x".parse().unwrap()],
        enabled: true,
        created_at: now(),
        updated_at: now(),
    };
    store.put(rule.into()).unwrap();
    assert!(changed_since(&store, &d, seq).unwrap(), "labels reach every listing");
}

#[test]
fn labels_follow_a_file_across_a_rename() {
    let store = Store::open_in_memory().unwrap();
    let mut f = put_file(&store, "node-a", "/s/draft.txt", 1);
    let keep = Step {
        op: StepOp::Label { labels: vec!["keep".parse().unwrap()], match_mode: crate::doc::LabelMatch::All },
        invert: false,
        on_match: OnMatch::Include,
    };
    let m = MountEntry {
        default_result: StepResult::Exclude,
        ..mount("node-a", "/s", vec![keep], Strategy::Flatten, ConflictPolicy::LastWriteWins)
    };
    let tree = Tree::from_docs([vdir("/", vec![], false), vdir("/kept", vec![m], false)]);
    let mut labels = LabelIndex::default();
    labels.set_assignment(&crate::doc::LabelAssignmentDoc {
        id: crate::ids::LabelAssignmentId::for_file(&f.id),
        rev: Rev(1),
        file_id: f.id.clone(),
        labels: vec!["keep".parse().unwrap()],
        updated_at: now(),
        updated_by: None,
    });
    let names_now = |store: &Store| names(&list(store, &tree, &labels, "/kept", now()).unwrap().unwrap());
    assert_eq!(names_now(&store), ["draft.txt"]);
    // The indexer keeps a file's id across a rename; the label is keyed on that id.
    f.source = FileSource::new("node-a".parse().unwrap(), "/s/sub/final.txt").unwrap();
    f.name = "final.txt".into();
    store.put(f.into()).unwrap();
    assert_eq!(names_now(&store), ["final.txt"]);
}
