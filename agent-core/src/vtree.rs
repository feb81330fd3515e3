//! The virtual tree: which directory a path names and what it lists (ARCHITECTURE §13.1). The
//! same code answers `GET /api/vfs` on the hub and `readdir` on every node, from whatever store
//! it is given (the hub's, or an agent's replica, which holds every node's files).
//!
//! A path is either a `virtual_directory` document, or a directory *below* one that a
//! `prefix_replace` mount synthesizes from the source's own subdirectories (`/docs/2024` when
//! `/docs` mounts `~/Documents`, which has `2024/`). Listing `(directory, sub-path)`:
//!
//! 1. the steps enforced by ancestors and each mount's own steps are compiled once
//!    ([`crate::rules`]);
//! 2. per mount, the candidates come from the store by `(source.node_id, prefix)`: with
//!    `prefix_replace`, the active files directly in `source.export_path/sub` and the
//!    subdirectories below it that hold active files; with `flatten` (only at the directory
//!    itself), every active file below the source, each under its own name;
//! 3. each candidate file runs through the pipeline (its path below the source prefix is what
//!    `glob` and `regex` see); a file reached through two mounts is listed once;
//! 4. name collisions: `last_write_wins` keeps the newest mtime, capped at the hub's receipt of
//!    the revision + 5 min (then the smaller file id);
//!    `suffix_node_id` keeps the oldest under the plain name and renames the others
//!    `stem (node_id).ext` (then `stem (node_id 2).ext`, ...). If the colliding files come from
//!    mounts with different policies, `suffix_node_id` applies. A file named like a directory
//!    is renamed the same way;
//! 5. child `virtual_directory` documents are subdirectories (a synthesized subdirectory of the
//!    same name is hidden behind them).
//!
//! Deleted files are never listed (the store's candidate queries return active files only). A
//! file's inode is its document's, so the same file in two directories is one inode; a
//! virtual directory's inode is its document's; a synthesized directory's inode is derived from
//! its directory's id and sub-path (SHA-256, in the 1000+ range), stable across restarts.
//! Synthesized subdirectories appear when the source holds active files below them, whether or
//! not the steps admit any (evaluating every file below each subdirectory on every listing
//! would make `ls` of a big tree cost the whole tree).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::doc::{ConflictPolicy, DocType, Document, MountEntry, StepResult, Strategy, VirtualDirectoryDoc};
use crate::ids::{AnnotationId, DirId, FileId, Inode, Label, NodeId, PluginName, Seq};
use crate::labels::LabelIndex;
use crate::rules::{Facts, Inherited, Pipeline, RuleError};
use crate::store::{ListedFile, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum VtreeError {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// One entry of a listing.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Entry {
    pub name: String,
    pub inode: Inode,
    #[serde(flatten)]
    pub kind: EntryKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKind {
    /// A virtual directory (`dir_id`) or a subdirectory a mount synthesizes (no `dir_id`).
    Directory {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dir_id: Option<DirId>,
    },
    File {
        file_id: FileId,
        node_id: NodeId,
        export_path: String,
        size: u64,
        mtime: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime: Option<String>,
    },
}

/// A directory's entries, sorted by name.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Listing {
    pub path: String,
    pub inode: Inode,
    /// The `virtual_directory` the listing comes from and its revision (the readdir cache key).
    pub dir_id: DirId,
    pub dir_rev: crate::ids::Rev,
    pub entries: Vec<Entry>,
    /// The store's committed seq when the listing was made (what [`changed_since`] compares).
    #[serde(skip)]
    pub seq: Seq,
}

/// Every `virtual_directory`, by path.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    dirs: BTreeMap<String, VirtualDirectoryDoc>,
}

fn parent_of(path: &str) -> Option<&str> {
    match path.rfind('/') {
        None => None,
        Some(0) if path.len() > 1 => Some("/"),
        Some(0) => None,
        Some(i) => Some(&path[..i]),
    }
}

fn join(dir: &str, name: &str) -> String {
    crate::doc::join_path(dir, name)
}

impl Tree {
    pub fn load(store: &Store) -> Result<Tree, StoreError> {
        let docs = store.list_type(DocType::VirtualDirectory)?;
        Ok(Tree::from_docs(docs.into_iter().filter_map(|d| match d {
            Document::VirtualDirectory(v) => Some(v),
            _ => None,
        })))
    }

    pub fn from_docs(docs: impl IntoIterator<Item = VirtualDirectoryDoc>) -> Tree {
        Tree { dirs: docs.into_iter().map(|d| (d.virtual_path.clone(), d)).collect() }
    }

    pub fn get(&self, path: &str) -> Option<&VirtualDirectoryDoc> {
        self.dirs.get(path)
    }

