//! The push endpoint's ownership check and revision rules, node merges, transfer tokens.

use super::*;
use agent_core::doc::{FileDoc, FileSource, FileStatus, NodeDoc, NodeStatus, Platform};
use agent_core::ids::{DocId, FileId, Inode, NodeDocId, NodeId, Rev};

pub(super) fn file_doc(node: &NodeId, path: &str, rev: u64) -> FileDoc {
    let source = FileSource::new(node.clone(), path).unwrap();
    FileDoc {
        id: FileId::generate(),
        rev: Rev(rev),
        name: source.name().to_owned(),
        source,
        size: 10,
        mtime: doc::now(),
        mime: None,
        inode: Inode::generate(),
        status: FileStatus::Active,
        first_seen: doc::now(),
        deleted_at: None,
        received_at: None,
    }
}

pub(super) fn node_doc(node: &NodeId, rev: u64, name: &str) -> NodeDoc {
    NodeDoc {
        id: NodeDocId::for_node(node),
        rev: Rev(rev),
        node_id: node.clone(),
        friendly_name: name.into(),
        enabled: true,
        network_mounts: vec![],
        platform: Platform::current(),
        hostname: "host".into(),
        agent_version: "0".into(),
        role: None,
        transfer: None,
        capabilities: vec![],
        watch_paths: vec![],
        status: NodeStatus::Online,
        started_at: doc::now(),
        last_heartbeat: doc::now(),
        observed_status: None,
        last_seen: None,
    }
}

fn doc_json(d: impl Into<Document>) -> Value {
    serde_json::to_value(d.into()).unwrap()
}

