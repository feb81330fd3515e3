//! `mosaicfs server` as a separate process: HTTPS on loopback with its self-signed certificate,
//! the first admin printed once, login over the wire, a clean stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::Duration;

use mosaicfs_tests::{field, mosaicfs_bin, start_server as start, Proc};

#[test]
fn server_process_serves_https_and_prints_the_first_admin_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, lines) = start(tmp.path(), &[]);
    let url = field(&lines, "control plane listening on").expect("address line").to_owned();
    let port = url.rsplit(':').next().unwrap().to_owned();
    let (key, secret) = mosaicfs_tests::admin_secret(tmp.path());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cert =
            reqwest::Certificate::from_pem(&std::fs::read(tmp.path().join("tls/hub.crt")).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let base = format!("https://localhost:{port}");
        let health: serde_json::Value =
            client.get(format!("{base}/health")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        let unauth = client.get(format!("{base}/api/credentials")).send().await.unwrap();
        assert_eq!(unauth.status(), 401);
        let token = mosaicfs_tests::login(&client, &base, &key, &secret).await;
        let me: serde_json::Value = client
            .get(format!("{base}/api/auth/whoami"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["access_key_id"], key.as_str());
    });

    server.signal(libc::SIGTERM);
    assert!(server.wait(Duration::from_secs(30)).success());

    let (mut again, lines) = start(tmp.path(), &[]);
    assert!(field(&lines, "access key id:").is_none(), "no new admin on a later start: {lines:?}");
    again.signal(libc::SIGTERM);
    assert!(again.wait(Duration::from_secs(30)).success());
}

#[test]
fn up_runs_agent_and_control_plane_in_one_process() {
    let node = mosaicfs_tests::NodeDir::new("");
    std::fs::write(node.watched.join("hello.txt"), b"hello").unwrap();
    let mut up = Proc::spawn(
        Command::new(mosaicfs_bin())
            .args(["up", "--listen", "127.0.0.1:0", "--config"])
            .arg(&node.config)
            .env("MOSAICFS_LOG", "warn")
            .env("MOSAICFS_SECRETS", "file")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let rx = up.stdout_lines();
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("the banner");
        if let Some(rest) = line.strip_prefix("control plane: ") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let port = url.rsplit(':').next().unwrap().to_owned();
    assert!(
        node.data.join("hub.db").exists() && node.data.join("agent.db").exists(),
        "one data dir, two stores"
    );

    let hello = node.watched.join("hello.txt");
    mosaicfs_tests::wait_for("hello.txt indexed", Duration::from_secs(60), || {
        let store = agent_core::store::Store::open(&node.store_path()).ok()?;
        let id: agent_core::ids::NodeId =
            std::fs::read_to_string(node.data.join("node_id")).ok()?.trim().parse().ok()?;
        store.file_by_path(&id, hello.to_str()?).ok()?
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cert =
            reqwest::Certificate::from_pem(&std::fs::read(node.data.join("tls/hub.crt")).unwrap()).unwrap();
        let client = reqwest::Client::builder().add_root_certificate(cert).build().unwrap();
        let base = format!("https://localhost:{port}");
        let health = client.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        // The in-process agent joined its own hub and pushed its index over loopback HTTPS.
        let (key, secret) = mosaicfs_tests::admin_secret(&node.data);
        let token = mosaicfs_tests::login(&client, &base, &key, &secret).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let found: serde_json::Value = client
                .get(format!("{base}/api/search?q=hello"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if found["files"].as_array().is_some_and(|f| f.iter().any(|f| f["name"] == "hello.txt")) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "hello.txt never reached the hub: {found}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let status = node.run(&["sync", "status", "--json", "--config", node.config.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&status.stdout).expect("sync status --json");
    assert!(status.status.success() && report["connected"] == true, "{report}");
    up.signal(libc::SIGTERM);
    assert!(up.wait(Duration::from_secs(60)).success());
}