    /// Every directory, by path.
    pub fn dirs(&self) -> impl Iterator<Item = &VirtualDirectoryDoc> {
        self.dirs.values()
    }

    /// The directories above `path`, root first.
    pub fn ancestors(&self, path: &str) -> Vec<&VirtualDirectoryDoc> {
        let mut out = Vec::new();
        let mut cur = parent_of(path);
        while let Some(p) = cur {
            if let Some(d) = self.dirs.get(p) {
                out.push(d);
            }
            cur = parent_of(p);
        }
        out.reverse();
        out
    }

    /// The directories directly below `path`.
    pub fn children(&self, path: &str) -> Vec<&VirtualDirectoryDoc> {
        self.dirs
            .values()
            .filter(|d| d.virtual_path != "/" && parent_of(&d.virtual_path) == Some(path))
            .collect()
    }

    /// The directory document a path lies in, and the sub-path below it (empty for the
    /// directory itself). `None` when no document covers the path.
    pub fn resolve<'a>(&'a self, path: &str) -> Option<(&'a VirtualDirectoryDoc, String)> {
        let mut cur = Some(path);
        while let Some(p) = cur {
            if let Some(d) = self.dirs.get(p) {
                let sub = path[p.len()..].trim_start_matches('/').to_owned();
                return Some((d, sub));
            }
            cur = parent_of(p);
        }
        None
    }
}

/// Changes after this many are not inspected one by one: the listing is simply remade.
const MAX_CHANGES_INSPECTED: usize = 10_000;

/// Whether anything committed after `since` may change listings of `dir` (the readdir cache's
/// invalidation from the changes feed): a file document below one of its mounts' sources, any
/// label, annotation or virtual-directory document (labels and ancestors' steps reach
/// everywhere). Other changes — heartbeats, other nodes' files — leave the listing valid.
pub fn changed_since(store: &Store, dir: &VirtualDirectoryDoc, since: Seq) -> Result<bool, StoreError> {
    if store.committed_seq() <= since {
        return Ok(false);
    }
    let changes = store.changes_since(since, MAX_CHANGES_INSPECTED + 1)?;
    if changes.len() > MAX_CHANGES_INSPECTED {
        return Ok(true);
    }
    for change in changes {
        match change.id.prefix() {
            "label_file" | "label_rule" | "annotation" | "dir" => return Ok(true),
            "file" => {
                // A tombstone carries no path: it may have been listed.
                let Ok(doc) = serde_json::from_str::<serde_json::Value>(&change.body) else {
                    return Ok(true);
                };
                let node = doc.pointer("/source/node_id").and_then(|v| v.as_str());
                let path = doc.pointer("/source/export_path").and_then(|v| v.as_str());
                let (Some(node), Some(path)) = (node, path) else { return Ok(true) };
                let below_a_mount = dir.mounts.iter().any(|m| {
                    m.source.node_id.as_str() == node && below(path, &m.source.export_path).is_some()
                });
                if below_a_mount {
                    return Ok(true);
                }
            }
            _ => {}
        }
    }
    Ok(false)
}

/// A synthesized directory's inode: stable, derived from its directory and sub-path.
pub fn synthesized_inode(dir: &DirId, sub: &str) -> Inode {
    let digest = Sha256::digest(format!("{dir}\0{sub}").as_bytes());
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&digest[..8]);
    let span = (i64::MAX as u64) - 1000;
    Inode(1000 + u64::from_le_bytes(raw) % span)
}

/// A candidate file as the steps see it.
struct Candidate<'a> {
    file: &'a ListedFile,
    rel_path: &'a str,
    labels: &'a LabelIndex,
    store: &'a Store,
}

impl Facts for Candidate<'_> {
    fn rel_path(&self) -> &str {
        self.rel_path
    }
    fn node_id(&self) -> &NodeId {
        &self.file.node_id
    }
    fn size(&self) -> u64 {
        self.file.size
    }
    fn mtime(&self) -> DateTime<Utc> {
        self.file.mtime
    }
    fn mime(&self) -> Option<&str> {
        self.file.mime.as_deref()
    }
    fn has_label(&self, label: &Label) -> bool {
        let f = self.file;
        self.labels.has_label(&f.id, &f.node_id, &f.export_path, label)
    }
    fn annotation(&self, plugin: &PluginName) -> Option<serde_json::Value> {
        match self.store.get(&AnnotationId::for_file(&self.file.id, plugin).into()) {
            Ok(Some(Document::Annotation(a))) if a.status == crate::doc::AnnotationStatus::Ok => Some(a.data),
            _ => None,
        }
    }
}