#[tokio::test]
async fn push_answers_per_document_and_refuses_what_the_signer_does_not_own() {
    let api = api(100).await;
    let token = api.token().await;
    let a = api.register(&token, "node-aaa").await;
    let b = api.register(&token, "node-bbb").await;

    let mine = file_doc(&a.node, "/data/a.txt", 1);
    let theirs = file_doc(&b.node, "/data/b.txt", 1);
    let mut root = VirtualDirectoryDoc::root(doc::now());
    root.rev = Rev(7);
    let (s, v) = api
        .signed(
            &a,
            "POST",
            "/api/agent/push",
            Some(json!({"docs": [
                doc_json(mine.clone()),
                doc_json(theirs.clone()),
                doc_json(root),
                {"_id": "file::bogus", "type": "file", "_rev": 1},
                "not an object",
            ], "local_seq": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes: Vec<Value> =
        v["results"].as_array().unwrap().iter().map(|r| r["error"]["code"].clone()).collect();
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    assert_eq!(codes[1..], [json!("not_owner"), json!("not_owner"), json!("invalid"), json!("invalid")]);
    assert!(v["last_seq"].as_u64().unwrap() > 0);

    // Stored at the agent's revision; the same revision again is stale; a newer one wins.
    let stored = api.store.get(&DocId::from(&mine.id)).unwrap().unwrap();
    assert_eq!(stored.rev(), Rev(1));
    let (_, v) =
        api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(mine.clone())]}))).await;
    assert_eq!(v["results"][0]["error"]["code"], "stale");
    assert_eq!(v["results"][0]["error"]["current_rev"], 1);
    let mut newer = mine.clone();
    newer.rev = Rev(3);
    newer.size = 99;
    let (_, v) =
        api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(newer.clone())]}))).await;
    assert_eq!((v["results"][0]["ok"].as_bool(), v["results"][0]["rev"].as_u64()), (Some(true), Some(3)));
    let mut older = mine.clone();
    older.rev = Rev(2);
    let (_, v) = api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(older)]}))).await;
    assert_eq!(v["results"][0]["error"]["code"], "stale", "a stale revision never overwrites a newer one");
    assert_eq!(api.store.file_by_path(&a.node, "/data/a.txt").unwrap().unwrap().size, 99);

    // Node B cannot take over A's file id by claiming it is its own, nor delete it.
    let mut hijack = newer.clone();
    hijack.source = FileSource::new(b.node.clone(), "/data/a.txt").unwrap();
    hijack.rev = Rev(10);
    let tomb = json!({"_id": mine.id, "_rev": 11, "type": "file", "_deleted": true});
    let (_, v) = api
        .signed(&b, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(hijack), tomb.clone()]})))
        .await;
    assert_eq!(v["results"][0]["error"]["code"], "not_owner", "{v}");
    assert_eq!(v["results"][1]["error"]["code"], "not_owner", "{v}");
    assert_eq!(api.store.get(&DocId::from(&mine.id)).unwrap().unwrap().rev(), Rev(3), "nothing changed");
    // Its owner can delete it.
    let (_, v) = api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [tomb]}))).await;
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    assert!(api.store.file_by_path(&a.node, "/data/a.txt").unwrap().is_none());

    // A path held by another of A's files is a conflict, the rest of the batch still lands.
    let first = file_doc(&a.node, "/data/same.txt", 1);
    let second = file_doc(&a.node, "/data/same.txt", 1);
    let third = file_doc(&a.node, "/data/other.txt", 1);
    let (_, v) = api
        .signed(
            &a,
            "POST",
            "/api/agent/push",
            Some(json!({"docs": [doc_json(first), doc_json(second), doc_json(third)]})),
        )
        .await;
    let oks: Vec<bool> =
        v["results"].as_array().unwrap().iter().map(|r| r["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [true, false, true], "{v}");
    assert_eq!(v["results"][1]["error"]["code"], "conflict");

    // Limits and malformed bodies.
    let many: Vec<Value> = (0..201).map(|i| doc_json(file_doc(&a.node, &format!("/m/{i}"), 1))).collect();
    let (s, _) = api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": many}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = api.signed(&a, "POST", "/api/agent/push", Some(json!({"documents": []}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn node_documents_merge_agent_and_hub_fields() {
    let api = api(100).await;
    let token = api.token().await;
    let a = api.register(&token, "node-aaa").await;
    let (_, v) = api
        .signed(
            &a,
            "POST",
            "/api/agent/push",
            Some(json!({"docs": [doc_json(node_doc(&a.node, 1, "laptop"))]})),
        )
        .await;
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    let (s, n) = api.call("GET", "/api/nodes/node-aaa", Some(&token), None).await;
    assert_eq!((s, n["friendly_name"].as_str()), (StatusCode::OK, Some("laptop")));
    assert_eq!(n["observed_status"], "online");
    assert!(n["last_seen"].is_string());

    // The hub renames it; the agent's next heartbeat keeps the hub's name.
    let rev = n["_rev"].as_u64().unwrap();
    let (s, n) = api
        .call(
            "PATCH",
            "/api/nodes/node-aaa",
            Some(&token),
            Some(json!({"_rev": rev, "friendly_name": "Work laptop"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{n}");
    let (s, _) = api
        .call("PATCH", "/api/nodes/node-aaa", Some(&token), Some(json!({"_rev": rev, "enabled": false})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "a stale base revision");
    let mut beat = node_doc(&a.node, 2, "laptop (agent's idea)");
    beat.hostname = "new-host".into();
    let (_, v) =
        api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(beat.clone())]}))).await;
    assert_eq!(v["results"][0]["ok"], true, "{v}");
    let (_, n) = api.call("GET", "/api/nodes/node-aaa", Some(&token), None).await;
    assert_eq!(
        (n["friendly_name"].as_str(), n["hostname"].as_str()),
        (Some("Work laptop"), Some("new-host"))
    );
    let (_, v) = api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(beat)]}))).await;
    assert_eq!(v["results"][0]["error"]["code"], "stale");

    // Another node cannot push A's node document; PATCH refuses agent-owned fields.
    let b = api.register(&token, "node-bbb").await;
    let (_, v) = api
        .signed(&b, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(node_doc(&a.node, 9, "x"))]})))
        .await;
    assert_eq!(v["results"][0]["error"]["code"], "not_owner");
    let rev = n["_rev"].as_u64().unwrap();
    let (s, _) = api
        .call("PATCH", "/api/nodes/node-aaa", Some(&token), Some(json!({"_rev": rev, "hostname": "evil"})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_utilization_credential_and_soft_delete() {
    use agent_core::doc::{AgentStatusDoc, Health, UtilizationSnapshotDoc};
    use agent_core::ids::{AgentStatusId, UtilizationId};
    let api = api(100).await;
    let token = api.token().await;
    let a = api.register(&token, "node-aaa").await;
    api.signed(&a, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(node_doc(&a.node, 1, "nas"))]})))
        .await;
    let status = AgentStatusDoc {
        id: AgentStatusId::for_node(&a.node),
        rev: Rev(1),
        node_id: a.node.clone(),
        updated_at: doc::now(),
        overall: Health::Healthy,
        subsystems: Default::default(),
        watch_paths: vec![],
        last_crawl: None,
        recent_errors: vec![],
        available_plugins: vec![],
    };
    let (s, v) = api.signed(&a, "POST", "/api/agent/status", Some(doc_json(status.clone()))).await;
    assert_eq!((s, v["ok"].as_bool()), (StatusCode::OK, Some(true)), "{v}");
    let t = chrono::Utc::now().timestamp();
    for (i, secs) in [t - 60, t].into_iter().enumerate() {
        let u = UtilizationSnapshotDoc {
            id: UtilizationId::for_snapshot(&a.node, secs),
            rev: Rev(1),
            node_id: a.node.clone(),
            captured_at: doc::now(),
            storage: vec![],
            cache: None,
            indexed_files: i as u64,
            indexed_bytes: 0,
        };
        let (s, v) = api.signed(&a, "POST", "/api/agent/utilization", Some(doc_json(u))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // Wrong type on the wrong endpoint; another node's status.
    let (s, _) = api.signed(&a, "POST", "/api/agent/status", Some(doc_json(node_doc(&a.node, 5, "x")))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let b = api.register(&token, "node-bbb").await;
    let (s, _) = api
        .signed(&b, "POST", "/api/agent/status", Some(doc_json(AgentStatusDoc { rev: Rev(2), ..status })))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, st) = api.call("GET", "/api/nodes/node-aaa/status", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["agent_status"]["overall"], "healthy");
    assert_eq!(st["utilization"]["indexed_files"], 1, "the newest snapshot");
    assert_eq!(st["observed_status"], "online");

    let (s, c) = api.signed(&a, "GET", "/api/agent/credentials", None).await;
    assert_eq!((s, c["node_id"].as_str(), c.get("verifier")), (StatusCode::OK, Some("node-aaa"), None));

    // Soft delete: the node is disabled, its credential stops working, its documents stay.
    let (s, n) = api.call("DELETE", "/api/nodes/node-aaa", Some(&token), None).await;
    assert_eq!((s, n["enabled"].as_bool()), (StatusCode::OK, Some(false)), "{n}");
    let (s, v) = api.signed(&a, "GET", "/api/agent/credentials", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(api.call("GET", "/api/nodes/node-aaa", Some(&token), None).await.0, StatusCode::OK);
    assert_eq!(api.call("DELETE", "/api/nodes/node-zzz", Some(&token), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn transfer_tokens_are_signed_for_the_owner_of_the_file() {
    use agent_core::transfer_token::TransferVerifier;
    let api = api(100).await;
    let token = api.token().await;
    let a = api.register(&token, "node-aaa").await;
    let b = api.register(&token, "node-bbb").await;
    let on_b = file_doc(&b.node, "/data/movie.mp4", 1);
    api.signed(&b, "POST", "/api/agent/push", Some(json!({"docs": [doc_json(on_b.clone())]}))).await;

    let (s, key) = api.signed(&a, "GET", "/api/agent/transfer-key", None).await;
    assert_eq!((s, key["crv"].as_str()), (StatusCode::OK, Some("Ed25519")));
    let verifier = TransferVerifier::from_public_key(key["x"].as_str().unwrap()).unwrap();
    let (s, t) = api.signed(&a, "POST", "/api/agent/transfer-token", Some(json!({"file_id": on_b.id}))).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["node_id"], "node-bbb");
    let claims = verifier.verify(t["token"].as_str().unwrap(), &b.node, &on_b.id).unwrap();
    assert_eq!(claims.sub, "node-aaa");
    assert!(claims.exp - claims.iat <= 300);
    assert!(verifier.verify(t["token"].as_str().unwrap(), &a.node, &on_b.id).is_err(), "only B serves it");

    let (s, _) = api.signed(&b, "POST", "/api/agent/transfer-token", Some(json!({"file_id": on_b.id}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "its own file");
    let (s, _) = api
        .signed(&a, "POST", "/api/agent/transfer-token", Some(json!({"file_id": FileId::generate()})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) =
        api.signed(&a, "POST", "/api/agent/transfer-token", Some(json!({"file_id": "../etc"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
