//! `mosaicfs agent init` against a real `mosaicfs server` process: pinning, registration, the
//! node secret kept privately, agent.toml written and valid, and every refusal leaving nothing
//! behind.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use agent_core::config::{AgentConfig, SecretRef};
use mosaicfs_tests::{field, mosaicfs_bin, start_server};

struct Hub {
    _proc: mosaicfs_tests::Proc,
    url: String,
    fingerprint: String,
    key: String,
    secret: String,
}

fn hub(data: &Path) -> Hub {
    let (proc, lines) = start_server(data, &["--login-per-minute", "1000"]);
    let addr = field(&lines, "control plane listening on").expect("address line").to_owned();
    let port = addr.rsplit(':').next().unwrap();
    let fingerprint = field(&lines, "certificate fingerprint (SHA-256):").expect("fingerprint").to_owned();
    let (key, secret) = mosaicfs_tests::admin_secret(data);
    Hub { _proc: proc, url: format!("https://127.0.0.1:{port}"), fingerprint, key, secret }
}

fn init(home: &Path, args: &[String], stdin: &str) -> Output {
    let mut child = Command::new(mosaicfs_bin())
        .args(["agent", "init"])
        .args(args)
        .env("HOME", home)
        .env("MOSAICFS_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit (refusing) before it reads stdin: a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn init_joins_a_node_and_refuses_what_it_cannot_trust() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = hub(&tmp.path().join("hub"));
    let (home, data, watched) = (tmp.path().join("home"), tmp.path().join("agent"), tmp.path().join("docs"));
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let config = tmp.path().join("etc/agent.toml");
    let (c, d, w) = (config.to_str().unwrap(), data.to_str().unwrap(), watched.to_str().unwrap());
    let common = |fp: &str| {
        vec![
            "--server".to_owned(),
            hub.url.clone(),
            "--server-fingerprint".into(),
            fp.to_owned(),
            "--access-key-id".into(),
            hub.key.clone(),
            "--secret-stdin".into(),
            "--watch".into(),
            w.to_owned(),
            "--data-dir".into(),
            d.to_owned(),
            "--config".into(),
            c.to_owned(),
            "--no-service".into(),
        ]
    };

    // Refusals first: none of them may write anything.
    let wrong_fp = "00".repeat(32);
    let out = init(&home, &common(&wrong_fp), &format!("{}\n", hub.secret));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the pinned"), "names the mismatch");
    let out = init(&home, &common(&hub.fingerprint), "wrong secret\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "a bad admin secret is refused");
    let mut no_stdin_flag = common(&hub.fingerprint);
    no_stdin_flag.retain(|a| a != "--secret-stdin");
    let out = init(&home, &no_stdin_flag, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret-stdin"));
    let mut http = common(&hub.fingerprint);
    http[1] = hub.url.replace("https", "http");
    assert_eq!(init(&home, &http, "").status.code(), Some(2));
    assert!(!config.exists(), "nothing written by a refused init");

    // The real join (secret store `auto`: the keychain if one answers here, else a 0600 file).
    let out = init(&home, &common(&hub.fingerprint.to_uppercase()), &format!("{}\n", hub.secret));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Joined") && stdout.contains("accepts its signed requests"), "{stdout}");
    let loaded = AgentConfig::load(&config).expect("agent.toml valid");
    let cp = loaded.control_plane.expect("control_plane section");
    assert_eq!(cp.server_fingerprint, hub.fingerprint);
    assert_eq!(loaded.watch_paths, vec![std::fs::canonicalize(&watched).unwrap()]);
    let text = std::fs::read_to_string(&config).unwrap();
    if let SecretRef::File(p) = &cp.secret {
        assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
        let node_secret = std::fs::read_to_string(p).unwrap();
        assert!(!text.contains(node_secret.trim()), "agent.toml never holds the secret");
    }
    assert!(data.join("keys/hub_transfer.pub").exists());
    let node_id = std::fs::read_to_string(data.join("node_id")).unwrap();

    // The hub knows the node's credential; a second init refuses to overwrite without --force.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = agent_core::http::pinned_client(&hub.fingerprint).unwrap();
        let token = mosaicfs_tests::login(&client, &hub.url, &hub.key, &hub.secret).await;
        let creds: serde_json::Value = client
            .get(format!("{}/api/credentials", hub.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bound: Vec<&serde_json::Value> =
            creds.as_array().unwrap().iter().filter(|c| c["node_id"] == node_id.trim()).collect();
        assert_eq!(bound.len(), 1, "{creds}");
        assert_eq!(bound[0]["access_key_id"].as_str(), Some(cp.access_key_id.as_str()));
    });
    let out = init(&home, &common(&hub.fingerprint), &format!("{}\n", hub.secret));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    // With --force and a service: the node keeps its id; the unit is written (and started where
    // a user systemd answers; here it says how to run the agent instead).
    let mut with_service = common(&hub.fingerprint);
    with_service.retain(|a| a != "--no-service");
    with_service.push("--force".into());
    let out = init(&home, &with_service, &format!("{}\n", hub.secret));
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(node_id.trim()), "same node id: {stdout}");
    let unit = std::fs::read_to_string(home.join(".config/systemd/user/mosaicfs-agent.service")).unwrap();
    assert!(unit.contains(&format!("ExecStart={} agent --config {c}", mosaicfs_bin().display())), "{unit}");
    assert!(
        stdout.contains("enabled and started") || stdout.contains("no user systemd answers here"),
        "{stdout}"
    );
}

/// The OS keychain for real: a private D-Bus session with gnome-keyring (installed by the test
/// command's set-up) holds the node secret; init reads it back and signs with it.
#[test]
fn init_keeps_the_secret_in_the_os_keychain_when_one_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = hub(&tmp.path().join("hub"));
    let (home, data, watched) = (tmp.path().join("home"), tmp.path().join("agent"), tmp.path().join("docs"));
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(home.join(".local/share")).unwrap();
    let config = tmp.path().join("agent.toml");
    let mut child = Command::new("dbus-run-session")
        .args(["--", "sh", "-c"])
        .arg(
            "echo -n test-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1; \
             exec \"$@\"",
        )
        .arg("sh")
        .arg(mosaicfs_bin())
        .args(["agent", "init", "--server", &hub.url, "--server-fingerprint", &hub.fingerprint])
        .args(["--access-key-id", &hub.key, "--secret-stdin", "--secret-store", "keychain", "--no-service"])
        .arg("--watch")
        .arg(&watched)
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&config)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("MOSAICFS_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dbus-run-session (apt: dbus) is installed by installer/install-deps.sh test");
    child.stdin.take().unwrap().write_all(format!("{}\n", hub.secret).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("secret in the OS keychain"), "{stdout}");
    let cp = AgentConfig::load(&config).unwrap().control_plane.unwrap();
    assert!(
        matches!(&cp.secret, SecretRef::Keyring { service, account }
        if service == "mosaicfs" && account == cp.access_key_id.as_str()),
        "{:?}",
        cp.secret
    );
    assert!(!data.join("secrets").exists(), "no secret file when the keychain holds it");
}

