//! The core without a mount: unit tests, and a reference-model property test that drives it
//! with generated operations (source files created, rewritten, renamed and deleted; virtual
//! directories added, changed and removed) and compares the whole tree it shows — names, kinds,
//! sizes, bytes and inodes — with a model after every step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::strategy::Strategy as _;

use super::*;
use crate::doc::{
    fixtures, ConflictPolicy, FileDoc, MountEntry, MountSource, OnMatch, Step, StepOp, StepResult, Strategy,
    VirtualDirectoryDoc,
};
use crate::ids::{NodeDocId, Rev};
use crate::label_cache::LabelCache;

fn node() -> NodeId {
    "node-here".parse().unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    src: PathBuf,
    store: Store,
    vfs: Vfs,
}

fn fixture(readdir_ttl: Duration) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let store = Store::open_in_memory().unwrap();
    store.put(vdir("/", vec![]).into()).unwrap();
    let listings = Arc::new(Listings::new(LabelCache::default(), readdir_ttl));
    let vfs =
        Vfs::new(store.clone(), node(), listings, Arc::new(WatchedFiles::new(std::slice::from_ref(&src))));
    Fixture { dir, src, store, vfs }
}

fn vdir(path: &str, mounts: Vec<MountEntry>) -> VirtualDirectoryDoc {
    fixtures::new_dir(path, mounts)
}

fn mount_of(prefix: &Path, only_txt: bool) -> MountEntry {
    let steps = if only_txt {
        vec![Step {
            op: StepOp::Glob { pattern: "**/*.txt".into() },
            invert: false,
            on_match: OnMatch::Include,
        }]
    } else {
        vec![]
    };
    MountEntry {
        mount_id: "m".into(),
        source: MountSource { node_id: node(), export_path: prefix.to_str().unwrap().into() },
        steps,
        default_result: if only_txt { StepResult::Exclude } else { StepResult::Include },
        strategy: Strategy::PrefixReplace,
        conflict_policy: ConflictPolicy::LastWriteWins,
    }
}

/// Writes `bytes` at `path` and indexes it as the crawler would (same id and inode when the
/// path is already indexed).
fn write_file(store: &Store, path: &Path, bytes: &[u8]) -> FileDoc {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    let export_path = path.to_str().unwrap();
    let mut f = match store.file_by_path(&node(), export_path).unwrap() {
        Some(existing) => existing,
        None => fixtures::new_file(&node(), export_path),
    };
    f.size = bytes.len() as u64;
    f.mtime = chrono::DateTime::from(std::fs::metadata(path).unwrap().modified().unwrap());
    f.status = FileStatus::Active;
    f.deleted_at = None;
    f.rev = store.put(f.clone().into()).unwrap().rev;
    f
}

fn delete_file(store: &Store, path: &Path) {
    std::fs::remove_file(path).unwrap();
    let mut f = store.file_by_path(&node(), path.to_str().unwrap()).unwrap().unwrap();
    f.status = FileStatus::Deleted;
    f.deleted_at = Some(crate::doc::now());
    store.put(f.into()).unwrap();
}

/// Everything the core shows below the root: path → (kind, inode, size, bytes of files).
type View = BTreeMap<String, (Kind, Inode, u64, Vec<u8>)>;

fn walk(vfs: &Vfs) -> View {
    let mut out = View::new();
    walk_dir(vfs, ROOT, "", &mut out);
    out
}

fn walk_dir(vfs: &Vfs, ino: Inode, path: &str, out: &mut View) {
    let fh = vfs.opendir(ino).unwrap();
    let snapshot = vfs.readdir(fh).unwrap();
    let mut names = Vec::new();
    let mut i = 2;
    while let Some(e) = snapshot.entry(i) {
        names.push(e);
        i += 1;
    }
    vfs.releasedir(fh);
    for e in names {
        let child = format!("{path}/{}", e.name);
        let attr = vfs.lookup(ino, &e.name).unwrap();
        assert_eq!((attr.ino, attr.kind), (e.ino, e.kind), "{child}: lookup agrees with readdir");
        assert_eq!(vfs.getattr(attr.ino).unwrap(), attr, "{child}: getattr agrees with lookup");
        match attr.kind {
            Kind::Directory => {
                out.insert(child.clone(), (Kind::Directory, attr.ino, 0, vec![]));
                walk_dir(vfs, attr.ino, &child, out);
            }
            Kind::File => {
                let opened = vfs.open(attr.ino, false).unwrap();
                let mut bytes = vec![0u8; attr.size as usize + 10];
                let n = vfs.read(opened.fh, 0, &mut bytes).unwrap();
                bytes.truncate(n);
                vfs.release(opened.fh);
                out.insert(child, (Kind::File, attr.ino, attr.size, bytes));
            }
        }
        vfs.forget(attr.ino, 1);
    }
}

