//! Nodes' mounts, labels, virtual directories, file content, health.

use super::agent_push::node_doc;
use super::*;
use agent_core::doc::{FileDoc, FileSource, FileStatus};
use agent_core::ids::{FileId, Inode, NodeId, Rev};

fn file_at(node: &NodeId, path: &str) -> FileDoc {
    let source = FileSource::new(node.clone(), path).unwrap();
    FileDoc {
        id: FileId::generate(),
        rev: Rev::NONE,
        name: source.name().to_owned(),
        source,
        size: 0,
        mtime: doc::now(),
        mime: Some("text/plain".into()),
        inode: Inode::generate(),
        status: FileStatus::Active,
        first_seen: doc::now(),
        deleted_at: None,
        received_at: None,
    }
}

#[tokio::test]
async fn network_mounts_crud() {
    let api = api(100).await;
    let token = api.token().await;
    let node: NodeId = "node-aaa".parse().unwrap();
    api.store.put(node_doc(&node, 0, "nas").into()).unwrap();
    let mount = json!({"mount_type": "nfs", "remote_node_id": "node-bbb",
        "remote_base_export_path": "/export", "local_mount_path": "/mnt/nas"});
    let (s, m) = api.call("POST", "/api/nodes/node-aaa/mounts", Some(&token), Some(mount.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let id = m["mount_id"].as_str().unwrap().to_owned();
    let (s, m) = api
        .call(
            "PATCH",
            &format!("/api/nodes/node-aaa/mounts/{id}"),
            Some(&token),
            Some(json!({"priority": 5})),
        )
        .await;
    assert_eq!((s, m["priority"].as_i64()), (StatusCode::OK, Some(5)), "{m}");
    let (_, list) = api.call("GET", "/api/nodes/node-aaa/mounts", Some(&token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let mut bad = mount.clone();
    bad["local_mount_path"] = json!("relative/path");
    assert_eq!(
        api.call("POST", "/api/nodes/node-aaa/mounts", Some(&token), Some(bad)).await.0,
        StatusCode::BAD_REQUEST
    );
    let mut dup = mount.clone();
    dup["mount_id"] = json!(id);
    assert_eq!(
        api.call("POST", "/api/nodes/node-aaa/mounts", Some(&token), Some(dup)).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        api.call("POST", "/api/nodes/node-zzz/mounts", Some(&token), Some(mount)).await.0,
        StatusCode::NOT_FOUND
    );
    let path = format!("/api/nodes/node-aaa/mounts/{id}");
    assert_eq!(api.call("DELETE", &path, Some(&token), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.call("DELETE", &path, Some(&token), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn labels_assignments_rules_effective_and_search() {
    let api = api(100).await;
    let token = api.token().await;
    let node: NodeId = "node-aaa".parse().unwrap();
    let work = file_at(&node, "/home/me/Work/plan-2024.pdf");
    let home = file_at(&node, "/home/me/plan-home.pdf");
    api.store.put_many(vec![work.clone().into(), home.clone().into()]).unwrap();

    let at = |f: &FileDoc| format!("/api/labels/assignments/{}", f.id);
    let (s, v) =
        api.call("PUT", &at(&work), Some(&token), Some(json!({"labels": ["urgent", "q3", "urgent"]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["assignment"]["_id"], format!("label_file::{}", work.id.key()), "deterministic id");
    assert_eq!(v["assignment"]["labels"], json!(["q3", "urgent"]));
    let (_, v) = api.call("PUT", &at(&work), Some(&token), Some(json!({"labels": ["urgent"]}))).await;
    assert_eq!(v["assignment"]["_rev"], 2, "upsert replaces the one document");
    let (s, _) = api.call("PUT", &at(&work), Some(&token), Some(json!({"labels": [""]}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = api
        .call(
            "PUT",
            &format!("/api/labels/assignments/{}", FileId::generate()),
            Some(&token),
            Some(json!({"labels": ["x"]})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "only files the hub knows");

    let rule = |prefix: &str| json!({"name": "work", "node_id": "node-aaa", "path_prefix": prefix, "labels": ["work"]});
    for bad in ["/home/me/Work", "home/me/", "/home/../Work/", ""] {
        let (s, v) = api.call("POST", "/api/labels/rules", Some(&token), Some(rule(bad))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, _) = api
        .call(
            "POST",
            "/api/labels/rules",
            Some(&token),
            Some(json!({"name": "x", "node_id": "Bad Node", "path_prefix": "/", "labels": ["a"]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, r) = api.call("POST", "/api/labels/rules", Some(&token), Some(rule("/home/me/Work/"))).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["_id"].as_str().unwrap().to_owned();
    let (s, all) = api
        .call(
            "POST",
            "/api/labels/rules",
            Some(&token),
            Some(json!({"name": "all", "node_id": "*", "path_prefix": "/", "labels": ["everything"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{all}");

    let (s, e) =
        api.call("GET", &format!("/api/labels/effective?file_id={}", work.id), Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["effective"]["labels"], json!(["everything", "urgent", "work"]));
    assert_eq!(e["effective"]["direct"], json!(["urgent"]));

    let names = |v: &Value| {
        let mut n: Vec<String> =
            v["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
        n.sort();
        n
    };
    let (_, hits) = api.call("GET", "/api/search?q=plan&label=work", Some(&token), None).await;
    assert_eq!(names(&hits), ["plan-2024.pdf"]);
    let (_, hits) =
        api.call("GET", "/api/search?q=plan&label=everything&count=true", Some(&token), None).await;
    assert_eq!((names(&hits).len(), hits["total"].as_u64()), (2, Some(2)));
    let (_, hits) = api.call("GET", "/api/search?label=work&label=urgent", Some(&token), None).await;
    assert_eq!(names(&hits), ["plan-2024.pdf"], "labels only, ANDed");
    let (_, hits) = api.call("GET", "/api/search?label=nobody", Some(&token), None).await;
    assert_eq!(names(&hits), Vec::<String>::new());
    let (_, labels) = api.call("GET", "/api/labels", Some(&token), None).await;
    assert_eq!(labels["labels"].as_array().unwrap().len(), 3, "{labels}");

    // Disabling the rule removes its labels; a stale PATCH is a conflict.
    let path = format!("/api/labels/rules/{rid}");
    let (s, _) = api.call("PATCH", &path, Some(&token), Some(json!({"_rev": 1, "enabled": false}))).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api.call("PATCH", &path, Some(&token), Some(json!({"_rev": 1, "enabled": true}))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, hits) = api.call("GET", "/api/search?q=plan&label=work", Some(&token), None).await;
    assert_eq!(names(&hits), Vec::<String>::new());
    assert_eq!(api.call("DELETE", &path, Some(&token), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.call("GET", &path, Some(&token), None).await.0, StatusCode::NOT_FOUND);

    // Labels follow the file across a rename (they key on its id).
    let mut moved = api.store.file_by_path(&node, "/home/me/Work/plan-2024.pdf").unwrap().unwrap();
    moved.source = FileSource::new(node.clone(), "/elsewhere/renamed.pdf").unwrap();
    moved.name = "renamed.pdf".into();
    api.store.put(moved.into()).unwrap();
    let (_, hits) = api.call("GET", "/api/search?q=renamed&label=urgent", Some(&token), None).await;
    assert_eq!(names(&hits), ["renamed.pdf"]);

    assert_eq!(api.call("DELETE", &at(&work), Some(&token), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.call("GET", &at(&work), Some(&token), None).await.0, StatusCode::NOT_FOUND);
    for bad in
        ["/api/search", "/api/search?label=", "/api/search?q=x&colour=red", "/api/search?q=abc&cursor=zz"]
    {
        let (s, v) = api.call("GET", bad, Some(&token), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

#[tokio::test]
async fn virtual_directories_are_validated() {
    let api = api(100).await;
    let token = api.token().await;
    ensure_root_directory(&api.store).await.unwrap();
    let mount = json!({"mount_id": "m1", "source": {"node_id": "node-aaa", "export_path": "/home/me/Work"},
        "steps": [{"op": "glob", "params": {"pattern": "**/*.pdf"}, "on_match": "include"}],
        "default_result": "exclude", "strategy": "flatten", "conflict_policy": "suffix_node_id"});
    let (s, d) = api
        .call("POST", "/api/vfs/directories/work", Some(&token), Some(json!({"mounts": [mount.clone()]})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    assert_eq!((d["virtual_path"].as_str(), d["name"].as_str()), (Some("/work"), Some("work")));
    assert!(d["inode"].as_u64().unwrap() >= 1000);
    let (s, d2) = api
        .call("POST", "/api/vfs/directories/work/pdfs%20%C3%A9t%C3%A9", Some(&token), Some(json!({})))
        .await;
    assert_eq!((s, d2["virtual_path"].as_str()), (StatusCode::CREATED, Some("/work/pdfs été")), "{d2}");
    assert_eq!(
        api.call("POST", "/api/vfs/directories/work", Some(&token), Some(json!({}))).await.0,
        StatusCode::CONFLICT,
        "exists"
    );
    assert_eq!(
        api.call("POST", "/api/vfs/directories/no/parent", Some(&token), Some(json!({}))).await.0,
        StatusCode::CONFLICT,
        "parent missing"
    );
    let mut bad_glob = mount.clone();
    bad_glob["steps"][0]["params"]["pattern"] = json!("[unclosed");
    let mut bad_op = mount.clone();
    bad_op["steps"][0]["op"] = json!("teleport");
    let mut bad_size = mount.clone();
    bad_size["steps"][0] = json!({"op": "size", "params": {"min_bytes": -5}, "on_match": "include"});
    for (path, body) in [
        ("/api/vfs/directories/federation", json!({})),
        ("/api/vfs/directories/federation/x", json!({})),
        ("/api/vfs/directories/a/../b", json!({})),
        ("/api/vfs/directories/a%2F..%2Fb", json!({})),
        ("/api/vfs/directories/a//b", json!({})),
        ("/api/vfs/directories/x", json!({"mounts": [bad_glob]})),
        ("/api/vfs/directories/x", json!({"mounts": [bad_op]})),
        ("/api/vfs/directories/x", json!({"mounts": [bad_size]})),
        ("/api/vfs/directories/x", json!({"mounts": [mount.clone(), mount.clone()]})),
        ("/api/vfs/directories/x", json!({"unknown": 1})),
    ] {
        let (s, v) = api.call("POST", path, Some(&token), Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert!(v["error"]["message"].is_string());
    }
    let deep = (0..40).map(|i| format!("d{i}")).collect::<Vec<_>>().join("/");
    assert_eq!(
        api.call("POST", &format!("/api/vfs/directories/{deep}"), Some(&token), Some(json!({}))).await.0,
        StatusCode::BAD_REQUEST
    );

    let (s, _) = api
        .call(
            "PATCH",
            "/api/vfs/directories/work",
            Some(&token),
            Some(json!({"_rev": 1, "enforce_steps_on_children": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api
        .call("PATCH", "/api/vfs/directories/work", Some(&token), Some(json!({"_rev": 1, "mounts": []})))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, list) = api.call("GET", "/api/vfs/directories", Some(&token), None).await;
    assert_eq!(list.as_array().unwrap().len(), 3);

    let (s, v) = api.call("DELETE", "/api/vfs/directories/%2F", Some(&token), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "root is a system directory: {v}");
    let (s, v) = api.call("DELETE", "/api/vfs/directories", Some(&token), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let (s, _) = api.call("DELETE", "/api/vfs/directories/work", Some(&token), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "has a subdirectory");
    let child = "/api/vfs/directories/work/pdfs%20%C3%A9t%C3%A9";
    assert_eq!(api.call("DELETE", child, Some(&token), None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        api.call("DELETE", "/api/vfs/directories/work", Some(&token), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.call("GET", "/api/vfs/directories/work", Some(&token), None).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn raw_get(
    api: &Api,
    path: &str,
    token: &str,
    range: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let headers: Vec<(&str, &str)> = range.map(|r| ("range", r)).into_iter().collect();
    get_with(api, path, token, &headers).await
}

async fn get_with(
    api: &Api,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().uri(path).header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = api.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, headers, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn content_of_local_files_with_ranges_and_no_escape() {
    let watch = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(watch.path().join("clip é.bin"), &data).unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"top secret").unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), watch.path().join("link.txt")).unwrap();

    let mut api = api(100).await;
    let token = api.token().await;
    let node: NodeId = "node-local".parse().unwrap();
    let (signer, _) = agent_core::transfer_token::TransferSigner::generate().unwrap();
    let mut state = state::AppState::new(
        api.store.clone(),
        auth::JwtKeys::from_secret(&[7u8; 32]),
        100,
        HashMap::new(),
        signer,
    );
    state.vault = api.vault.clone();
    state.local = Some(Arc::new(state::LocalNode::new(node.clone(), vec![watch.path().to_owned()])));
    api.app = routes::app(state).layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));

    let root = watch.path().to_str().unwrap().to_owned();
    let clip = file_at(&node, &format!("{root}/clip é.bin"));
    let link = file_at(&node, &format!("{root}/link.txt"));
    let escape = file_at(&node, outside.path().join("secret.txt").to_str().unwrap());
    let gone = file_at(&node, &format!("{root}/gone.txt"));
    let remote = file_at(&"node-far".parse().unwrap(), "/x/y.txt");
    api.store
        .put_many(vec![
            clip.clone().into(),
            link.clone().into(),
            escape.clone().into(),
            gone.clone().into(),
            remote.clone().into(),
        ])
        .unwrap();
    let url = |f: &FileDoc| format!("/api/files/{}/content", f.id);

    let (s, h, body) = raw_get(&api, &url(&clip), &token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, data, "bytes equal the source");
    assert_eq!(h["content-length"], "300000");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h["content-disposition"].to_str().unwrap().contains("filename*=UTF-8''clip%20%C3%A9%2Ebin"));
    let (s, h, body) = raw_get(&api, &url(&clip), &token, Some("bytes=1000-1999")).await;
    assert_eq!(
        (s, &body[..], h["content-range"].to_str().unwrap()),
        (StatusCode::PARTIAL_CONTENT, &data[1000..2000], "bytes 1000-1999/300000")
    );
    let (s, _, body) = raw_get(&api, &url(&clip), &token, Some("bytes=-10")).await;
    assert_eq!((s, &body[..]), (StatusCode::PARTIAL_CONTENT, &data[data.len() - 10..]));
    let (s, h, _) = raw_get(&api, &url(&clip), &token, Some("bytes=999999-")).await;
    assert_eq!(
        (s, h["content-range"].to_str().unwrap()),
        (StatusCode::RANGE_NOT_SATISFIABLE, "bytes */300000")
    );
    // One Range parser on every path (RFC 9110): a malformed header is ignored, the whole file
    // is sent, as the transfer server does.
    for malformed in ["bytes=x-5", "bytes=9-3", "bytes=0-1,5-6"] {
        let (s, _, body) = raw_get(&api, &url(&clip), &token, Some(malformed)).await;
        assert_eq!((s, body.len()), (StatusCode::OK, data.len()), "{malformed}");
    }
    // The version: an ETag on every answer, a 409 for another version asked, If-Range.
    let (_, h, _) = raw_get(&api, &url(&clip), &token, None).await;
    let etag = h["etag"].to_str().unwrap().to_owned();
    let version = etag.trim_matches('"').to_owned();
    let (s, _, body) =
        raw_get(&api, &format!("{}?version={version}", url(&clip)), &token, Some("bytes=0-9")).await;
    assert_eq!((s, &body[..]), (StatusCode::PARTIAL_CONTENT, &data[..10]));
    let (s, _, body) = raw_get(&api, &format!("{}?version=300000-1", url(&clip)), &token, None).await;
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, err["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("changed")), "{err}");
    let resumed = [("range", "bytes=299990-"), ("if-range", etag.as_str())];
    let (s, _, body) = get_with(&api, &url(&clip), &token, &resumed).await;
    assert_eq!((s, &body[..]), (StatusCode::PARTIAL_CONTENT, &data[299_990..]));
    let restarted = [("range", "bytes=299990-"), ("if-range", "\"1-2\"")];
    let (s, _, body) = get_with(&api, &url(&clip), &token, &restarted).await;
    assert_eq!((s, body.len()), (StatusCode::OK, data.len()), "another version: the whole file");
    // With trailers asked for, the digest of exactly the bytes sent follows them.
    let (s, h, body) =
        get_with(&api, &url(&clip), &token, &[("te", "trailers"), ("range", "bytes=0-99")]).await;
    assert_eq!((s, body.len()), (StatusCode::PARTIAL_CONTENT, 100));
    assert!(h.get("content-length").is_none(), "chunked, so that the trailer can follow");

    let (s, _, body) = raw_get(&api, &url(&link), &token, None).await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "a symlink out of the watch path: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(raw_get(&api, &url(&escape), &token, None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(raw_get(&api, &url(&gone), &token, None).await.0, StatusCode::NOT_FOUND);
    let (s, _, body) = raw_get(&api, &url(&remote), &token, None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "another node's file, that node unknown here");
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "node_unavailable", "{err}");
    assert_eq!(
        raw_get(&api, "/api/files/..%2F..%2Fetc%2Fpasswd/content", &token, None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(raw_get(&api, &url(&clip), "bogus", None).await.0, StatusCode::UNAUTHORIZED);

    let (s, health) = api.call("GET", "/health", None, None).await;
    assert_eq!((s, health["status"].as_str()), (StatusCode::OK, Some("ok")), "{health}");
    assert_eq!(health["node_id"], "node-local");
    for sub in ["store", "nodes", "auth", "tls", "transfer_tokens", "local_files"] {
        assert_eq!(health["subsystems"][sub]["status"], "ok", "{sub}: {health}");
    }
    assert!(health.to_string().find("verifier").is_none());
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_json_400s_and_write_nothing() {
    let api = api(100).await;
    let token = api.token().await;
    let seq = api.store.last_seq();
    for (path, body) in [
        ("/api/vfs/directories/x", "{not json"),
        ("/api/vfs/directories/x", "[1, 2]"),
        (
            "/api/labels/rules",
            "{\"name\": 5, \"node_id\": \"*\", \"path_prefix\": \"/\", \"labels\": [\"a\"]}",
        ),
        ("/api/nodes/register", "{\"node_id\": [\"node-aaa\"]}"),
        ("/api/credentials", ""),
    ] {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let resp = api.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {v}");
        assert!(v["error"]["message"].is_string(), "{path}: JSON error body");
    }
    assert_eq!(api.store.last_seq(), seq, "nothing written");
}
