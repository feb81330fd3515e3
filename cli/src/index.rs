//! `mosaicfs index …`: look at (and fill) the local index with no server running.

use std::path::{Path, PathBuf};

use agent_core::config::AgentConfig;
use agent_core::crawler::{crawl, CrawlOptions, NoObserver};
use agent_core::doc::{FileDoc, FileStatus};
use agent_core::indexer::Indexer;
use agent_core::store::{NameQuery, Store};
use anyhow::Context;
use clap::{Args, Subcommand};

use crate::{config_or_exit, CliError};

#[derive(Args)]
pub struct IndexArgs {
    /// The agent configuration (its data directory holds the index).
    #[arg(long, short, conflicts_with = "db")]
    config: Option<PathBuf>,
    /// Use this store file directly instead of the configured one.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: IndexCommand,
}

#[derive(Subcommand)]
enum IndexCommand {
    /// Crawl once (the configured watch paths, or the directories given) and print the summary.
    Crawl {
        /// Directories to crawl instead of the configured watch paths.
        paths: Vec<PathBuf>,
        /// Documents per store transaction.
        #[arg(long)]
        batch_size: Option<usize>,
    },
    /// Counts of what is indexed.
    Stats,
    /// Files and subdirectories indexed directly in a directory.
    Ls {
        path: PathBuf,
        /// Also show files marked deleted.
        #[arg(long)]
        all: bool,
    },
    /// Files whose name contains TERM, or matches it as a glob (`*.pdf`).
    Search {
        term: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

struct Opened {
    store: Store,
    node: agent_core::ids::NodeId,
    config: Option<AgentConfig>,
}

fn open(args: &IndexArgs) -> Result<Opened, CliError> {
    if let Some(db) = &args.db {
        // The node id lives beside the store, as in a data directory, so an agent started later
        // on the same directory is the same node.
        let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let node =
            agent_core::config::load_or_create_node_id(&dir.join("node_id")).map_err(CliError::Config)?;
        let store = Store::open(db).with_context(|| format!("opening {}", db.display()))?;
        store.ensure_node_id(&node)?;
        return Ok(Opened { store, node, config: None });
    }
    let path = args.config.clone().unwrap_or_else(crate::default_config_path);
    let config = config_or_exit(&path)?;
    let node = config.load_or_create_node_id().map_err(CliError::Config)?;
    let store = Store::open(&config.store_path())
        .with_context(|| format!("opening {}", config.store_path().display()))?;
    store.ensure_node_id(&node)?;
    Ok(Opened { store, node, config: Some(config) })
}

pub fn run(args: IndexArgs) -> Result<(), CliError> {
    let Opened { store, node, config } = open(&args)?;
    match &args.command {
        IndexCommand::Crawl { paths, batch_size } => {
            let roots: Vec<PathBuf> = if paths.is_empty() {
                config.as_ref().map(|c| c.watch_paths.clone()).unwrap_or_default()
            } else {
                paths.iter().map(|p| absolute(p)).collect::<anyhow::Result<_>>()?
            };
            if roots.is_empty() {
                return Err(CliError::Usage(
                    "nothing to crawl: give a directory or a --config with watch_paths".into(),
                ));
            }
            let (exclude, batch, progress) = match &config {
                Some(c) => (c.exclude.clone(), c.crawler.batch_size, c.crawler.progress_interval),
                None => (vec![], agent_core::config::DEFAULT_BATCH_SIZE, std::time::Duration::from_secs(5)),
            };
            let opts = CrawlOptions::new(&exclude, progress).context("compiling exclude globs")?;
            let mut indexer = Indexer::new(store.clone(), node, batch_size.unwrap_or(batch));
            let summary = crawl(&mut indexer, &roots, &opts, &mut NoObserver)?;
            store.close()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                println!(
                    "crawled {} files in {} dirs in {:.2}s: {} added, {} changed, {} deleted, {} unchanged, {} symlinks skipped, {} errors",
                    summary.seen,
                    summary.dirs,
                    summary.duration_ms as f64 / 1000.0,
                    summary.added,
                    summary.changed,
                    summary.deleted,
                    summary.skipped,
                    summary.symlinks,
                    summary.errors
                );
            }
        }
        IndexCommand::Stats => {
            let stats = store.stats()?;
            if args.json {
                let mut v = serde_json::to_value(&stats)?;
                v["node_id"] = node.to_string().into();
                v["store"] = store.path().map(|p| p.display().to_string()).into();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("node        {node}");
                if let Some(p) = store.path() {
                    println!("store       {}", p.display());
                }
                println!("files       {} ({} marked deleted)", stats.files_active, stats.files_deleted);
                println!("bytes       {}", human_bytes(stats.bytes_active));
                println!("last seq    {}", stats.last_seq);
                for (t, n) in &stats.docs_by_type {
                    println!("  {t:<22}{n}");
                }
            }
        }
        IndexCommand::Ls { path, all } => {
            let dir = absolute(path)?;
            let dir_str = dir.to_str().context("path is not valid UTF-8")?;
            let entries = store.file_entries_in_dir(&node, dir_str)?;
            let entries: Vec<_> =
                entries.into_iter().filter(|e| *all || e.status == FileStatus::Active).collect();
            let mut subdirs: Vec<String> = store
                .parents_under(&node, dir_str)?
                .into_iter()
                .filter(|p| p != dir_str)
                .filter_map(|p| {
                    let rest = p.strip_prefix(dir_str)?.trim_start_matches('/');
                    rest.split('/').next().map(str::to_owned)
                })
                .collect();
            subdirs.sort();
            subdirs.dedup();
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({"dirs": subdirs, "files": entries}))?
                );
            } else {
                for d in &subdirs {
                    println!("{:>10}  {:<25}  {d}/", "-", "");
                }
                for e in &entries {
                    let mtime =
                        chrono::DateTime::from_timestamp_nanos(e.mtime_ns).format("%Y-%m-%d %H:%M:%S");
                    let mark = if e.status == FileStatus::Deleted { "  (deleted)" } else { "" };
                    println!("{:>10}  {:<25}  {}{mark}", e.size, mtime, e.name);
                }
                if subdirs.is_empty() && entries.is_empty() {
                    eprintln!("nothing indexed in {}", dir.display());
                }
            }
        }
        IndexCommand::Search { term, limit } => {
            let query =
                NameQuery::parse(term).map_err(|e| CliError::Usage(format!("invalid glob {term:?}: {e}")))?;
            let found: Vec<FileDoc> = store.search_names(&query, *limit)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                for f in &found {
                    println!("{:>10}  {}", f.size, f.source.export_path);
                }
                eprintln!(
                    "{} match(es){}",
                    found.len(),
                    if found.len() == *limit { " (limit reached)" } else { "" }
                );
            }
        }
    }
    Ok(())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
    // Normalize `.`/`..` and a trailing slash the way watch paths are normalized.
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
