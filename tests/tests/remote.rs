//! Remote files through the mount (issue 7): a `mosaicfs server` hub, agent A on 127.0.0.2
//! owning the files, agent B on 127.0.0.3 with the virtual tree mounted, reading A's files
//! through its transfer server (TLS, pinned) and its cache. Every wait has a generous deadline;
//! nothing is timed. Reads run on a thread so that a hang fails the test instead of blocking it.

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mosaicfs_tests::cluster::{Agent, Hub, FAST_AGENT};
use mosaicfs_tests::mounted::is_mounted;
use mosaicfs_tests::wait_for;
use sha2::{Digest, Sha256};

const MIB: u64 = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(120);

struct Pair {
    _hub_dir: tempfile::TempDir,
    hub: Hub,
    a: Agent,
    b: Agent,
    mount: PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(p) = self.a.proc.as_ref() {
            p.signal(libc::SIGCONT);
        }
        self.b.kill();
        self.a.kill();
        self.hub.kill();
        if is_mounted(&self.mount) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount).status();
        }
    }
}

/// Hub, A and B joined; `write_sources` fills A's watch path before A starts (so its first
/// crawl indexes everything); B's `[cache]` section is `b_cache`. Returns once B's mount shows
/// every file of A under `/remote`.
fn pair(b_cache: &str, a_env: &[(&str, &str)], write_sources: impl FnOnce(&Path)) -> Pair {
    let hub_dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(hub_dir.path(), 30);
    let mut a =
        Agent::join(&hub, "127.0.0.2", &format!("{FAST_AGENT}[transfer]\nlisten = \"127.0.0.2:0\"\n"));
    let mut b = Agent::join(&hub, "127.0.0.3", "");
    let mount = b.node.tmp.path().join("mnt");
    let mut text = std::fs::read_to_string(&b.node.config).unwrap();
    text.push_str(&format!(
        "{FAST_AGENT}[transfer]\nlisten = \"127.0.0.3:0\"\n\
         [vfs]\nmount_point = {:?}\nreaddir_ttl_ms = 500\nattr_ttl_ms = 200\n[cache]\n{b_cache}\n",
        mount.display().to_string()
    ));
    std::fs::write(&b.node.config, text).unwrap();
    write_sources(&a.node.watched);
    a.start_with_env(a_env);
    b.start();
    hub.create_dir("remote", &a.node_id, &a.node.watched);
    let names: Vec<String> = std::fs::read_dir(&a.node.watched)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let pair = Pair { _hub_dir: hub_dir, hub, a, b, mount };
    wait_for("B's mount", DEADLINE, || is_mounted(&pair.mount).then_some(()));
    for name in names {
        let src = std::fs::metadata(pair.a.node.watched.join(&name)).unwrap().len();
        let path = pair.mount.join("remote").join(&name);
        wait_for(&format!("{} in B's mount", path.display()), DEADLINE, || {
            std::fs::metadata(&path).ok().filter(|m| m.len() == src).map(|_| ())
        });
    }
    pair
}

/// Deterministic bytes: a pseudo-random MiB, each copy stamped with its index.
fn write_pattern(path: &Path, size: u64, seed: u64) {
    fill_pattern(&std::fs::File::create(path).unwrap(), size, seed);
}

/// [`write_pattern`] over an existing file of `size` bytes, without truncating it first.
fn overwrite_pattern(path: &Path, size: u64, seed: u64) {
    fill_pattern(&std::fs::OpenOptions::new().write(true).open(path).unwrap(), size, seed);
}

fn fill_pattern(f: &std::fs::File, size: u64, seed: u64) {
    let mut block = vec![0u8; MIB as usize];
    let mut x = seed | 1;
    for b in block.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut at = 0u64;
    while at < size {
        block[..8].copy_from_slice(&at.to_le_bytes());
        let n = (size - at).min(MIB) as usize;
        f.write_all_at(&block[..n], at).unwrap();
        at += n as u64;
    }
}

fn sha256_of(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

/// Runs `f` on a thread; a read that never returns fails the test instead of hanging it.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("{what} did not return within {DEADLINE:?}: a hang"))
}