/// The `[vfs]` and `[transfer]` sections init writes: the desktop default (`~/MosaicFS`, allowed
/// to fail) for a user with a graphical session, an explicit `--mount-point`, `--no-mount`, and
/// `--transfer-listen`.
#[test]
fn init_writes_the_mount_a_desktop_user_gets_and_the_flags_change_it() {
    let tmp = tempfile::tempdir().unwrap();
    let hub = hub(&tmp.path().join("hub"));
    let (home, data, watched) = (tmp.path().join("home"), tmp.path().join("agent"), tmp.path().join("docs"));
    std::fs::create_dir_all(&watched).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let config = tmp.path().join("agent.toml");
    let join = |extra: &[&str], display: bool| {
        let mut args: Vec<String> = [
            "--server",
            &hub.url,
            "--server-fingerprint",
            &hub.fingerprint,
            "--access-key-id",
            &hub.key,
            "--secret-stdin",
            "--secret-store",
            "file",
            "--no-service",
            "--force",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (flag, value) in [("--watch", &watched), ("--data-dir", &data), ("--config", &config)] {
            args.push(flag.into());
            args.push(value.to_str().unwrap().into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut child = Command::new(mosaicfs_bin())
            .args(["agent", "init"])
            .args(&args)
            .env("HOME", &home)
            .env("MOSAICFS_LOG", "warn")
            .env_remove("WAYLAND_DISPLAY")
            .env("DISPLAY", if display { ":99" } else { "" })
            // Tests run as root here: say whether this is a desktop user's session.
            .env("MOSAICFS_DESKTOP", if display { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(format!("{}\n", hub.secret).as_bytes());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        AgentConfig::load(&config).expect("agent.toml valid")
    };

    let desktop = join(&[], true);
    assert_eq!(desktop.vfs.mount_point, Some(home.join("MosaicFS")));
    assert!(desktop.vfs.mount_is_default, "the desktop default may fail without stopping the agent");

    let headless = join(&[], false);
    assert_eq!(headless.vfs.mount_point, None, "no graphical session: the mount stays opt-in");

    let chosen = tmp.path().join("tree");
    let explicit =
        join(&["--mount-point", chosen.to_str().unwrap(), "--transfer-listen", "127.0.0.9:7999"], true);
    assert_eq!((explicit.vfs.mount_point, explicit.vfs.mount_is_default), (Some(chosen), false));
    assert_eq!(explicit.transfer.listen, "127.0.0.9:7999".parse().unwrap());
    assert!(explicit.transfer.listen_explicit);

    let none = join(&["--no-mount"], true);
    assert_eq!(none.vfs.mount_point, None);
}
