//! The pull feed: every document type reaches exactly the nodes it should (ARCHITECTURE §5.3),
//! own node documents only after a hub edit (§5.4), long-poll.

use std::collections::BTreeSet;

use super::agent_push::node_doc;
use super::*;
use agent_core::doc::{
    AnnotationDoc, AnnotationStatus, FileDoc, FileSource, FileStatus, PluginDoc, PluginType,
};
use agent_core::ids::{AnnotationId, FileId, Inode, NodeId, PluginId, Rev};

fn file_of(node: &NodeId, path: &str) -> FileDoc {
    let source = FileSource::new(node.clone(), path).unwrap();
    FileDoc {
        id: FileId::generate(),
        rev: Rev(1),
        name: source.name().to_owned(),
        source,
        size: 1,
        mtime: doc::now(),
        mime: None,
        inode: Inode::generate(),
        status: FileStatus::Active,
        first_seen: doc::now(),
        deleted_at: None,
        received_at: None,
    }
}

fn plugin_of(node: &NodeId) -> PluginDoc {
    let name: agent_core::ids::PluginName = "summarizer".parse().unwrap();
    PluginDoc {
        id: PluginId::for_plugin(node, &name),
        rev: Rev::NONE,
        node_id: node.clone(),
        plugin_name: name,
        plugin_type: PluginType::Executable,
        enabled: true,
        subscribed_events: vec![],
        mime_globs: vec![],
        settings: Default::default(),
        settings_schema: None,
        workers: 1,
        timeout_s: 10,
        max_attempts: 1,
        query_endpoints: vec![],
        provides_filesystem: false,
        file_path_prefix: None,
        created_at: doc::now(),
        updated_at: doc::now(),
    }
}

fn v(d: impl Into<Document>) -> Value {
    serde_json::to_value(d.into()).unwrap()
}

