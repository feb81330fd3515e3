//! `mosaicfs-bench`: store benchmarks and the synthetic document generator on the command line.
//!
//! - `mosaicfs-bench bulk-insert --db PATH [--docs 500000] [--batch 50000] [--runs 3]
//!   [--name store.bulk_insert]`: writes `--docs` generated file documents into a fresh store
//!   through `Store::put_many`, `--batch` documents per call (one transaction each), `--runs`
//!   times, and prints `name: value unit` lines like the naive-ingest peer
//!   (`shared/bench/sqlite_ingest_rs`): `insert` times the put loop, `insert_close` adds
//!   `Store::close` (WAL checkpoint). Generation is not timed. Exits non-zero if any document
//!   was refused.
//! - `mosaicfs-bench gen-docs --docs N [--seed S]`: newline-delimited JSON documents on stdout.
//! - `mosaicfs-bench watch-latency --dir DIR [--files 20]`: new file → indexed, through the
//!   real watcher (see `watch_latency.rs`).
//! - `mosaicfs-bench seed-hub --from AGENT_DB --hub HUB_DB`: a hub store filled from an agent
//!   store through the push path (see `seed_hub.rs`).
//! - `mosaicfs-bench http-latency --url U --admin-secret F NAME=PATH...` and `http-load --url U
//!   --admin-secret F --name N --path P --rate R --duration S`: API latency and fixed-rate load
//!   against a running control plane (see `http.rs`).
//! - `mosaicfs-bench sync-cold --hub-data DIR` and `sync-steady [--files 1000] [--rate 100]
//!   [--idle-secs 60]`: replication across real processes (see `sync_bench.rs`).
//! - `mosaicfs-bench readdir --db STORE`: a 10-mount directory listed through the rule engine,
//!   uncached and cached (see `readdir.rs`).

mod http;
mod readdir;
mod remote_pair;
mod seed_hub;
mod sync_bench;
mod watch_latency;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use agent_core::doc::Document;
use agent_core::store::Store;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use mosaicfs_bench::{DocGen, GenOptions};

#[derive(Parser)]
#[command(
    name = "mosaicfs-bench",
    version,
    about = "MosaicFS benchmarks: store bulk insert, synthetic file documents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bulk-insert generated file documents into a fresh store, several times; print timings.
    BulkInsert(BulkInsertArgs),
    /// Print generated file documents as newline-delimited JSON on stdout.
    GenDocs(GenDocsArgs),
    /// Time from writing a new file to its document in the index, through the real watcher.
    WatchLatency(watch_latency::WatchLatencyArgs),
    /// Copy the file documents of an agent store into a hub store (with its name index).
    SeedHub(seed_hub::SeedHubArgs),
    /// Latency of API requests one after another (p50/p99 per request path).
    HttpLatency(http::LatencyArgs),
    /// Open-loop load at a fixed request rate: achieved rate and latency percentiles.
    HttpLoad(http::LoadArgs),
    /// Listing a virtual directory with 10 mount sources, uncached and cached.
    Readdir(readdir::ReaddirArgs),
    /// Cold replication: a fresh agent pulls a seeded hub's documents.
    SyncCold(sync_bench::ColdArgs),
    /// Steady replication: new files on agent A until visible on B; idle hub CPU and RSS.
    SyncSteady(sync_bench::SteadyArgs),
    /// A hub and a serving agent A; agent B joined to mount A's directory (run_remote.sh).
    RemotePair(remote_pair::RemotePairArgs),
    /// A transfer URL and token for curl against a serving agent.
    TransferToken(remote_pair::TransferTokenArgs),
}

/// The shape of the generated population (see `mosaicfs_bench::DocGen`).
#[derive(Args)]
struct GenArgs {
    /// Seed of the generator (same seed, same paths, sizes and mtimes).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of nodes the files belong to.
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// Directories per node.
    #[arg(long, default_value_t = 1000)]
    dirs_per_node: usize,
}

impl GenArgs {
    fn generator(&self) -> Result<DocGen> {
        if self.nodes == 0 || self.dirs_per_node == 0 {
            bail!("--nodes and --dirs-per-node must be at least 1");
        }
        Ok(DocGen::new(
            self.seed,
            GenOptions { nodes: self.nodes, dirs_per_node: self.dirs_per_node, first_seen: None },
        ))
    }
}

#[derive(Args)]
struct BulkInsertArgs {
    /// The store file. It is deleted (with its -wal and -shm files) before every run.
    #[arg(long)]
    db: PathBuf,
    /// Documents per run.
    #[arg(long, default_value_t = 500_000)]
    docs: u64,
    /// Documents per `put_many` call (one transaction each).
    #[arg(long, default_value_t = 50_000)]
    batch: usize,
    /// Repetitions (median, min and max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Prefix of the printed figures.
    #[arg(long, default_value = "store.bulk_insert")]
    name: String,
    /// Keep the store of the last run instead of deleting it.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    population: GenArgs,
}

