//! The virtual tree through a real FUSE mount of `mosaicfs up` (fuse3 is installed by the test
//! command's set-up): `ls`, `stat`, `cat`, `sha256sum`, `cp -r`, `find`, `rsync -a` + `diff -r`
//! against the sources; EROFS for writes; files appearing and disappearing; inodes shared by two
//! directories and stable across a restart; a stale mount after SIGKILL; clear errors for a
//! non-empty mount point and a missing FUSE.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mosaicfs_tests::mounted::{is_mounted, MountedUp};
use mosaicfs_tests::{mosaicfs_bin, wait_for, Proc};

/// Writes `mib` MiB of incompressible bytes (a random MiB, each copy stamped with its index).
fn generated(path: &Path, mib: usize) {
    use std::io::Write;
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..mib {
        block[..8].copy_from_slice(&(i as u64).to_le_bytes());
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.stderr(Stdio::piped()).output().expect("run");
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn sha256(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path)).split_whitespace().next().unwrap().to_owned()
}

/// The source tree every test mounts: the sizes the issue names and a few nested files.
fn make_sources(docs: &Path, big_mib: usize) {
    std::fs::create_dir_all(docs.join("sub/deep")).unwrap();
    std::fs::write(docs.join("empty.bin"), b"").unwrap();
    std::fs::write(docs.join("one.bin"), b"x").unwrap();
    std::fs::write(docs.join("four-k.bin"), (0..4096u32).map(|i| (i * 7) as u8).collect::<Vec<_>>()).unwrap();
    generated(&docs.join("big.bin"), big_mib);
    std::fs::write(docs.join("sub/a.txt"), b"alpha\n").unwrap();
    std::fs::write(docs.join("sub/c.md"), b"# c\n").unwrap();
    std::fs::write(docs.join("sub/deep/b.txt"), b"beta\n").unwrap();
}

const FILES: [&str; 7] =
    ["empty.bin", "one.bin", "four-k.bin", "big.bin", "sub/a.txt", "sub/c.md", "sub/deep/b.txt"];

fn assert_same_bytes_and_attributes(mnt: &Path, src: &Path) {
    for rel in FILES {
        let (m, s) = (mnt.join(rel), src.join(rel));
        let (mm, sm) = (std::fs::metadata(&m).unwrap(), std::fs::metadata(&s).unwrap());
        assert_eq!(mm.len(), sm.len(), "{rel}: size");
        assert_eq!((mm.mtime(), mm.mtime_nsec()), (sm.mtime(), sm.mtime_nsec()), "{rel}: mtime");
        assert_eq!(sha256(&m), sha256(&s), "{rel}: bytes");
    }
}

