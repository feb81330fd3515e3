//! Replication benchmarks with real processes (the cluster harness of the cross-process tests:
//! a `mosaicfs server` hub, agents joined with `mosaicfs agent init`, each behind its own
//! loopback proxy). `MOSAICFS_BIN` names the `mosaicfs` binary.
//!
//! - `sync-cold --hub-data DIR`: the hub in DIR (already seeded) and one fresh agent; time from
//!   the agent's start until its pull checkpoint reaches the hub's last seq.
//! - `sync-steady --files N --rate R --idle-secs S`: a fresh hub and three agents with default
//!   timers; N new files on agent A, R per second; per-file time until B's replica lists it
//!   (p50/p99/max); then the hub's CPU and RSS while the three agents sit idle for S seconds.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use mosaicfs_tests::cluster::{Agent, Hub};

#[derive(Args)]
pub struct ColdArgs {
    /// The hub's data directory, with `hub.db` already seeded (`seed-hub`).
    #[arg(long)]
    hub_data: std::path::PathBuf,
}

#[derive(Args)]
pub struct SteadyArgs {
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// New files per second on agent A.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Seconds of idle measurement of the hub with three agents connected.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
}

fn query_u64(db: &Path, sql: &str) -> Option<u64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(Duration::from_secs(10)).ok()?;
    conn.query_row(sql, [], |r| r.get::<_, Option<String>>(0)).ok()?.and_then(|v| v.parse().ok())
}

