//! The first run a new desktop user gets (issue 15): the quickstart's own config
//! (`installer/quickstart-config.sh`, with `$HOME` and `$DISPLAY` of a fresh home), `mosaicfs up`,
//! and then, without any API call: `~/MosaicFS/machines/{machine}/Documents/…`, `/recent` and
//! `/by-type/documents`; quiet, correct answers to what `ls -la`, `stat`, `getfattr -d`, `cp -a`,
//! `rsync -a`, `git status` and `sqlite3` ask; a second machine joining, renamed, disabled and
//! enabled; and a default mount that cannot be made (no FUSE), which the agent survives.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use mosaicfs_tests::cluster::{Agent, Hub, FAST_AGENT};
use mosaicfs_tests::mounted::is_mounted;
use mosaicfs_tests::{mosaicfs_bin, wait_for, Proc};

const DEADLINE: Duration = Duration::from_secs(90);

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::piped()).output().expect("run");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn sha256(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path)).split_whitespace().next().unwrap().to_owned()
}

/// Names in `dir`, sorted (empty when it cannot be listed).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// A fresh home with `Documents/`, the quickstart's config and `mosaicfs up` started on it.
struct FirstRun {
    tmp: tempfile::TempDir,
    home: PathBuf,
    docs: PathBuf,
    data: PathBuf,
    config: PathBuf,
    mount: PathBuf,
    log: PathBuf,
    proc: Option<Proc>,
    banner: Vec<String>,
    url: String,
    fingerprint: String,
}