#[test]
fn lists_reads_and_refuses_writes() {
    let fx = fixture(Duration::from_secs(60));
    let docs = fx.src.join("docs");
    let a = write_file(&fx.store, &docs.join("a.txt"), b"hello");
    write_file(&fx.store, &docs.join("2024/b.txt"), b"");
    let dir = vdir("/docs", vec![mount_of(&docs, false)]);
    fx.store.put(dir.clone().into()).unwrap();

    let d = fx.vfs.lookup(ROOT, "docs").unwrap();
    assert_eq!((d.ino, d.kind), (dir.inode, Kind::Directory), "a directory's inode is its document's");
    let f = fx.vfs.lookup(d.ino, "a.txt").unwrap();
    assert_eq!((f.ino, f.size, f.kind), (a.inode, 5, Kind::File), "a file's inode is its document's");
    assert_eq!(f.mtime, SystemTime::from(a.mtime));
    let sub = fx.vfs.lookup(d.ino, "2024").unwrap();
    assert_eq!(sub.ino, crate::vtree::synthesized_inode(&dir.id, "2024"));
    assert!(matches!(fx.vfs.lookup(d.ino, "nope"), Err(VfsError::NotFound)));
    assert!(matches!(fx.vfs.lookup(f.ino, "x"), Err(VfsError::NotDir)));
    assert!(matches!(fx.vfs.open(f.ino, true), Err(VfsError::ReadOnly)));
    assert!(matches!(fx.vfs.open(d.ino, false), Err(VfsError::IsDir)));

    let o = fx.vfs.open(f.ino, false).unwrap();
    let read = |offset: u64, size: usize| {
        let mut buf = vec![0u8; size];
        fx.vfs.read(o.fh, offset, &mut buf).map(|n| buf[..n].to_vec())
    };
    assert_eq!(read(1, 3).unwrap(), b"ell");
    assert_eq!(read(4, 100).unwrap(), b"o", "short only at the end");
    assert_eq!(read(10, 100).unwrap(), b"");
    fx.vfs.release(o.fh);
    assert!(matches!(read(0, 1), Err(VfsError::BadHandle)));
    assert_eq!(fx.vfs.open_handles(), (0, 0));

    // The source goes away before the index notices: ENOENT, not a crash.
    std::fs::remove_file(docs.join("a.txt")).unwrap();
    assert!(matches!(fx.vfs.open(f.ino, false), Err(VfsError::NotFound)));
    // The index notices: getattr says it is gone.
    delete_file_doc(&fx.store, &a);
    assert!(matches!(fx.vfs.getattr(f.ino), Err(VfsError::NotFound)));
    let st = fx.vfs.statfs().unwrap();
    assert_eq!(st.files, 1);
}

fn delete_file_doc(store: &Store, f: &FileDoc) {
    let mut f = store.file_by_path(&node(), &f.source.export_path).unwrap().unwrap();
    f.status = FileStatus::Deleted;
    f.deleted_at = Some(crate::doc::now());
    store.put(f.into()).unwrap();
}

#[test]
fn files_of_other_nodes_and_escaping_paths_are_refused() {
    let fx = fixture(Duration::ZERO);
    let docs = fx.src.join("docs");
    write_file(&fx.store, &docs.join("here.txt"), b"x");
    // A file of another node, mounted too.
    let mut remote = fixtures::file("/elsewhere/r.txt");
    remote.rev = Rev::NONE;
    remote.inode = Inode::generate();
    fx.store.put(remote.clone().into()).unwrap();
    let mut m2 = mount_of(Path::new("/elsewhere"), false);
    m2.source.node_id = remote.source.node_id.clone();
    fx.store.put(vdir("/mix", vec![mount_of(&docs, false), m2]).into()).unwrap();
    // A symlink in the watched tree pointing outside it, indexed under its own path.
    let outside = fx.dir.path().join("secret");
    std::fs::write(&outside, b"s").unwrap();
    let link = docs.join("link.txt");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    fx.store.put(fixtures::new_file(&node(), link.to_str().unwrap()).into()).unwrap();

    let mix = fx.vfs.lookup(ROOT, "mix").unwrap();
    let r = fx.vfs.lookup(mix.ino, "r.txt").unwrap();
    assert!(matches!(fx.vfs.open(r.ino, false), Err(VfsError::NoWayToFetch { .. })));
    let l = fx.vfs.lookup(mix.ino, "link.txt").unwrap();
    assert!(matches!(fx.vfs.open(l.ino, false), Err(VfsError::Refused(_))));
    let h = fx.vfs.lookup(mix.ino, "here.txt").unwrap();
    assert!(fx.vfs.open(h.ino, false).is_ok());
}

