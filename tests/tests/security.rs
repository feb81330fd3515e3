//! Issue 16 (security) across real processes: each test attacks a running `mosaicfs` the way
//! the review did, and fails on the code before the fix.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mosaicfs_tests::{mosaicfs_bin, wait_for, NodeDir, Proc};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

/// Every file below `dir` with its mode, for failure messages.
fn listing(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
            out.push(format!("{:o} {}", m, p.display()));
            if p.is_dir() {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out.join("\n")
}

/// `mosaicfs up` on `node` (no mount), started with umask 000; returns once its banner is out.
fn up_with_open_umask(node: &NodeDir) -> Proc {
    let mut cmd = Command::new(mosaicfs_bin());
    cmd.args(["up", "--listen", "127.0.0.1:0", "--config"])
        .arg(&node.config)
        .env("MOSAICFS_LOG", "info")
        .env("MOSAICFS_SECRETS", "file")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: umask(2) is async-signal-safe; it runs in the child between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let mut p = Proc::spawn(&mut cmd);
    let rx = p.stdout_lines();
    wait_for("the banner of mosaicfs up", Duration::from_secs(60), || {
        rx.try_recv().ok().filter(|l| l.starts_with("control plane: "))
    });
    p
}

#[test]
fn the_hubs_secrets_are_private_whatever_the_umask_and_stale_temp_files() {
    let node = NodeDir::new("");
    std::fs::write(node.watched.join("a.txt"), b"hello").unwrap();
    // Leftovers of crashed writes, world-readable, where a key is written through a temp file
    // (both the temp names of today and of the build before).
    let data = &node.data;
    let stale = [
        "hub/jwt.key.tmp",
        "hub/jwt.tmp",
        "hub/transfer_ed25519.pem.tmp",
        "hub/transfer_ed25519.tmp",
        "tls/hub.key.tmp",
        "tls/hub.tmp",
        "tls/transfer.key.tmp",
        "tls/transfer.tmp",
        "secrets/admin.secret.tmp",
        "secrets/admin.tmp",
    ];
    for rel in stale {
        let p = data.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"stale").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut up = up_with_open_umask(&node);
    let wal = data.join("hub.db-wal");
    wait_for("hub.db's WAL and the agent's store", Duration::from_secs(60), || {
        (wal.exists() && data.join("agent.db-shm").exists() && data.join("logs/mosaicfs.log").exists())
            .then_some(())
    });
    let node_secret = std::fs::read_dir(data.join("secrets"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "secret") && !p.ends_with("admin.secret"))
        .expect("the local agent's secret file");

    let files = listing(data);
    assert_eq!(mode(data), 0o700, "the data directory:\n{files}");
    assert_eq!(mode(&data.join("secrets")), 0o700, "secrets/:\n{files}");
    for rel in [
        "hub.db",
        "hub.db-wal",
        "hub.db-shm",
        "agent.db",
        "agent.db-wal",
        "agent.db-shm",
        "hub/jwt.key",
        "hub/transfer_ed25519.pem",
        "tls/hub.key",
        "tls/transfer.key",
        "secrets/admin.secret",
        "logs/mosaicfs.log",
    ] {
        assert_eq!(mode(&data.join(rel)), 0o600, "{rel}:\n{files}");
    }
    assert_eq!(mode(&node_secret), 0o600, "{}:\n{files}", node_secret.display());
    for rel in stale
        .iter()
        .filter(|r| r.ends_with(".key.tmp") || r.ends_with(".pem.tmp") || r.ends_with(".secret.tmp"))
    {
        assert!(!data.join(rel).exists(), "{rel} was replaced, not reused:\n{files}");
    }
    up.signal(libc::SIGTERM);
    assert!(up.wait(Duration::from_secs(60)).success(), "mosaicfs up exits cleanly");
}

/// Resident memory of a process, in bytes (`VmRSS` of `/proc/PID/status`).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[test]
fn a_rename_storm_keeps_the_agents_memory_flat_and_the_index_right_afterwards() {
    const STORM: Duration = Duration::from_secs(25);
    const MARGIN: u64 = 50 * 1024 * 1024;
    let node = NodeDir::new("");
    let storm_dir = node.watched.join("storm");
    std::fs::create_dir(&storm_dir).unwrap();
    for i in 0..20 {
        std::fs::write(node.watched.join(format!("keep-{i}.txt")), b"kept").unwrap();
    }
    let (threads, per_thread) = (2usize, 4usize);
    for t in 0..threads {
        for i in 0..per_thread {
            std::fs::write(storm_dir.join(format!("{t}-{i}-a")), format!("{t}-{i}")).unwrap();
        }
    }
    let mut agent = Proc::spawn(
        Command::new(mosaicfs_bin())
            .args(["agent", "--config"])
            .arg(&node.config)
            .env("MOSAICFS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let node_id = wait_for("the node id", Duration::from_secs(60), || {
        std::fs::read_to_string(node.data.join("node_id")).ok().map(|s| s.trim().to_owned())
    });
    let on_disk = |dir: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let expected = |names: std::collections::BTreeSet<String>| {
        let mut all: std::collections::BTreeSet<String> = on_disk(&node.watched);
        all.remove("storm");
        all.extend(names);
        all
    };
    let before = expected(on_disk(&storm_dir));
    wait_for("the first crawl", Duration::from_secs(60), || {
        (mosaicfs_tests::cluster::live_file_names(&node.store_path(), &node_id) == before).then_some(())
    });
    // Idle: the highest of a few samples once the first crawl is in.
    let mut idle = 0;
    for _ in 0..10 {
        idle = idle.max(rss_bytes(agent.pid));
        std::thread::sleep(Duration::from_millis(100));
    }

    // Each thread renames its files back and forth as fast as it can, for 25 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (dir, stop) = (storm_dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut renames = 0u64;
                let mut at_a = true;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (from, to) = if at_a { ("a", "b") } else { ("b", "a") };
                    for i in 0..per_thread {
                        std::fs::rename(
                            dir.join(format!("{t}-{i}-{from}")),
                            dir.join(format!("{t}-{i}-{to}")),
                        )
                        .unwrap();
                        renames += 1;
                    }
                    at_a = !at_a;
                }
                // End on names the index has never seen.
                let from = if at_a { "a" } else { "b" };
                for i in 0..per_thread {
                    std::fs::rename(dir.join(format!("{t}-{i}-{from}")), dir.join(format!("{t}-{i}-final")))
                        .unwrap();
                }
                renames
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let mut peak = idle;
    while started.elapsed() < STORM {
        peak = peak.max(rss_bytes(agent.pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let renames: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let after = expected(on_disk(&storm_dir));
    assert!(after.iter().any(|n| n.ends_with("-final")), "{after:?}");

    // Right afterwards the index is the disk again; memory stayed flat throughout.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        peak = peak.max(rss_bytes(agent.pid));
        let indexed = mosaicfs_tests::cluster::live_file_names(&node.store_path(), &node_id);
        if indexed == after {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "after {renames} renames the index still differs from the disk:\nindexed {indexed:?}\non disk {after:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mib = |b: u64| b / (1024 * 1024);
    eprintln!("{renames} renames in {STORM:?}; RSS idle {} MiB, peak {} MiB", mib(idle), mib(peak));
    assert!(
        peak <= idle + MARGIN,
        "the agent went from {} MiB idle to {} MiB during {renames} renames (allowed: idle + {} MiB)",
        mib(idle),
        mib(peak),
        mib(MARGIN)
    );
    agent.signal(libc::SIGTERM);
    assert!(agent.wait(Duration::from_secs(60)).success(), "the agent exits cleanly");
}

/// Server-side TCP connections on `port` from `peer` that are established with unsent data
/// queued (`/proc/net/tcp`): transfers whose client stopped reading.
fn stalled_connections(port: u16, peer: std::net::Ipv4Addr) -> usize {
    let hex_ip = |ip: std::net::Ipv4Addr| format!("{:08X}", u32::from_le_bytes(ip.octets()));
    let local = format!("{}:{port:04X}", hex_ip(std::net::Ipv4Addr::LOCALHOST));
    let remote_ip = hex_ip(peer);
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let queued = f
                .get(4)
                .and_then(|q| q.split(':').next())
                .is_some_and(|tx| !tx.trim_start_matches('0').is_empty());
            f.len() > 4
                && f[1] == local
                && f[2].split(':').next() == Some(remote_ip.as_str())
                && f[3] == "01"
                && queued
        })
        .count()
}

fn threads_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process is alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("Threads")
}

/// Runs `f` on a thread; panics if it has not returned after `limit` (a hung mount).
fn within<T: Send + 'static>(what: &str, limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("{what} did not answer within {limit:?}"))
}

