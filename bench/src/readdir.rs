//! `readdir --db STORE`: listing a virtual directory with 10 mount sources over a large store
//! (for example the 500,000 generated documents `run_sync.sh` keeps), through the rule engine
//! (`agent_core::vtree::list`), uncached and from the readdir cache.
//!
//! The directory: 8 `prefix_replace` mounts, one per node, each on a leaf directory of that node
//! with a glob and a size step, and 2 `flatten` mounts over a year of one node's photos with a
//! `**/*.jpg` include; its parent enforces a `not older than 20 years` exclusion on children.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_core::doc::{
    ConflictPolicy, MountEntry, MountSource, OnMatch, Step, StepOp, StepResult, Strategy, VirtualDirectoryDoc,
};
use agent_core::ids::{DirId, Inode, NodeId, Rev};
use agent_core::labels::LabelIndex;
use agent_core::store::Store;
use agent_core::vtree::{self, ReaddirCache, Tree};
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct ReaddirArgs {
    /// A store with generated file documents (`bulk-insert --keep`).
    #[arg(long)]
    db: PathBuf,
    /// Uncached listings timed.
    #[arg(long, default_value_t = 200)]
    runs: usize,
}

fn step(op: StepOp, invert: bool, on_match: OnMatch) -> Step {
    Step { op, invert, on_match }
}

fn mount(
    i: usize,
    node: &NodeId,
    prefix: &str,
    steps: Vec<Step>,
    strategy: Strategy,
    default: StepResult,
) -> MountEntry {
    MountEntry {
        mount_id: format!("m{i}"),
        source: MountSource { node_id: node.clone(), export_path: prefix.to_owned() },
        steps,
        default_result: default,
        strategy,
        conflict_policy: ConflictPolicy::SuffixNodeId,
    }
}

fn dir(path: &str, mounts: Vec<MountEntry>, enforce: bool) -> VirtualDirectoryDoc {
    let now = agent_core::doc::now();
    VirtualDirectoryDoc {
        id: if path == "/" { DirId::root() } else { DirId::generate() },
        rev: Rev(1),
        virtual_path: path.into(),
        name: path.rsplit('/').next().unwrap_or("").into(),
        inode: if path == "/" { Inode::ROOT } else { Inode::generate() },
        system: path == "/",
        enforce_steps_on_children: enforce,
        mounts,
        created_at: now,
        updated_at: now,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn report(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!("{name}.p50: {:.3} ms", percentile(&samples, 0.5));
    println!("{name}.p99: {:.3} ms", percentile(&samples, 0.99));
    println!("{name}.runs: {} count", samples.len());
}

pub fn run(args: &ReaddirArgs) -> Result<()> {
    let store = Store::open(&args.db)?;
    let stats = store.stats()?;
    // The nodes and one populated leaf directory of each, read from the store itself.
    let conn = rusqlite::Connection::open_with_flags(&args.db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = conn.prepare(
        "SELECT node_id, MIN(export_parent) FROM files WHERE status = 0 AND export_parent LIKE '/home/user/Documents/%' GROUP BY node_id ORDER BY node_id",
    )?;
    let leaves: Vec<(NodeId, String)> = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .filter_map(|r| r.ok())
        .filter_map(|(n, p)| Some((n.parse().ok()?, p)))
        .collect();
    if leaves.len() < 2 {
        bail!(
            "{} needs files of at least 2 nodes under /home/user/Documents (bulk-insert --keep)",
            args.db.display()
        );
    }
    let mut mounts = Vec::new();
    for (i, (node, leaf)) in leaves.iter().cycle().take(8).enumerate() {
        let steps = vec![
            step(StepOp::Glob { pattern: "**/*.tmp".into() }, false, OnMatch::Exclude),
            step(StepOp::Size { min_bytes: Some(1), max_bytes: None }, false, OnMatch::Include),
        ];
        mounts.push(mount(i, node, leaf, steps, Strategy::PrefixReplace, StepResult::Exclude));
    }
    for (i, (node, _)) in leaves.iter().take(2).enumerate() {
        let jpg = vec![step(StepOp::Glob { pattern: "**/*.jpg".into() }, false, OnMatch::Include)];
        mounts.push(mount(
            8 + i,
            node,
            "/home/user/Photos/2019",
            jpg,
            Strategy::Flatten,
            StepResult::Exclude,
        ));
    }
    let too_old = step(
        StepOp::Age { older_than_secs: Some(20 * 365 * 86_400), newer_than_secs: None },
        false,
        OnMatch::Exclude,
    );
    let any = &leaves[0].0;
    let parent_rules = mount(99, any, "/", vec![too_old], Strategy::PrefixReplace, StepResult::Include);
    let tree = Tree::from_docs([
        dir("/", vec![], false),
        dir("/bench", vec![parent_rules], true),
        dir("/bench/ten", mounts, false),
    ]);
    let labels = LabelIndex::default();
    let path = "/bench/ten";
    let now = agent_core::doc::now();
    println!("readdir.store_files: {} files", stats.files_active);
    let first = vtree::list(&store, &tree, &labels, path, now)?.expect("the directory resolves");
    println!("readdir.entries: {} entries", first.entries.len());
    for _ in 0..5 {
        vtree::list(&store, &tree, &labels, path, now)?; // warm-up
    }
    let mut uncached = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        let l = vtree::list(&store, &tree, &labels, path, now)?;
        uncached.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(l);
    }
    report("readdir.uncached", uncached);
    let cache = ReaddirCache::new(Duration::from_secs(3600));
    cache.put(std::sync::Arc::new(first.clone()));
    let dir = tree.get(path).expect("the directory");
    let mut cached = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let t = Instant::now();
        let hit = cache.get(path, &dir.id, dir.rev);
        cached.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(std::hint::black_box(hit).is_some());
    }
    report("readdir.cached", cached);
    Ok(())
}
