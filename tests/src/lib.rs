//! Helpers for the cross-process tests in `tests/`: find the `mosaicfs` binary, lay out a node's
//! directories and config, start processes and always clean them up (killed by recorded PID),
//! and wait for conditions with a generous deadline instead of sleeping.

pub mod browser;
pub mod cluster;
pub mod mounted;
pub mod net;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `mosaicfs` binary: `$MOSAICFS_BIN`, or `mosaicfs` next to the test's target directory
/// (the test command builds it first with `cargo build -p mosaicfs-cli`).
pub fn mosaicfs_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSAICFS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>  →  target/<profile>/mosaicfs
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let bin = profile_dir.join("mosaicfs");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p mosaicfs-cli` (or set MOSAICFS_BIN)",
        bin.display()
    );
    bin
}

/// Another binary of this crate (`store-torture`).
pub fn own_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target/<profile>").join(name)
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A node's world in a temporary directory: `watched/` (the watch path), `data/`, `agent.toml`.
pub struct NodeDir {
    pub tmp: tempfile::TempDir,
    pub watched: PathBuf,
    pub data: PathBuf,
    pub config: PathBuf,
}

impl NodeDir {
    /// `extra` is appended to the generated agent.toml (sections such as `[heartbeat]`).
    pub fn new(extra: &str) -> NodeDir {
        let tmp = tempfile::tempdir().expect("temp dir");
        let watched = tmp.path().join("watched");
        let data = tmp.path().join("data");
        std::fs::create_dir_all(&watched).expect("watched dir");
        let config = tmp.path().join("agent.toml");
        let text = format!(
            "data_dir = {:?}\nwatch_paths = [{:?}]\n{extra}\n",
            data.display().to_string(),
            watched.display().to_string()
        );
        std::fs::write(&config, text).expect("agent.toml");
        NodeDir { tmp, watched, data, config }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data.join("agent.db")
    }

    /// Runs `mosaicfs ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(mosaicfs_bin()).args(args).env_remove("MOSAICFS_LOG").output().expect("run mosaicfs")
    }

    /// `mosaicfs index --config agent.toml ARGS --json`, parsed.
    pub fn index_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["index", "--config", self.config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        all.push("--json");
        let out = self.run(&all);
        assert!(out.status.success(), "mosaicfs {all:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON output")
    }
}

/// A child process that is killed (by its recorded PID) when dropped.
pub struct Proc {
    pub child: Option<Child>,
    pub pid: u32,
}

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        let child = cmd.stdin(Stdio::null()).spawn().expect("spawn");
        let pid = child.id();
        Proc { child: Some(child), pid }
    }

    /// The child's stdout as lines, read on a thread until it closes (so the child never writes
    /// into a closed pipe). Spawn with `Stdio::piped()` stdout.
    pub fn stdout_lines(&mut self) -> std::sync::mpsc::Receiver<String> {
        use std::io::BufRead;
        let out = self.child.as_mut().and_then(|c| c.stdout.take()).expect("stdout piped and not yet taken");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        rx
    }

    /// Sends `sig` to the recorded PID.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with a PID we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.pid as i32, sig);
        }
    }

    /// Waits for exit (up to `limit`), returning the status.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("not yet reaped");
        let status = wait_for("process exit", limit, || child.try_wait().expect("try_wait"));
        self.child = None;
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `mosaicfs server` on a free loopback port with `data` as its data directory (and
/// `extra` arguments); returns the process and the start-up lines it printed.
pub fn start_server(data: &Path, extra: &[&str]) -> (Proc, Vec<String>) {
    let mut p = Proc::spawn(
        Command::new(mosaicfs_bin())
            .args(["server", "--listen", "127.0.0.1:0", "--log-level", "warn", "--data-dir"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let lines = startup_lines(&mut p);
    (p, lines)
}

/// The start-up lines a `mosaicfs server` prints (spawned with piped stdout): up to the
/// certificate fingerprint, and the first-admin lines a first start prints right after.
pub fn startup_lines(p: &mut Proc) -> Vec<String> {
    let rx = p.stdout_lines();
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let done = line.starts_with("certificate fingerprint");
        lines.push(line);
        if done {
            break;
        }
    }
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        lines.push(line);
    }
    lines
}

/// The rest of the start-up line that begins with `prefix`.
pub fn field<'a>(lines: &'a [String], prefix: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| l.trim().strip_prefix(prefix)).map(str::trim)
}

/// The first admin credential a server kept in `{data}/secrets/admin.secret`: (key, secret).
pub fn admin_secret(data: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data.join("secrets/admin.secret")).expect("admin.secret");
    let mut lines = text.lines().map(str::to_owned);
    (lines.next().expect("access key id"), lines.next().expect("secret"))
}

/// An HTTPS client for a test's own hub (self-signed certificate: not checked), with a
/// per-request `timeout`.
pub fn https_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().danger_accept_invalid_certs(true).timeout(timeout).build().expect("client")
}

/// The typed API client for a test's own hub at `base`, pinned to the certificate the hub keeps
/// in `{data}/tls/hub.crt` and logged in (on first use, renewed as needed) with the admin
/// credential it keeps in `{data}/secrets/admin.secret`.
pub fn admin_api(base: &str, data: &Path) -> agent_core::api::ApiClient {
    let fingerprint =
        agent_core::tls::certificate_fingerprint(&data.join("tls/hub.crt")).expect("the hub's certificate");
    let (key, secret) = admin_secret(data);
    agent_core::api::ApiClient::new(base, &fingerprint)
        .expect("api client")
        .with_credential(key.parse().expect("access key id"), agent_core::auth::Secret::from_string(secret))
}

/// Logs in over HTTPS and returns the session token.
/// Logs in over HTTPS and returns the session token.
pub async fn login(client: &reqwest::Client, base: &str, key: &str, secret: &str) -> String {
    let answer: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"access_key_id": key, "secret": secret}))
        .send()
        .await
        .expect("login request")
        .json()
        .await
        .expect("login answer");
    answer["token"].as_str().expect("a token").to_owned()
}

/// Creates the virtual directory `/name` through the API, showing `export_path` of `node_id`
/// (prefix_replace, `steps` as JSON); panics if the hub refuses.
pub async fn create_mount_dir(
    api: &agent_core::api::ApiClient,
    name: &str,
    node_id: &str,
    export_path: &Path,
    steps: serde_json::Value,
) {
    use agent_core::doc::{ConflictPolicy, MountEntry, MountSource, StepResult, Strategy};
    let mount = MountEntry {
        mount_id: "m0".into(),
        source: MountSource {
            node_id: node_id.parse().expect("node id"),
            export_path: export_path.to_str().expect("utf-8 path").to_owned(),
        },
        steps: serde_json::from_value(steps).expect("steps"),
        default_result: StepResult::Include,
        strategy: Strategy::PrefixReplace,
        conflict_policy: ConflictPolicy::LastWriteWins,
    };
    let dir = agent_core::wire::vdirs::NewDir { enforce_steps_on_children: false, mounts: vec![mount] };
    api.create_directory(name, &dir).await.unwrap_or_else(|e| panic!("create /{name}: {e}"));
}