/// A file document as the hub holds it, once the agent's push has brought it there.
async fn file_at_hub(
    api: &reqwest::Client,
    url: &str,
    token: &str,
    node: &str,
    path: &Path,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let file: serde_json::Value = api
            .get(format!("{url}/api/files/by-path"))
            .query(&[("node_id", node), ("path", path.to_str().unwrap())])
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if file["_id"].is_string() {
            return file;
        }
        assert!(std::time::Instant::now() < deadline, "{} never reached the hub: {file}", path.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Another node, as an agent of it would sign its requests: a node credential made through the
/// API, its key derived from the secret and the public KDF parameters.
struct OtherNode {
    key: agent_core::ids::AccessKeyId,
    k: agent_core::auth::Verifier,
}

impl OtherNode {
    async fn register(api: &reqwest::Client, url: &str, token: &str, node_id: &str) -> OtherNode {
        let created: serde_json::Value = api
            .post(format!("{url}/api/credentials"))
            .bearer_auth(token)
            .json(&serde_json::json!({"name": node_id, "role": "node", "node_id": node_id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key: agent_core::ids::AccessKeyId = created["access_key_id"].as_str().unwrap().parse().unwrap();
        let secret = agent_core::auth::Secret::from_string(created["secret"].as_str().unwrap().to_owned());
        let kdf: agent_core::doc::KdfParams =
            api.get(format!("{url}/api/auth/kdf/{key}")).send().await.unwrap().json().await.unwrap();
        OtherNode { k: agent_core::auth::derive_verifier(&secret, &kdf).unwrap(), key }
    }

    /// A signed `POST path` with a JSON body; the answer's JSON.
    async fn post(
        &self,
        api: &reqwest::Client,
        url: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> serde_json::Value {
        let body = body.to_string();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let h =
            agent_core::auth::AuthHeader::sign(&self.key, &self.k, "POST", path, "", now, body.as_bytes());
        api.post(format!("{url}{path}"))
            .header("authorization", h.to_string())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[test]
fn six_hundred_stalled_transfers_leave_health_the_mount_and_other_clients_answering() {
    use sha2::Digest;
    const BIG: usize = 64 * 1024 * 1024;
    let mut up = mosaicfs_tests::mounted::MountedUp::new("");
    let big: Vec<u8> = (0..BIG).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(up.node.watched.join("big.bin"), &big).unwrap();
    std::fs::write(up.node.watched.join("small.txt"), b"still here").unwrap();
    let big_digest = sha2::Sha256::digest(&big);
    drop(big);
    up.launch();
    let watched = up.node.watched.clone();
    up.create_dir("files", &watched, serde_json::json!([]));
    up.wait_visible("files/small.txt");
    let pid = up.pid().expect("running");
    let (url, node_id) = (up.url.clone(), up.node_id.clone());

    // The transfer endpoint the node advertises, once its document has it.
    let db = up.node.store_path();
    let node_doc_id = format!("node::{node_id}");
    let endpoint = wait_for("the advertised transfer endpoint", Duration::from_secs(60), || {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        let body: String =
            conn.query_row("SELECT body FROM docs WHERE id = ?1", [&node_doc_id], |r| r.get(0)).ok()?;
        let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
        doc.pointer("/transfer/endpoint")?.as_str().map(str::to_owned)
    });
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let endpoint = format!("https://127.0.0.1:{port}");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
    let api = mosaicfs_tests::https_client(Duration::from_secs(30));
    let (admin_key, admin_secret) = mosaicfs_tests::admin_secret(&up.node.data);
    let token = rt.block_on(mosaicfs_tests::login(&api, &url, &admin_key, &admin_secret));
    // A token as another node would get it: a node credential, its key derived, a signed request.
    let (file_id, transfer_token) = rt.block_on(async {
        let big_path = watched.join("big.bin");
        let file = file_at_hub(&api, &url, &token, &node_id, &big_path).await;
        let file_id = file["_id"].as_str().expect("an id").to_owned();
        let other = OtherNode::register(&api, &url, &token, "node-other").await;
        let body = serde_json::json!({"file_id": file_id});
        let answer = other.post(&api, &url, "/api/agent/transfer-token", &body).await;
        (file_id, answer["token"].as_str().expect("a transfer token").to_owned())
    });
    let transfer_url = format!("{endpoint}/api/agent/transfer/{file_id}");
    let threads_before = threads_of(pid);

    // 600 transfers from 127.0.0.1 whose client never reads a byte of the body.
    let stalling = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .http1_only()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap();
    let held: Vec<reqwest::Response> = rt.block_on(async {
        let sends: Vec<_> = (0..600)
            .map(|_| {
                let req = stalling.get(&transfer_url).bearer_auth(&transfer_token).send();
                tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(20), req).await })
            })
            .collect();
        let mut held = Vec::new();
        for s in sends {
            if let Ok(Ok(Ok(resp))) = s.await {
                held.push(resp);
            }
        }
        held
    });
    let streaming = held.iter().filter(|r| r.status() == 200).count();
    eprintln!("{} of 600 stalled requests got an answer, {streaming} of them streaming", held.len());
    assert!(streaming >= 1, "some transfers stream (and stall)");

    // Meanwhile: the hub's /health, the transfer server's /health and a whole transfer from
    // another client address, the mount, and a bounded number of threads.
    let other = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    rt.block_on(async {
        let hub = api.get(format!("{url}/health")).timeout(Duration::from_secs(15)).send().await;
        assert_eq!(hub.expect("the hub's /health answers").status(), 200);
        let own = other.get(format!("{endpoint}/health")).send().await;
        assert_eq!(own.expect("the transfer server's /health answers").status(), 200);
        let resp = other
            .get(&transfer_url)
            .bearer_auth(&transfer_token)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("another client's transfer starts");
        assert_eq!(resp.status(), 200);
        let body = resp.bytes().await.expect("another client's transfer completes");
        assert_eq!(body.len(), BIG);
        assert_eq!(sha2::Sha256::digest(&body), big_digest, "the right bytes");
    });
    let mount = up.mount.join("files");
    let listed = within("the mount's readdir", Duration::from_secs(15), move || {
        let names: std::collections::BTreeSet<String> = std::fs::read_dir(&mount)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        (names, std::fs::read(mount.join("small.txt")).unwrap())
    });
    assert!(listed.0.contains("big.bin") && listed.0.contains("small.txt"), "{:?}", listed.0);
    assert_eq!(listed.1, b"still here");
    let threads = threads_of(pid);
    assert!(threads < threads_before + 64, "{threads} threads (before: {threads_before})");

    // The stalled transfers are dropped after the server's timeout: their bodies end short.
    wait_for("the stalled transfers dropped", Duration::from_secs(120), || {
        (stalled_connections(port, std::net::Ipv4Addr::LOCALHOST) == 0).then_some(())
    });
    rt.block_on(async {
        for resp in held.into_iter().filter(|r| r.status() == 200) {
            let got =
                tokio::time::timeout(Duration::from_secs(60), resp.bytes()).await.expect("the body ends");
            assert!(got.is_err(), "a stalled transfer was cut off, not completed");
        }
    });
    up.stop();
}

#[test]
fn hostile_pushes_are_refused_and_the_mount_still_lists_the_victims_files() {
    let mut up = mosaicfs_tests::mounted::MountedUp::new("");
    std::fs::write(up.node.watched.join("a.txt"), b"the victim's").unwrap();
    std::fs::write(up.node.watched.join("b.txt"), b"also the victim's").unwrap();
    up.launch();
    let (url, victim) = (up.url.clone(), up.node_id.clone());
    let watched = up.node.watched.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let api = mosaicfs_tests::https_client(Duration::from_secs(30));
    let (admin_key, admin_secret) = mosaicfs_tests::admin_secret(&up.node.data);
    let token = rt.block_on(mosaicfs_tests::login(&api, &url, &admin_key, &admin_secret));
    // One directory shows both nodes' files side by side.
    rt.block_on(async {
        let mount = |node: &str, path: &str| {
            serde_json::json!({"mount_id": node, "source": {"node_id": node, "export_path": path}, "steps": [],
                "default_result": "include", "strategy": "prefix_replace", "conflict_policy": "last_write_wins"})
        };
        let body = serde_json::json!({"mounts": [mount(&victim, watched.to_str().unwrap()), mount("node-evil", "/e")]});
        let resp = api
            .post(format!("{url}/api/vfs/directories/shared"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap_or_default());
    });
    let a = up.wait_visible("shared/a.txt");
    up.wait_visible("shared/b.txt");
    let victim_a = rt.block_on(file_at_hub(&api, &url, &token, &victim, &watched.join("a.txt")));
    let victim_inode = victim_a["inode"].as_u64().expect("the victim's inode");

    // The hostile node pushes a 5,000-byte name, a name with NUL, the victim's inode and a
    // tombstone of the victim's file into the same directory, and one honest file.
    let file = |path: &str, inode: u64| {
        let name = path.rsplit('/').next().unwrap();
        serde_json::json!({"_id": agent_core::ids::FileId::generate(), "_rev": 1, "type": "file", "name": name,
            "source": {"node_id": "node-evil", "export_path": path, "export_parent": "/e"},
            "size": 3, "mtime": "2026-01-01T00:00:00Z", "inode": inode, "status": "active",
            "first_seen": "2026-01-01T00:00:00Z"})
    };
    let docs = serde_json::json!({"docs": [
        file(&format!("/e/{}", "x".repeat(5000)), 5_000_001),
        file("/e/x\u{0}y", 5_000_002),
        file("/e/a-copy.txt", victim_inode),
        {"_id": victim_a["_id"], "_rev": 99, "type": "file", "_deleted": true},
        file("/e/honest.txt", 5_000_003),
    ]});
    let answer = rt.block_on(async {
        let evil = OtherNode::register(&api, &url, &token, "node-evil").await;
        evil.post(&api, &url, "/api/agent/push", &docs).await
    });
    let codes: Vec<String> = answer["results"]
        .as_array()
        .expect("one result per document")
        .iter()
        .map(|r| {
            if r["ok"] == true {
                "ok".into()
            } else {
                r["error"]["code"].as_str().unwrap_or("?").to_owned()
            }
        })
        .collect();
    assert_eq!(codes, ["invalid", "invalid", "inode_taken", "not_owner", "ok"], "{answer}");

    // The honest file reaches the mount; the victim's files are listed, with their inode.
    up.wait_visible("shared/honest.txt");
    let shared = up.mount.join("shared");
    let (names, ino) = within("the mount's readdir", Duration::from_secs(30), move || {
        let names: std::collections::BTreeSet<String> = std::fs::read_dir(&shared)
            .expect("the directory lists")
            .map(|e| e.expect("an entry").file_name().to_string_lossy().into_owned())
            .collect();
        use std::os::unix::fs::MetadataExt;
        (names, std::fs::metadata(shared.join("a.txt")).unwrap().ino())
    });
    let want: std::collections::BTreeSet<String> =
        ["a.txt", "b.txt", "honest.txt"].into_iter().map(String::from).collect();
    assert_eq!(names, want);
    assert_eq!(ino, victim_inode, "the victim's file keeps its inode");
    assert_eq!(ino, {
        use std::os::unix::fs::MetadataExt;
        a.ino()
    });
    up.stop();
}
