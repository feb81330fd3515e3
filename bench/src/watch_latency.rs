//! `mosaicfs-bench watch-latency`: how long after a file is written the agent's index has it.
//!
//! Starts the real indexing worker (first crawl, inotify watches, debounce) on a scratch
//! directory, then writes `--files` new files one at a time and, for each, polls the store every
//! millisecond until the file's document is there. The floor is the debounce (500 ms by default:
//! a path must be quiet that long before it is indexed). Target: under 1 s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent_core::config::AgentConfig;
use agent_core::store::Store;
use agent_core::watcher::IndexWorker;
use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct WatchLatencyArgs {
    /// Scratch directory (created; its `watched/` and `data/` are removed first).
    #[arg(long)]
    dir: PathBuf,
    /// Files to write, one at a time.
    #[arg(long, default_value_t = 20)]
    files: usize,
    /// The watcher's debounce.
    #[arg(long, default_value_t = 500)]
    debounce_ms: u64,
    #[arg(long, default_value = "watch.latency")]
    name: String,
}

pub fn run(args: &WatchLatencyArgs) -> Result<()> {
    let watched = args.dir.join("watched");
    let data = args.dir.join("data");
    for d in [&watched, &data] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
    }
    std::fs::create_dir_all(&watched)?;
    let mut config = AgentConfig::ephemeral(data, vec![watched.clone()]);
    config.watcher.debounce = Duration::from_millis(args.debounce_ms);
    let node = config.load_or_create_node_id()?;
    let store = Store::open(&config.store_path())?;
    let worker = IndexWorker::spawn(store.clone(), node.clone(), &config)?;
    wait(Duration::from_secs(30), || worker.status().first_crawl.is_some()).context("first crawl")?;

    let mut lat = Vec::with_capacity(args.files);
    for i in 0..args.files {
        let path = watched.join(format!("new-{i:04}.txt"));
        std::fs::write(&path, format!("file {i}"))?;
        let written = Instant::now();
        let key = path.to_str().context("UTF-8 path")?.to_owned();
        wait(Duration::from_secs(30), || store.file_by_path(&node, &key).ok().flatten().is_some())
            .with_context(|| format!("{key} never indexed"))?;
        lat.push(written.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.stop();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    let n = &args.name;
    println!("{n}.debounce: {} ms", args.debounce_ms);
    println!("{n}.files: {} count", lat.len());
    println!("{n}.median: {:.1} ms", pct(0.5));
    println!("{n}.p95: {:.1} ms", pct(0.95));
    println!("{n}.min: {:.1} ms", lat[0]);
    println!("{n}.max: {:.1} ms", lat[lat.len() - 1]);
    Ok(())
}

fn wait(limit: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !cond() {
        if Instant::now() > deadline {
            bail!("timed out after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