#[test]
fn the_mounted_tree_matches_its_sources() {
    let mut up = MountedUp::new("");
    let docs = up.node.watched.join("docs");
    make_sources(&docs, 300);
    let lines = up.launch();
    assert!(
        lines.iter().any(|l| l == &format!("virtual tree mounted at {}", up.mount.display())),
        "the banner says where: {lines:?}"
    );
    up.create_dir("docs", &docs, serde_json::json!([]));
    up.create_dir("again", &docs, serde_json::json!([]));
    let mnt = up.mount.join("docs");
    let big = up.wait_visible("docs/big.bin");
    assert_eq!(big.len(), 300 << 20);
    up.wait_visible("again/sub/deep/b.txt");

    // ls, stat, cat, sha256 (0 B, 1 B, 4 KiB, 300 MB and the small ones).
    let listed = run(Command::new("ls").arg("-A").arg(&mnt));
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["big.bin", "empty.bin", "four-k.bin", "one.bin", "sub"]);
    let st = run(Command::new("stat").args(["-c", "%s %Y %A"]).arg(mnt.join("four-k.bin")));
    let mtime = std::fs::metadata(docs.join("four-k.bin")).unwrap().mtime();
    assert_eq!(st.trim(), format!("4096 {mtime} -r--r--r--"));
    assert_eq!(run(Command::new("cat").arg(mnt.join("sub/a.txt"))), "alpha\n");
    assert_same_bytes_and_attributes(&mnt, &docs);

    // find, cp -r, rsync -a + diff -r.
    let find = |root: &Path| {
        let out = run(Command::new("find").arg(root).args(["-mindepth", "1", "-printf", "%y %P\n"]));
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(find(&mnt), find(&docs));
    let copy = up.node.tmp.path().join("copy");
    run(Command::new("cp").arg("-r").arg(&mnt).arg(&copy));
    run(Command::new("diff").arg("-r").arg(&copy).arg(&docs));
    let synced = up.node.tmp.path().join("rsynced");
    run(Command::new("rsync").arg("-a").arg(format!("{}/", mnt.display())).arg(&synced));
    run(Command::new("diff").arg("-r").arg(&synced).arg(&docs));

    // Read-only: every kind of write is EROFS.
    let erofs = |r: std::io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{what}: {e}");
    };
    erofs(std::fs::write(mnt.join("new.txt"), b"x"), "create");
    erofs(std::fs::OpenOptions::new().append(true).open(mnt.join("one.bin")).map(drop), "open for writing");
    erofs(std::fs::create_dir(mnt.join("newdir")), "mkdir");
    erofs(std::fs::remove_file(mnt.join("one.bin")), "unlink");
    erofs(std::fs::rename(mnt.join("one.bin"), mnt.join("two.bin")), "rename");

    // One file in two directories is one inode; directories have their documents' inodes.
    let root = up.mount.clone();
    let ino = |rel: &str| std::fs::metadata(root.join(rel)).unwrap().ino();
    assert_eq!(ino("docs/sub/a.txt"), ino("again/sub/a.txt"));
    assert_ne!(ino("docs"), ino("again"));
    assert_eq!(ino(""), 1, "the root is inode 1");
    let before: Vec<u64> =
        ["docs", "docs/sub", "docs/sub/deep", "docs/one.bin", "again/big.bin"].map(ino).into();
    assert!(before.iter().all(|i| *i >= 1000), "assigned inodes are 1000+: {before:?}");

    // A file added at the source shows up; a removed one disappears.
    std::fs::write(docs.join("sub/late.txt"), b"late\n").unwrap();
    up.wait_visible("docs/sub/late.txt");
    assert_eq!(std::fs::read(mnt.join("sub/late.txt")).unwrap(), b"late\n");
    std::fs::remove_file(docs.join("one.bin")).unwrap();
    wait_for("one.bin gone from the mount", Duration::from_secs(60), || {
        let names = run(Command::new("ls").arg(&mnt));
        (!names.lines().any(|n| n == "one.bin") && std::fs::metadata(mnt.join("one.bin")).is_err())
            .then_some(())
    });

    // Inodes are the same after a restart; SIGTERM unmounts.
    let before: Vec<u64> =
        ["docs", "docs/sub", "docs/sub/deep", "docs/four-k.bin", "again/big.bin"].map(ino).into();
    up.stop();
    assert!(std::fs::read_dir(&up.mount).unwrap().next().is_none(), "the mount point is empty again");
    up.launch();
    up.wait_visible("again/big.bin");
    let after: Vec<u64> =
        ["docs", "docs/sub", "docs/sub/deep", "docs/four-k.bin", "again/big.bin"].map(ino).into();
    assert_eq!(before, after, "inodes stable across restarts");
    up.stop();
}

#[test]
fn reads_without_passthrough_match_their_sources() {
    let mut up = MountedUp::new("passthrough = false");
    let docs = up.node.watched.join("docs");
    make_sources(&docs, 40);
    up.launch();
    up.create_dir("docs", &docs, serde_json::json!([]));
    up.wait_visible("docs/sub/deep/b.txt");
    let mnt = up.mount.join("docs");
    assert_same_bytes_and_attributes(&mnt, &docs);
    // Reads at odd offsets and sizes: `dd` with a 3000-byte block from block 7 on.
    let dd = |root: &Path| {
        let out = Command::new("dd")
            .arg(format!("if={}", root.join("big.bin").display()))
            .args(["bs=3000", "skip=7", "count=5000", "status=none"])
            .output()
            .unwrap();
        assert!(out.status.success());
        out.stdout
    };
    assert_eq!(dd(&mnt), dd(&docs));
    up.stop();
}

