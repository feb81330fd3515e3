//! A writer for the crash-consistency test: commits batches of file documents through
//! `Store::put_many` forever, printing `committed N` after each. The test kills it with SIGKILL
//! at random moments and checks that every batch is wholly present or wholly absent.
//!
//! usage: store-torture DB BATCH_SIZE
//! Batch k's documents all live in directory `/torture/b{k:08}`.

use agent_core::doc::{Document, FileDoc, FileSource, FileStatus};
use agent_core::ids::{FileId, Inode, NodeId, Rev};
use agent_core::store::Store;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(db), Some(size)) = (args.get(1), args.get(2).and_then(|s| s.parse::<usize>().ok())) else {
        eprintln!("usage: store-torture DB BATCH_SIZE");
        std::process::exit(2);
    };
    let store = match Store::open(std::path::Path::new(db)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("store-torture: {e}");
            std::process::exit(1);
        }
    };
    let node: NodeId = "node-torture".parse().expect("valid node id");
    // Continue after the batches a previous (killed) run committed.
    let mut k = store.parents_under(&node, "/torture").map(|p| p.len()).unwrap_or(0);
    let mut out = std::io::stdout().lock();
    loop {
        let batch: Vec<Document> = (0..size).map(|i| doc(&node, k, i)).collect();
        if let Err(e) = store.put_many(batch) {
            eprintln!("store-torture: {e}");
            std::process::exit(1);
        }
        let _ = writeln!(out, "committed {k}");
        let _ = out.flush();
        k += 1;
    }
}

fn doc(node: &NodeId, batch: usize, i: usize) -> Document {
    let path = format!("/torture/b{batch:08}/file-{i:05}.bin");
    let source = FileSource::new(node.clone(), &path).expect("valid path");
    Document::File(FileDoc {
        id: FileId::generate(),
        rev: Rev::NONE,
        name: source.name().to_owned(),
        source,
        size: (batch * 1000 + i) as u64,
        mtime: agent_core::doc::now(),
        mime: None,
        inode: Inode::generate(),
        status: FileStatus::Active,
        first_seen: agent_core::doc::now(),
        deleted_at: None,
        received_at: None,
    })
}
