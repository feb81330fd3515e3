//! A real FUSE mount of the core in this process (the test runs as root here, as in CI), with
//! a source whose reads of `slow*` files wait at a gate the test opens: listing, `stat` and
//! `statfs` answer while more slow reads are held than there are data workers. No clock: the
//! test waits for the reads to be held, checks, then opens the gate.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::doc::{fixtures, ConflictPolicy, MountEntry, MountSource, StepResult, Strategy};
use crate::ids::NodeId;
use crate::label_cache::LabelCache;
use crate::store::Store;
use crate::vfs::{Content, LocalSource, OpenError, WatchedFiles};
use crate::vtree::Listings;

/// Where slow reads wait: how many are waiting, and whether the gate is open.
#[derive(Default)]
struct Gate {
    state: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl Gate {
    fn pass(&self) {
        let mut st = self.state.lock().unwrap();
        st.0 += 1;
        self.changed.notify_all();
        while !st.1 {
            st = self.changed.wait(st).unwrap();
        }
        st.0 -= 1;
    }

    /// Blocks until `n` reads wait at the gate (a minute at most: then the test fails).
    fn await_waiting(&self, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut st = self.state.lock().unwrap();
        while st.0 < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "only {} of {n} reads reached the source", st.0);
            st = self.changed.wait_timeout(st, left).unwrap().0;
        }
    }

    fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

struct SlowSource {
    inner: WatchedFiles,
    gate: Arc<Gate>,
}

struct SlowContent {
    inner: Box<dyn Content>,
    gate: Arc<Gate>,
}

impl Content for SlowContent {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.gate.pass();
        self.inner.read_at(buf, offset)
    }
    fn file(&self) -> Option<&std::fs::File> {
        None
    }
}

impl LocalSource for SlowSource {
    fn open(&self, export_path: &str) -> Result<Box<dyn Content>, OpenError> {
        let inner = self.inner.open(export_path)?;
        if Path::new(export_path).file_name().is_some_and(|n| n.to_string_lossy().starts_with("slow")) {
            Ok(Box::new(SlowContent { inner, gate: self.gate.clone() }))
        } else {
            Ok(inner)
        }
    }
}

fn index(store: &Store, node: &NodeId, path: &Path) {
    let mut f = fixtures::new_file(node, path.to_str().unwrap());
    f.size = std::fs::metadata(path).unwrap().len();
    store.put(f.into()).unwrap();
}

#[test]
fn listing_answers_while_slow_reads_are_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let node: NodeId = "node-here".parse().unwrap();
    let store = Store::open_in_memory().unwrap();
    let dir = fixtures::new_dir;
    store.put(dir("/", vec![]).into()).unwrap();
    let entry = MountEntry {
        mount_id: "m".into(),
        source: MountSource { node_id: node.clone(), export_path: src.to_str().unwrap().into() },
        steps: vec![],
        default_result: StepResult::Include,
        strategy: Strategy::PrefixReplace,
        conflict_policy: ConflictPolicy::LastWriteWins,
    };
    store.put(dir("/docs", vec![entry]).into()).unwrap();
    for i in 0..12 {
        std::fs::write(src.join(format!("slow{i}.bin")), vec![i as u8; 64 * 1024]).unwrap();
        index(&store, &node, &src.join(format!("slow{i}.bin")));
    }
    std::fs::write(src.join("fast.txt"), b"fast").unwrap();
    index(&store, &node, &src.join("fast.txt"));

    let gate = Arc::new(Gate::default());
    let vfs = Arc::new(Vfs::new(
        store,
        node,
        Arc::new(Listings::new(LabelCache::default(), Duration::from_secs(5))),
        Arc::new(SlowSource { inner: WatchedFiles::new(std::slice::from_ref(&src)), gate: gate.clone() }),
    ));
    let mp = tmp.path().join("mnt");
    let options = VfsConfig { passthrough: false, ..VfsConfig::default() };
    let mounted = mount(vfs, &mp, &options).expect("FUSE mount (the tests run as root with fuse3 installed)");

    // More slow reads than data workers, each stuck in the source for seconds.
    let finished = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..12)
        .map(|i| {
            let (path, finished) = (mp.join(format!("docs/slow{i}.bin")), finished.clone());
            std::thread::spawn(move || {
                let bytes = std::fs::read(path).unwrap();
                finished.fetch_add(1, Ordering::SeqCst);
                bytes
            })
        })
        .collect();
    // Every local data worker is held by a slow read (the other reads queue behind them).
    gate.await_waiting(6);
    assert_eq!(finished.load(Ordering::SeqCst), 0, "the slow reads are held");

    let names: Vec<String> = std::fs::read_dir(mp.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 13);
    assert_eq!(std::fs::metadata(mp.join("docs/slow3.bin")).unwrap().len(), 64 * 1024);
    let statfs_ok = std::process::Command::new("df").arg(&mp).output().unwrap().status.success();
    assert!(statfs_ok);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        0,
        "ls, stat and statfs answered while every slow read was still waiting"
    );
    gate.open();

    for (i, r) in readers.into_iter().enumerate() {
        assert_eq!(r.join().unwrap(), vec![i as u8; 64 * 1024]);
    }
    mounted.unmount().unwrap();
    assert!(std::fs::read_dir(&mp).unwrap().next().is_none(), "unmounted");
}
