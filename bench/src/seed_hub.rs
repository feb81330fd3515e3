//! `seed-hub`: fills a hub store with the file documents of an agent store (for example one
//! made by `mosaicfs index --db agent.db crawl TREE`) through the same path an agent's push
//! takes (`Store::apply_pushed`), in batches, so the hub's name index is built as in production.

use std::path::PathBuf;
use std::time::Instant;

use agent_core::store::Store;
use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct SeedHubArgs {
    /// The agent store to read file documents from.
    #[arg(long)]
    from: PathBuf,
    /// The hub store to write (opened as a hub: with the name index).
    #[arg(long)]
    hub: PathBuf,
    #[arg(long, default_value_t = 2000)]
    batch: usize,
}

pub fn run(args: &SeedHubArgs) -> Result<()> {
    let agent = Store::open(&args.from)?;
    let hub = Store::open_hub(&args.hub)?;
    let started = Instant::now();
    let (mut after, mut total) = (None, 0usize);
    loop {
        let (page, last) = agent.files_page(after.as_ref(), args.batch)?;
        if page.is_empty() {
            break;
        }
        let n = page.len();
        // Each node's files as that node pushes them (the hub checks the signer owns them).
        let mut by_node: std::collections::BTreeMap<_, Vec<serde_json::Value>> = Default::default();
        for f in &page {
            let doc = serde_json::to_value(agent_core::doc::Document::File(f.clone()))?;
            by_node.entry(f.source.node_id.clone()).or_default().push(doc);
        }
        for (node, docs) in by_node {
            let results = hub.apply_pushed(docs, agent_core::doc::now(), &node)?;
            if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
                bail!("refused: {e}");
            }
        }
        total += n;
        after = last;
        if n < args.batch {
            break;
        }
    }
    hub.close()?;
    agent.close()?;
    let secs = started.elapsed().as_secs_f64();
    println!("seed_hub.files: {total} files");
    println!("seed_hub.seconds: {secs:.3} s");
    println!("seed_hub.rate: {:.0} docs/s", total as f64 / secs);
    Ok(())
}