impl FirstRun {
    fn new() -> FirstRun {
        let tmp = tempfile::tempdir().expect("temp dir");
        let home = tmp.path().join("home");
        let docs = home.join("Documents");
        std::fs::create_dir_all(&docs).unwrap();
        let data = home.join(".local/share/mosaicfs");
        let config = data.join("agent.toml");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../installer/quickstart-config.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&config)
            .arg(&data)
            .env("HOME", &home)
            .env("DISPLAY", ":99")
            // Tests run as root here; a desktop user is what this test is about.
            .env("MOSAICFS_DESKTOP", "1")
            .env_remove("MOSAICFS_MOUNT_POINT")
            .output()
            .expect("bash");
        assert!(out.status.success(), "quickstart-config.sh: {}", String::from_utf8_lossy(&out.stderr));
        // Quicker timers than a user's (the test waits on them); nothing else changes.
        let mut text = std::fs::read_to_string(&config).unwrap();
        assert!(
            text.contains("mount_point_is_default = true"),
            "a desktop user gets the default mount: {text}"
        );
        text.push_str("\n[watcher]\ndebounce_ms = 100\n\n[sync]\nstatus_interval_secs = 1\n");
        std::fs::write(&config, text).unwrap();
        let (mount, log) = (home.join("MosaicFS"), tmp.path().join("up.log"));
        FirstRun {
            tmp,
            home,
            docs,
            data,
            config,
            mount,
            log,
            proc: None,
            banner: vec![],
            url: String::new(),
            fingerprint: String::new(),
        }
    }

    /// Starts `mosaicfs up` (through `wrap`, e.g. `unshare -m sh -c`, when given) and waits for
    /// its banner.
    fn launch(&mut self, wrap: Option<&str>) {
        let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let bin = mosaicfs_bin();
        let mut cmd = match wrap {
            None => {
                let mut c = Command::new(&bin);
                c.args(["up", "--listen", "127.0.0.1:0", "--config"]).arg(&self.config);
                c
            }
            Some(prefix) => {
                let mut c = Command::new("unshare");
                c.args(["-m", "sh", "-c"]).arg(format!(
                    "{prefix} && exec {} up --listen 127.0.0.1:0 --config {}",
                    bin.display(),
                    self.config.display()
                ));
                c
            }
        };
        cmd.env("HOME", &self.home)
            .env("DISPLAY", ":99")
            .env("MOSAICFS_LOG", "warn")
            .env("MOSAICFS_SECRETS", "file")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut p = Proc::spawn(&mut cmd);
        let rx = p.stdout_lines();
        loop {
            let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
                panic!("no banner from mosaicfs up: {:?}\n{}", self.banner, self.log_text());
            });
            if let Some(rest) = line.strip_prefix("control plane: ") {
                self.url = rest.split_whitespace().next().unwrap().to_owned();
                self.fingerprint = rest.rsplit(' ').next().unwrap().trim_end_matches(')').to_owned();
            }
            let done = line.starts_with("virtual tree ");
            self.banner.push(line);
            if done {
                break;
            }
        }
        self.proc = Some(p);
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn node_id(&self) -> String {
        std::fs::read_to_string(self.data.join("node_id")).unwrap().trim().to_owned()
    }

    /// The hub of this `mosaicfs up`, as the cluster helpers know a hub.
    fn hub(&self) -> Hub {
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        let (admin_key, admin_secret) = mosaicfs_tests::admin_secret(&self.data);
        Hub {
            proc: None,
            data: self.data.clone(),
            port,
            fingerprint: self.fingerprint.clone(),
            admin_key,
            admin_secret,
            offline_after: 90,
        }
    }

    /// The only machine directory there is once the first crawl is in (this machine's).
    fn own_machine(&self) -> PathBuf {
        let machines = self.mount.join("machines");
        let name =
            wait_for("this machine in ~/MosaicFS/machines", DEADLINE, || names(&machines).into_iter().next());
        machines.join(name)
    }

    /// A subsystem of this node's `agent_status`: (health, message).
    fn subsystem(&self, name: &str) -> Option<(String, String)> {
        let conn = rusqlite::Connection::open_with_flags(
            self.data.join("agent.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .ok()?;
        let body: String = conn
            .query_row("SELECT body FROM docs WHERE id = ?1", [format!("status::{}", self.node_id())], |r| {
                r.get(0)
            })
            .ok()?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        let s = doc.pointer(&format!("/subsystems/{name}"))?;
        Some((s["health"].as_str()?.to_owned(), s["message"].as_str().unwrap_or("").to_owned()))
    }
}

impl Drop for FirstRun {
    fn drop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGTERM);
            if let Some(c) = p.child.as_mut() {
                for _ in 0..500 {
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

/// The documents of the fresh home: a PDF, text, markdown, a photo, a SQLite database, and one
/// old text file (30 days: documents, not recent).
fn fill_documents(docs: &Path) {
    std::fs::create_dir_all(docs.join("notes/2026")).unwrap();
    std::fs::write(docs.join("report.pdf"), b"%PDF-1.4\n% not really\n").unwrap();
    std::fs::write(docs.join("todo.txt"), b"buy milk\n").unwrap();
    std::fs::write(docs.join("notes/2026/plan.md"), b"# plan\n").unwrap();
    std::fs::write(docs.join("photo.jpg"), (0..5000u32).map(|i| (i * 31) as u8).collect::<Vec<_>>()).unwrap();
    run(Command::new("sqlite3")
        .arg(docs.join("books.sqlite"))
        .arg("CREATE TABLE books(title TEXT); INSERT INTO books VALUES ('Dune'), ('Emma');"));
    std::fs::write(docs.join("old.txt"), b"from last month\n").unwrap();
    run(Command::new("touch").args(["-d", "30 days ago"]).arg(docs.join("old.txt")));
}

const FILES: [&str; 6] =
    ["report.pdf", "todo.txt", "notes/2026/plan.md", "photo.jpg", "books.sqlite", "old.txt"];

#[test]
fn a_first_run_mounts_every_machine_recent_and_by_type_and_answers_every_probe() {
    let mut fr = FirstRun::new();
    fill_documents(&fr.docs);
    fr.launch(None);
    assert!(
        fr.banner.iter().any(|l| l == &format!("virtual tree mounted at {}", fr.mount.display())),
        "mounted at ~/MosaicFS by default: {:?}",
        fr.banner
    );

    // /machines/{machine}/Documents: every file, the same bytes.
    let machine = fr.own_machine();
    assert_eq!(names(&machine), ["Documents"]);
    let docs_in_mount = machine.join("Documents");
    wait_for("every document in the mount", DEADLINE, || {
        FILES.iter().all(|f| docs_in_mount.join(f).exists()).then_some(())
    });
    for f in FILES {
        assert_eq!(sha256(&docs_in_mount.join(f)), sha256(&fr.docs.join(f)), "{f}");
    }

    // Starter directories: flat lists of what they select.
    let recent = fr.mount.join("recent");
    let want_recent = ["books.sqlite", "photo.jpg", "plan.md", "report.pdf", "todo.txt"];
    wait_for("/recent", DEADLINE, || (names(&recent) == want_recent).then_some(()));
    let documents = fr.mount.join("by-type/documents");
    let want_documents = ["old.txt", "plan.md", "report.pdf", "todo.txt"];
    wait_for("/by-type/documents", DEADLINE, || (names(&documents) == want_documents).then_some(()));
    assert_eq!(names(&fr.mount.join("by-type/images")), ["photo.jpg"]);
    assert_eq!(names(&fr.mount.join("by-type")), ["audio", "documents", "images", "video"]);
    assert_eq!(std::fs::read(recent.join("plan.md")).unwrap(), b"# plan\n");

    // Extended attributes: the answers of a read-only filesystem without any.
    let file = docs_in_mount.join("todo.txt");
    let c = std::ffi::CString::new(file.to_str().unwrap()).unwrap();
    let name = std::ffi::CString::new("user.test").unwrap();
    let errno = || std::io::Error::last_os_error().raw_os_error();
    let mut buf = [0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the stated length.
    unsafe {
        assert_eq!(libc::getxattr(c.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()), -1);
        assert_eq!(errno(), Some(libc::ENODATA), "getxattr");
        assert_eq!(libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0), -1);
        assert_eq!(errno(), Some(libc::ENODATA), "getxattr (size query)");
        assert_eq!(libc::listxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()), 0, "listxattr: empty");
        assert_eq!(libc::listxattr(c.as_ptr(), std::ptr::null_mut(), 0), 0, "listxattr size: 0");
        assert_eq!(libc::setxattr(c.as_ptr(), name.as_ptr(), b"x".as_ptr().cast(), 1, 0), -1);
        assert_eq!(errno(), Some(libc::EROFS), "setxattr");
        assert_eq!(libc::removexattr(c.as_ptr(), name.as_ptr()), -1);
        assert_eq!(errno(), Some(libc::EROFS), "removexattr");
    }

    // The tools, with no WARN logged while they run.
    let logged_before = fr.log_text().len();
    let out = fr.tmp.path();
    run(Command::new("ls").arg("-la").arg(&fr.mount).arg(&machine).arg(&docs_in_mount).arg(&recent));
    run(Command::new("ls").arg("-laR").arg(&fr.mount));
    run(Command::new("stat").arg(&file).arg(&recent).arg(&fr.mount));
    run(Command::new("getfattr").arg("-d").arg("-R").arg(&docs_in_mount));
    run(Command::new("cp").arg("-a").arg(&docs_in_mount).arg(out.join("cp-a")));
    run(Command::new("diff").arg("-r").arg(out.join("cp-a")).arg(&fr.docs));
    run(Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", docs_in_mount.display()))
        .arg(out.join("rsync-a")));
    run(Command::new("diff").arg("-r").arg(out.join("rsync-a")).arg(&fr.docs));
    // git: a repository whose work tree is the mounted directory (the config excludes `.git`).
    let git_dir = out.join("repo.git");
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg(format!("--git-dir={}", git_dir.display()))
            .arg(format!("--work-tree={}", fr.docs.display()))
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args))
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "docs"]);
    let status = run(Command::new("git")
        .arg(format!("--git-dir={}", git_dir.display()))
        .arg(format!("--work-tree={}", docs_in_mount.display()))
        .args(["status", "--porcelain"]));
    assert_eq!(status, "", "the mount's work tree is the committed one");
    let titles = run(Command::new("sqlite3")
        .arg("-readonly")
        .arg(docs_in_mount.join("books.sqlite"))
        .arg("SELECT title FROM books ORDER BY title"));
    assert_eq!(titles, "Dune\nEmma\n");
    let log = fr.log_text();
    let warnings: Vec<&str> = log[logged_before..].lines().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.is_empty(), "WARN while the tools ran: {warnings:#?}");
    assert!(!log.contains("Not Implemented"), "every call is answered: {log}");
}

