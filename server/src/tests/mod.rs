use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

struct Api {
    _dir: tempfile::TempDir,
    app: axum::Router,
    store: Store,
    admin: (AccessKeyId, Secret),
    /// How many long-polls the hub holds right now (`AppState::waiting_pulls`).
    waiting_pulls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    vault: Arc<vault::Vault>,
}

async fn api(login_per_minute: u32) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_hub(&dir.path().join("hub.db")).unwrap();
    let (signer, _) = agent_core::transfer_token::TransferSigner::generate().unwrap();
    let state = state::AppState::new(
        store.clone(),
        auth::JwtKeys::from_secret(&[7u8; 32]),
        login_per_minute,
        HashMap::new(),
        signer,
    );
    let (cred, secret) =
        credentials::create(&store, &state.vault, "admin".into(), CredentialRole::Admin, None).await.unwrap();
    let (vault, waiting_pulls) = (state.vault.clone(), state.waiting_pulls.clone());
    let app = routes::app(state).layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 1], 5000))));
    Api { _dir: dir, app, store, admin: (cred.access_key_id, secret), waiting_pulls, vault }
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, value)
    }

    async fn login(&self, key: &AccessKeyId, secret: &str) -> (StatusCode, Value) {
        self.call("POST", "/api/auth/login", None, Some(json!({"access_key_id": key, "secret": secret})))
            .await
    }

    async fn token(&self) -> String {
        let (s, v) = self.login(&self.admin.0, self.admin.1.expose()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn every_route_but_login_and_health_requires_auth() {
    let api = api(100).await;
    let routes = routes::routes();
    assert!(routes.len() >= 8, "{routes:?}");
    for r in routes {
        let path = r
            .path
            .replace("{access_key_id}", "MFSAAAAAAAAAAAAAAAAA")
            .replace("{node_id}", "node-x")
            .replace("{file_id}", "0192");
        let body = (r.method != "GET" && r.method != "DELETE").then(|| json!({}));
        let (status, v) = api.call(&r.method, &path, None, body.clone()).await;
        if r.public() {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{} {} is public", r.method, r.path);
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {} without credentials: {v}", r.method, r.path);
            assert_eq!(v["error"]["code"], "unauthorized");
            let (status, _) = api.call(&r.method, &path, Some("not.a.jwt"), body).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{} {} with a bad token", r.method, r.path);
        }
    }
}

#[tokio::test]
async fn login_whoami_logout() {
    let api = api(100).await;
    let token = api.token().await;
    let (s, me) = api.call("GET", "/api/auth/whoami", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["access_key_id"], api.admin.0.as_str());
    assert_eq!(me["role"], "admin");

    let (s, v) = api.login(&api.admin.0, "wrong-secret").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_credentials")));
    let (s, _) = api.login(&AccessKeyId::generate(), "x").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "an unknown key looks the same as a wrong secret");

    let (s, _) = api.call("POST", "/api/auth/logout", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = api.call("GET", "/api/auth/whoami", Some(&token), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a logged-out token stops working");
    let fresh = api.token().await;
    let (s, _) = api.call("GET", "/api/auth/whoami", Some(&fresh), None).await;
    assert_eq!(s, StatusCode::OK, "other tokens still work");
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let api = api(3).await;
    for _ in 0..3 {
        let (s, _) = api.login(&api.admin.0, "wrong").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let req = Request::builder()
        .method("POST")
        .uri("/api/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(json!({"access_key_id": api.admin.0, "secret": api.admin.1.expose()}).to_string()))
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "even the right secret, once limited");
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
}

#[tokio::test]
async fn credentials_lifecycle_and_the_secret_shown_once() {
    let api = api(100).await;
    let token = api.token().await;
    let (s, created) =
        api.call("POST", "/api/credentials", Some(&token), Some(json!({"name": "laptop CLI"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let key: AccessKeyId = created["access_key_id"].as_str().unwrap().parse().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();

    let (s, list) = api.call("GET", "/api/credentials", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let text = list.to_string();
    assert!(!text.contains(&secret) && !text.contains("verifier"), "never the secret or verifier: {text}");
    let raw = api.store.get_raw(&agent_core::ids::CredentialId::for_key(&key).into()).unwrap().unwrap();
    assert!(!raw.body.contains(&secret), "the store keeps only the verifier");

    assert_eq!(api.login(&key, &secret).await.0, StatusCode::OK);
    let path = format!("/api/credentials/{key}");
    let (s, v) = api.call("PATCH", &path, Some(&token), Some(json!({"enabled": false}))).await;
    assert_eq!((s, v["enabled"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(api.login(&key, &secret).await.0, StatusCode::UNAUTHORIZED, "disabled");
    let (s, _) = api.call("DELETE", &path, Some(&token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(api.call("GET", &path, Some(&token), None).await.0, StatusCode::NOT_FOUND);

    // Bad input: 4xx with a JSON error, nothing written.
    let seq = api.store.last_seq();
    for body in
        [json!({"name": ""}), json!({"name": "n", "role": "node"}), json!({"name": 5}), json!({"x": 1})]
    {
        let (s, v) = api.call("POST", "/api/credentials", Some(&token), Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} → {v}");
        assert!(v["error"]["message"].is_string());
    }
    assert_eq!(
        api.call("GET", "/api/credentials/not-a-key", Some(&token), None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(api.call("GET", "/api/nope", Some(&token), None).await.0, StatusCode::NOT_FOUND);
    let huge = json!({"name": "x".repeat(MAX_BODY_BYTES)});
    let (s, v) = api.call("POST", "/api/credentials", Some(&token), Some(huge)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("too_large")));
    assert_eq!(api.store.last_seq(), seq);
    let (s, _) = api
        .call(
            "PATCH",
            &format!("/api/credentials/{}", api.admin.0),
            Some(&token),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "no locking yourself out");
}

#[tokio::test]
async fn serves_https_with_a_kept_certificate_and_one_first_admin() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        login_per_minute: 100,
        ..ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap())
    };
    let server = start(config.clone()).await.unwrap();
    let (admin_key, admin_secret, kept) = server.first_admin.clone().expect("first start makes an admin");
    assert!(kept.ends_with("admin.secret, mode 0600"), "{kept}");
    let saved = std::fs::read_to_string(dir.path().join("secrets/admin.secret")).unwrap();
    assert!(saved.contains(admin_key.as_str()) && saved.contains(admin_secret.expose()));

    let cert =
        reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("tls/hub.crt")).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(cert).build().unwrap();
    let base = format!("https://localhost:{}", server.addr.port());
    let health: Value = client.get(format!("{base}/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let login = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"access_key_id": admin_key, "secret": admin_secret.expose()}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    let out = client.post(format!("{base}/api/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(out.status(), 200);
    let fingerprint = server.cert_fingerprint.clone();
    server.shutdown().await.unwrap();

    let again = start(config).await.unwrap();
    assert_eq!(again.cert_fingerprint, fingerprint, "the certificate is kept");
    let base = format!("https://localhost:{}", again.addr.port());
    let me = client.get(format!("{base}/api/auth/whoami")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 401, "a logged-out token stays logged out after a restart");
    assert!(again.first_admin.is_none(), "only the first start makes an admin");
    let root = again.store.get(&DirId::root().into()).unwrap();
    assert!(matches!(root, Some(Document::VirtualDirectory(d)) if d.virtual_path == "/"));
    again.shutdown().await.unwrap();
}

#[tokio::test]
async fn signed_agent_requests_are_verified() {
    use agent_core::auth::{derive_verifier, AuthHeader};
    let api = api(100).await;
    let token = api.token().await;
    let (s, created) = api
        .call(
            "POST",
            "/api/credentials",
            Some(&token),
            Some(json!({"name": "laptop agent", "role": "node", "node_id": "node-laptop"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let key: AccessKeyId = created["access_key_id"].as_str().unwrap().parse().unwrap();
    let secret = Secret::from_string(created["secret"].as_str().unwrap().to_owned());
    // The agent derives K from the public KDF parameters, as it would after joining.
    let (s, kdf) = api.call("GET", &format!("/api/auth/kdf/{key}"), None, None).await;
    assert_eq!(s, StatusCode::OK);
    let kdf: agent_core::doc::KdfParams = serde_json::from_value(kdf).unwrap();
    let k = derive_verifier(&secret, &kdf).unwrap();
    let (_, fake1) = api.call("GET", "/api/auth/kdf/MFSAAAAAAAAAAAAAAAAA", None, None).await;
    let (_, fake2) = api.call("GET", "/api/auth/kdf/MFSAAAAAAAAAAAAAAAAA", None, None).await;
    assert_eq!(fake1, fake2, "unknown ids get stable parameters");

    let send = |header: String, body: &'static str| {
        let app = api.app.clone();
        async move {
            let req = Request::builder()
                .method("POST")
                .uri("/api/agent/heartbeat?x=1")
                .header("authorization", header)
                .body(Body::from(body))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes())
                .unwrap_or(Value::Null);
            (status, v)
        }
    };
    let now = chrono::Utc::now().timestamp();
    let good = AuthHeader::sign(&key, &k, "POST", "/api/agent/heartbeat", "x=1", now, b"{}");
    let (s, v) = send(good.to_string(), "{}").await;
    assert_eq!((s, v["node_id"].as_str()), (StatusCode::OK, Some("node-laptop")), "{v}");
    let (s, v) = send(good.to_string(), "{}").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("replay")));

    let tampered = AuthHeader::sign(&key, &k, "POST", "/api/agent/heartbeat", "x=1", now + 1, b"{}");
    let (s, v) = send(tampered.to_string(), "{\"evil\":1}").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("bad_signature")));
    let old = AuthHeader::sign(&key, &k, "POST", "/api/agent/heartbeat", "x=1", now - 600, b"{}");
    let (s, v) = send(old.to_string(), "{}").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("clock_skew")));
    let (s, v) = send("MOSAICFS-HMAC-SHA256 nonsense".into(), "{}").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("malformed_authorization")));

    // A disabled credential is refused; an admin credential cannot sign agent requests.
    api.call("PATCH", &format!("/api/credentials/{key}"), Some(&token), Some(json!({"enabled": false})))
        .await;
    let h = AuthHeader::sign(&key, &k, "POST", "/api/agent/heartbeat", "x=1", now + 2, b"{}");
    let (s, v) = send(h.to_string(), "{}").await;
    assert_eq!((s, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unknown_credential")));
    let admin_cred = credentials::get(&api.store, &api.admin.0).await.unwrap().unwrap();
    let admin_k = derive_verifier(&api.admin.1, &admin_cred.kdf).unwrap();
    let h = AuthHeader::sign(&api.admin.0, &admin_k, "POST", "/api/agent/heartbeat", "x=1", now, b"{}");
    assert_eq!(send(h.to_string(), "{}").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn registering_a_node_issues_a_credential_bound_to_it() {
    use agent_core::auth::{derive_verifier, AuthHeader};
    let api = api(100).await;
    let token = api.token().await;
    let (s, reg) =
        api.call("POST", "/api/nodes/register", Some(&token), Some(json!({"node_id": "node-nas"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{reg}");
    assert_eq!(reg["credential"]["role"], "node");
    assert_eq!(reg["credential"]["node_id"], "node-nas");
    let key: AccessKeyId = reg["access_key_id"].as_str().unwrap().parse().unwrap();
    let secret = Secret::from_string(reg["secret"].as_str().unwrap().to_owned());
    let kdf: agent_core::doc::KdfParams = serde_json::from_value(reg["kdf"].clone()).unwrap();
    let k = derive_verifier(&secret, &kdf).unwrap();
    let now = chrono::Utc::now().timestamp();
    let h = AuthHeader::sign(&key, &k, "POST", "/api/agent/heartbeat", "", now, b"");
    let req = Request::builder()
        .method("POST")
        .uri("/api/agent/heartbeat")
        .header("authorization", h.to_string())
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(v["node_id"], "node-nas", "the hub knows which node signed");

    let (s, generated) = api.call("POST", "/api/nodes/register", Some(&token), Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(generated["node_id"].as_str().unwrap().starts_with("node-"));
    let (s, _) =
        api.call("POST", "/api/nodes/register", Some(&token), Some(json!({"node_id": "Bad Id"}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, nodes) = api.call("GET", "/api/nodes", Some(&token), None).await;
    assert_eq!((s, nodes), (StatusCode::OK, json!([])), "node documents arrive with replication");
    assert_eq!(api.call("GET", "/api/nodes/node-nas", Some(&token), None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn files_by_page_id_path_and_search() {
    use agent_core::doc::{FileDoc, FileSource, FileStatus};
    use agent_core::ids::{FileId, Inode, Rev};
    let api = api(100).await;
    let token = api.token().await;
    let node: agent_core::ids::NodeId = "node-laptop".parse().unwrap();
    let docs: Vec<Document> = (0..5)
        .map(|i| {
            let source = FileSource::new(node.clone(), &format!("/home/me/Docs/report-{i}.pdf")).unwrap();
            Document::File(FileDoc {
                id: FileId::generate(),
                rev: Rev::NONE,
                name: source.name().to_owned(),
                source,
                size: i,
                mtime: doc::now(),
                mime: Some("application/pdf".into()),
                inode: Inode::generate(),
                status: FileStatus::Active,
                first_seen: doc::now(),
                deleted_at: None,
                received_at: None,
            })
        })
        .collect();
    api.store.put_many(docs).unwrap();

    let (s, p1) = api.call("GET", "/api/files?limit=2", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{p1}");
    assert_eq!(p1["files"].as_array().unwrap().len(), 2);
    let mut total = 2;
    let mut cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    loop {
        let (_, p) =
            api.call("GET", &format!("/api/files?limit=2&cursor={cursor}"), Some(&token), None).await;
        total += p["files"].as_array().unwrap().len();
        match p["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => break,
        }
    }
    assert_eq!(total, 5);

    let id = p1["files"][0]["_id"].as_str().unwrap().to_owned();
    let (s, f) = api.call("GET", &format!("/api/files/{id}"), Some(&token), None).await;
    assert_eq!((s, f["_id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let (s, f) = api
        .call(
            "GET",
            "/api/files/by-path?node_id=node-laptop&path=/home/me/Docs/report-3.pdf",
            Some(&token),
            None,
        )
        .await;
    assert_eq!((s, f["size"].as_u64()), (StatusCode::OK, Some(3)));
    let (s, hits) = api.call("GET", "/api/search?q=REPORT-", Some(&token), None).await;
    assert_eq!((s, hits["files"].as_array().unwrap().len()), (StatusCode::OK, 5));
    let (_, hits) = api.call("GET", "/api/search?q=*-4.pdf", Some(&token), None).await;
    assert_eq!(hits["files"].as_array().unwrap().len(), 1);

    for bad in [
        "/api/files/by-path?node_id=node-laptop&path=/home/me/../etc/passwd",
        "/api/files/by-path?node_id=node-laptop&path=/home/me/%2E%2E/etc/passwd",
        "/api/files/by-path?node_id=node-laptop&path=relative",
        "/api/files/by-path?node_id=NOT%20A%20NODE&path=/x",
        "/api/files?limit=0",
        "/api/files?limit=abc",
        "/api/files?colour=red",
        "/api/files?cursor=zz",
        "/api/search?q=[unclosed",
        "/api/search?q=",
        "/api/files/not%20an%20id",
    ] {
        let (s, v) = api.call("GET", bad, Some(&token), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["error"]["code"].is_string(), "{bad}: JSON error body");
    }
    assert_eq!(
        api.call("GET", "/api/files/by-path?node_id=node-laptop&path=/nope", Some(&token), None).await.0,
        StatusCode::NOT_FOUND
    );
}

mod agent_push;
mod changes;
mod pages;
mod resources;
mod security;
mod vfs;

/// A registered node that signs its requests, as an agent does.
struct Agent {
    node: agent_core::ids::NodeId,
    key: AccessKeyId,
    k: agent_core::auth::Verifier,
}

impl Api {
    async fn register(&self, token: &str, node: &str) -> Agent {
        let (s, reg) =
            self.call("POST", "/api/nodes/register", Some(token), Some(json!({"node_id": node}))).await;
        assert_eq!(s, StatusCode::CREATED, "{reg}");
        let secret = Secret::from_string(reg["secret"].as_str().unwrap().to_owned());
        let kdf: agent_core::doc::KdfParams = serde_json::from_value(reg["kdf"].clone()).unwrap();
        Agent {
            node: node.parse().unwrap(),
            key: reg["access_key_id"].as_str().unwrap().parse().unwrap(),
            k: agent_core::auth::derive_verifier(&secret, &kdf).unwrap(),
        }
    }

    /// A signed agent request (each with its own timestamp nonce, so none is a replay).
    async fn signed(
        &self,
        agent: &Agent,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        use std::sync::atomic::{AtomicI64, Ordering};
        static OFFSET: AtomicI64 = AtomicI64::new(0);
        let now = chrono::Utc::now().timestamp() - 200 + OFFSET.fetch_add(1, Ordering::Relaxed) % 200;
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        let h = agent_core::auth::AuthHeader::sign(&agent.key, &agent.k, method, p, q, now, bytes.as_bytes());
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", h.to_string())
            .header("content-type", "application/json")
            .body(Body::from(bytes))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let v = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes())
            .unwrap_or(Value::Null);
        (status, v)
    }
}

#[tokio::test]
async fn the_openapi_document_covers_exactly_the_route_table() {
    use std::collections::BTreeSet;
    let api = api(100).await;
    let token = api.token().await;
    assert_eq!(api.call("GET", "/api/openapi.json", None, None).await.0, StatusCode::UNAUTHORIZED);
    let (s, doc) = api.call("GET", "/api/openapi.json", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
            let public = path == "/health" || path == "/api/auth/login" || path.starts_with("/api/auth/kdf/");
            assert_eq!(
                op.get("security").is_none(),
                public,
                "{method} {path}: security declared iff not public"
            );
        }
    }
    let routed: BTreeSet<(String, String)> =
        routes::routes().iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    assert_eq!(documented, routed, "documented vs routed");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in ["FileDoc", "NodeDoc", "VirtualDirectoryDoc", "Document", "ErrorBody", "CredentialView"] {
        assert!(schemas.contains_key(name), "{name}");
    }
}