#[test]
fn a_directory_snapshot_holds_while_the_directory_changes() {
    let fx = fixture(Duration::ZERO);
    let docs = fx.src.join("docs");
    write_file(&fx.store, &docs.join("a"), b"1");
    fx.store.put(vdir("/docs", vec![mount_of(&docs, false)]).into()).unwrap();
    let d = fx.vfs.lookup(ROOT, "docs").unwrap();
    let fh = fx.vfs.opendir(d.ino).unwrap();
    write_file(&fx.store, &docs.join("b"), b"2");
    let snap = fx.vfs.readdir(fh).unwrap();
    assert_eq!(snap.entry(2).map(|e| e.name), Some("a".to_string()));
    assert_eq!(snap.entry(3), None, "b arrived after opendir");
    fx.vfs.releasedir(fh);
    let fh = fx.vfs.opendir(d.ino).unwrap();
    assert_eq!(fx.vfs.readdir(fh).unwrap().entry(3).map(|e| e.name), Some("b".to_string()));
}

#[test]
fn the_root_lists_empty_before_any_directory_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_memory().unwrap();
    let vfs = Vfs::new(
        store,
        node(),
        Arc::new(Listings::new(LabelCache::default(), Duration::ZERO)),
        Arc::new(WatchedFiles::new(&[dir.path().to_owned()])),
    );
    let fh = vfs.opendir(ROOT).unwrap();
    let snap = vfs.readdir(fh).unwrap();
    assert_eq!(snap.entry(0).unwrap().name, ".");
    assert_eq!(snap.entry(1).unwrap().name, "..");
    assert!(snap.entry(2).is_none());
    assert_eq!(vfs.getattr(ROOT).unwrap().kind, Kind::Directory);
}

fn nas() -> NodeId {
    "node-nas".parse().unwrap()
}

/// A file document of the NAS (another node), as replication brings it.
fn nas_file(store: &Store, path: &str, size: u64) {
    let mut f = fixtures::new_file(&nas(), path);
    f.size = size;
    store.put(f.into()).unwrap();
}

fn network_mount(
    id: &str,
    kind: crate::doc::NetworkMountType,
    base: &str,
    local: &Path,
    priority: i32,
) -> crate::doc::NetworkMount {
    crate::doc::NetworkMount {
        mount_id: id.into(),
        mount_type: kind,
        remote_node_id: nas(),
        remote_base_export_path: base.into(),
        local_mount_path: local.to_str().unwrap().into(),
        priority,
    }
}