#[test]
fn a_second_machine_appears_is_renamed_hidden_and_back() {
    let mut fr = FirstRun::new();
    fill_documents(&fr.docs);
    fr.launch(None);
    let own = fr.own_machine();
    let own_name = own.file_name().unwrap().to_string_lossy().into_owned();

    let hub = fr.hub();
    let mut b =
        Agent::join(&hub, "127.0.0.2", &format!("{FAST_AGENT}[transfer]\nlisten = \"127.0.0.2:0\"\n"));
    std::fs::create_dir_all(b.node.watched.join("deep")).unwrap();
    std::fs::write(b.node.watched.join("b.txt"), b"from the second machine\n").unwrap();
    std::fs::write(
        b.node.watched.join("deep/c.bin"),
        (0..70_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    b.start();

    // Same host name here, so the newcomer's directory carries its node id; ours keeps its name.
    let machines = fr.mount.join("machines");
    let b_dir = wait_for("the second machine's directory", DEADLINE, || {
        names(&machines).into_iter().find(|n| n.contains(&b.node_id))
    });
    assert!(names(&machines).contains(&own_name), "ours kept its name: {:?}", names(&machines));
    let through = machines.join(&b_dir).join("watched");
    wait_for("its files", DEADLINE, || through.join("deep/c.bin").exists().then_some(()));
    for f in ["b.txt", "deep/c.bin"] {
        assert_eq!(sha256(&through.join(f)), sha256(&b.node.watched.join(f)), "{f} read through the mount");
    }
    // The starter directories took the new machine in.
    wait_for("its file in /recent", DEADLINE, || fr.mount.join("recent/b.txt").exists().then_some(()));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let api = hub.api();
    let node: agent_core::ids::NodeId = b.node_id.parse().unwrap();
    let patch = |f: &dyn Fn(&mut agent_core::wire::nodes::NodePatch)| {
        rt.block_on(async {
            // A push may merge in between: read, patch, retry on a conflict.
            for _ in 0..20 {
                let n = api.node(&node).await.expect("node");
                let mut p = agent_core::wire::nodes::NodePatch::at(n.rev);
                f(&mut p);
                if api.patch_node(&node, &p).await.is_ok() {
                    return;
                }
            }
            panic!("PATCH of the node kept conflicting");
        })
    };

    patch(&|p| p.friendly_name = Some("study pc".into()));
    wait_for("the renamed directory", DEADLINE, || {
        let n = names(&machines);
        (n.contains(&"study pc".to_owned()) && !n.contains(&b_dir)).then_some(())
    });
    assert_eq!(std::fs::read(machines.join("study pc/watched/b.txt")).unwrap(), b"from the second machine\n");

    patch(&|p| p.enabled = Some(false));
    wait_for("the disabled machine hidden", DEADLINE, || {
        (names(&machines) == [own_name.clone()]).then_some(())
    });
    patch(&|p| p.enabled = Some(true));
    wait_for("the enabled machine back", DEADLINE, || {
        machines.join("study pc/watched/b.txt").exists().then_some(())
    });
    b.stop();
}

#[test]
fn a_default_mount_without_fuse_leaves_the_agent_running_and_saying_why() {
    let mut fr = FirstRun::new();
    fill_documents(&fr.docs);
    // A private mount namespace whose /dev holds no fuse device (null and urandom only).
    fr.launch(Some(
        "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/urandom c 1 9",
    ));
    let line = fr.banner.last().cloned().unwrap_or_default();
    assert!(
        line.starts_with(&format!(
            "virtual tree not mounted at {}: FUSE is not available",
            fr.mount.display()
        )) && line.ends_with("the agent runs without a mount"),
        "{line}"
    );
    assert!(!is_mounted(&fr.mount));

    // It indexes and syncs: the hub has every file, and its tree shows the machine.
    let node = fr.node_id();
    wait_for("the files at the hub", DEADLINE, || {
        let at_hub = mosaicfs_tests::cluster::live_file_names(&fr.data.join("hub.db"), &node);
        (at_hub.len() == FILES.len()).then_some(())
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let api = fr.hub().api();
    let listing = wait_for("/machines at the hub", DEADLINE, || {
        rt.block_on(api.listing("/machines")).ok().filter(|l| !l.entries.is_empty())
    });
    let machine = &listing.entries[0].name;
    let docs = rt.block_on(api.listing(&format!("/machines/{machine}/Documents"))).expect("listing");
    assert!(docs.entries.iter().any(|e| e.name == "report.pdf"), "{docs:?}");

    // And says why there is no mount: in its status, and once in its log.
    let (health, message) = wait_for("the mount in agent_status", DEADLINE, || fr.subsystem("mount"));
    assert_eq!(health, "unhealthy");
    assert!(message.contains("FUSE is not available"), "{message}");
    let mut log = String::new();
    std::fs::File::open(&fr.log).unwrap().read_to_string(&mut log).unwrap();
    assert_eq!(log.matches("not mounted at its default place").count(), 1, "{log}");
}
