//! Replication across real processes (issue 4): a `mosaicfs server` hub and two `mosaicfs
//! agent`s, each agent behind its own cuttable proxy on 127.0.0.2 / 127.0.0.3. Every check
//! awaits a condition with a generous deadline; nothing is timed.

use std::collections::BTreeMap;
use std::time::Duration;

use agent_core::config::AgentConfig;
use mosaicfs_tests::cluster::{docs, live_file_names, try_docs, Agent, Hub, FAST_AGENT};
use mosaicfs_tests::wait_for;

const DEADLINE: Duration = Duration::from_secs(120);

/// Every store agrees: the hub holds exactly the agents' own file documents (same revisions,
/// same tombstones), and every agent's replica holds exactly the hub's.
fn converged(hub: &Hub, agents: &[&Agent]) -> Result<(), String> {
    let read =
        |db: &std::path::Path, origin| try_docs(db, "file", origin).ok_or("a store is not readable yet");
    let hub_files = read(&hub.db(), None)?;
    let mut own = BTreeMap::new();
    for a in agents {
        own.extend(read(&a.db(), Some(0))?);
    }
    if hub_files != own {
        return Err(format!("hub has {} file docs, agents own {}", hub_files.len(), own.len()));
    }
    for a in agents {
        let replica = read(&a.db(), None)?;
        if replica != hub_files {
            return Err(format!("{} holds {} file docs, hub {}", a.node_id, replica.len(), hub_files.len()));
        }
    }
    Ok(())
}