fn pread(path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// A row of B's `cache/index.db`: mode, allocated bytes, block-map intervals.
type CacheRow = (String, u64, Vec<(u64, u64)>);

/// B's cache entry of A's file `name`.
fn cache_entry(p: &Pair, name: &str) -> Option<CacheRow> {
    let export_path = p.a.node.watched.join(name);
    let key = hex(&Sha256::digest(format!("{}::{}", p.a.node_id, export_path.display())));
    let conn = rusqlite::Connection::open_with_flags(
        p.b.node.data.join("cache/index.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .ok()?;
    conn.busy_timeout(Duration::from_secs(10)).ok()?;
    conn.query_row("SELECT mode, cached_bytes, block_map FROM entries WHERE key = ?1", [key], |r| {
        let map: Option<Vec<u8>> = r.get(2)?;
        let intervals = map
            .unwrap_or_default()
            .chunks_exact(16)
            .map(|c| {
                let n = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
                (n(&c[..8]), n(&c[8..]))
            })
            .collect();
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, intervals))
    })
    .ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes allocated on disk by B's cached files (what the cap limits).
fn cache_allocated(p: &Pair) -> u64 {
    fn walk(dir: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
        entries
            .flatten()
            .map(|e| {
                let m = e.metadata().unwrap();
                if m.is_dir() {
                    walk(&e.path())
                } else {
                    m.blocks() * 512
                }
            })
            .sum()
    }
    let cache = p.b.node.data.join("cache");
    walk(&cache.join("files")) + walk(&cache.join("blocks")) + walk(&cache.join("tmp"))
}

/// Asserts `r` failed with EIO.
fn assert_eio(r: std::io::Result<Vec<u8>>, what: &str) {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EIO) => {}
        Err(e) => panic!("{what}: EIO expected, got {e}"),
        Ok(v) => panic!("{what}: EIO expected, read {} bytes", v.len()),
    }
}

#[test]
fn remote_files_read_through_the_mount_match_their_source_and_the_cache_keeps_its_cap() {
    let sizes: [(&str, u64); 5] = [
        ("empty.bin", 0),
        ("one.bin", 1),
        ("under.bin", 50 * MIB - 1),
        ("over.bin", 50 * MIB + 1),
        ("big.bin", 300_000_000),
    ];
    let cap = 64 * MIB;
    let p = pair("max_mib = 64\nmin_free_mib = 0\n", &[], |dir| {
        for (i, (name, size)) in sizes.iter().enumerate() {
            write_pattern(&dir.join(name), *size, i as u64 + 7);
        }
        // 2 GiB, sparse but for its last 8 MiB.
        let huge = std::fs::File::create(dir.join("huge.bin")).unwrap();
        huge.set_len(2 << 30).unwrap();
        drop(huge);
        let tail = dir.join("tail.tmp");
        write_pattern(&tail, 8 * MIB, 99);
        let bytes = std::fs::read(&tail).unwrap();
        std::fs::remove_file(&tail).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("huge.bin"))
            .unwrap()
            .write_all_at(&bytes, (2 << 30) - 8 * MIB)
            .unwrap();
    });
    let remote = p.mount.join("remote");

    // Bytes through B's mount equal A's source; the cache stays under its cap throughout
    // (3x the cap is read: 400 MB).
    for (name, size) in sizes {
        let (src, via) = (p.a.node.watched.join(name), remote.join(name));
        let got = within(name, move || sha256_of(&via)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, sha256_of(&src).unwrap(), "{name} ({size} bytes) through the mount");
        let used = cache_allocated(&p);
        assert!(used <= cap, "after {name}: cache holds {used} bytes, cap {cap}");
        let entry = cache_entry(&p, name).map(|(mode, _, _)| mode);
        match size {
            0 => assert_eq!(entry, None, "nothing to cache"),
            s if s < 50 * MIB => assert_eq!(entry.as_deref(), Some("full"), "{name} is cached whole"),
            s if s <= cap => {
                assert_eq!(entry.as_deref(), Some("full"), "{name}: all ranges present: promoted")
            }
            _ => assert_eq!(entry.as_deref(), Some("block"), "{name}: larger than the cap, partly cached"),
        }
    }

    // 64 KiB near the end of a 2 GiB file: only nearby bytes are fetched.
    let offset = (2u64 << 30) - 3 * MIB / 2 + 12_345;
    let via = remote.join("huge.bin");
    let got = within("64 KiB of huge.bin", move || pread(&via, offset, 64 << 10)).unwrap();
    assert_eq!(got, pread(&p.a.node.watched.join("huge.bin"), offset, 64 << 10).unwrap());
    let (mode, _, intervals) = cache_entry(&p, "huge.bin").expect("huge.bin has a cache entry");
    assert_eq!(mode, "block");
    let present: u64 = intervals.iter().map(|(s, e)| e - s).sum();
    assert!(present <= 2 * MIB, "fetched {present} bytes for a 64 KiB read: {intervals:?}");
    assert!(
        intervals.iter().all(|&(s, _)| s >= (2 << 30) - 4 * MIB),
        "only blocks near the read: {intervals:?}"
    );

    // The owner stops answering mid-read (SIGSTOP: connections hang, nothing is refused):
    // the read fails with EIO after the bounded retries instead of hanging.
    p.a.proc.as_ref().unwrap().signal(libc::SIGSTOP);
    let via = remote.join("huge.bin");
    let r = within("a read from a stopped owner", move || pread(&via, 1 << 30, 64 << 10));
    assert_eio(r, "a read from a stopped owner");
    p.a.proc.as_ref().unwrap().signal(libc::SIGCONT);
}

