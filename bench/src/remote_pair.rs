//! The MosaicFS side of `bench/run_remote.sh`: a hub and agent A (serving a directory through
//! its transfer server) as real processes, and agent B joined and configured to mount the tree
//! with a cache but not started — the script starts and stops B per run, with an empty cache for
//! cold reads. Prints `key=value` lines and `ready`, then waits for SIGTERM or SIGINT and stops
//! everything it started.
//!
//! `transfer-token` signs a token with the hub's key for curl's baseline against A's transfer
//! server (what B's requests look like, without the mount).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use mosaicfs_tests::cluster::{Agent, Hub};

#[derive(Args)]
pub struct RemotePairArgs {
    /// The directory agent A serves (its watch path).
    #[arg(long)]
    srv: PathBuf,
    /// Where agent B mounts the virtual tree (A's directory appears as /remote).
    #[arg(long)]
    mount: PathBuf,
    /// B's cache cap, MiB.
    #[arg(long, default_value_t = 8192)]
    cache_mib: u64,
}

/// Both agents write their `agent_status` (with its counters, which the scripts read from the
/// stores) every second.
const STATUS: &str = "[sync]\nstatus_interval_secs = 1\n";

pub fn remote_pair(args: RemotePairArgs) -> Result<()> {
    let srv = args.srv.canonicalize().with_context(|| format!("{}", args.srv.display()))?;
    let hub_dir = tempfile::tempdir()?;
    let mut hub = Hub::start(hub_dir.path(), 60);
    let mut a = Agent::join(&hub, "127.0.0.2", &format!("[transfer]\nlisten = \"127.0.0.2:0\"\n{STATUS}"));
    let text = std::fs::read_to_string(&a.node.config)?;
    let watched = format!("watch_paths = [{:?}]", a.node.watched.display().to_string());
    if !text.contains(&watched) {
        bail!("unexpected agent.toml from agent init: no {watched}");
    }
    std::fs::write(
        &a.node.config,
        text.replace(&watched, &format!("watch_paths = [{:?}]", srv.display().to_string())),
    )?;
    a.start();
    let b = Agent::join(&hub, "127.0.0.3", "");
    let mut text = std::fs::read_to_string(&b.node.config)?;
    text.push_str(&format!(
        "[transfer]\nlisten = \"127.0.0.3:0\"\n[vfs]\nmount_point = {:?}\n[cache]\nmax_mib = {}\nmin_free_mib = 0\n{STATUS}",
        args.mount.display().to_string(),
        args.cache_mib
    ));
    std::fs::write(&b.node.config, text)?;
    hub.create_dir("remote", &a.node_id, &srv);
    println!("hub_data={}", hub.data.display());
    println!("a_node={}", a.node_id);
    println!("a_db={}", a.db().display());
    println!("b_node={}", b.node_id);
    println!("b_db={}", b.db().display());
    println!("b_config={}", b.node.config.display());
    println!("b_data={}", b.node.data.display());
    println!("ready");
    wait_for_stop();
    drop(b);
    a.kill();
    hub.kill();
    Ok(())
}

/// Blocks until SIGTERM or SIGINT.
fn wait_for_stop() {
    // SAFETY: plain libc signal-mask calls on a zeroed sigset_t, from the main thread before
    // waiting; no handlers are installed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let mut sig = 0;
        libc::sigwait(&set, &mut sig);
    }
}

#[derive(Args)]
pub struct TransferTokenArgs {
    /// The hub's data directory (its `hub/transfer_ed25519.pem` signs the token).
    #[arg(long)]
    hub_data: PathBuf,
    /// The serving agent's store (to find the file and its endpoint).
    #[arg(long)]
    agent_db: PathBuf,
    /// The file's path on the serving agent.
    #[arg(long)]
    path: PathBuf,
}

/// Prints `URL TOKEN`: the transfer URL of the file and a 5-minute token for it.
pub fn transfer_token(args: TransferTokenArgs) -> Result<()> {
    let pem = std::fs::read_to_string(args.hub_data.join("hub/transfer_ed25519.pem"))?;
    let signer = agent_core::transfer_token::TransferSigner::from_pem(&pem)?;
    let conn =
        rusqlite::Connection::open_with_flags(&args.agent_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let path = args.path.canonicalize()?;
    let (file_id, node_id): (String, String) = conn
        .query_row(
            "SELECT json_extract(body, '$._id'), json_extract(body, '$.source.node_id') FROM docs
             WHERE type = 'file' AND deleted = 0 AND json_extract(body, '$.source.export_path') = ?1",
            [path.display().to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .with_context(|| format!("no file document for {}", path.display()))?;
    let endpoint: String = conn.query_row(
        "SELECT json_extract(body, '$.transfer.endpoint') FROM docs WHERE id = ?1",
        [format!("node::{node_id}")],
        |r| r.get(0),
    )?;
    let file: agent_core::ids::FileId = file_id.parse()?;
    let node: agent_core::ids::NodeId = node_id.parse()?;
    let (token, _) = signer.issue("bench", &node, &file, chrono::Utc::now().timestamp(), 300)?;
    println!("{endpoint}/api/agent/transfer/{file} {token}");
    Ok(())
}
