use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::parse(text, Path::new("/etc/agent.toml"))
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse("data_dir = \"/d\"\nwatch_paths = [\"/home/me/Docs/\"]").unwrap();
    assert_eq!(c.watch_paths, vec![PathBuf::from("/home/me/Docs")]);
    assert_eq!(c.heartbeat_interval, Duration::from_secs(30));
    assert_eq!(c.watcher.debounce, Duration::from_millis(500));
    assert_eq!(c.log.dir, PathBuf::from("/d/logs"));
    assert_eq!(c.store_path(), PathBuf::from("/d/agent.db"));
    assert!(c.control_plane.is_none());
}

#[test]
fn errors_name_the_file_and_the_field() {
    let cases = [
        ("data_dir = \"/d\"", "missing field `watch_paths`"),
        ("watch_paths = [\"rel\"]", "watch_paths[0]"),
        ("watch_paths = [\"/a\", \"/a/b\"]", "watch_paths[1]: \"/a/b\" overlaps"),
        ("watch_paths = [\"/a\"]\n[watcher]\ndebounce_ms = \"x\"", "watcher.debounce_ms: invalid type"),
        ("watch_paths = [\"/a\"]\n[watcher]\ndebounce_ms = 0", "watcher.debounce_ms: must be greater than 0"),
        ("watch_paths = [\"/a\"]\ncolour = 1", "unknown field `colour`"),
        ("watch_paths = [\"/a\"]\nexclude = [\"[\"]", "exclude[0]"),
        ("watch_paths = [\"/a\"]\n[vfs]\nmount_point = \"mnt\"", "vfs.mount_point: mnt is not an absolute"),
        ("watch_paths = [\"/a\"]\n[vfs]\nmount_point = \"/a/mnt\"", "vfs.mount_point: /a/mnt overlaps"),
        ("watch_paths = [\"/a\"]\n[vfs]\npassthrough = 1", "vfs.passthrough: invalid type"),
        ("watch_paths = [\"/a\"\n", "/etc/agent.toml: "),
        ("watch_paths = [\"/a\"]\n[transfer]\nlisten = \"x\"", "transfer.listen: \"x\" is not an address"),
        (
            "watch_paths = [\"/a\"]\n[transfer]\nadvertise = \"http://h:1\"",
            "transfer.advertise: \"http://h:1\" is not an https",
        ),
        ("watch_paths = [\"/a\"]\n[cache]\nmax_mib = 0", "cache.max_mib: must be greater than 0"),
        ("watch_paths = [\"/a\"]\n[cache]\nsize = 1", "unknown field `size`"),
    ];
    for (text, want) in cases {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.starts_with("/etc/agent.toml: "), "{e}");
        assert!(e.contains(want), "{text:?} gave {e:?}, wanted {want:?}");
        assert!(!e.contains('\n'), "one line: {e:?}");
    }
}

#[test]
fn transfer_and_cache_sections_have_defaults_and_take_values() {
    let c = parse("watch_paths = [\"/a\"]").unwrap();
    assert_eq!(c.transfer, TransferConfig::default());
    assert_eq!(c.cache.full_file_threshold, 50 << 20);
    assert_eq!(c.cache.max_bytes, 10 << 30);
    let c = parse(
        "watch_paths = [\"/a\"]\n[transfer]\nlisten = \"127.0.0.2:0\"\nadvertise = \"https://nas.lan:9000/\"\n\
         [cache]\nmax_mib = 20\nmin_free_mib = 0\nfull_file_threshold_mib = 4",
    )
    .unwrap();
    assert_eq!(c.transfer.listen.to_string(), "127.0.0.2:0");
    assert!(c.transfer.listen_explicit);
    assert_eq!(c.transfer.advertise.as_deref(), Some("https://nas.lan:9000"));
    assert_eq!(
        (c.cache.max_bytes, c.cache.min_free_bytes, c.cache.full_file_threshold),
        (20 << 20, 0, 4 << 20)
    );
}

#[test]
fn control_plane_fields_are_required_together_and_secret_is_a_reference() {
    let base = "watch_paths = [\"/a\"]\n[control_plane]\nurl = \"https://hub:8443/\"\naccess_key_id = \"MFSABCDEFGHIJKLMNOPQ\"\n";
    let fp = format!("server_fingerprint = \"{}\"\n", "AB".repeat(32));
    let e = parse(&format!("{base}{fp}")).unwrap_err().to_string();
    assert!(e.contains("control_plane: missing field `secret`"), "{e}");
    let e = parse(&format!("{base}{fp}secret = \"hunter2\"\n")).unwrap_err().to_string();
    assert!(e.contains("control_plane.secret: must say where"), "{e}");
    let c = parse(&format!("{base}{fp}secret = \"file:/var/lib/mosaicfs/secrets/agent\"\n")).unwrap();
    let cp = c.control_plane.unwrap();
    assert_eq!(cp.url, "https://hub:8443");
    assert_eq!(cp.server_fingerprint, "ab".repeat(32));
    assert_eq!(cp.secret, SecretRef::File("/var/lib/mosaicfs/secrets/agent".into()));
    assert!(parse(&format!("{base}{fp}secret = \"keyring:mosaicfs/MFSABCDEFGHIJKLMNOPQ\"\n")).is_ok());
    let e = parse(&format!("{base}{fp}secret = \"env:X\"\nurl2 = 1\n")).unwrap_err().to_string();
    assert!(e.contains("url2"), "{e}");
    let e = parse(&base.replace("https://hub:8443/", "http://hub")).unwrap_err().to_string();
    assert!(e.contains("control_plane"), "{e}");
}

#[test]
fn node_id_is_generated_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/node_id");
    let a = load_or_create_node_id(&path).unwrap();
    let b = load_or_create_node_id(&path).unwrap();
    assert_eq!(a, b);
    std::fs::write(&path, "Not A Node Id").unwrap();
    let e = load_or_create_node_id(&path).unwrap_err().to_string();
    assert!(e.contains("node_id") && e.contains("invalid node id"), "{e}");
}