#[test]
fn a_flipped_byte_is_detected_never_cached_and_the_read_retried() {
    // A flips one byte in each of its next four responses.
    let p = pair("full_file_threshold_mib = 50\n", &[("MOSAICFS_FAULT_FLIP_BYTES", "4")], |dir| {
        write_pattern(&dir.join("small.bin"), 100_000, 3);
        write_pattern(&dir.join("large.bin"), 60 * MIB, 4);
    });
    let remote = p.mount.join("remote");
    let (small_src, large_src) = (p.a.node.watched.join("small.bin"), p.a.node.watched.join("large.bin"));

    // Whole file: three corrupt answers in a row exhaust the attempts: EIO, nothing cached.
    let via = remote.join("small.bin");
    let r = within("small.bin, corrupt", move || std::fs::read(via));
    assert_eio(r, "3 corrupt answers");
    assert!(cache_entry(&p, "small.bin").is_none(), "a corrupt download is never cached");
    assert_eq!(cache_allocated(&p), 0, "nor left in tmp/");

    // A range: the fourth (last) corrupt answer is detected and the retry gets good bytes.
    let via = remote.join("large.bin");
    let got = within("large.bin range", move || pread(&via, 10 * MIB + 7, 64 << 10)).unwrap();
    assert_eq!(got, pread(&large_src, 10 * MIB + 7, 64 << 10).unwrap());
    let (_, _, intervals) = cache_entry(&p, "large.bin").expect("the good range is cached");
    assert!(intervals.iter().all(|&(s, e)| e - s <= 2 * MIB), "{intervals:?}");

    // The faults are spent: the whole file now arrives intact and is cached.
    let via = remote.join("small.bin");
    let got = within("small.bin, intact", move || std::fs::read(via)).unwrap();
    assert_eq!(got, std::fs::read(&small_src).unwrap());
    assert_eq!(cache_entry(&p, "small.bin").expect("cached now").0, "full");

    // B counted the four failed attempts (every one a digest mismatch: nothing else failed).
    wait_for("B's count of four failed attempts", DEADLINE, || {
        (counter(&p.b, "cache", "failed_attempts")? == 4).then_some(())
    });
}

