//! The `mosaicfs` binary as a user runs it: the agent process, its index commands, and its
//! configuration errors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_core::doc::{Document, NodeStatus};
use agent_core::ids::{NodeDocId, NodeId};
use agent_core::store::Store;
use mosaicfs_tests::{mosaicfs_bin, wait_for, NodeDir, Proc};

const LONG: Duration = Duration::from_secs(60);

fn start_agent(node: &NodeDir) -> Proc {
    Proc::spawn(
        Command::new(mosaicfs_bin())
            .args(["agent", "--config"])
            .arg(&node.config)
            .env("MOSAICFS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn node_id(node: &NodeDir) -> NodeId {
    try_node_id(node).expect("node_id file")
}

fn try_node_id(node: &NodeDir) -> Option<NodeId> {
    std::fs::read_to_string(node.data.join("node_id")).ok()?.trim().parse().ok()
}

fn file_id_at(node: &NodeDir, path: &std::path::Path) -> Option<String> {
    let store = Store::open(&node.store_path()).ok()?;
    let f = store.file_by_path(&try_node_id(node)?, path.to_str()?).ok()??;
    (f.status == agent_core::doc::FileStatus::Active).then(|| f.id.to_string())
}

fn node_doc(node: &NodeDir) -> agent_core::doc::NodeDoc {
    let store = Store::open(&node.store_path()).unwrap();
    match store.get(&NodeDocId::for_node(&node_id(node)).into()).unwrap() {
        Some(Document::Node(n)) => n,
        other => panic!("no node document: {other:?}"),
    }
}

#[test]
fn agent_indexes_watches_heartbeats_and_goes_offline_on_sigterm() {
    let node = NodeDir::new("[heartbeat]\ninterval_secs = 1\n[watcher]\ndebounce_ms = 200\n");
    std::fs::create_dir_all(node.watched.join("docs")).unwrap();
    std::fs::write(node.watched.join("docs/a.pdf"), b"%PDF-1.7").unwrap();
    let mut agent = start_agent(&node);

    let a = wait_for("the first crawl", LONG, || file_id_at(&node, &node.watched.join("docs/a.pdf")));
    let first = node_doc(&node);
    assert_eq!(first.status, NodeStatus::Online);
    assert!(!first.friendly_name.is_empty());
    assert_eq!(first.platform.os, std::env::consts::OS);
    wait_for("a heartbeat", LONG, || (node_doc(&node).last_heartbeat > first.last_heartbeat).then_some(()));

    // A new file appears in the index (the benchmark reports the latency; here it is a condition).
    let started = Instant::now();
    std::fs::write(node.watched.join("docs/new.txt"), b"new").unwrap();
    wait_for("new.txt indexed", LONG, || file_id_at(&node, &node.watched.join("docs/new.txt")));
    eprintln!("new file indexed after {:?}", started.elapsed());

    // A rename keeps the document.
    std::fs::rename(node.watched.join("docs/a.pdf"), node.watched.join("docs/b.pdf")).unwrap();
    let b = wait_for("b.pdf indexed", LONG, || file_id_at(&node, &node.watched.join("docs/b.pdf")));
    assert_eq!(a, b, "a rename keeps the file id");

    agent.signal(libc::SIGTERM);
    let status = agent.wait(LONG);
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert_eq!(node_doc(&node).status, NodeStatus::Offline);
    let store = Store::open(&node.store_path()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Ok(()));
}

#[test]
fn sigint_also_shuts_down_cleanly_and_the_node_id_is_kept() {
    let node = NodeDir::new("");
    let mut agent = start_agent(&node);
    wait_for("the node document", LONG, || node.store_path().exists().then_some(()));
    wait_for("online", LONG, || {
        Store::open(&node.store_path()).ok()?.get(&NodeDocId::for_node(&try_node_id(&node)?).into()).ok()?
    });
    let id = node_id(&node);
    agent.signal(libc::SIGINT);
    assert!(agent.wait(LONG).success());
    assert_eq!(node_doc(&node).status, NodeStatus::Offline);

    let mut again = start_agent(&node);
    wait_for("online again", LONG, || (node_doc(&node).status == NodeStatus::Online).then_some(()));
    assert_eq!(node_id(&node), id, "node_id is generated once and kept");
    again.signal(libc::SIGTERM);
    assert!(again.wait(LONG).success());
}

#[test]
fn configuration_errors_are_one_line_naming_file_and_field_with_status_2() {
    let node = NodeDir::new("");
    let cases: [(&str, &str); 5] = [
        ("data_dir = \"/tmp/x\"\n", "missing field `watch_paths`"),
        ("watch_paths = [\"relative/path\"]\n", "watch_paths[0]"),
        ("watch_paths = [\"/tmp\"]\n[watcher]\ndebounce_ms = \"soon\"\n", "watcher.debounce_ms"),
        ("watch_paths = [\"/tmp\"]\nwatchpaths = 1\n", "unknown field `watchpaths`"),
        (
            "watch_paths = [\"/tmp\"]\n[control_plane]\nurl = \"https://hub:8443\"\naccess_key_id = \"MFSABCDEFGHIJKLMNOPQ\"\nsecret = \"hunter2\"\nserver_fingerprint = \"00\"\n",
            "control_plane.secret",
        ),
    ];
    for (text, field) in cases {
        let path = node.tmp.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        for args in [vec!["agent", "--config"], vec!["index", "--config"]] {
            let mut args = args.clone();
            args.push(path.to_str().unwrap());
            if args[0] == "index" {
                args.push("stats");
            }
            let out = node.run(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} {text:?}: {stderr}");
            assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(path.to_str().unwrap()) && stderr.contains(field), "{stderr}");
            assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
        }
    }
    let missing = node.run(&["agent", "--config", "/nonexistent/agent.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/agent.toml"));
}

#[test]
fn index_commands_show_what_was_indexed() {
    let node = NodeDir::new("");
    std::fs::create_dir_all(node.watched.join("Photos/2024")).unwrap();
    std::fs::write(node.watched.join("Photos/2024/IMG_0001.jpg"), vec![0u8; 1000]).unwrap();
    std::fs::write(node.watched.join("Photos/notes.txt"), b"x").unwrap();
    std::fs::write(node.watched.join("report.pdf"), b"%PDF").unwrap();

    let crawl = node.index_json(&["crawl"]);
    assert_eq!((crawl["seen"].as_u64(), crawl["added"].as_u64()), (Some(3), Some(3)), "{crawl}");
    let again = node.index_json(&["crawl"]);
    assert_eq!((again["added"].as_u64(), again["skipped"].as_u64()), (Some(0), Some(3)), "{again}");

    let stats = node.index_json(&["stats"]);
    assert_eq!(stats["files_active"], 3);
    assert_eq!(stats["bytes_active"], 1005);

    let ls = node.index_json(&["ls", node.watched.join("Photos").to_str().unwrap()]);
    assert_eq!(ls["dirs"], serde_json::json!(["2024"]));
    assert_eq!(ls["files"][0]["name"], "notes.txt");

    let found = node.index_json(&["search", "img_"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(
        found[0]["source"]["export_path"],
        node.watched.join("Photos/2024/IMG_0001.jpg").to_str().unwrap()
    );
    let globbed = node.index_json(&["search", "*.{pdf,txt}"]);
    assert_eq!(globbed.as_array().unwrap().len(), 2);

    // Human output works too.
    let out = node.run(&["index", "--config", node.config.to_str().unwrap(), "stats"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("files       3"));
    let bad = node.run(&["index", "--config", node.config.to_str().unwrap(), "search", "[unclosed"]);
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn sighup_changes_the_log_level_without_a_restart() {
    let node = NodeDir::new("[watcher]\ndebounce_ms = 100\n[log]\nlevel = \"warn\"\n");
    let mut agent = Proc::spawn(
        Command::new(mosaicfs_bin())
            .args(["agent", "--config"])
            .arg(&node.config)
            .env_remove("MOSAICFS_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let log = node.data.join("logs/mosaicfs.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the agent's store", LONG, || {
        try_node_id(&node).and_then(|_| node.store_path().exists().then_some(()))
    });
    std::fs::write(node.watched.join("quiet.txt"), b"q").unwrap();
    wait_for("quiet.txt indexed", LONG, || file_id_at(&node, &node.watched.join("quiet.txt")));
    assert!(!read_log().contains("applied filesystem changes"), "info lines are filtered at warn");

    let config =
        std::fs::read_to_string(&node.config).unwrap().replace("level = \"warn\"", "level = \"info\"");
    std::fs::write(&node.config, config).unwrap();
    agent.signal(libc::SIGHUP);
    wait_for("the level change logged", LONG, || read_log().contains("log level changed").then_some(()));
    std::fs::write(node.watched.join("loud.txt"), b"l").unwrap();
    wait_for("an info line after SIGHUP", LONG, || {
        read_log().contains("applied filesystem changes").then_some(())
    });
    let line = read_log().lines().find(|l| l.contains("applied filesystem changes")).unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(v["fields"]["operation"], "watch");
    assert!(v["fields"]["duration_ms"].is_u64(), "{line}");

    agent.signal(libc::SIGTERM);
    assert!(agent.wait(LONG).success());
}
