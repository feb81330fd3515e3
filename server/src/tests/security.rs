//! Issue 16 (security): each hostile input kept as a test that fails on the code before it.
//! Sessions end with their credential (item 1); timestamps that cannot overflow (item 3);
//! bounded login and agent bodies, Argon2 and the login table (item 6); the canonical query
//! and login timing (item 8).

use super::*;

impl Api {
    /// A second admin credential, logged in: (key, secret, token).
    async fn second_admin(&self, token: &str) -> (AccessKeyId, String, String) {
        let (s, created) =
            self.call("POST", "/api/credentials", Some(token), Some(json!({"name": "second admin"}))).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let key: AccessKeyId = created["access_key_id"].as_str().unwrap().parse().unwrap();
        let secret = created["secret"].as_str().unwrap().to_owned();
        let (s, v) = self.login(&key, &secret).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (key, secret, v["token"].as_str().unwrap().to_owned())
    }

    /// Opens `GET /api/changes/stream` with `token`; the response body.
    async fn open_stream(&self, token: &str) -> Body {
        let req = Request::builder()
            .uri("/api/changes/stream?since=0")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.into_body()
    }
}

/// Reads the stream until it ends; panics if it is still open after a generous deadline.
async fn until_closed(body: &mut Body) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => panic!("the stream is still open 20 s after its session ended"),
            Ok(None) => return,
            Ok(Some(frame)) => {
                frame.expect("frame");
            }
        }
    }
}