#[test]
fn a_source_replaced_under_an_open_handle_is_one_version_per_open() {
    use std::io::Read;
    let mut up = MountedUp::new("");
    let docs = up.node.watched.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("note.txt"), b"first version\n").unwrap();
    up.launch();
    up.create_dir("docs", &docs, serde_json::json!([]));
    up.wait_visible("docs/note.txt");
    let via = up.mount.join("docs/note.txt");

    // An editor's save: a new file renamed over the old one while a reader holds it open.
    let mut old = std::fs::File::open(&via).unwrap();
    let tmp = docs.join(".note.txt.swp");
    std::fs::write(&tmp, b"second version, longer\n").unwrap();
    std::fs::rename(&tmp, docs.join("note.txt")).unwrap();
    wait_for("the new size in the mount", Duration::from_secs(60), || {
        (std::fs::metadata(&via).ok()?.len() == 23).then_some(())
    });
    // The old handle reads the file it opened, never a mix.
    let mut got = Vec::new();
    old.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"first version\n");
    // A new open beside it reads the new version, or (the kernel holds the old file as this
    // inode's passthrough backing) is refused with EBUSY; never the old bytes, never EIO.
    match std::fs::read(&via) {
        Ok(bytes) => assert_eq!(bytes, b"second version, longer\n"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EBUSY), "{e}"),
    }
    // Once the old handle is closed, the new version opens.
    drop(old);
    wait_for("the new version through the mount", Duration::from_secs(60), || {
        (std::fs::read(&via).ok()? == b"second version, longer\n").then_some(())
    });
    up.stop();
}

#[test]
fn a_stale_mount_is_cleaned_and_mount_problems_are_clear_errors() {
    let mut up = MountedUp::new("");
    let docs = up.node.watched.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("f.txt"), b"f").unwrap();
    up.launch();
    up.create_dir("docs", &docs, serde_json::json!([]));
    up.wait_visible("docs/f.txt");

    // agent_status reports the mount; an unmount from outside the agent shows as degraded.
    wait_for("the mount in agent_status", Duration::from_secs(60), || {
        up.mount_status().filter(|m| m.starts_with(&format!("mounted at {}", up.mount.display())))
    });
    run(Command::new("umount").arg(&up.mount));
    wait_for("the outside unmount in agent_status", Duration::from_secs(60), || {
        up.mount_status().filter(|m| m.contains("unmounted from outside the agent"))
    });
    up.stop();
    up.launch();
    up.wait_visible("docs/f.txt");

    // SIGKILL leaves a dead mount behind; the next start detaches it and mounts again.
    up.kill();
    let e = std::fs::read_dir(up.mount.join("docs")).map(drop).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "a stale mount: {e}");
    up.launch();
    up.wait_visible("docs/f.txt");
    assert_eq!(std::fs::read(up.mount.join("docs/f.txt")).unwrap(), b"f");
    up.stop();

    // A non-empty mount point: a clear error, exit status non-zero, nothing hidden.
    std::fs::write(up.mount.join("mine.txt"), b"keep").unwrap();
    let (code, stderr) = run_up_expecting_failure(&up, &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains(&format!("mount point {}: is not empty", up.mount.display())), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert_eq!(std::fs::read(up.mount.join("mine.txt")).unwrap(), b"keep");
    std::fs::remove_file(up.mount.join("mine.txt")).unwrap();

    // No FUSE device (a private mount namespace where /dev is an empty tmpfs).
    let (code, stderr) = run_up_expecting_failure(&up, &["unshare", "-m", "sh", "-c"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("FUSE is not available: /dev/fuse"), "{stderr}");
    assert!(stderr.contains("apt install fuse3"), "says what to do: {stderr}");
    assert!(!is_mounted(&up.mount));
}

/// Runs `mosaicfs up` for the node to completion (it must fail); `wrap` (`unshare -m sh -c`)
/// runs it with an empty `/dev`. Returns the exit code and stderr.
fn run_up_expecting_failure(up: &MountedUp, wrap: &[&str]) -> (i32, String) {
    let bin = mosaicfs_bin();
    let mut cmd = if wrap.is_empty() {
        let mut c = Command::new(&bin);
        c.args(["up", "--listen", "127.0.0.1:0", "--config"]).arg(&up.node.config);
        c
    } else {
        let mut c = Command::new(wrap[0]);
        c.args(&wrap[1..]).arg(format!(
            "mount -t tmpfs tmpfs /dev && exec {} up --listen 127.0.0.1:0 --config {}",
            bin.display(),
            up.node.config.display()
        ));
        c
    };
    cmd.env("MOSAICFS_LOG", "warn")
        .env("MOSAICFS_SECRETS", "file")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn(&mut cmd);
    let mut stderr = p.child.as_mut().and_then(|c| c.stderr.take()).expect("stderr");
    let status = p.wait(Duration::from_secs(60));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    (status.code().unwrap_or(-1), text)
}