#[test]
fn another_nodes_files_are_read_through_network_mounts_and_sync_folders() {
    use crate::doc::NetworkMountType::{Cifs, IcloudLocal, Nfs};
    let fx = fixture(Duration::ZERO);
    // Local directories stand in for an SMB share, an NFS mount and an iCloud Drive folder.
    let (smb, nfs, icloud) =
        (fx.dir.path().join("smb"), fx.dir.path().join("nfs"), fx.dir.path().join("icloud"));
    for d in [&smb, &nfs, &icloud] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(smb.join("a.txt"), b"hello").unwrap();
    std::fs::write(nfs.join("a.txt"), b"HELLO").unwrap();
    std::fs::write(smb.join("b.txt"), b"abc").unwrap();
    std::fs::write(nfs.join("b.txt"), b"abcdef").unwrap(); // stale: the index says 3 bytes
    std::fs::write(icloud.join("c.jpg"), b"jpeg").unwrap();
    std::fs::write(fx.dir.path().join("outside"), b"12").unwrap();
    std::os::unix::fs::symlink(fx.dir.path().join("outside"), smb.join("escape.txt")).unwrap();
    for (path, size) in [
        ("/srv/media/a.txt", 5),
        ("/srv/media/b.txt", 3),
        ("/srv/photos/c.jpg", 4),
        ("/srv/media/gone.txt", 1),
        ("/srv/media/escape.txt", 2),
    ] {
        nas_file(&fx.store, path, size);
    }
    let Some(Document::Node(mut me)) = fixtures::all().into_iter().find(|d| matches!(d, Document::Node(_)))
    else {
        panic!("a node fixture")
    };
    me.id = NodeDocId::for_node(&node());
    me.node_id = node();
    me.rev = Rev::NONE;
    me.network_mounts = vec![
        network_mount("smb", Cifs, "/srv/media", &smb, 0),
        network_mount("nfs", Nfs, "/srv/media/", &nfs, 5),
        network_mount("icloud", IcloudLocal, "/srv/photos", &icloud, 99),
    ];
    fx.store.put(me.into()).unwrap();
    let mut mount = mount_of(Path::new("/srv"), false);
    mount.source.node_id = nas();
    fx.store.put(vdir("/nas", vec![mount]).into()).unwrap();

    let read_all = |rel: &str| -> Result<Vec<u8>, VfsError> {
        let mut ino = ROOT;
        for part in rel.split('/') {
            ino = fx.vfs.lookup(ino, part)?.ino;
        }
        let o = fx.vfs.open(ino, false)?;
        let mut buf = vec![0u8; 64];
        let n = fx.vfs.read(o.fh, 0, &mut buf)?;
        fx.vfs.release(o.fh);
        Ok(buf[..n].to_vec())
    };
    assert_eq!(read_all("nas/media/a.txt").unwrap(), b"HELLO", "the NFS mount has the higher priority");
    assert_eq!(read_all("nas/media/b.txt").unwrap(), b"abc", "a stale copy is passed over");
    assert_eq!(read_all("nas/photos/c.jpg").unwrap(), b"jpeg", "tier 3: the sync folder");
    assert!(matches!(read_all("nas/media/gone.txt"), Err(VfsError::NoWayToFetch { .. })), "no mount has it");
    assert!(
        matches!(read_all("nas/media/escape.txt"), Err(VfsError::NoWayToFetch { .. })),
        "escaping symlink"
    );
    // iCloud evicts the photo: only its placeholder is left; the read falls through.
    std::fs::remove_file(icloud.join("c.jpg")).unwrap();
    std::fs::write(icloud.join(".c.jpg.icloud"), b"plist").unwrap();
    assert!(matches!(read_all("nas/photos/c.jpg"), Err(VfsError::NoWayToFetch { .. })));
}

// ---- the reference model ---------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    /// Create or rewrite `src/{source}/[s{sub}/]f{name}.{txt|bin}` with `len` bytes.
    Write {
        source: u8,
        sub: Option<u8>,
        name: u8,
        txt: bool,
        len: u8,
    },
    /// Delete the n-th existing file.
    Delete {
        nth: u8,
    },
    /// Rename the n-th existing file within its directory.
    Rename {
        nth: u8,
        name: u8,
    },
    /// Add or change `/v{slot}` to mount `src/{source}`, all files or only `*.txt`.
    PutDir {
        slot: u8,
        source: u8,
        only_txt: bool,
    },
    RemoveDir {
        slot: u8,
    },
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2u8, proptest::option::of(0..2u8), 0..5u8, any::<bool>(), 0..40u8)
            .prop_map(|(source, sub, name, txt, len)| Op::Write { source, sub, name, txt, len }),
        1 => any::<u8>().prop_map(|nth| Op::Delete { nth }),
        1 => (any::<u8>(), 0..5u8).prop_map(|(nth, name)| Op::Rename { nth, name }),
        2 => (0..3u8, 0..2u8, any::<bool>()).prop_map(|(slot, source, only_txt)| Op::PutDir { slot, source, only_txt }),
        1 => (0..3u8).prop_map(|slot| Op::RemoveDir { slot }),
    ]
}

/// The model: source files (path below `src` → bytes) and directories (slot → source, only_txt).
#[derive(Default)]
struct Model {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeMap<u8, (u8, bool)>,
}

impl Model {
    /// What the tree should show: paths, kinds, sizes and bytes (inodes are checked apart).
    fn view(&self) -> BTreeMap<String, (Kind, Vec<u8>)> {
        let mut out = BTreeMap::new();
        for (slot, (source, only_txt)) in &self.dirs {
            let top = format!("/v{slot}");
            out.insert(top.clone(), (Kind::Directory, vec![]));
            let prefix = format!("{source}/");
            for (path, bytes) in &self.files {
                let Some(rel) = path.strip_prefix(&prefix) else { continue };
                if let Some((sub, _)) = rel.split_once('/') {
                    // Synthesized subdirectories show whenever the source has files below them.
                    out.insert(format!("{top}/{sub}"), (Kind::Directory, vec![]));
                }
                if !only_txt || rel.ends_with(".txt") {
                    out.insert(format!("{top}/{rel}"), (Kind::File, bytes.clone()));
                }
            }
        }
        out
    }
}

