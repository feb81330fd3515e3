//! A hub and agents as real processes, for the replication tests: the hub (`mosaicfs server`)
//! on 127.0.0.1, each agent joined with `mosaicfs agent init` and reaching the hub through its
//! own cuttable [`Proxy`] on its own loopback address, and readers of every store's documents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::net::{free_port, Proxy};
use crate::{field, mosaicfs_bin, NodeDir, Proc};

/// Fast timers so the suite stays quick (ARCHITECTURE §5.6–§5.7 defaults are 30 s / 60 s).
pub const FAST_AGENT: &str = "[heartbeat]\ninterval_secs = 1\n\
    [sync]\npull_wait_secs = 5\nretry_cap_secs = 2\nstatus_interval_secs = 2\nutilization_interval_secs = 2\nreconcile_after_secs = 3\n\
    [watcher]\ndebounce_ms = 50\n";

pub struct Hub {
    pub proc: Option<Proc>,
    pub data: PathBuf,
    pub port: u16,
    pub fingerprint: String,
    pub admin_key: String,
    pub admin_secret: String,
    /// `--offline-after-secs`.
    pub offline_after: u64,
}

impl Hub {
    pub fn start(data: &Path, offline_after: u64) -> Hub {
        let mut hub = Hub {
            proc: None,
            data: data.to_owned(),
            port: free_port("127.0.0.1"),
            fingerprint: String::new(),
            admin_key: String::new(),
            admin_secret: String::new(),
            offline_after,
        };
        hub.restart();
        let (key, secret) = crate::admin_secret(data);
        (hub.admin_key, hub.admin_secret) = (key, secret);
        hub
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// Starts the hub process (again) on its port with its data directory.
    pub fn restart(&mut self) {
        assert!(self.proc.is_none(), "the hub is running");
        let mut p = Proc::spawn(
            Command::new(mosaicfs_bin())
                .args(["server", "--log-level", "warn", "--login-per-minute", "1000"])
                .args(["--listen", &format!("127.0.0.1:{}", self.port)])
                .args(["--offline-after-secs", &self.offline_after.to_string(), "--data-dir"])
                .arg(&self.data)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let lines = crate::startup_lines(&mut p);
        self.fingerprint =
            field(&lines, "certificate fingerprint (SHA-256):").expect("fingerprint line").to_owned();
        self.proc = Some(p);
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait(Duration::from_secs(30));
        }
    }

    pub fn db(&self) -> PathBuf {
        self.data.join("hub.db")
    }

    /// Creates the virtual directory `/name` showing `export_path` of `node_id` (prefix_replace,
    /// no steps) through the REST API, as the admin.
    pub fn create_dir(&self, name: &str, node_id: &str, export_path: &Path) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let api = self.api();
            crate::create_mount_dir(&api, name, node_id, export_path, serde_json::json!([])).await
        });
    }

    /// The typed API client, logged in as the admin on first use.
    pub fn api(&self) -> agent_core::api::ApiClient {
        crate::admin_api(&self.url(), &self.data)
    }
}

pub struct Agent {
    pub node: NodeDir,
    pub proxy: Proxy,
    pub proc: Option<Proc>,
    pub node_id: String,
}

