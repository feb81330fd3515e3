use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::*;
use crate::doc::FileStatus;
use crate::ids::{NodeId, Seq};
use crate::store::Store;

fn node() -> NodeId {
    "node-test".parse().unwrap()
}

fn write(p: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

fn run(store: &Store, root: &Path) -> CrawlSummary {
    let mut ix = Indexer::new(store.clone(), node(), 3); // tiny batches exercise the flush path
    let opts = CrawlOptions::new(&["**/.git".to_string()], Duration::from_secs(60)).unwrap();
    crawl(&mut ix, &[root.to_owned()], &opts, &mut NoObserver).unwrap()
}

fn active(store: &Store, root: &Path) -> Vec<String> {
    let mut v: Vec<String> = store
        .file_entries_under(&node(), root.to_str().unwrap())
        .unwrap()
        .into_iter()
        .filter(|e| e.status == FileStatus::Active)
        .map(|e| e.export_path)
        .collect();
    v.sort();
    v
}

#[test]
fn first_crawl_then_unchanged_recrawl_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("w");
    for i in 0..10 {
        write(&root.join(format!("d{}/f{i}.txt", i % 3)), format!("{i}").as_bytes());
    }
    write(&root.join("top.pdf"), b"%PDF");
    let store = Store::open_in_memory().unwrap();
    let s = run(&store, &root);
    assert_eq!((s.seen, s.added, s.changed, s.deleted, s.skipped, s.errors), (11, 11, 0, 0, 0, 0));
    assert_eq!(s.dirs, 4);
    let seq = store.last_seq();
    let s = run(&store, &root);
    assert_eq!((s.seen, s.added, s.changed, s.deleted, s.skipped), (11, 0, 0, 0, 11));
    assert_eq!(store.last_seq(), seq, "an unchanged tree writes no document");
    let f = store.file_by_path(&node(), root.join("top.pdf").to_str().unwrap()).unwrap().unwrap();
    assert_eq!(f.mime.as_deref(), Some("application/pdf"));
    assert_eq!(f.size, 4);
}

#[test]
fn changes_deletions_and_reappearance_keep_ids_and_inodes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("w");
    write(&root.join("a/keep.txt"), b"1");
    write(&root.join("a/grow.txt"), b"1");
    write(&root.join("a/gone.txt"), b"1");
    write(&root.join("b/c/deep.txt"), b"1");
    let store = Store::open_in_memory().unwrap();
    run(&store, &root);
    let path = |p: &str| root.join(p).to_str().unwrap().to_owned();
    let before = store.file_by_path(&node(), &path("a/grow.txt")).unwrap().unwrap();
    let gone_before = store.file_by_path(&node(), &path("a/gone.txt")).unwrap().unwrap();

    write(&root.join("a/grow.txt"), b"12345");
    std::fs::remove_file(root.join("a/gone.txt")).unwrap();
    std::fs::remove_dir_all(root.join("b")).unwrap();
    let s = run(&store, &root);
    assert_eq!((s.changed, s.deleted, s.skipped, s.added), (1, 2, 1, 0));
    let after = store.file_by_path(&node(), &path("a/grow.txt")).unwrap().unwrap();
    assert_eq!(
        (after.id.clone(), after.inode, after.first_seen),
        (before.id, before.inode, before.first_seen)
    );
    assert_eq!(after.size, 5);
    assert_eq!(active(&store, &root), vec![path("a/grow.txt"), path("a/keep.txt")]);
    let gone = store.file_by_path(&node(), &path("a/gone.txt")).unwrap().unwrap();
    assert_eq!(gone.status, FileStatus::Deleted);
    assert!(gone.deleted_at.is_some());

    // The same path again: the same document comes back.
    write(&root.join("a/gone.txt"), b"back");
    let s = run(&store, &root);
    assert_eq!(s.added, 1);
    let back = store.file_by_path(&node(), &path("a/gone.txt")).unwrap().unwrap();
    assert_eq!((back.id, back.inode, back.status), (gone_before.id, gone_before.inode, FileStatus::Active));
}