fn run_ops(ops: Vec<Op>) {
    let fx = fixture(Duration::from_secs(60));
    let mut model = Model::default();
    let mut dir_docs: BTreeMap<u8, VirtualDirectoryDoc> = BTreeMap::new();
    let mut inodes: BTreeMap<String, Inode> = BTreeMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Write { source, sub, name, txt, len } => {
                let rel = match sub {
                    Some(s) => format!("{source}/s{s}/f{name}.{}", if txt { "txt" } else { "bin" }),
                    None => format!("{source}/f{name}.{}", if txt { "txt" } else { "bin" }),
                };
                let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(step as u8 + 1)).collect();
                write_file(&fx.store, &fx.src.join(&rel), &bytes);
                model.files.insert(rel, bytes);
            }
            Op::Delete { nth } => {
                let Some(rel) = model.files.keys().nth(nth as usize % model.files.len().max(1)).cloned()
                else {
                    continue;
                };
                delete_file(&fx.store, &fx.src.join(&rel));
                model.files.remove(&rel);
            }
            Op::Rename { nth, name } => {
                let Some(rel) = model.files.keys().nth(nth as usize % model.files.len().max(1)).cloned()
                else {
                    continue;
                };
                let (parent, old) = rel.rsplit_once('/').unwrap();
                let new_rel = format!("{parent}/r{name}{}", &old[old.find('.').unwrap()..]);
                if model.files.contains_key(&new_rel) {
                    continue;
                }
                let bytes = model.files.remove(&rel).unwrap();
                delete_file(&fx.store, &fx.src.join(&rel));
                write_file(&fx.store, &fx.src.join(&new_rel), &bytes);
                model.files.insert(new_rel, bytes);
            }
            Op::PutDir { slot, source, only_txt } => {
                let mount = mount_of(&fx.src.join(source.to_string()), only_txt);
                let doc = match dir_docs.get(&slot) {
                    Some(d) => VirtualDirectoryDoc { mounts: vec![mount], ..d.clone() },
                    None => vdir(&format!("/v{slot}"), vec![mount]),
                };
                let rev = fx.store.put(doc.clone().into()).unwrap().rev;
                dir_docs.insert(slot, VirtualDirectoryDoc { rev, ..doc });
                model.dirs.insert(slot, (source, only_txt));
            }
            Op::RemoveDir { slot } => {
                if let Some(d) = dir_docs.remove(&slot) {
                    fx.store.delete(&d.id.clone().into(), d.rev).unwrap();
                    model.dirs.remove(&slot);
                }
            }
        }
        let seen = walk(&fx.vfs);
        let shown: BTreeMap<String, (Kind, Vec<u8>)> =
            seen.iter().map(|(p, (k, _, _, bytes))| (p.clone(), (*k, bytes.clone()))).collect();
        assert_eq!(shown, model.view(), "after step {step}");
        for (path, (kind, ino, size, bytes)) in &seen {
            if *kind == Kind::File {
                assert_eq!(*size as usize, bytes.len(), "{path}: size matches the bytes");
                // A file keeps its inode while it exists, in every directory that shows it.
                let source_rel = path.splitn(3, '/').nth(2).unwrap().to_owned();
                let slot: u8 = path[2..3].parse().unwrap();
                let key = format!("{}/{source_rel}", model.dirs[&slot].0);
                let want =
                    fx.store.file_by_path(&node(), fx.src.join(&key).to_str().unwrap()).unwrap().unwrap();
                assert_eq!(*ino, want.inode, "{path}: the file document's inode");
                if let Some(before) = inodes.insert(key.clone(), *ino) {
                    assert_eq!(before, *ino, "{path}: inode stable");
                }
            } else if let Some(d) = path.strip_prefix("/v").filter(|r| r.len() == 1) {
                let slot: u8 = d.parse().unwrap();
                assert_eq!(*ino, dir_docs[&slot].inode, "{path}: the directory document's inode");
            }
        }
        // Deleted files forget their inode record (a re-created file gets a new document).
        inodes.retain(|k, _| model.files.contains_key(k));
        assert_eq!(fx.vfs.open_handles(), (0, 0), "every handle released");
        assert_eq!(fx.vfs.known_inodes(), 1, "every lookup forgotten");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_tree_matches_the_model_after_every_operation(ops in proptest::collection::vec(op(), 1..30)) {
        run_ops(ops);
    }
}