/// The path of `export_path` below `prefix` (no leading `/`), if it is below.
fn below<'a>(export_path: &'a str, prefix: &str) -> Option<&'a str> {
    let base = prefix.trim_end_matches('/');
    export_path.strip_prefix(base)?.strip_prefix('/')
}

/// A file admitted by a mount, before names are settled.
struct Admitted {
    file: ListedFile,
    policy: ConflictPolicy,
}

/// Lists `path`: `Ok(None)` when it names nothing (no directory, no synthesized subdirectory).
pub fn list(
    store: &Store,
    tree: &Tree,
    labels: &LabelIndex,
    path: &str,
    now: DateTime<Utc>,
) -> Result<Option<Listing>, VtreeError> {
    let seq = store.committed_seq();
    let Some((dir, sub)) = tree.resolve(path) else { return Ok(None) };
    let listing = evaluate(store, tree, labels, dir, &dir.mounts, &sub, now)?;
    if !sub.is_empty() && listing.entries.is_empty() && !synthesized_exists(store, &dir.mounts, &sub)? {
        return Ok(None);
    }
    Ok(Some(Listing { path: path.to_owned(), seq, ..listing }))
}

/// Lists `path` as if its directory had `mounts` (the preview of an unsaved edit). The path
/// need not exist yet; its ancestors' enforced steps apply.
pub fn preview(
    store: &Store,
    tree: &Tree,
    labels: &LabelIndex,
    path: &str,
    mounts: &[MountEntry],
    now: DateTime<Utc>,
) -> Result<Listing, VtreeError> {
    let draft = match tree.get(path) {
        Some(d) => VirtualDirectoryDoc { mounts: mounts.to_vec(), ..d.clone() },
        None => VirtualDirectoryDoc {
            id: DirId::generate(),
            rev: crate::ids::Rev::NONE,
            virtual_path: path.to_owned(),
            name: path.rsplit('/').next().unwrap_or("").to_owned(),
            inode: Inode(0),
            system: false,
            enforce_steps_on_children: false,
            mounts: mounts.to_vec(),
            created_at: now,
            updated_at: now,
        },
    };
    let listing = evaluate(store, tree, labels, &draft, mounts, "", now)?;
    Ok(Listing { path: path.to_owned(), ..listing })
}

/// Whether some `prefix_replace` mount's source has active files below `sub`.
fn synthesized_exists(store: &Store, mounts: &[MountEntry], sub: &str) -> Result<bool, StoreError> {
    for m in mounts.iter().filter(|m| m.strategy == Strategy::PrefixReplace) {
        let base = join(&m.source.export_path, sub);
        if store.count_files_under(&m.source.node_id, &base)?.0 > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

fn evaluate(
    store: &Store,
    tree: &Tree,
    labels: &LabelIndex,
    dir: &VirtualDirectoryDoc,
    mounts: &[MountEntry],
    sub: &str,
    now: DateTime<Utc>,
) -> Result<Listing, VtreeError> {
    let inherited = Inherited::compile(&tree.ancestors(&dir.virtual_path))?;
    let mut admitted: Vec<Admitted> = Vec::new();
    let mut seen: HashSet<FileId> = HashSet::new();
    let mut subdirs: BTreeMap<String, Inode> = BTreeMap::new();
    for (i, mount) in mounts.iter().enumerate() {
        let pipeline = Pipeline::compile(&inherited, mount, i)?;
        let source = &mount.source;
        let files = match mount.strategy {
            Strategy::PrefixReplace => {
                let base =
                    if sub.is_empty() { source.export_path.clone() } else { join(&source.export_path, sub) };
                for parent in store.active_parents_under(&source.node_id, &base)? {
                    if let Some(first) = below(&parent, &base).and_then(|r| r.split('/').next()) {
                        let sub_path =
                            if sub.is_empty() { first.to_owned() } else { format!("{sub}/{first}") };
                        subdirs
                            .entry(first.to_owned())
                            .or_insert_with(|| synthesized_inode(&dir.id, &sub_path));
                    }
                }
                store.files_in_dir(&source.node_id, &base)?
            }
            Strategy::Flatten if sub.is_empty() => store.files_under(&source.node_id, &source.export_path)?,
            Strategy::Flatten => Vec::new(),
        };
        for file in files {
            let Some(rel) = below(&file.export_path, &source.export_path) else { continue };
            let candidate = Candidate { file: &file, rel_path: rel, labels, store };
            // A file admitted by two mounts is listed once (one mount sees each file once).
            if pipeline.evaluate(&candidate, now) == StepResult::Include
                && (mounts.len() == 1 || seen.insert(file.id.clone()))
            {
                admitted.push(Admitted { file, policy: mount.conflict_policy });
            }
        }
    }
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    if sub.is_empty() {
        for child in tree.children(&dir.virtual_path) {
            let kind = EntryKind::Directory { dir_id: Some(child.id.clone()) };
            entries.insert(child.name.clone(), Entry { name: child.name.clone(), inode: child.inode, kind });
        }
    }
    for (name, inode) in subdirs {
        entries.entry(name.clone()).or_insert(Entry {
            name,
            inode,
            kind: EntryKind::Directory { dir_id: None },
        });
    }
    let files = settle_names(admitted, &entries);
    let mut all: Vec<Entry> = entries.into_values().chain(files).collect();
    // Names are unique (settle_names avoids the directories' names); one sort orders them.
    all.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let inode = if sub.is_empty() { dir.inode } else { synthesized_inode(&dir.id, sub) };
    Ok(Listing {
        path: String::new(),
        inode,
        dir_id: dir.id.clone(),
        dir_rev: dir.rev,
        entries: all,
        seq: store.committed_seq(),
    })
}

fn file_entry(name: String, f: ListedFile) -> Entry {
    Entry {
        name,
        inode: f.inode,
        kind: EntryKind::File {
            file_id: f.id,
            node_id: f.node_id,
            export_path: f.export_path,
            size: f.size,
            mtime: f.mtime,
            mime: f.mime,
        },
    }
}

/// `stem (suffix).ext`, or `name (suffix)` without an extension (a leading dot is not one).
fn suffixed(name: &str, suffix: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} ({suffix}){}", &name[..i], &name[i..]),
        _ => format!("{name} ({suffix})"),
    }
}