pub fn cold(args: &ColdArgs) -> Result<()> {
    let hub_db = args.hub_data.join("hub.db");
    let Some(hub_seq) = query_u64(&hub_db, "SELECT CAST(MAX(seq) AS TEXT) FROM docs") else {
        bail!("{} has no documents: seed it first", hub_db.display())
    };
    let files =
        query_u64(&hub_db, "SELECT CAST(COUNT(*) AS TEXT) FROM docs WHERE type = 'file'").unwrap_or(0);
    let hub = Hub::start(&args.hub_data, 90);
    let mut agent = Agent::join(&hub, "127.0.0.2", "");
    let started = Instant::now();
    agent.start();
    let deadline = started + Duration::from_secs(600);
    loop {
        let cp = query_u64(&agent.db(), "SELECT value FROM meta WHERE key = 'pull_checkpoint'").unwrap_or(0);
        if cp >= hub_seq {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent reached hub seq {cp} of {hub_seq} in 600 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu =
        |p: Option<&mosaicfs_tests::Proc>| p.and_then(|p| cpu_and_rss(p.pid)).map(|c| c.0).unwrap_or(0.0);
    let (hub_cpu, agent_cpu) = (cpu(hub.proc.as_ref()), cpu(agent.proc.as_ref()));
    let replicated =
        query_u64(&agent.db(), "SELECT CAST(COUNT(*) AS TEXT) FROM docs WHERE type = 'file'").unwrap_or(0);
    if replicated < files {
        bail!("the agent holds {replicated} file documents of the hub's {files}");
    }
    println!("sync.cold.files: {replicated} docs");
    println!("sync.cold.seconds: {secs:.3} s");
    println!("sync.cold.rate: {:.0} docs/s", replicated as f64 / secs);
    println!("sync.cold.hub_cpu: {hub_cpu:.2} s");
    println!("sync.cold.agent_cpu: {agent_cpu:.2} s");
    agent.stop();
    Ok(())
}

/// (utime + stime) in seconds and VmRSS in MB of a process.
fn cpu_and_rss(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are the 12th and 13th after the command name.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 =
        status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some((ticks / hz, rss_kb / 1024.0))
}

/// Marks the `steady-N.txt` files of node `a_id` that B's replica lists now.
fn poll(conn: &rusqlite::Connection, a_id: &str, seen: &mut [Option<Instant>]) -> Result<()> {
    let mut st = conn.prepare_cached("SELECT name FROM files WHERE node_id = ?1")?;
    let now = Instant::now();
    for name in st.query_map([a_id], |r| r.get::<_, String>(0))? {
        let name = name?;
        let index = name.strip_prefix("steady-").and_then(|n| n.strip_suffix(".txt"));
        if let Some(i) = index.and_then(|i| i.parse::<usize>().ok()) {
            if i < seen.len() && seen[i].is_none() {
                seen[i] = Some(now);
            }
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub fn steady(args: &SteadyArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let hub = Hub::start(&tmp.path().join("hub"), 90);
    let mut agents: Vec<Agent> =
        ["127.0.0.2", "127.0.0.3", "127.0.0.4"].iter().map(|ip| Agent::join(&hub, ip, "")).collect();
    for a in &mut agents {
        a.start();
    }
    // Wait until everyone has pulled the others' node documents (all connected).
    let deadline = Instant::now() + Duration::from_secs(120);
    while agents.iter().any(|a| {
        query_u64(&a.db(), "SELECT CAST(COUNT(*) AS TEXT) FROM docs WHERE type = 'node'").unwrap_or(0) < 3
    }) {
        if Instant::now() > deadline {
            bail!("agents did not connect within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (a, b) = (&agents[0], &agents[1]);
    let a_id = a.node_id.clone();
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1)));
    let mut written = Vec::with_capacity(args.files);
    let mut seen: Vec<Option<Instant>> = vec![None; args.files];
    let conn = loop {
        match rusqlite::Connection::open_with_flags(b.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY) {
            Ok(c) => break c,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    conn.busy_timeout(Duration::from_secs(10))?;
    let start = Instant::now();
    let mut last_poll = Instant::now();
    for i in 0..args.files {
        let due = start + every * i as u32;
        while Instant::now() < due {
            if last_poll.elapsed() >= Duration::from_millis(20) {
                poll(&conn, &a_id, &mut seen)?;
                last_poll = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(1).min(due.saturating_duration_since(Instant::now())));
        }
        std::fs::write(a.node.watched.join(format!("steady-{i:05}.txt")), format!("{i}"))?;
        written.push(Instant::now());
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        poll(&conn, &a_id, &mut seen)?;
        if seen.iter().all(Option::is_some) {
            break;
        }
        if Instant::now() > deadline {
            let missing = seen.iter().filter(|s| s.is_none()).count();
            bail!("{missing} of {} files never reached agent B within 120 s", args.files);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut lat: Vec<f64> = written
        .iter()
        .zip(&seen)
        .map(|(w, s)| s.map(|s| s.saturating_duration_since(*w).as_secs_f64() * 1000.0).unwrap_or(f64::MAX))
        .collect();
    lat.sort_by(f64::total_cmp);
    println!("sync.steady.files: {} files", args.files);
    println!("sync.steady.rate: {} files/s", args.rate);
    println!("sync.steady.visible_on_b.p50: {:.1} ms", percentile(&lat, 0.5));
    println!("sync.steady.visible_on_b.p99: {:.1} ms", percentile(&lat, 0.99));
    println!("sync.steady.visible_on_b.max: {:.1} ms", lat[lat.len() - 1]);

    // Idle: the three agents connected, nothing changing.
    std::thread::sleep(Duration::from_secs(5));
    let hub_pid = hub.proc.as_ref().map(|p| p.pid).unwrap_or(0);
    let agent_pid = agents[0].proc.as_ref().map(|p| p.pid).unwrap_or(0);
    let (Some((hub_cpu0, _)), Some((agent_cpu0, _))) = (cpu_and_rss(hub_pid), cpu_and_rss(agent_pid)) else {
        bail!("cannot read /proc for the hub or agent A");
    };
    std::thread::sleep(Duration::from_secs(args.idle_secs));
    let (Some((hub_cpu1, hub_rss)), Some((agent_cpu1, agent_rss))) =
        (cpu_and_rss(hub_pid), cpu_and_rss(agent_pid))
    else {
        bail!("cannot read /proc for the hub or agent A");
    };
    let pct = |a: f64, b: f64| (b - a) / args.idle_secs as f64 * 100.0;
    println!("sync.idle.seconds: {} s", args.idle_secs);
    println!("sync.idle.hub_cpu: {:.3} %", pct(hub_cpu0, hub_cpu1));
    println!("sync.idle.hub_rss: {hub_rss:.1} MB");
    println!("sync.idle.agent_cpu: {:.3} %", pct(agent_cpu0, agent_cpu1));
    println!("sync.idle.agent_rss: {agent_rss:.1} MB");
    for a in &mut agents {
        a.stop();
    }
    Ok(())
}