#[test]
fn symlinks_are_never_followed_and_bad_names_are_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("w");
    let outside = tmp.path().join("outside");
    write(&root.join("real/a.txt"), b"a");
    write(&outside.join("secret.txt"), b"s");
    std::os::unix::fs::symlink(&root, root.join("real/loop")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("escape")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("broken")).unwrap();
    let bad = std::ffi::OsStr::from_bytes(b"bad-\xff.txt");
    std::fs::write(root.join(bad), b"x").unwrap();
    write(&root.join(".git/objects/x"), b"x");

    let store = Store::open_in_memory().unwrap();
    let s = run(&store, &root);
    assert_eq!(s.symlinks, 4);
    assert_eq!(s.errors, 1, "the non-UTF-8 name");
    assert_eq!(active(&store, &root), vec![root.join("real/a.txt").to_str().unwrap().to_owned()]);
    assert!(store.file_entries_under(&node(), outside.to_str().unwrap()).unwrap().is_empty());
}

#[test]
fn a_missing_watch_path_keeps_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("w");
    write(&root.join("a.txt"), b"a");
    let store = Store::open_in_memory().unwrap();
    run(&store, &root);
    std::fs::rename(&root, tmp.path().join("unplugged")).unwrap();
    let s = run(&store, &root);
    assert_eq!((s.errors, s.deleted), (1, 0));
    assert_eq!(active(&store, &root).len(), 1);
}

#[test]
fn ids_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("w");
    write(&root.join("x/y.txt"), b"y");
    let db = tmp.path().join("agent.db");
    let store = Store::open(&db).unwrap();
    run(&store, &root);
    let id = store.file_by_path(&node(), root.join("x/y.txt").to_str().unwrap()).unwrap().unwrap().id;
    store.close().unwrap();
    let store = Store::open(&db).unwrap();
    assert_eq!(store.last_seq(), Seq(1));
    let s = run(&store, &root);
    assert_eq!(s.skipped, 1);
    let again = store.file_by_path(&node(), root.join("x/y.txt").to_str().unwrap()).unwrap().unwrap().id;
    assert_eq!(again, id);
}

#[test]
fn renames_keep_the_document() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("w");
    write(&root.join("d/a.txt"), b"a");
    write(&root.join("d/sub/b.txt"), b"b");
    write(&root.join("target.txt"), b"t");
    let store = Store::open_in_memory().unwrap();
    run(&store, &root);
    let p = |s: &str| root.join(s).to_str().unwrap().to_owned();
    let a = store.file_by_path(&node(), &p("d/a.txt")).unwrap().unwrap();
    let b = store.file_by_path(&node(), &p("d/sub/b.txt")).unwrap().unwrap();
    let t = store.file_by_path(&node(), &p("target.txt")).unwrap().unwrap();

    let mut ix = Indexer::new(store.clone(), node(), 100);
    std::fs::rename(root.join("d"), root.join("e")).unwrap();
    assert_eq!(ix.rename(&p("d"), &p("e")).unwrap(), 2);
    let a2 = store.file_by_path(&node(), &p("e/a.txt")).unwrap().unwrap();
    let b2 = store.file_by_path(&node(), &p("e/sub/b.txt")).unwrap().unwrap();
    assert_eq!((a2.id, a2.inode), (a.id.clone(), a.inode));
    assert_eq!((b2.id, b2.inode, b2.source.export_parent.clone()), (b.id, b.inode, p("e/sub")));

    // Renaming onto an existing file: the moved file takes the path, the replaced one is deleted.
    std::fs::rename(root.join("e/a.txt"), root.join("target.txt")).unwrap();
    ix.rename(&p("e/a.txt"), &p("target.txt")).unwrap();
    let now_target = store.file_by_path(&node(), &p("target.txt")).unwrap().unwrap();
    assert_eq!(now_target.id, a.id);
    let Some(crate::doc::Document::File(old_t)) = store.get(&t.id.clone().into()).unwrap() else { panic!() };
    assert_eq!(old_t.status, FileStatus::Deleted);
    // A crawl afterwards agrees and changes nothing.
    let s = run(&store, &root);
    assert_eq!((s.added, s.changed, s.deleted), (0, 0, 0), "{s:?}");
}