#[derive(Args)]
struct GenDocsArgs {
    /// Number of documents.
    #[arg(long)]
    docs: u64,
    /// Number of the first document (documents `start .. start + docs` are printed).
    #[arg(long, default_value_t = 0)]
    start: u64,
    #[command(flatten)]
    population: GenArgs,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::BulkInsert(args) => bulk_insert(&args),
        Command::GenDocs(args) => gen_docs(&args),
        Command::WatchLatency(args) => watch_latency::run(&args),
        Command::SeedHub(args) => seed_hub::run(&args),
        Command::HttpLatency(args) => http::latency(&args),
        Command::HttpLoad(args) => http::load(&args),
        Command::Readdir(args) => readdir::run(&args),
        Command::SyncCold(args) => sync_bench::cold(&args),
        Command::SyncSteady(args) => sync_bench::steady(&args),
        Command::RemotePair(args) => remote_pair::remote_pair(args),
        Command::TransferToken(args) => remote_pair::transfer_token(args),
    }
}

/// The store file and the SQLite files beside it.
fn db_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [db.to_owned(), with("-wal"), with("-shm")]
}

fn remove_db(db: &Path) -> Result<()> {
    for f in db_files(db) {
        match std::fs::remove_file(&f) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", f.display())),
        }
    }
    Ok(())
}

/// Bytes of the database and its WAL (after `close`, the WAL is truncated to 0).
fn db_bytes(db: &Path) -> u64 {
    db_files(db)[..2].iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
}

struct RunTimes {
    insert: f64,
    insert_close: f64,
    bytes: u64,
}

fn run_once(db: &Path, batches: Vec<Vec<Document>>) -> Result<RunTimes> {
    remove_db(db)?;
    let store = Store::open(db).with_context(|| format!("opening store {}", db.display()))?;
    let mut refused = 0u64;
    let mut first_refusal = None;
    let t0 = Instant::now();
    for batch in batches {
        for result in store.put_many(batch).context("put_many")? {
            if let Err(e) = result {
                refused += 1;
                if first_refusal.is_none() {
                    first_refusal = Some(e);
                }
            }
        }
    }
    let insert = t0.elapsed().as_secs_f64();
    store.close().context("closing the store")?;
    let insert_close = t0.elapsed().as_secs_f64();
    if let Some(e) = first_refusal {
        bail!("{refused} documents were refused by the store; first: {e}");
    }
    Ok(RunTimes { insert, insert_close, bytes: db_bytes(db) })
}

fn bulk_insert(args: &BulkInsertArgs) -> Result<()> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    if args.docs == 0 {
        bail!("--docs must be at least 1");
    }
    let name = &args.name;

    // Everything generated up front, outside the timed loop.
    let t_gen = Instant::now();
    let mut docgen = args.population.generator()?;
    let mut batches: Vec<Vec<Document>> = Vec::new();
    let mut start = 0u64;
    while start < args.docs {
        let n = (args.docs - start).min(args.batch as u64);
        batches.push(docgen.batch(start, n as usize));
        start += n;
    }
    let gen_secs = t_gen.elapsed().as_secs_f64();
    let mut json_bytes = 0usize;
    for doc in batches.iter().flatten() {
        json_bytes += serde_json::to_string(doc).context("serializing a document")?.len();
    }
    println!("{name}.docs: {} docs", args.docs);
    println!("{name}.batch: {} docs", args.batch);
    println!("{name}.doc_bytes_avg: {:.0} bytes", json_bytes as f64 / args.docs as f64);
    println!("{name}.generate: {gen_secs:.3} s");

    let mut insert = Vec::with_capacity(args.runs);
    let mut insert_close = Vec::with_capacity(args.runs);
    let mut bytes = 0;
    for run in 1..=args.runs {
        // The copy is made before the clock starts: `put_many` takes its batch by value.
        let r = run_once(&args.db, batches.clone()).with_context(|| format!("run {run} of {}", args.runs))?;
        eprintln!(
            "{name}: run {run}/{}: insert {:.3} s, insert+close {:.3} s",
            args.runs, r.insert, r.insert_close
        );
        insert.push(r.insert);
        insert_close.push(r.insert_close);
        bytes = r.bytes;
    }
    println!("{name}.db_bytes: {bytes} bytes");
    for (label, times) in [("insert", &mut insert), ("insert_close", &mut insert_close)] {
        times.sort_by(f64::total_cmp);
        let med = median(times);
        let (lo, hi) = (times[0], times[times.len() - 1]);
        let docs = args.docs as f64;
        println!("{name}.{label}.median: {med:.3} s");
        println!("{name}.{label}.min: {lo:.3} s");
        println!("{name}.{label}.max: {hi:.3} s");
        println!("{name}.{label}.runs: {} count", times.len());
        println!("{name}.{label}.rate.median: {:.0} docs/s", docs / med);
        println!("{name}.{label}.rate.min: {:.0} docs/s", docs / hi);
        println!("{name}.{label}.rate.max: {:.0} docs/s", docs / lo);
    }
    if !args.keep {
        remove_db(&args.db)?;
    }
    Ok(())
}

/// Median of sorted, non-empty samples.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn gen_docs(args: &GenDocsArgs) -> Result<()> {
    let mut docgen = args.population.generator()?;
    let end = args.start.checked_add(args.docs).context("--start + --docs overflows")?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    for i in args.start..end {
        let mut line =
            serde_json::to_string(&Document::File(docgen.file_doc(i))).context("serializing a document")?;
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            return broken_pipe_is_ok(e);
        }
    }
    match out.flush() {
        Ok(()) => Ok(()),
        Err(e) => broken_pipe_is_ok(e),
    }
}

/// A reader that stops early (`| head`) is not an error.
fn broken_pipe_is_ok(e: io::Error) -> Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e).context("writing to stdout")
    }
}
