//! Schemathesis (PyPI, installed by `installer/install-deps.sh test`) against a live
//! `mosaicfs server`: every operation of `/api/openapi.json` with generated valid and invalid
//! input, a fixed seed and a bounded number of examples. Fails on any 5xx and on any response
//! that does not match the documented schema.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mosaicfs_tests::{field, start_server};

fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("MOSAICFS_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/mosaicfs-venv")
    });
    let bin = venv.join("bin/schemathesis");
    assert!(bin.exists(), "{} is missing: run `bash installer/install-deps.sh test`", bin.display());
    bin
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let bin = schemathesis();
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, lines) = start_server(tmp.path(), &["--login-per-minute", "100000"]);
    let url = field(&lines, "control plane listening on").expect("address line").to_owned();
    let port = url.rsplit(':').next().unwrap().to_owned();
    let base = format!("https://127.0.0.1:{port}");
    let (key, secret) = mosaicfs_tests::admin_secret(tmp.path());

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (token, schema) = rt.block_on(async {
        let client = mosaicfs_tests::https_client(Duration::from_secs(30));
        let token = mosaicfs_tests::login(&client, &base, &key, &secret).await;
        // Something for the generated requests to find.
        let created = client
            .post(format!("{base}/api/vfs/directories/work"))
            .bearer_auth(&token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let schema = client
            .get(format!("{base}/api/openapi.json"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (token, schema)
    });
    let schema_file = tmp.path().join("openapi.json");
    std::fs::write(&schema_file, schema).unwrap();

    let out = Command::new(&bin)
        .arg("run")
        .arg(&schema_file)
        .args(["--url", &base, "--tls-verify", "false"])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--seed", "42", "--max-examples", "25"])
        .args(["--phases", "examples,coverage,fuzzing", "--generation-database", "none"])
        // Logging out would end the session every other request uses.
        .args(["--exclude-path", "/api/auth/logout", "--no-color"])
        // An event stream never ends; its own test reads it.
        .args(["--exclude-path", "/api/changes/stream"])
        .env("HOME", tmp.path())
        .output()
        .expect("run schemathesis");
    let report =
        format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    server.signal(libc::SIGTERM);
    assert!(
        server.wait(Duration::from_secs(30)).success(),
        "the server survived the fuzzing and stopped cleanly"
    );
    assert!(out.status.success(), "schemathesis found problems:\n{report}");
    eprintln!(
        "{}",
        report.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}
