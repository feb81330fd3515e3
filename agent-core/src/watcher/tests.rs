//! The watcher against real inotify: every wait is a condition polled up to a generous deadline.

use std::time::{Duration, Instant};

use super::*;
use crate::doc::FileStatus;

fn node() -> NodeId {
    "node-watch".parse().unwrap()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    store: Store,
    worker: IndexWorker,
}

fn start(tweak: impl FnOnce(&mut AgentConfig)) -> Fixture {
    start_with(|_| {}, tweak)
}

fn start_with(prepare: impl FnOnce(&Path), tweak: impl FnOnce(&mut AgentConfig)) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("watched");
    std::fs::create_dir_all(&root).unwrap();
    prepare(&root);
    let mut config = AgentConfig::ephemeral(tmp.path().join("data"), vec![root.clone()]);
    config.watcher.debounce = Duration::from_millis(100);
    tweak(&mut config);
    let store = Store::open(&config.store_path()).unwrap();
    let worker = IndexWorker::spawn(store.clone(), node(), &config).unwrap();
    wait_for("the first crawl", || worker.status().first_crawl.is_some());
    Fixture { _tmp: tmp, root, store, worker }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

impl Fixture {
    fn doc(&self, rel: &str) -> Option<crate::doc::FileDoc> {
        self.store.file_by_path(&node(), self.root.join(rel).to_str().unwrap()).unwrap()
    }
    fn active(&self, rel: &str) -> bool {
        self.doc(rel).is_some_and(|d| d.status == FileStatus::Active)
    }
    fn active_count(&self) -> usize {
        let root = self.root.to_str().unwrap();
        self.store
            .file_entries_under(&node(), root)
            .unwrap()
            .iter()
            .filter(|e| e.status == FileStatus::Active)
            .count()
    }
}

#[test]
fn a_new_file_is_indexed_and_a_removed_one_marked_deleted() {
    let f = start(|_| {});
    std::fs::write(f.root.join("hello.txt"), b"hi").unwrap();
    wait_for("hello.txt indexed", || f.active("hello.txt"));
    assert_eq!(f.doc("hello.txt").unwrap().size, 2);
    std::fs::write(f.root.join("hello.txt"), b"hello").unwrap();
    wait_for("the new size", || f.doc("hello.txt").is_some_and(|d| d.size == 5));
    std::fs::remove_file(f.root.join("hello.txt")).unwrap();
    wait_for("hello.txt deleted", || f.doc("hello.txt").is_some_and(|d| d.status == FileStatus::Deleted));
    f.worker.stop();
}

#[test]
fn renames_keep_the_document_for_files_and_directories() {
    let f = start_with(
        |root| {
            std::fs::create_dir_all(root.join("dir/sub")).unwrap();
            std::fs::write(root.join("a.txt"), b"a").unwrap();
            std::fs::write(root.join("dir/sub/b.txt"), b"b").unwrap();
        },
        |_| {},
    );
    let a = f.doc("a.txt").unwrap();
    let b = f.doc("dir/sub/b.txt").unwrap();
    std::fs::rename(f.root.join("a.txt"), f.root.join("renamed.txt")).unwrap();
    wait_for("renamed.txt", || f.active("renamed.txt"));
    let r = f.doc("renamed.txt").unwrap();
    assert_eq!((r.id, r.inode, r.first_seen), (a.id.clone(), a.inode, a.first_seen));
    assert!(f.doc("a.txt").is_none(), "the old path has no document");

    std::fs::rename(f.root.join("dir"), f.root.join("moved")).unwrap();
    wait_for("moved/sub/b.txt", || f.active("moved/sub/b.txt"));
    assert_eq!(f.doc("moved/sub/b.txt").unwrap().id, b.id);
    // The moved directory is watched under its new name.
    std::fs::write(f.root.join("moved/sub/c.txt"), b"c").unwrap();
    wait_for("moved/sub/c.txt", || f.active("moved/sub/c.txt"));
    assert_eq!(f.active_count(), 3);
    f.worker.stop();
}

#[test]
fn ten_thousand_files_created_at_once_end_in_a_correct_index() {
    let f = start(|_| {});
    let dir = f.root.join("bulk");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..10_000 {
        std::fs::write(dir.join(format!("f{i:05}.dat")), i.to_string()).unwrap();
    }
    wait_for("10,000 files", || f.active_count() == 10_000);
    let entries = f.store.file_entries_in_dir(&node(), dir.to_str().unwrap()).unwrap();
    assert_eq!(entries.len(), 10_000);
    assert!(entries.iter().all(|e| e.size == e.name[1..6].parse::<u64>().unwrap().to_string().len() as u64));
    f.worker.stop();
}

#[test]
fn an_event_storm_switches_to_a_full_crawl() {
    let f = start(|c| {
        c.watcher.storm_events_per_sec = 20;
        c.watcher.storm_duration = Duration::from_secs(1);
    });
    // Well above 20 events/s until the worker calls it a storm (however slow this machine is).
    let give_up = Instant::now() + Duration::from_secs(60);
    let mut i = 0;
    while f.worker.status().storms == 0 {
        assert!(Instant::now() < give_up, "no storm detected: {:?}", f.worker.status());
        for _ in 0..10 {
            std::fs::write(f.root.join(format!("s{i}.txt")), b"x").unwrap();
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Files written during the storm are not indexed one by one: the crawl after it finds them.
    for _ in 0..200 {
        std::fs::write(f.root.join(format!("s{i}.txt")), b"x").unwrap();
        i += 1;
    }
    wait_for("the full crawl after the storm", || f.worker.status().full_crawls >= 2);
    wait_for("every file indexed", || f.active_count() == i);
    f.worker.stop();
}

#[test]
fn directories_beyond_the_watch_limit_are_crawled_periodically() {
    let f = start_with(
        |root| {
            for d in ["a", "b", "c"] {
                std::fs::create_dir(root.join(d)).unwrap();
            }
        },
        |c| {
            c.watcher.max_watches = Some(2);
            c.crawler.fallback_interval = Duration::from_secs(1);
        },
    );
    let st = f.worker.status();
    assert_eq!((st.watched_dirs, st.unwatched_dirs), (2, 2), "{st:?}");
    // `c` sorts last: it is one of the unwatched directories.
    std::fs::write(f.root.join("c/late.txt"), b"late").unwrap();
    wait_for("c/late.txt through the periodic crawl", || f.active("c/late.txt"));
    f.worker.stop();
}