/// The message of subsystem `name` in `agent`'s own `agent_status` document, once written.
fn subsystem_message(agent: &Agent, name: &str) -> Option<String> {
    let conn =
        rusqlite::Connection::open_with_flags(agent.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let body: String = conn
        .query_row("SELECT body FROM docs WHERE id = ?1", [format!("status::{}", agent.node_id)], |r| {
            r.get(0)
        })
        .ok()?;
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    doc.pointer(&format!("/subsystems/{name}/message"))?.as_str().map(str::to_owned)
}

/// A counter of subsystem `name` in `agent`'s own `agent_status` document, once written.
fn counter(agent: &Agent, name: &str, key: &str) -> Option<u64> {
    let conn =
        rusqlite::Connection::open_with_flags(agent.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    let body: String = conn
        .query_row("SELECT body FROM docs WHERE id = ?1", [format!("status::{}", agent.node_id)], |r| {
            r.get(0)
        })
        .ok()?;
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    doc.pointer(&format!("/subsystems/{name}/counters/{key}"))?.as_u64()
}

#[test]
fn concurrent_readers_of_the_same_missing_data_share_one_fetch() {
    let p = pair("", &[], |dir| {
        write_pattern(&dir.join("whole.bin"), 20 * MIB, 5);
        write_pattern(&dir.join("ranges.bin"), 80 * MIB, 6);
    });
    let remote = p.mount.join("remote");
    let read_together = |name: &str, offset: u64, len: usize| {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let readers: Vec<_> = (0..6)
            .map(|_| {
                let (barrier, path) = (barrier.clone(), remote.join(name));
                std::thread::spawn(move || {
                    barrier.wait();
                    pread(&path, offset, len)
                })
            })
            .collect();
        let want = pread(&p.a.node.watched.join(name), offset, len).unwrap();
        for r in readers {
            assert_eq!(r.join().unwrap().unwrap(), want, "{name}");
        }
    };

    // Six readers open a small file at once: one download.
    read_together("whole.bin", 0, 20 * MIB as usize);
    // Six readers of the same 64 KiB of a large file: one range request starting there.
    read_together("ranges.bin", 40 * MIB, 64 << 10);

    // Counted by each side itself: B fetched the file once and the range once; A sent two
    // responses (no more, once both counts are in).
    wait_for("B's counts of what it fetched", DEADLINE, || {
        let whole = counter(&p.b, "cache", "fetched_whole_files")?;
        let ranges = counter(&p.b, "cache", "fetched_ranges")?;
        (whole == 1 && ranges == 1).then_some(())
    });
    assert_eq!(counter(&p.b, "cache", "fetched_whole_bytes"), Some(20 * MIB), "one download of whole.bin");
    assert_eq!(
        counter(&p.b, "cache", "fetched_range_bytes"),
        Some(64 << 10),
        "one request for the shared range"
    );
    wait_for("A's count of what it sent", DEADLINE, || {
        (counter(&p.a, "transfer", "sent_responses")? == 2).then_some(())
    });

    // agent_status says what each side does: A serves, B's cache holds the two files.
    wait_for("A's transfer status", DEADLINE, || {
        subsystem_message(&p.a, "transfer").filter(|m| m.starts_with("serving files at https://127.0.0.2:"))
    });
    wait_for("B's cache status", DEADLINE, || {
        subsystem_message(&p.b, "cache").filter(|m| m.starts_with("2 files, "))
    });
    assert_eq!(counter(&p.a, "transfer", "sent_bytes"), Some(20 * MIB + (64 << 10)));
}

#[test]
fn ffprobe_and_a_seeking_viewer_read_a_remote_video_by_ranges() {
    // Everything over 1 MiB is read in block mode here.
    let p = pair("full_file_threshold_mib = 1\n", &[], |dir| {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "60"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-b:v", "2M"])
            .arg(dir.join("film.mp4"))
            .output()
            .expect("ffmpeg (installer/install-deps.sh test installs it)");
        assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    });
    let film = p.mount.join("remote/film.mp4");
    let size = std::fs::metadata(p.a.node.watched.join("film.mp4")).unwrap().len();

    let path = film.clone();
    let probe = within("ffprobe", move || {
        std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"])
            .arg(&path)
            .output()
            .unwrap()
    });
    assert!(probe.status.success(), "ffprobe: {}", String::from_utf8_lossy(&probe.stderr));
    let duration: f64 = String::from_utf8_lossy(&probe.stdout).trim().parse().unwrap();
    assert!((duration - 60.0).abs() < 0.5, "duration {duration}");
    let (mode, _, intervals) = cache_entry(&p, "film.mp4").expect("a block-mode entry");
    let present: u64 = intervals.iter().map(|(s, e)| e - s).sum();
    assert_eq!(mode, "block");
    assert!(present < size / 2, "ffprobe fetched {present} of {size} bytes: {intervals:?}");

    // A viewer that jumps around: each seek decodes two seconds.
    for at in ["5", "30", "12", "45", "55", "20"] {
        let path = film.clone();
        let out = within("ffmpeg seek", move || {
            std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-ss", at, "-i"])
                .arg(&path)
                .args(["-t", "2", "-f", "null", "-"])
                .output()
                .unwrap()
        });
        assert!(out.status.success(), "ffmpeg -ss {at}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (_, _, intervals) = cache_entry(&p, "film.mp4").expect("still a block-mode entry");
    assert!(intervals.len() < 20, "{} intervals after the viewing: {intervals:?}", intervals.len());
}

#[test]
fn the_files_api_serves_another_nodes_file_through_its_transfer_server() {
    // A's first response has a flipped byte.
    let mut p = pair("", &[("MOSAICFS_FAULT_FLIP_BYTES", "1")], |dir| {
        write_pattern(&dir.join("doc.bin"), 3 * MIB + 17, 8)
    });
    let src = std::fs::read(p.a.node.watched.join("doc.bin")).unwrap();
    let conn = rusqlite::Connection::open_with_flags(p.hub.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let id: String = conn
        .query_row(
            "SELECT id FROM docs WHERE type = 'file' AND json_extract(body, '$.name') = 'doc.bin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = mosaicfs_tests::https_client(DEADLINE);
    let url = format!("{}/api/files/{id}/content", p.hub.url());
    let token =
        rt.block_on(mosaicfs_tests::login(&client, &p.hub.url(), &p.hub.admin_key, &p.hub.admin_secret));
    let get = |range: Option<&str>| {
        let mut req = client.get(&url).bearer_auth(&token);
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        rt.block_on(async {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let content_range = resp.headers().get("content-range").map(|v| v.to_str().unwrap().to_owned());
            (status, content_range, resp.bytes().await.unwrap().to_vec())
        })
    };

    // The corrupt answer is cut short: the client sees a broken transfer, never a complete file.
    let corrupt =
        rt.block_on(async { client.get(&url).bearer_auth(&token).send().await.unwrap().bytes().await });
    assert!(corrupt.is_err(), "a body whose digest did not match must not end cleanly");

    let (status, _, body) = get(None);
    assert_eq!(status, 200);
    assert!(body == src, "the whole file, byte for byte");
    let (status, content_range, body) = get(Some("bytes=1000000-1000999"));
    assert_eq!(
        (status, content_range.as_deref()),
        (206, Some(format!("bytes 1000000-1000999/{}", src.len()).as_str()))
    );
    assert_eq!(body, &src[1_000_000..1_001_000]);
    let (status, _, body) = get(Some("bytes=-10"));
    assert_eq!((status, body.as_slice()), (206, &src[src.len() - 10..]));
    let (status, _, _) = get(Some(&format!("bytes={}-", src.len())));
    assert_eq!(status, 416);

    // The owner gone: a 503 that names it, with a JSON body.
    p.a.kill();
    let (status, _, body) = get(None);
    assert_eq!(status, 503);
    let err: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "node_unavailable");
    assert!(err["error"]["message"].as_str().unwrap().contains(&p.a.node_id), "{err}");
}

#[test]
fn a_file_read_in_more_than_a_thousand_scattered_places_is_promoted_to_a_full_download() {
    const SPOTS: u64 = 1000;
    const STEP: u64 = MIB + 4096; // far enough apart that no two reads look sequential
    let size = (SPOTS + 2) * STEP;
    let p = pair("", &[], |dir| {
        let f = std::fs::File::create(dir.join("scattered.bin")).unwrap();
        f.set_len(size).unwrap();
        for i in 0..=SPOTS + 1 {
            f.write_all_at(&(i + 1).to_le_bytes(), i * STEP).unwrap();
        }
    });
    let via = p.mount.join("remote/scattered.bin");
    let spots = within("1,000 scattered reads", move || {
        let f = std::fs::File::open(&via).unwrap();
        let mut buf = [0u8; 8];
        for i in 0..SPOTS {
            f.read_exact_at(&mut buf, i * STEP).unwrap();
            assert_eq!(u64::from_le_bytes(buf), i + 1, "spot {i}");
        }
        f
    });
    let (mode, _, intervals) = cache_entry(&p, "scattered.bin").expect("a block-mode entry");
    assert_eq!((mode.as_str(), intervals.len()), ("block", SPOTS as usize), "one interval per spot");

    // One more: past 1,000 intervals the file is fetched whole.
    let mut buf = [0u8; 8];
    let f = within("the 1,001st read", move || {
        spots.read_exact_at(&mut buf, SPOTS * STEP).unwrap();
        assert_eq!(u64::from_le_bytes(buf), SPOTS + 1);
        spots
    });
    let (mode, cached, _) = cache_entry(&p, "scattered.bin").expect("the entry");
    assert_eq!(mode, "full", "promoted");
    drop(f);
    let src = p.a.node.watched.join("scattered.bin");
    let via = p.mount.join("remote/scattered.bin");
    assert_eq!(within("hash", move || sha256_of(&via)).unwrap(), sha256_of(&src).unwrap());
    assert!(cached >= size, "the whole file is in the cache: {cached} bytes of {size}");
}

#[test]
fn local_reads_never_wait_behind_remote_reads_of_a_stopped_owner() {
    let p = pair("", &[], |dir| {
        for i in 0..8 {
            write_pattern(&dir.join(format!("r{i}.bin")), MIB, 40 + i);
        }
    });
    std::fs::write(p.b.node.watched.join("mine.txt"), b"local bytes").unwrap();
    p.hub.create_dir("local", &p.b.node_id, &p.b.node.watched);
    let mine = p.mount.join("local/mine.txt");
    wait_for("B's own file in its mount", DEADLINE, || std::fs::metadata(&mine).ok().map(|_| ()));

    // A stops answering; eight readers of eight of its files hang in B's remote pool (more
    // readers than it has workers).
    p.a.proc.as_ref().unwrap().signal(libc::SIGSTOP);
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let readers: Vec<_> = (0..8)
        .map(|i| {
            let (path, finished) = (p.mount.join(format!("remote/r{i}.bin")), finished.clone());
            std::thread::spawn(move || {
                let r = std::fs::read(path);
                finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                r
            })
        })
        .collect();
    // The remote reads are under way: their first attempts have failed (after the idle limit)
    // and they are retrying.
    wait_for("B's first failed attempts", DEADLINE, || {
        (counter(&p.b, "cache", "failed_attempts")? > 0).then_some(())
    });
    let local = within("a local read", move || std::fs::read(mine)).unwrap();
    assert_eq!(local, b"local bytes");
    assert_eq!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the local read answered while every remote read was still waiting on the stopped owner"
    );
    p.a.proc.as_ref().unwrap().signal(libc::SIGCONT);
    for r in readers {
        let _ = r.join(); // EIO or the bytes, depending on when A woke up
    }
}

#[test]
fn a_file_rewritten_in_place_is_read_whole_in_one_version_never_a_mix() {
    // Above the threshold: read by ranges, partly cached when it changes.
    let size = 64 * MIB;
    let p = pair("full_file_threshold_mib = 8\n", &[], |dir| write_pattern(&dir.join("vm.img"), size, 1));
    let (src, via) = (p.a.node.watched.join("vm.img"), p.mount.join("remote/vm.img"));
    let a_node: agent_core::ids::NodeId = p.a.node_id.parse().unwrap();
    // B's document of the file says which version B believes in.
    let b_version = |b: &Agent| -> Option<(u64, i64)> {
        let store = agent_core::store::Store::open(&b.db()).ok()?;
        let f = store.file_by_path(&a_node, src.to_str()?).ok()??;
        Some((f.size, f.mtime.timestamp_nanos_opt()?))
    };
    let chunk = MIB as usize;
    for round in 0..4u64 {
        let old_bytes = std::fs::read(&src).unwrap();
        let before = b_version(&p.b).expect("B knows the file");
        // An old handle reads part of the file: cached ranges of this version.
        let old = std::fs::File::open(&via).unwrap();
        for at in [0u64, 17, 40] {
            let mut buf = vec![0u8; chunk];
            let n = within("old handle, before", {
                let f = old.try_clone().unwrap();
                move || f.read_at(&mut buf, at * MIB).map(|n| (n, buf))
            });
            let (n, buf) = n.unwrap();
            assert_eq!(&buf[..n], &old_bytes[(at * MIB) as usize..(at * MIB) as usize + n]);
        }
        // Rewritten in place at the source (same size, same inode, never truncated, so every
        // version the owner indexes on the way is 64 MiB): a new version.
        overwrite_pattern(&src, size, 100 + round);
        let new_bytes = std::fs::read(&src).unwrap();
        let meta = std::fs::metadata(&src).unwrap();
        let mtime = meta.modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
        let now = (meta.len(), mtime);
        assert_ne!(now, before);
        wait_for("B's document of the new version", DEADLINE, || (b_version(&p.b)? == now).then_some(()));
        // The old handle: every chunk it still returns is the old version's (a short read being
        // what the kernel still had cached before an error), or an error.
        let mut errors = 0;
        for at in 0..size / MIB {
            let f = old.try_clone().unwrap();
            let r = within("old handle, after", move || {
                let mut buf = vec![0u8; chunk];
                f.read_at(&mut buf, at * MIB).map(|n| {
                    buf.truncate(n);
                    buf
                })
            });
            match r {
                Ok(buf) => assert_eq!(
                    buf,
                    old_bytes[(at * MIB) as usize..(at * MIB) as usize + buf.len()],
                    "round {round}, MiB {at}: the old handle returned bytes that are not the old version's"
                ),
                Err(e) => {
                    assert!(matches!(e.raw_os_error(), Some(libc::ESTALE | libc::EIO)), "{e}");
                    errors += 1;
                }
            }
        }
        // Whether the old handle errs depends on how much of the old version read-ahead cached
        // before the change (with fast loopback transfers it may be all of it): what must hold is
        // above — old bytes or an error, never a mix.
        eprintln!("round {round}: the old handle got {errors} errors after the change");
        // A fresh open reads the new version, whole.
        let got = within("fresh open", {
            let via = via.clone();
            move || std::fs::read(via)
        })
        .unwrap();
        assert!(got == new_bytes, "round {round}: a fresh open after the change reads the new version");
    }
}

#[test]
fn an_sqlite_database_updated_in_place_is_queried_in_one_version_or_an_error() {
    let rows = 20_000i64;
    // Everything over 1 MiB by ranges: the database is read page by page through the cache.
    let p = pair("full_file_threshold_mib = 1\n", &[], |dir| {
        let db = rusqlite::Connection::open(dir.join("ledger.sqlite")).unwrap();
        db.execute_batch(
            "PRAGMA journal_mode=DELETE; PRAGMA page_size=4096;
             CREATE TABLE t(id INTEGER PRIMARY KEY, x INTEGER NOT NULL, pad TEXT NOT NULL);",
        )
        .unwrap();
        let tx = db.unchecked_transaction().unwrap();
        for i in 0..rows {
            tx.execute("INSERT INTO t(id, x, pad) VALUES (?1, 0, ?2)", rusqlite::params![i, "p".repeat(200)])
                .unwrap();
        }
        tx.commit().unwrap();
    });
    let src = p.a.node.watched.join("ledger.sqlite");
    let via = p.mount.join("remote/ledger.sqlite");
    // Version k: every x = k, so count = rows and sum = k * rows.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, via) = (stop.clone(), via.clone());
        std::thread::spawn(move || {
            let (mut answers, mut errors) = (Vec::new(), 0u32);
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let uri = format!("file:{}?immutable=1", via.display());
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
                let r = rusqlite::Connection::open_with_flags(&uri, flags).and_then(|c| {
                    c.query_row("SELECT count(*), total(x) FROM t", [], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?))
                    })
                });
                match r {
                    Ok(a) => answers.push(a),
                    Err(_) => errors += 1,
                }
            }
            (answers, errors)
        })
    };
    for k in 1..=6i64 {
        let db = rusqlite::Connection::open(&src).unwrap();
        db.execute("UPDATE t SET x = ?1", [k]).unwrap();
        drop(db);
        let want = (k * rows) as f64;
        let via = via.clone();
        wait_for(&format!("version {k} through B's mount"), DEADLINE, move || {
            let uri = format!("file:{}?immutable=1", via.display());
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI;
            let c = rusqlite::Connection::open_with_flags(&uri, flags).ok()?;
            let sum: f64 = c.query_row("SELECT total(x) FROM t", [], |r| r.get(0)).ok()?;
            (sum == want).then_some(())
        });
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (answers, errors) = reader.join().unwrap();
    assert!(!answers.is_empty(), "the reader got answers ({errors} errors)");
    for (count, sum) in &answers {
        let k = sum / rows as f64;
        assert!(
            *count == rows && k.fract() == 0.0 && (0.0..=6.0).contains(&k),
            "count {count}, sum {sum}: not one version of the database"
        );
    }
}