fn await_convergence(hub: &Hub, agents: &[&Agent]) {
    let mut last = String::new();
    let deadline = std::time::Instant::now() + DEADLINE;
    while std::time::Instant::now() < deadline {
        match converged(hub, agents) {
            Ok(()) => return,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no convergence within {DEADLINE:?}: {last}");
}

/// The agent's index matches its disk: one live file document per file in `watched/`.
fn index_matches_disk(a: &Agent) -> bool {
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(&a.node.watched)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    live_file_names(&a.db(), &a.node_id) == on_disk
}

fn write_files(a: &Agent, prefix: &str, n: usize) {
    for i in 0..n {
        std::fs::write(a.node.watched.join(format!("{prefix}-{i:04}.txt")), format!("{prefix} {i}")).unwrap();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn admin_get(hub: &Hub, path: String) -> serde_json::Value {
    let client = agent_core::http::pinned_client(&hub.fingerprint).unwrap();
    let token = mosaicfs_tests::login(&client, &hub.url(), &hub.admin_key, &hub.admin_secret).await;
    client.get(format!("{}{path}", hub.url())).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

#[test]
fn a_file_on_one_agent_reaches_the_other_and_reports_reach_the_hub() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("hub"), 90);
    let mut a = Agent::join(&hub, "127.0.0.2", FAST_AGENT);
    let mut b = Agent::join(&hub, "127.0.0.3", FAST_AGENT);
    a.start();
    b.start();

    std::fs::write(a.node.watched.join("from-a.txt"), b"hello from A").unwrap();
    wait_for("from-a.txt in B's replica", DEADLINE, || {
        live_file_names(&b.db(), &a.node_id).contains("from-a.txt").then_some(())
    });
    std::fs::write(b.node.watched.join("from-b.txt"), b"hello from B").unwrap();
    wait_for("from-b.txt in A's replica", DEADLINE, || {
        live_file_names(&a.db(), &b.node_id).contains("from-b.txt").then_some(())
    });
    await_convergence(&hub, &[&a, &b]);

    // Each replica has the other node's document; status and utilization stay on the hub.
    wait_for("node documents replicated", DEADLINE, || {
        let nodes = docs(&a.db(), "node", None);
        nodes.contains_key(&format!("node::{}", b.node_id)).then_some(())
    });
    for agent in [&a, &b] {
        let own_status = format!("status::{}", agent.node_id);
        for other in docs(&agent.db(), "agent_status", None).keys() {
            assert_eq!(other, &own_status, "agent_status of other nodes never reaches an agent");
        }
        assert!(docs(&agent.db(), "credential", None).is_empty(), "credentials never leave the hub");
    }
    let status = rt().block_on(async {
        wait_for_async(
            || admin_get(&hub, format!("/api/nodes/{}/status", a.node_id)),
            |v| {
                v["agent_status"]["subsystems"]["sync"]["health"] == "healthy"
                    && v["utilization"]["indexed_files"].as_u64() == Some(1)
            },
        )
        .await
    });
    assert_eq!(status["agent_status"]["node_id"], a.node_id.as_str(), "{status}");
    assert_eq!(status["observed_status"], "online");
    // The hub knows how far A's replica is from A's last pull.
    let replica = &status["replica"];
    assert!(replica["last_pull_at"].is_string(), "{status}");
    assert!(replica["applied_hub_seq"].as_u64().unwrap() <= replica["hub_seq"].as_u64().unwrap(), "{status}");

    let s = a.sync_status();
    assert_eq!(s["connected"], true, "{s}");
    assert_eq!(s["pull"]["lag"], 0, "{s}");
    assert!(s["push"]["pushed"].as_u64().unwrap() >= 2, "{s}");
    wait_for("A's outbox drained", DEADLINE, || (a.sync_status()["push"]["outbox_depth"] == 0).then_some(()));

    // A pushes documents it does not own: B's file, the root virtual directory. Both refused;
    // nothing changes on the hub.
    let before = (docs(&hub.db(), "file", None), docs(&hub.db(), "virtual_directory", None));
    let results = rt().block_on(push_as(&hub, &a, vec![b_file_bumped(&hub, &b), root_dir_bumped(&hub)]));
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(r["error"]["code"], "not_owner", "{r}");
    }
    assert_eq!(before, (docs(&hub.db(), "file", None), docs(&hub.db(), "virtual_directory", None)));

    // The admin removes node B: its credential stops working, and B stops replicating with a
    // permanent error instead of retrying (local indexing goes on).
    rt().block_on(async {
        let client = agent_core::http::pinned_client(&hub.fingerprint).unwrap();
        let token = mosaicfs_tests::login(&client, &hub.url(), &hub.admin_key, &hub.admin_secret).await;
        let resp = client
            .delete(format!("{}/api/nodes/{}", hub.url(), b.node_id))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    });
    let s = wait_for("B stops replicating", DEADLINE, || {
        let s = b.sync_status();
        s["stopped"].is_string().then_some(s)
    });
    assert_eq!(s["last_error"]["permanent"], true, "{s}");
    assert!(s["connection"].as_str().unwrap().starts_with("stopped"), "{s}");
    std::fs::write(b.node.watched.join("after-removal.txt"), b"still indexed").unwrap();
    wait_for("B still indexes", DEADLINE, || index_matches_disk(&b).then_some(()));

    a.stop();
    b.stop();
}

/// Polls an async getter until `ok` holds.
async fn wait_for_async<F, Fut>(mut get: F, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = serde_json::Value>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let v = get().await;
        if ok(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out; last answer {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn hub_body(hub: &Hub, sql_where: &str) -> serde_json::Value {
    let conn =
        rusqlite::Connection::open_with_flags(hub.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let body: String = conn
        .query_row(&format!("SELECT body FROM docs WHERE {sql_where} LIMIT 1"), [], |r| r.get(0))
        .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn bump(mut doc: serde_json::Value) -> serde_json::Value {
    let rev = doc["_rev"].as_u64().unwrap();
    doc["_rev"] = serde_json::json!(rev + 5);
    doc
}

fn b_file_bumped(hub: &Hub, b: &Agent) -> serde_json::Value {
    bump(hub_body(
        hub,
        &format!("type = 'file' AND json_extract(body, '$.source.node_id') = '{}'", b.node_id),
    ))
}

fn root_dir_bumped(hub: &Hub) -> serde_json::Value {
    bump(hub_body(hub, "id = 'dir::root'"))
}

/// A push signed with `agent`'s own credential; returns the per-document results.
async fn push_as(hub: &Hub, agent: &Agent, docs: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    let cp = AgentConfig::load(&agent.node.config).unwrap().control_plane.unwrap();
    let client = agent_core::http::pinned_client(&hub.fingerprint).unwrap();
    let kdf: agent_core::doc::KdfParams = client
        .get(format!("{}/api/auth/kdf/{}", hub.url(), cp.access_key_id))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = agent_core::secrets::read(&cp.secret).unwrap();
    let key = agent_core::auth::derive_verifier(&secret, &kdf).unwrap();
    let body = serde_json::to_vec(&serde_json::json!({ "docs": docs })).unwrap();
    let path = "/api/agent/push";
    let header =
        agent_core::auth::AuthHeader::sign(&cp.access_key_id, &key, "POST", path, "", chrono_now(), &body);
    let answer: serde_json::Value = client
        .post(format!("{}{path}", hub.url()))
        .header("authorization", header.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["results"].as_array().cloned().unwrap_or_else(|| panic!("push answer {answer}"))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn sigkill_of_agents_and_of_the_hub_loses_and_duplicates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(&tmp.path().join("hub"), 90);
    let mut a = Agent::join(&hub, "127.0.0.2", FAST_AGENT);
    let mut b = Agent::join(&hub, "127.0.0.3", FAST_AGENT);
    a.start();
    b.start();
    // A's link is slow, so its burst of pushes (several batches) is still in flight when the
    // kill comes.
    a.proxy.throttle(Duration::from_millis(20));
    let mut caught_mid_push = 0;
    for round in 0..4 {
        let base = live_file_names(&hub.db(), &a.node_id).len();
        write_files(&a, &format!("a{round}"), 1000);
        write_files(&b, &format!("b{round}"), 100);
        if round > 0 {
            // Change and remove some of the previous round's files too.
            let prev = round - 1;
            for i in 0..20 {
                std::fs::write(
                    a.node.watched.join(format!("a{prev}-{i:04}.txt")),
                    format!("changed {round}"),
                )
                .unwrap();
                let _ = std::fs::remove_file(a.node.watched.join(format!("a{prev}-{:04}.txt", 100 + i)));
            }
        }
        // Kill while the hub holds part of the burst: mid-push.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let n = live_file_names(&hub.db(), &a.node_id).len();
            if n > base && n < base + 980 {
                caught_mid_push += 1;
                break;
            }
            if n >= base + 980 || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if round % 2 == 0 {
            a.kill();
            a.start();
        } else {
            hub.kill();
            std::thread::sleep(Duration::from_millis(300));
            hub.restart();
            b.kill();
            b.start();
        }
    }
    assert_eq!(caught_mid_push, 4, "every kill came while A's burst was partly at the hub");
    a.proxy.throttle(Duration::ZERO);
    await_convergence(&hub, &[&a, &b]);
    wait_for("A's index matches its disk", DEADLINE, || index_matches_disk(&a).then_some(()));
    wait_for("B's index matches its disk", DEADLINE, || index_matches_disk(&b).then_some(()));
    await_convergence(&hub, &[&a, &b]);
    // One more hub restart with nothing in flight: the stores agree afterwards too.
    hub.kill();
    hub.restart();
    std::fs::write(a.node.watched.join("after-restart.txt"), b"x").unwrap();
    wait_for("after-restart.txt in B's replica", DEADLINE, || {
        live_file_names(&b.db(), &a.node_id).contains("after-restart.txt").then_some(())
    });
    await_convergence(&hub, &[&a, &b]);
    a.stop();
    b.stop();
}

#[test]
fn an_unreachable_hub_at_start_and_a_long_partition_converge_after_heal() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("hub"), 3);
    let mut a = Agent::join(&hub, "127.0.0.2", FAST_AGENT);
    let mut b = Agent::join(&hub, "127.0.0.3", FAST_AGENT);

    // B starts while its hub is unreachable: it indexes locally and queues.
    b.proxy.cut();
    write_files(&b, "offline", 30);
    b.start();
    a.start();
    wait_for("B indexed offline", DEADLINE, || index_matches_disk(&b).then_some(()));
    let s = wait_for("B reports the outage", DEADLINE, || {
        let s = b.sync_status();
        (s["connected"] == false && s["last_error"].is_object()).then_some(s)
    });
    assert!(s["push"]["outbox_depth"].as_u64().unwrap() >= 30, "queued: {s}");
    b.proxy.heal();
    await_convergence(&hub, &[&a, &b]);

    // A partition longer than the hub's offline threshold (3 s): B is observed offline, both
    // sides keep changing, then it heals.
    let rt = rt();
    b.proxy.cut();
    let b_id = b.node_id.clone();
    let node = rt.block_on(wait_for_async(
        || admin_get(&hub, format!("/api/nodes/{b_id}")),
        |v| v["observed_status"] == "offline",
    ));
    assert_eq!(node["observed_status"], "offline");
    write_files(&a, "during-a", 40);
    write_files(&b, "during-b", 40);
    let _ = std::fs::remove_file(b.node.watched.join("offline-0000.txt"));
    std::thread::sleep(Duration::from_secs(4)); // longer than reconcile_after_secs = 3
    b.proxy.heal();
    await_convergence(&hub, &[&a, &b]);
    wait_for("B's index matches its disk", DEADLINE, || index_matches_disk(&b).then_some(()));
    await_convergence(&hub, &[&a, &b]);
    assert!(live_file_names(&a.db(), &b.node_id).contains("during-b-0039.txt"));
    assert!(!live_file_names(&a.db(), &b.node_id).contains("offline-0000.txt"));
    rt.block_on(wait_for_async(
        || admin_get(&hub, format!("/api/nodes/{b_id}")),
        |v| v["observed_status"] == "online",
    ));
    let s = b.sync_status();
    assert_eq!(s["connected"], true, "{s}");
    // The outage outlasted reconcile_after_secs: B ran a reconciliation crawl on reconnect.
    let log = b.node.data.join("logs/mosaicfs.log");
    wait_for("B's reconciliation crawl", DEADLINE, || {
        std::fs::read_to_string(&log).ok()?.contains("sync.reconcile").then_some(())
    });
    a.stop();
    b.stop();
}

#[test]
fn a_node_whose_store_was_lost_takes_its_file_ids_back() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = Hub::start(&tmp.path().join("hub"), 90);
    let mut a = Agent::join(&hub, "127.0.0.2", FAST_AGENT);
    a.start();
    write_files(&a, "kept", 25);
    wait_for("A's files on the hub", DEADLINE, || {
        (live_file_names(&hub.db(), &a.node_id).len() == 25).then_some(())
    });
    await_convergence(&hub, &[&a]);
    let before = docs(&hub.db(), "file", None);
    a.stop();

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", a.db().display()));
    }
    std::fs::write(a.node.watched.join("new-after-loss.txt"), b"new").unwrap();
    a.start();
    wait_for("A re-indexed its disk", DEADLINE, || index_matches_disk(&a).then_some(()));
    await_convergence(&hub, &[&a]);
    let after = docs(&hub.db(), "file", None);
    for (id, (rev, _)) in &before {
        assert!(after.get(id).is_some_and(|(r, deleted)| r >= rev && !deleted), "{id} kept its id");
    }
    assert_eq!(after.len(), before.len() + 1, "one new file, no duplicates");
    let s = a.sync_status();
    assert_eq!(s["push"]["rejected"], 0, "nothing refused as a conflict: {s}");
    a.stop();
}

#[test]
fn a_hub_restored_from_an_older_copy_gets_everything_again_and_its_new_changes_reach_the_agent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hub = Hub::start(&tmp.path().join("hub"), 90);
    let mut a = Agent::join(&hub, "127.0.0.2", FAST_AGENT);
    a.start();
    write_files(&a, "early", 20);
    await_convergence(&hub, &[&a]);

    // A copy of the hub's store, taken while it is stopped: the backup.
    hub.kill();
    // The store with its write-ahead log: killed, the hub left its last commits there.
    let backup = tmp.path().join("hub-backup.db");
    for suffix in ["", "-wal"] {
        let from = format!("{}{suffix}", hub.db().display());
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, format!("{}{suffix}", backup.display())).unwrap();
        }
    }
    hub.restart();
    write_files(&a, "late", 30);
    hub.create_dir("made-before-restore", &a.node_id, &a.node.watched);
    await_convergence(&hub, &[&a]);
    // Every directory the hub has (the root, the default tree, the starter directories, this one).
    let at_hub = docs(&hub.db(), "virtual_directory", None).len();
    wait_for("the directory in A's replica", DEADLINE, || {
        (docs(&a.db(), "virtual_directory", None).len() == at_hub).then_some(())
    });

    // The hub is restored from the backup: it lacks the late files and the directory, and its
    // sequence numbers run below what A has applied. A restore draws a new epoch.
    hub.kill();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", hub.db().display()));
    }
    for suffix in ["", "-wal"] {
        let from = format!("{}{suffix}", backup.display());
        if std::path::Path::new(&from).exists() {
            std::fs::copy(&from, format!("{}{suffix}", hub.db().display())).unwrap();
        }
    }
    agent_core::store::Store::renew_hub_epoch(&hub.db()).unwrap();
    assert_eq!(live_file_names(&hub.db(), &a.node_id).len(), 20, "the backup has the early files only");
    hub.restart();

    // A pushes everything again (the late files reach the restored hub) and pulls its whole feed
    // (a directory made after the restore reaches A, although its seq is below A's old checkpoint).
    hub.create_dir("made-after-restore", &a.node_id, &a.node.watched);
    wait_for("the late files at the restored hub", DEADLINE, || {
        (live_file_names(&hub.db(), &a.node_id).len() == 50).then_some(())
    });
    wait_for("the new directory in A's replica", DEADLINE, || {
        let conn = rusqlite::Connection::open(a.db()).ok()?;
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM docs WHERE type = 'virtual_directory' AND body LIKE '%made-after-restore%'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (n == 1).then_some(())
    });
    await_convergence(&hub, &[&a]);
    a.stop();
}