/// Applies the conflict policies: the file entries, with unique names that avoid `taken`.
fn settle_names(mut admitted: Vec<Admitted>, taken: &BTreeMap<String, Entry>) -> Vec<Entry> {
    // Candidates mostly arrive sorted by name (one query per source directory): a stable sort
    // is then one pass, and equal names sit together.
    admitted.sort_by(|a, b| a.file.name.cmp(&b.file.name));
    let clash = admitted.windows(2).any(|w| w[0].file.name == w[1].file.name)
        || (!taken.is_empty() && admitted.iter().any(|a| taken.contains_key(&a.file.name)));
    if !clash {
        // The common case: every file keeps its own name.
        return admitted
            .into_iter()
            .map(|mut a| {
                let name = std::mem::take(&mut a.file.name);
                file_entry(name, a.file)
            })
            .collect();
    }
    let plain: Vec<String> = {
        let mut names: Vec<String> = admitted.iter().map(|a| a.file.name.clone()).collect();
        names.dedup();
        names
    };
    // A name is in use when a directory has it, a group keeps it plainly, or a suffix made it.
    let mut suffixed_names: HashSet<String> = HashSet::new();
    let in_use = |name: &str, suffixed_names: &HashSet<String>| {
        taken.contains_key(name)
            || plain.binary_search_by(|p| p.as_str().cmp(name)).is_ok()
            || suffixed_names.contains(name)
    };
    let mut out = Vec::with_capacity(admitted.len());
    let mut rest = admitted.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while rest.peek().is_some_and(|n| n.file.name == group[0].file.name) {
            group.extend(rest.next());
        }
        let name = group[0].file.name.clone();
        if group.len() == 1 && !taken.contains_key(&name) {
            let a = group.pop().expect("one member");
            out.push(file_entry(name, a.file));
            continue;
        }
        let lww = group.iter().all(|a| a.policy == ConflictPolicy::LastWriteWins);
        if lww {
            // Newest first; the others are hidden.
            // The newest by `min(mtime, hub receipt + 5 min)`: a far-future mtime cannot win
            // forever (mtimes are kept as pushed: odd clocks exist).
            group.sort_by(|a, b| {
                b.file.ordering_time().cmp(&a.file.ordering_time()).then_with(|| a.file.id.cmp(&b.file.id))
            });
            group.truncate(1);
        } else {
            // Oldest keeps the plain name.
            group.sort_by(|a, b| a.file.mtime.cmp(&b.file.mtime).then_with(|| a.file.id.cmp(&b.file.id)));
        }
        let mut plain_free = !taken.contains_key(&name);
        for a in group {
            if plain_free {
                plain_free = false;
                out.push(file_entry(name.clone(), a.file));
                continue;
            }
            let node = a.file.node_id.to_string();
            let mut candidate = suffixed(&name, &node);
            let mut n = 2;
            while in_use(&candidate, &suffixed_names) {
                candidate = suffixed(&name, &format!("{node} {n}"));
                n += 1;
            }
            suffixed_names.insert(candidate.clone());
            out.push(file_entry(candidate, a.file));
        }
    }
    out
}

pub mod cache;
#[cfg(test)]
mod tests;

pub use cache::{Listings, ReaddirCache, TreeCache};