impl Api {
    async fn pull(&self, agent: &Agent, since: u64, wait: u64) -> (BTreeSet<String>, u64, Value) {
        let (s, feed) = self
            .signed(agent, "GET", &format!("/api/agent/changes?since={since}&wait={wait}&limit=2000"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{feed}");
        let ids = feed["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        (ids, feed["last_seq"].as_u64().unwrap(), feed)
    }
}

#[tokio::test]
async fn each_document_type_reaches_exactly_the_nodes_it_should() {
    let api = api(100).await;
    let token = api.token().await;
    let a = api.register(&token, "node-aaa").await;
    let b = api.register(&token, "node-bbb").await;

    let file_a = file_of(&a.node, "/a/one.txt");
    let file_b = file_of(&b.node, "/b/two.txt");
    let plugin: agent_core::ids::PluginName = "summarizer".parse().unwrap();
    let annotation = AnnotationDoc {
        // A node annotates its own files (another's is refused: tests::security).
        id: AnnotationId::for_file(&file_a.id, &plugin),
        rev: Rev(1),
        file_id: file_a.id.clone(),
        plugin_name: plugin,
        node_id: a.node.clone(),
        status: AnnotationStatus::Ok,
        data: json!({"summary": "x"}),
        error: None,
        annotated_at: doc::now(),
    };
    let status = json!({"_id": "status::node-aaa", "_rev": 1, "type": "agent_status", "node_id": "node-aaa",
        "updated_at": "2026-11-25T00:00:00Z", "overall": "healthy"});
    let util = json!({"_id": "utilization::node-aaa::1764000000", "_rev": 1, "type": "utilization_snapshot",
        "node_id": "node-aaa", "captured_at": "2026-11-25T00:00:00Z", "indexed_files": 1, "indexed_bytes": 1});
    let notification = json!({"_id": "notification::node-aaa::disk_full", "_rev": 1, "type": "notification",
        "source": {"kind": "node", "node_id": "node-aaa"}, "condition_key": "disk_full", "severity": "warning",
        "status": "active", "title": "Disk full", "message": "m", "first_seen": "2026-11-25T00:00:00Z",
        "last_seen": "2026-11-25T00:00:00Z", "occurrence_count": 1});
    let docs_a = json!({"docs": [v(node_doc(&a.node, 1, "a")), v(file_a.clone()), v(annotation.clone()), status, util, notification]});
    let (_, r) = api.signed(&a, "POST", "/api/agent/push", Some(docs_a)).await;
    assert!(r["results"].as_array().unwrap().iter().all(|x| x["ok"] == true), "{r}");
    let (_, r) = api
        .signed(
            &b,
            "POST",
            "/api/agent/push",
            Some(json!({"docs": [v(node_doc(&b.node, 1, "b")), v(file_b.clone())]})),
        )
        .await;
    assert!(r["results"].as_array().unwrap().iter().all(|x| x["ok"] == true), "{r}");
    ensure_root_directory(&api.store).await.unwrap();
    api.call("POST", "/api/vfs/directories/work", Some(&token), Some(json!({}))).await;
    let (_, rule) = api
        .call(
            "POST",
            "/api/labels/rules",
            Some(&token),
            Some(json!({"name": "r", "node_id": "*", "path_prefix": "/", "labels": ["x"]})),
        )
        .await;
    api.call(
        "PUT",
        &format!("/api/labels/assignments/{}", file_a.id),
        Some(&token),
        Some(json!({"labels": ["y"]})),
    )
    .await;
    api.store.put_many(vec![plugin_of(&a.node).into(), plugin_of(&b.node).into()]).unwrap();

    let dir_ids: Vec<String> = api
        .store
        .list_type(doc::DocType::VirtualDirectory)
        .unwrap()
        .iter()
        .map(|d| d.id().to_string())
        .collect();
    let shared: BTreeSet<String> = dir_ids
        .into_iter()
        .chain([rule["_id"].as_str().unwrap().to_owned(), format!("label_file::{}", file_a.id.key())])
        .collect();
    let expect = |extra: &[String]| -> BTreeSet<String> {
        shared.iter().cloned().chain(extra.iter().cloned()).collect()
    };

    let (seen_a, last_a, _) = api.pull(&a, 0, 0).await;
    assert_eq!(
        seen_a,
        expect(&[file_b.id.to_string(), "node::node-bbb".into(), "plugin::node-aaa::summarizer".into()]),
        "node A sees B's file and node, its own plugin configuration, and the hub's documents"
    );
    let (seen_b, _, _) = api.pull(&b, 0, 0).await;
    assert_eq!(
        seen_b,
        expect(&[
            file_a.id.to_string(),
            annotation.id.to_string(),
            "node::node-aaa".into(),
            "plugin::node-bbb::summarizer".into(),
        ]),
        "node B sees A's file, annotation and node; never statuses, utilization, credentials or A's notification"
    );

    // A hub edit of A's node document reaches A too (and B, as always).
    let (_, n) = api.call("GET", "/api/nodes/node-aaa", Some(&token), None).await;
    let (s, _) = api
        .call(
            "PATCH",
            "/api/nodes/node-aaa",
            Some(&token),
            Some(json!({"_rev": n["_rev"], "friendly_name": "Laptop"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (seen, last, feed) = api.pull(&a, last_a, 0).await;
    assert_eq!(seen, BTreeSet::from(["node::node-aaa".to_owned()]));
    assert_eq!(feed["changes"][0]["doc"]["friendly_name"], "Laptop");

    // A tombstone reaches the others (and its writer: tombstones carry no owner, and applying
    // one's own tombstone again changes nothing); a later heartbeat of A (no hub edit since)
    // does not go back to A.
    let tomb = json!({"_id": file_a.id, "_rev": 2, "type": "file", "_deleted": true});
    api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [tomb, v(node_doc(&a.node, 2, "a"))]})))
        .await;
    let (seen, _, feed) = api.pull(&b, last, 0).await;
    assert!(seen.contains(&file_a.id.to_string()), "{feed}");
    let (seen, last, _) = api.pull(&a, last, 0).await;
    assert!(!seen.contains("node::node-aaa"), "{seen:?}");

    // Long-poll: nothing new answers empty at once with wait=0, and a write during a wait ends it.
    let (seen, same, _) = api.pull(&a, last, 0).await;
    assert!(seen.is_empty());
    assert_eq!(same, last);
    // The write comes only once the hub holds the poll, so it is the wake-up that answers it.
    let writer = {
        let (store, waiting) = (api.store.clone(), api.waiting_pulls.clone());
        let (f, signer) = (file_of(&b.node, "/b/late.txt"), b.node.clone());
        tokio::spawn(async move {
            while waiting.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
            store.run(move |s| s.apply_pushed(vec![v(f)], doc::now(), &signer)).await.unwrap();
        })
    };
    let (seen, _, _) = api.pull(&a, last, 60).await;
    assert_eq!(seen.len(), 1, "the long-poll returned the change written while it waited");
    writer.await.unwrap();

    for bad in [
        "/api/agent/changes?limit=0",
        "/api/agent/changes?limit=5000",
        "/api/agent/changes?wait=61",
        "/api/agent/changes?since=-1",
    ] {
        let (s, v) = api.signed(&a, "GET", bad, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

/// Reads the event stream until `until` appears in it (or fails after a generous deadline).
async fn read_until(body: &mut axum::body::Body, text: &mut String, until: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !text.contains(until) {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await.expect("event in time");
        let frame = frame.expect("stream open").expect("frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

#[tokio::test]
async fn the_ui_gets_changes_as_server_sent_events_and_resumes() {
    let api = api(100).await;
    let token = api.token().await;
    let node: NodeId = "node-aaa".parse().unwrap();
    let new_file = |p: &str| Document::File(FileDoc { rev: Rev::NONE, ..file_of(&node, p) });
    for r in api.store.put_many(vec![new_file("/a/1.txt"), new_file("/a/2.txt")]).unwrap() {
        r.unwrap();
    }
    let last = api.store.last_seq().0;

    let open = |headers: Vec<(&'static str, String)>, query: &str| {
        let mut req = Request::builder()
            .uri(format!("/api/changes/stream{query}"))
            .header("authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        api.app.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let resp = open(vec![], "?since=0").await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    read_until(&mut body, &mut text, &format!("id: {last}\n")).await;
    assert!(text.contains("event: change"), "{text}");
    assert!(text.contains("\"type\":\"file\""), "{text}");
    assert!(!text.contains("verifier") && !text.contains("export_path"), "no document bodies: {text}");

    // A change written now arrives on the open stream.
    api.store.put(new_file("/a/3.txt")).unwrap();
    read_until(&mut body, &mut text, &format!("id: {}\n", last + 1)).await;

    // A reconnect with Last-Event-ID resumes right after it.
    let resp = open(vec![("last-event-id", (last - 1).to_string())], "").await.unwrap();
    let mut body = resp.into_body();
    let mut again = String::new();
    read_until(&mut body, &mut again, &format!("id: {}\n", last + 1)).await;
    assert!(
        again.contains(&format!("id: {last}\n")) && !again.contains(&format!("id: {}\n", last - 1)),
        "{again}"
    );
    let bad = open(vec![("last-event-id", "yesterday".into())], "").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn silent_nodes_are_observed_offline_and_a_restarted_hub_keeps_the_clock() {
    use agent_core::doc::NodeStatus;
    let dir = tempfile::tempdir().unwrap();
    let t0 = doc::now();
    // Before the hub starts: one node last seen 10 minutes ago, one just now.
    {
        let store = Store::open_hub(&dir.path().join("hub.db")).unwrap();
        for (id, ago) in [("node-old", 600), ("node-new", 0)] {
            let node: NodeId = id.parse().unwrap();
            let mut d = node_doc(&node, 0, id);
            d.observed_status = Some(NodeStatus::Online);
            d.last_seen = Some(t0 - chrono::Duration::seconds(ago));
            store.put(d.into()).unwrap();
        }
        store.close().unwrap();
    }
    let status = |store: &Store, id: &str| match store
        .get(&agent_core::ids::DocId::from(agent_core::ids::NodeDocId::for_node(&id.parse().unwrap())))
        .unwrap()
    {
        Some(Document::Node(n)) => n.observed_status,
        _ => None,
    };
    // The hub's first sweep, at start, judges every node from the `last_seen` it kept.
    let server =
        start(ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap())).await.unwrap();
    let store = Store::open(&dir.path().join("hub.db")).unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while status(&store, "node-old") != Some(NodeStatus::Offline) {
        assert!(tokio::time::Instant::now() < deadline, "the old node offline at start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        status(&store, "node-new"),
        Some(NodeStatus::Online),
        "a fresh node is not marked offline at start"
    );
    server.shutdown().await.unwrap();

    // The sweep itself, with its clock passed in (no waiting): silent past the threshold is
    // offline, not before.
    let store = Store::open_hub(&dir.path().join("hub.db")).unwrap();
    let limit = std::time::Duration::from_secs(90);
    assert_eq!(crate::liveness::sweep(&store, limit, t0 + chrono::Duration::seconds(89)).unwrap(), 0);
    assert_eq!(status(&store, "node-new"), Some(NodeStatus::Online));
    assert_eq!(crate::liveness::sweep(&store, limit, t0 + chrono::Duration::seconds(91)).unwrap(), 1);
    assert_eq!(status(&store, "node-new"), Some(NodeStatus::Offline), "silent past the threshold");
}