/// Waits until the clock has moved to the next second (tokens carry whole seconds).
async fn next_second() {
    let start = chrono::Utc::now().timestamp();
    while chrono::Utc::now().timestamp() <= start {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_disabled_credentials_session_is_refused_and_its_stream_closed() {
    let api = api(100).await;
    let token = api.token().await;
    let (key, secret, victim) = api.second_admin(&token).await;
    let mut stream = api.open_stream(&victim).await;
    assert_eq!(api.call("GET", "/api/credentials", Some(&victim), None).await.0, StatusCode::OK);

    let path = format!("/api/credentials/{key}");
    let (s, v) = api.call("PATCH", &path, Some(&token), Some(json!({"enabled": false}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (method, route, body) in [
        ("GET", "/api/auth/whoami".to_owned(), None),
        ("GET", "/api/credentials".to_owned(), None),
        ("PATCH", path.clone(), Some(json!({"enabled": true}))),
        ("POST", "/api/credentials".to_owned(), Some(json!({"name": "a new admin"}))),
    ] {
        let (s, v) = api.call(method, &route, Some(&victim), body).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {route} with a disabled credential's token: {v}");
    }
    until_closed(&mut stream).await;
    let cred = credentials::get(&api.store, &key).await.unwrap().unwrap();
    assert!(!cred.enabled, "it could not enable itself again");
    assert_eq!(credentials::list(&api.store).await.unwrap().len(), 2, "nor mint a new admin");

    // Enabled again by another admin: the old token stays dead; a new login works.
    let (s, _) = api.call("PATCH", &path, Some(&token), Some(json!({"enabled": true}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(api.call("GET", "/api/auth/whoami", Some(&victim), None).await.0, StatusCode::UNAUTHORIZED);
    next_second().await;
    let (s, fresh) = api.login(&key, &secret).await;
    assert_eq!(s, StatusCode::OK);
    let fresh = fresh["token"].as_str().unwrap().to_owned();
    assert_eq!(api.call("GET", "/api/auth/whoami", Some(&fresh), None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_credentials_session_cannot_mint_an_admin() {
    let api = api(100).await;
    let token = api.token().await;
    let (key, _, victim) = api.second_admin(&token).await;
    let mut stream = api.open_stream(&victim).await;
    let (s, _) = api.call("DELETE", &format!("/api/credentials/{key}"), Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) =
        api.call("POST", "/api/credentials", Some(&victim), Some(json!({"name": "back door"}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(credentials::list(&api.store).await.unwrap().len(), 1);
    until_closed(&mut stream).await;
}

#[tokio::test]
async fn a_logged_out_sessions_stream_is_closed() {
    let api = api(100).await;
    let token = api.token().await;
    let mut stream = api.open_stream(&token).await;
    let (s, _) = api.call("POST", "/api/auth/logout", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    until_closed(&mut stream).await;
}

#[tokio::test]
async fn timestamps_that_would_overflow_are_refused_as_clock_skew() {
    use agent_core::auth::AuthHeader;
    let api = api(100).await;
    let token = api.token().await;
    let agent = api.register(&token, "node-skew").await;
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
        let h = AuthHeader::sign(&agent.key, &agent.k, "POST", "/api/agent/heartbeat", "", ts, b"");
        assert!(h.to_string().contains(&format!("Timestamp={ts},")), "{h}");
        for attempt in 0..2 {
            let req = Request::builder()
                .method("POST")
                .uri("/api/agent/heartbeat")
                .header("authorization", h.to_string())
                .body(Body::empty())
                .unwrap();
            let resp = api.app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let v: Value =
                serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (StatusCode::UNAUTHORIZED, Some("clock_skew")),
                "Timestamp={ts}, attempt {attempt}: {v}"
            );
        }
    }
}

#[tokio::test]
async fn a_huge_login_body_is_refused_before_it_is_read() {
    let api = api(100).await;
    // 16 MiB announced, and a body that would never end: the answer cannot wait for it.
    let never =
        Body::from_stream(futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>());
    let req = Request::builder()
        .method("POST")
        .uri("/api/auth/login")
        .header("content-type", "application/json")
        .header("content-length", (16 * 1024 * 1024).to_string())
        .body(never)
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), api.app.clone().oneshot(req))
        .await
        .expect("answered without reading the body")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Not announced: cut off at the cap.
    let big = json!({"access_key_id": api.admin.0, "secret": "x".repeat(5000)});
    let req = Request::builder()
        .method("POST")
        .uri("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter([Ok::<_, std::io::Error>(
            axum::body::Bytes::from(big.to_string()),
        )])))
        .unwrap();
    assert_eq!(api.app.clone().oneshot(req).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Small bodies still log in, and bad ones are still 400s.
    assert_eq!(api.login(&api.admin.0, api.admin.1.expose()).await.0, StatusCode::OK);
    let (s, v) = api.call("POST", "/api/auth/login", None, Some(json!({"access_key_id": 1}))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{v}");
}

#[tokio::test]
async fn an_unknown_key_costs_the_same_argon2_work_as_a_wrong_secret() {
    let api = api(100).await;
    let before = api.vault.derivations();
    let (s, wrong) = api.login(&api.admin.0, "wrong secret").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(api.vault.derivations(), before + 1);
    let (s, unknown) = api.login(&AccessKeyId::generate(), "wrong secret").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(api.vault.derivations(), before + 2, "an unknown key derives a key too");
    assert_eq!(wrong, unknown, "the same answer");
}

#[tokio::test]
async fn parallel_logins_run_argon2_a_few_at_a_time() {
    let api = api(10_000).await;
    let logins: Vec<_> = (0..200)
        .map(|i| {
            let app = api.app.clone();
            let body = json!({"access_key_id": api.admin.0, "secret": format!("wrong {i}")}).to_string();
            tokio::spawn(async move {
                let req = Request::builder()
                    .method("POST")
                    .uri("/api/auth/login")
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            })
        })
        .collect();
    for login in logins {
        assert_eq!(login.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert!(api.vault.derivations() >= 200);
    assert!(
        api.vault.peak_parallel() <= vault::ARGON2_PARALLEL,
        "{} Argon2id derivations at once (each 19 MiB)",
        api.vault.peak_parallel()
    );
}

#[tokio::test]
async fn verifiers_are_sealed_at_rest_and_a_copied_database_alone_signs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A hub.db from before sealing: a credential with its verifier in the clear.
    let legacy_secret = Secret::generate();
    let legacy_key = AccessKeyId::generate();
    {
        let store = Store::open_hub(&dir.path().join("hub.db")).unwrap();
        let kdf = agent_core::auth::new_kdf_params();
        let k = agent_core::auth::derive_verifier(&legacy_secret, &kdf).unwrap();
        let cred = agent_core::doc::CredentialDoc {
            id: agent_core::ids::CredentialId::for_key(&legacy_key),
            rev: agent_core::ids::Rev::NONE,
            access_key_id: legacy_key.clone(),
            name: "legacy admin".into(),
            kdf,
            verifier: k.to_hex(),
            enabled: true,
            role: CredentialRole::Admin,
            node_id: None,
            created_at: doc::now(),
            last_used_at: None,
        };
        store.put(cred.into()).unwrap();
        store.close().unwrap();
    }
    let config = ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap());
    let server = start(config.clone()).await.unwrap();
    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let login = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"access_key_id": legacy_key, "secret": legacy_secret.expose()}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the migrated credential still logs in");
    server.shutdown().await.unwrap();

    let key_file = dir.path().join(vault::KEY_FILE);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let store = Store::open_hub(&dir.path().join("hub.db")).unwrap();
    let creds = credentials::list(&store).await.unwrap();
    assert_eq!(creds.len(), 1);
    for c in &creds {
        assert!(vault::Vault::is_sealed(&c.verifier), "{}", c.verifier);
    }
    let k = agent_core::auth::derive_verifier(&legacy_secret, &creds[0].kdf).unwrap();
    let raw = std::fs::read(dir.path().join("hub.db")).unwrap();
    let hex_k = k.to_hex();
    assert!(!raw.windows(hex_k.len()).any(|w| w == hex_k.as_bytes()), "K is not in hub.db");
    store.close().unwrap();

    // hub.db without its key: refused with what to do, not given a new key.
    let copy = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join("hub.db"), copy.path().join("hub.db")).unwrap();
    let refused =
        start(ServerConfig::new(copy.path().to_owned(), "127.0.0.1:0".parse().unwrap())).await.err();
    let message = refused.expect("a hub.db without its verifier key is refused").to_string();
    assert!(message.contains("verifier.key") && message.contains("restore"), "{message}");
}

#[tokio::test]
async fn signed_agent_bodies_are_bounded_before_they_are_read_or_hashed() {
    use agent_core::auth::AuthHeader;
    let api = api(100).await;
    let token = api.token().await;
    let agent = api.register(&token, "node-big").await;
    let now = chrono::Utc::now().timestamp();
    for (path, announced) in [
        ("/api/agent/heartbeat", limits::AGENT_BODY_BYTES + 1),
        ("/api/agent/status", limits::AGENT_BODY_BYTES + 1),
        ("/api/agent/push", limits::AGENT_PUSH_BODY_BYTES + 1),
    ] {
        // The signature covers a body that never comes: only the announced length is known.
        let h = AuthHeader::sign(&agent.key, &agent.k, "POST", path, "", now, b"");
        let never =
            Body::from_stream(futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>());
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("authorization", h.to_string())
            .header("content-length", announced.to_string())
            .body(never)
            .unwrap();
        let resp = tokio::time::timeout(std::time::Duration::from_secs(10), api.app.clone().oneshot(req))
            .await
            .expect("answered without reading the body")
            .unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    // Within the caps everything still works.
    let (s, v) = api.signed(&agent, "POST", "/api/agent/heartbeat", Some(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api.signed(&agent, "POST", "/api/agent/push", Some(json!({"docs": []}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn hostile_pushes_are_refused_per_document_and_the_victims_files_stay() {
    use super::agent_push::{file_doc, node_doc};
    use agent_core::doc::{AnnotationDoc, AnnotationStatus, TransferEndpoint};
    use agent_core::ids::{AnnotationId, DocId, FileId, Rev};
    let api = api(100).await;
    let token = api.token().await;
    let victim = api.register(&token, "node-victim").await;
    let evil = api.register(&token, "node-evil").await;
    let v = |d: Document| serde_json::to_value(d).unwrap();

    // The victim's files: one live, one deleted with a tombstone.
    let kept = file_doc(&victim.node, "/v/kept.txt", 1);
    let gone = file_doc(&victim.node, "/v/gone.txt", 1);
    let (s, r) = api
        .signed(
            &victim,
            "POST",
            "/api/agent/push",
            Some(json!({"docs": [v(kept.clone().into()), v(gone.clone().into())]})),
        )
        .await;
    assert!(s == StatusCode::OK && r["results"].as_array().unwrap().iter().all(|x| x["ok"] == true), "{r}");
    let tomb = json!({"_id": gone.id, "_rev": 2, "type": "file", "_deleted": true});
    let (_, r) = api.signed(&victim, "POST", "/api/agent/push", Some(json!({"docs": [tomb]}))).await;
    assert_eq!(r["results"][0]["ok"], true, "{r}");

    // One batch of hostile documents, and one honest one that must still be written.
    let mut steal_inode = file_doc(&evil.node, "/e/steal.txt", 1);
    steal_inode.inode = kept.inode;
    let long_name = format!("/e/{}", "x".repeat(5000));
    let mut long = v(file_doc(&evil.node, "/e/long", 1).into());
    long["name"] = json!("x".repeat(5000));
    long["source"]["export_path"] = json!(long_name);
    let mut nul = v(file_doc(&evil.node, "/e/nul", 1).into());
    nul["name"] = json!("x\u{0}y");
    nul["source"]["export_path"] = json!("/e/x\u{0}y");
    let plugin: agent_core::ids::PluginName = "summarizer".parse().unwrap();
    let annotation = AnnotationDoc {
        id: AnnotationId::for_file(&kept.id, &plugin),
        rev: Rev(1),
        file_id: kept.id.clone(),
        plugin_name: plugin,
        node_id: evil.node.clone(),
        status: AnnotationStatus::Ok,
        data: json!({"summary": "lies"}),
        error: None,
        annotated_at: doc::now(),
    };
    let utilization = json!({"_id": "utilization::node-victim::1764000000", "_rev": 1,
        "type": "utilization_snapshot", "node_id": "node-evil", "captured_at": "2026-11-25T00:00:00Z",
        "indexed_files": 1, "indexed_bytes": 1});
    let tombstone_over_tombstone =
        json!({"_id": gone.id, "_rev": 1_000_000, "type": "file", "_deleted": true});
    let mut take_deleted_id = file_doc(&evil.node, "/e/taken.txt", 1_000_000);
    take_deleted_id.id = gone.id.clone();
    let mut huge_rev = v(file_doc(&evil.node, "/e/rev.txt", 1).into());
    huge_rev["_rev"] = json!(u64::MAX);
    let mut http_node = node_doc(&evil.node, 1, "evil");
    http_node.transfer =
        Some(TransferEndpoint { endpoint: "http://10.0.0.9:7443".into(), cert_fingerprint: "ab".repeat(32) });
    let mut future = v(file_doc(&evil.node, "/e/future.txt", 1).into());
    future["mtime"] = json!("2099-01-01T00:00:00Z");
    future["received_at"] = json!("2000-01-01T00:00:00Z");
    let honest = file_doc(&evil.node, "/e/honest.txt", 1);
    let batch = vec![
        (v(steal_inode.into()), "inode_taken"),
        (long, "invalid"),
        (nul, "invalid"),
        (v(annotation.into()), "not_owner"),
        (utilization, "invalid"),
        (tombstone_over_tombstone, "not_owner"),
        (v(take_deleted_id.into()), "not_owner"),
        (json!({"_id": kept.id, "_rev": 9, "type": "file", "_deleted": true}), "not_owner"),
        (huge_rev, "invalid"),
        (v(http_node.into()), "invalid"),
        (future, "ok"),
        (v(honest.clone().into()), "ok"),
    ];
    let docs: Vec<Value> = batch.iter().map(|(d, _)| d.clone()).collect();
    let (s, r) = api.signed(&evil, "POST", "/api/agent/push", Some(json!({"docs": docs}))).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), batch.len());
    for (i, ((_, want), got)) in batch.iter().zip(results).enumerate() {
        let code = if got["ok"] == true { "ok" } else { got["error"]["code"].as_str().unwrap_or("?") };
        assert_eq!(code, *want, "document {i}: {got}");
    }

    // The victim's documents are as they were.
    let Some(Document::File(still)) = api.store.get(&DocId::from(&kept.id)).unwrap() else { panic!("kept") };
    assert_eq!((still.inode, still.source.node_id.clone()), (kept.inode, victim.node.clone()));
    let raw = api.store.get_raw(&DocId::from(&gone.id)).unwrap().unwrap();
    assert!(raw.deleted && raw.rev == Rev(2), "the tombstone is the victim's: {raw:?}");
    assert!(api
        .store
        .get(&DocId::from(&AnnotationId::for_file(&kept.id, &"summarizer".parse().unwrap())))
        .unwrap()
        .is_none());
    // The hub, not the agent, says when it received a file.
    let future_id: FileId = results[10]["id"].as_str().unwrap().parse().unwrap();
    let Some(Document::File(f)) = api.store.get(&DocId::from(&future_id)).unwrap() else { panic!("future") };
    let received = f.received_at.expect("stamped by the hub");
    assert!((doc::now() - received).num_seconds().abs() < 60, "{received}");
    assert_eq!(f.mtime.to_rfc3339(), "2099-01-01T00:00:00+00:00", "the mtime is kept as pushed");

    // The victim can still delete its own file, and its tombstone records it as the owner.
    let (_, r) = api
        .signed(
            &victim,
            "POST",
            "/api/agent/push",
            Some(json!({"docs": [{"_id": kept.id, "_rev": 2, "type": "file", "_deleted": true}]})),
        )
        .await;
    assert_eq!(r["results"][0]["ok"], true, "{r}");
    let raw = api.store.get_raw(&DocId::from(&kept.id)).unwrap().unwrap();
    assert!(raw.body.contains("\"_owner\":\"node-victim\""), "{}", raw.body);
}