impl Agent {
    /// Joins a new node to `hub` through a proxy on `ip` (`mosaicfs agent init`, secret in a
    /// 0600 file), with `extra` appended to its agent.toml. Not started.
    pub fn join(hub: &Hub, ip: &str, extra: &str) -> Agent {
        let node = NodeDir::new("");
        let proxy = Proxy::start(ip, hub.addr());
        let mut child = Command::new(mosaicfs_bin())
            .args([
                "agent",
                "init",
                "--no-service",
                "--no-mount",
                "--force",
                "--secret-store",
                "file",
                "--secret-stdin",
            ])
            .args(["--server", &proxy.url(), "--server-fingerprint", &hub.fingerprint])
            .args(["--access-key-id", &hub.admin_key, "--name", ip])
            .arg("--watch")
            .arg(&node.watched)
            .arg("--data-dir")
            .arg(&node.data)
            .arg("--config")
            .arg(&node.config)
            .env("HOME", node.tmp.path())
            .env("MOSAICFS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("agent init");
        {
            use std::io::Write;
            let _ =
                child.stdin.take().expect("stdin").write_all(format!("{}\n", hub.admin_secret).as_bytes());
        }
        let out = child.wait_with_output().expect("agent init output");
        assert!(out.status.success(), "agent init failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut text = std::fs::read_to_string(&node.config).expect("agent.toml");
        text.push_str(extra);
        std::fs::write(&node.config, text).expect("agent.toml");
        let node_id = std::fs::read_to_string(node.data.join("node_id")).expect("node_id").trim().to_owned();
        Agent { node, proxy, proc: None, node_id }
    }

    pub fn start(&mut self) {
        self.start_with_env(&[]);
    }

    /// [`Agent::start`] with extra environment variables (fault injection).
    pub fn start_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.proc.is_none(), "the agent is running");
        self.proc = Some(Proc::spawn(
            Command::new(mosaicfs_bin())
                .args(["agent", "--config"])
                .arg(&self.node.config)
                .env(
                    "MOSAICFS_LOG",
                    std::env::var("MOSAICFS_AGENT_LOG")
                        .unwrap_or_else(|_| "warn,agent_core::sync=info".into()),
                )
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
        ));
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait(Duration::from_secs(30));
        }
    }

    /// SIGTERM and a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGTERM);
            assert!(p.wait(Duration::from_secs(60)).success(), "agent exits cleanly");
        }
    }

    pub fn db(&self) -> PathBuf {
        self.node.store_path()
    }

    /// `mosaicfs sync status --json`.
    pub fn sync_status(&self) -> serde_json::Value {
        let out =
            self.node.run(&["sync", "status", "--json", "--config", self.node.config.to_str().unwrap()]);
        assert!(out.status.success(), "sync status: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("sync status JSON")
    }
}

/// A read-only connection beside a running writer; `None` until the store exists.
fn open_read_only(db: &Path) -> Option<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.busy_timeout(Duration::from_secs(10)).ok()?;
    Some(conn)
}

/// `id → (rev, deleted)` of the documents of `doc_type` in the SQLite store at `db`; `origin`
/// 0 keeps only the store owner's own documents. `None` while the store is not there yet.
pub fn try_docs(db: &Path, doc_type: &str, origin: Option<i64>) -> Option<BTreeMap<String, (i64, bool)>> {
    let conn = open_read_only(db)?;
    let mut st = conn
        .prepare("SELECT id, rev, deleted FROM docs WHERE type = ?1 AND (?2 IS NULL OR origin = ?2)")
        .ok()?;
    let mut out = BTreeMap::new();
    for row in
        st.query_map(rusqlite::params![doc_type, origin], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))).ok()?
    {
        let (id, v) = row.ok()?;
        out.insert(id, v);
    }
    Some(out)
}

/// [`try_docs`] of a store that exists.
pub fn docs(db: &Path, doc_type: &str, origin: Option<i64>) -> BTreeMap<String, (i64, bool)> {
    try_docs(db, doc_type, origin).unwrap_or_else(|| panic!("cannot read {}", db.display()))
}

/// Names of the live file documents of `node` in the store at `db` (empty while it is not there).
pub fn live_file_names(db: &Path, node: &str) -> std::collections::BTreeSet<String> {
    let Some(conn) = open_read_only(db) else { return Default::default() };
    let Ok(mut st) = conn.prepare(
        "SELECT json_extract(body, '$.name') FROM docs WHERE type = 'file' AND deleted = 0
         AND json_extract(body, '$.status') = 'active' AND json_extract(body, '$.source.node_id') = ?1",
    ) else {
        return Default::default();
    };
    let mut names = std::collections::BTreeSet::new();
    if let Ok(rows) = st.query_map([node], |r| r.get::<_, String>(0)) {
        names.extend(rows.map_while(Result::ok));
    }
    names
}
