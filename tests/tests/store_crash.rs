//! Crash consistency: a process writing batches through the store is killed with SIGKILL in the
//! middle of its writes, 20 times over. After each kill the store reopens, `PRAGMA
//! integrity_check` passes, and every batch is wholly present or wholly absent.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_core::doc::FileStatus;
use agent_core::ids::NodeId;
use agent_core::store::Store;
use mosaicfs_tests::{own_bin, Proc};

const BATCH: usize = 500;

#[test]
fn sigkill_during_bulk_writes_never_leaves_a_partial_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("torture.db");
    let node: NodeId = "node-torture".parse().unwrap();
    let mut committed_before = 0usize;
    for round in 0..20u64 {
        let mut p = Proc::spawn(
            Command::new(own_bin("store-torture"))
                .arg(&db)
                .arg(BATCH.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let stdout = p.child.as_mut().unwrap().stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it commit a couple of batches, then kill it at a pseudo-random moment of the next.
        let wait_batches = 1 + (round % 3) as usize;
        for _ in 0..wait_batches {
            let line = lines.next().expect("writer output").unwrap();
            assert!(line.starts_with("committed "), "{line}");
        }
        std::thread::sleep(Duration::from_micros(1_000 + (round * 7_919) % 20_000));
        p.signal(libc::SIGKILL);
        let status = p.wait(Duration::from_secs(30));
        assert!(!status.success());

        let store = Store::open(&db).unwrap();
        assert_eq!(store.integrity_check().unwrap(), Ok(()), "round {round}");
        let mut parents = store.parents_under(&node, "/torture").unwrap();
        parents.sort();
        for (k, parent) in parents.iter().enumerate() {
            assert_eq!(parent, &format!("/torture/b{k:08}"), "round {round}: batches are contiguous");
            let entries = store.file_entries_in_dir(&node, parent).unwrap();
            assert_eq!(entries.len(), BATCH, "round {round}: batch {k} is partial");
            assert!(entries.iter().all(|e| e.status == FileStatus::Active));
        }
        // Documents and their projection were committed together.
        let stats = store.stats().unwrap();
        let file_docs = stats.docs_by_type.iter().find(|(t, _)| t == "file").map_or(0, |(_, n)| *n);
        assert_eq!(file_docs, stats.files_active, "round {round}: docs and files agree");
        assert_eq!(stats.last_seq, file_docs, "round {round}: one sequence number per document");
        assert!(parents.len() >= committed_before + wait_batches, "round {round}: committed batches survive");
        committed_before = parents.len();
    }
}
