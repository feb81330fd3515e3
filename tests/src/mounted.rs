//! A `mosaicfs up` with its virtual tree mounted, for the mount tests: started, restarted,
//! killed; virtual directories created through its REST API. Dropping it stops the process and
//! makes sure nothing stays mounted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{mosaicfs_bin, wait_for, NodeDir, Proc};

pub struct MountedUp {
    pub node: NodeDir,
    pub mount: PathBuf,
    pub node_id: String,
    proc: Option<Proc>,
    pub url: String,
    api: Option<agent_core::api::ApiClient>,
    rt: tokio::runtime::Runtime,
}

/// Whether `path` is a mount point right now (`/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let p = path.to_str().unwrap_or("");
    info.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

impl MountedUp {
    /// A node whose agent.toml has `[vfs] mount_point = <tmp>/mnt` plus `vfs_extra` lines, a
    /// short readdir cache and attribute TTL, and a fast watcher; not started yet ([`Self::launch`]).
    pub fn new(vfs_extra: &str) -> MountedUp {
        let node = NodeDir::new("[watcher]\ndebounce_ms = 100\n[sync]\nstatus_interval_secs = 1\n");
        let mount = node.tmp.path().join("mnt");
        let mut text = std::fs::read_to_string(&node.config).expect("agent.toml");
        text.push_str(&format!(
            "[vfs]\nmount_point = {:?}\nreaddir_ttl_ms = 500\nattr_ttl_ms = 200\n{vfs_extra}\n",
            mount.display().to_string()
        ));
        std::fs::write(&node.config, text).expect("agent.toml");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        MountedUp { node, mount, node_id: String::new(), proc: None, url: String::new(), api: None, rt }
    }

    /// Spawns `mosaicfs up` and waits for its banner; returns the banner lines.
    pub fn launch(&mut self) -> Vec<String> {
        assert!(self.proc.is_none(), "already running");
        let mut p = Proc::spawn(
            Command::new(mosaicfs_bin())
                .args(["up", "--listen", "127.0.0.1:0", "--config"])
                .arg(&self.node.config)
                .env("MOSAICFS_LOG", std::env::var("MOSAICFS_UP_LOG").unwrap_or_else(|_| "warn".into()))
                .env("MOSAICFS_SECRETS", "file")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let rx = p.stdout_lines();
        let mut lines = Vec::new();
        loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
                panic!("no complete banner from mosaicfs up; got {lines:?}");
            });
            if let Some(rest) = line.strip_prefix("control plane: ") {
                self.url = rest.split_whitespace().next().expect("url").to_owned();
            }
            let done = line.starts_with("virtual tree ");
            lines.push(line);
            if done {
                break;
            }
        }
        self.proc = Some(p);
        self.api = None;
        self.node_id =
            std::fs::read_to_string(self.node.data.join("node_id")).expect("node_id").trim().to_owned();
        lines
    }

    /// SIGTERM; asserts a clean exit and that the tree is unmounted.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGTERM);
            assert!(p.wait(Duration::from_secs(60)).success(), "mosaicfs up exits cleanly");
            assert!(!is_mounted(&self.mount), "unmounted on SIGTERM");
        }
    }

    /// SIGKILL: the mount is left behind, stale.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait(Duration::from_secs(30));
        }
    }

    /// The PID of the running `mosaicfs up`.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid)
    }

    /// The typed API client of this node's hub, logged in as the admin (once per launch).
    pub fn api(&mut self) -> &agent_core::api::ApiClient {
        if self.api.is_none() {
            self.api = Some(crate::admin_api(&self.url, &self.node.data));
        }
        self.api.as_ref().expect("just made")
    }

    /// Creates the virtual directory `/name` mounting `export_path` of this node
    /// (prefix_replace, no steps; `steps` as JSON when given).
    pub fn create_dir(&mut self, name: &str, export_path: &Path, steps: serde_json::Value) {
        let node_id = self.node_id.clone();
        self.api();
        let (rt, api) = (&self.rt, self.api.as_ref().expect("made above"));
        rt.block_on(crate::create_mount_dir(api, name, &node_id, export_path, steps));
    }

    /// The `mount` subsystem's message in this node's `agent_status` document, if written yet.
    pub fn mount_status(&self) -> Option<String> {
        let conn = rusqlite::Connection::open_with_flags(
            self.node.store_path(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .ok()?;
        let body: String = conn
            .query_row("SELECT body FROM docs WHERE id = ?1", [format!("status::{}", self.node_id)], |r| {
                r.get(0)
            })
            .ok()?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        doc.pointer("/subsystems/mount/message")?.as_str().map(str::to_owned)
    }

    /// Waits until `rel` (below the mount) exists.
    pub fn wait_visible(&self, rel: &str) -> std::fs::Metadata {
        let path = self.mount.join(rel);
        wait_for(&format!("{} in the mount", path.display()), Duration::from_secs(60), || {
            std::fs::metadata(&path).ok()
        })
    }
}

impl Drop for MountedUp {
    fn drop(&mut self) {
        if let Some(p) = self.proc.take() {
            p.signal(libc::SIGTERM);
            let mut p = p;
            if let Some(c) = p.child.as_mut() {
                for _ in 0..300 {
                    if c.try_wait().ok().flatten().is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        if is_mounted(&self.mount) {
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}
