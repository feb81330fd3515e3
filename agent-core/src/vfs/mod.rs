//! The virtual filesystem core (ARCHITECTURE §13.4): `lookup`, `getattr`, `opendir`/`readdir`,
//! `open`/`read`/`release` and `statfs` over the virtual tree ([`crate::vtree`]) and this node's
//! replica. No FUSE types: the adapter in [`crate::mount`] is a few lines per callback around
//! these calls, and tests drive the core directly.
//!
//! Every call is blocking (store queries, disk reads): the adapter runs them on worker threads.
//!
//! - **Inodes** come from documents: a file's is its `file` document's, a virtual directory's is
//!   its document's, a synthesized subdirectory's is derived from its directory's id and
//!   sub-path. The root is 1. So inodes are stable across restarts and one file listed in two
//!   directories is one inode. The table here only remembers what each inode the kernel holds
//!   names (a directory's virtual path, a file's id), counted by lookups and dropped on
//!   `forget`.
//! - **Attributes** of a file are read from its document at each `getattr` (size and mtime as
//!   indexed from the source); a deleted document is `NotFound`.
//! - **Directories** are read from a snapshot taken at `opendir`, so a listing that changes
//!   while `ls` pages through it never repeats or skips an entry.
//! - **Reads**: tier 1, a file of this node, is opened through a [`LocalSource`] (the one safe
//!   open under the watch paths, [`crate::content::open`]). Tiers 2 and 3, another node's file
//!   reachable through a network mount or a sync folder of this node ([`network`]), are opened
//!   there. Otherwise tier 4 fetches it from its owner through the cache ([`crate::remote`]);
//!   without a control plane (no tokens) the open fails with [`VfsError::NoWayToFetch`].
//! - **Changes**: when a file's document changes, [`Vfs::file_changed`] sets aside the open
//!   remote handles of its old version and names the inode whose kernel cache must go.
//! - The API speaks [`Inode`] and [`HandleId`], never two `u64`s that could be swapped.

mod network;
mod nodes;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::content::FileVersion;
use crate::doc::{Document, FileDoc, FileStatus};
use crate::ids::{FileId, NodeDocId, NodeId};
use crate::remote::RemoteError;
use crate::store::{Store, StoreError};
use crate::vtree::{EntryKind, Listing, Listings, VtreeError};

pub use crate::content::{Content, LocalSource, OpenError, WatchedFiles};
pub use crate::ids::Inode;
use nodes::{Node, Nodes};

pub const ROOT: Inode = Inode::ROOT;

/// An open file or directory snapshot, as the kernel holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HandleId(pub u64);

/// Where an open file's bytes come from (ARCHITECTURE §13.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Tier 1: a file of this node, from its source.
    Local,
    /// Tiers 2 and 3: another node's file through a network mount or sync folder here.
    NetworkMount,
    /// Tier 4: another node's file through the cache, fetched from its owner.
    Remote,
}

#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("not a directory")]
    NotDir,
    #[error("is a directory")]
    IsDir,
    #[error("the MosaicFS mount is read-only")]
    ReadOnly,
    #[error("unknown handle")]
    BadHandle,
    /// The file's path resolves outside every watch path.
    #[error("refused: {0}")]
    Refused(String),
    /// The file lives on another node and this one has no way to fetch it (no control plane
    /// to ask for tokens, no network mount that serves it).
    #[error("file {file} lives on node {node}, and this node has no way to fetch it")]
    NoWayToFetch { file: FileId, node: NodeId },
    /// Tier 4 failed (its error says why and which error number a reader gets).
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A directory's steps do not compile (cannot happen for documents the hub accepted).
    #[error("rule: {0}")]
    Rule(String),
}

impl From<VtreeError> for VfsError {
    fn from(e: VtreeError) -> Self {
        match e {
            VtreeError::Store(s) => VfsError::Store(s),
            VtreeError::Rule(r) => VfsError::Rule(r.to_string()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

/// What `stat` shows (permissions are the adapter's: everything is read-only).
#[derive(Clone, Debug, PartialEq)]
pub struct Attr {
    pub ino: Inode,
    pub kind: Kind,
    pub size: u64,
    pub mtime: SystemTime,
}

/// One entry of a directory snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct DirEntry {
    pub ino: Inode,
    pub kind: Kind,
    pub name: String,
}

/// A directory as it was at `opendir`.
pub struct DirSnapshot {
    ino: Inode,
    parent: Inode,
    listing: Option<Arc<Listing>>,
}

impl DirSnapshot {
    /// The entry at `index`: `.`, `..`, then the listing in name order.
    pub fn entry(&self, index: usize) -> Option<DirEntry> {
        match index {
            0 => Some(DirEntry { ino: self.ino, kind: Kind::Directory, name: ".".into() }),
            1 => Some(DirEntry { ino: self.parent, kind: Kind::Directory, name: "..".into() }),
            i => {
                let e = self.listing.as_ref()?.entries.get(i - 2)?;
                Some(DirEntry { ino: e.inode, kind: kind_of(&e.kind), name: e.name.clone() })
            }
        }
    }
}

/// An open file.
pub struct Opened {
    pub fh: HandleId,
    pub tier: Tier,
    pub content: Arc<dyn Content>,
}

/// What `statfs` reports: the indexed files and their bytes (nothing is free: read-only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsStats {
    pub files: u64,
    pub bytes: u64,
}

/// `statfs` is a full count of the files table: recomputed at most this often.
const STATS_MAX_AGE: Duration = Duration::from_secs(30);

/// An open file: where it reads from, and its content.
type OpenFile = (Tier, Arc<dyn Content>);

pub struct Vfs {
    store: Store,
    node_id: NodeId,
    listings: Arc<Listings>,
    local: Arc<dyn LocalSource>,
    remote: Option<Arc<crate::remote::Remote>>,
    nodes: Nodes,
    /// Guarded: open files by handle, with where they read from.
    files: Mutex<HashMap<HandleId, OpenFile>>,
    /// Guarded: directory snapshots by handle.
    dirs: Mutex<HashMap<HandleId, Arc<DirSnapshot>>>,
    next_handle: AtomicU64,
    /// The time directories show (they have no mtime of their own).
    started: SystemTime,
    stats: Mutex<Option<(Instant, FsStats)>>,
}

fn kind_of(kind: &EntryKind) -> Kind {
    match kind {
        EntryKind::Directory { .. } => Kind::Directory,
        EntryKind::File { .. } => Kind::File,
    }
}

impl Vfs {
    pub fn new(store: Store, node_id: NodeId, listings: Arc<Listings>, local: Arc<dyn LocalSource>) -> Vfs {
        Vfs {
            store,
            node_id,
            listings,
            local,
            remote: None,
            nodes: Nodes::new(),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_handle: AtomicU64::new(1),
            started: SystemTime::now(),
            stats: Mutex::new(None),
        }
    }

    /// Reads other nodes' files through `remote` (tier 4) when no network mount serves them.
    pub fn with_remote(mut self, remote: Arc<crate::remote::Remote>) -> Vfs {
        self.remote = Some(remote);
        self
    }

    fn dir_attr(&self, ino: Inode) -> Attr {
        Attr { ino, kind: Kind::Directory, size: 0, mtime: self.started }
    }

    /// The listing of a directory path (`None` when it names nothing; the root itself is always
    /// there, listed empty before its document has arrived).
    fn listing(&self, path: &str) -> Result<Option<Arc<Listing>>, VfsError> {
        Ok(self.listings.list(&self.store, path)?)
    }

    fn dir_path(&self, ino: Inode) -> Result<String, VfsError> {
        match self.nodes.get(ino) {
            Some(Node::Dir { path, .. }) => Ok(path),
            Some(Node::File { .. }) => Err(VfsError::NotDir),
            None => Err(VfsError::NotFound),
        }
    }

    /// The entry `name` in directory `parent`; counts one kernel reference to it.
    pub fn lookup(&self, parent: Inode, name: &str) -> Result<Attr, VfsError> {
        let parent_path = self.dir_path(parent)?;
        let listing = self.listing(&parent_path)?.ok_or(VfsError::NotFound)?;
        let i = listing
            .entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .map_err(|_| VfsError::NotFound)?;
        let entry = &listing.entries[i];
        let ino = entry.inode;
        match &entry.kind {
            EntryKind::Directory { .. } => {
                let path = crate::doc::join_path(&parent_path, name);
                self.nodes.remember(ino, Node::Dir { path, parent });
                Ok(self.dir_attr(ino))
            }
            EntryKind::File { file_id, size, mtime, .. } => {
                self.nodes.remember(ino, Node::File { file_id: file_id.clone() });
                Ok(Attr { ino, kind: Kind::File, size: *size, mtime: (*mtime).into() })
            }
        }
    }

    /// The kernel dropped `count` references to `ino`.
    pub fn forget(&self, ino: Inode, count: u64) {
        self.nodes.forget(ino, count);
    }

    fn file_doc(&self, file_id: &FileId) -> Result<crate::doc::FileDoc, VfsError> {
        match self.store.get(&file_id.clone().into())? {
            Some(Document::File(f)) if f.status == FileStatus::Active => Ok(f),
            _ => Err(VfsError::NotFound),
        }
    }

    pub fn getattr(&self, ino: Inode) -> Result<Attr, VfsError> {
        match self.nodes.get(ino).ok_or(VfsError::NotFound)? {
            Node::Dir { .. } => Ok(self.dir_attr(ino)),
            Node::File { file_id } => {
                let f = self.file_doc(&file_id)?;
                Ok(Attr { ino, kind: Kind::File, size: f.size, mtime: f.mtime.into() })
            }
        }
    }

    fn handle(&self) -> HandleId {
        HandleId(self.next_handle.fetch_add(1, Ordering::Relaxed))
    }

    /// Takes a snapshot of a directory for `readdir`.
    pub fn opendir(&self, ino: Inode) -> Result<HandleId, VfsError> {
        let (path, parent) = match self.nodes.get(ino).ok_or(VfsError::NotFound)? {
            Node::Dir { path, parent } => (path, parent),
            Node::File { .. } => return Err(VfsError::NotDir),
        };
        let listing = self.listing(&path)?;
        if listing.is_none() && ino != ROOT {
            return Err(VfsError::NotFound);
        }
        let fh = self.handle();
        let snapshot = Arc::new(DirSnapshot { ino, parent, listing });
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, snapshot);
        Ok(fh)
    }

    pub fn readdir(&self, fh: HandleId) -> Result<Arc<DirSnapshot>, VfsError> {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).get(&fh).cloned().ok_or(VfsError::BadHandle)
    }

    pub fn releasedir(&self, fh: HandleId) {
        self.dirs.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
    }

    /// Where opening `ino` would read from (a store read; for the adapter to pick a worker
    /// pool, so that local reads never queue behind remote ones).
    pub fn tier_of(&self, ino: Inode) -> Tier {
        let Some(Node::File { file_id }) = self.nodes.get(ino) else { return Tier::Local };
        match self.file_doc(&file_id) {
            Ok(f) if f.source.node_id != self.node_id => Tier::Remote,
            _ => Tier::Local,
        }
    }

    /// Opens a file for reading (`write` access is refused: the mount is read-only).
    pub fn open(&self, ino: Inode, write: bool) -> Result<Opened, VfsError> {
        let file_id = match self.nodes.get(ino).ok_or(VfsError::NotFound)? {
            Node::File { file_id } => file_id,
            Node::Dir { .. } => return Err(VfsError::IsDir),
        };
        if write {
            return Err(VfsError::ReadOnly);
        }
        let f = self.file_doc(&file_id)?;
        let (tier, content): (Tier, Arc<dyn Content>) = if f.source.node_id == self.node_id {
            (Tier::Local, self.open_local(&f)?)
        } else if let Some(c) = self.open_through_network_mount(&f)? {
            (Tier::NetworkMount, c)
        } else if let Some(remote) = &self.remote {
            (Tier::Remote, Arc::from(remote.open(&f)?))
        } else {
            tracing::warn!(
                operation = "vfs.open",
                file_id = %f.id,
                node_id = %f.source.node_id,
                path = %f.source.export_path,
                "file lives on another node, no network mount serves it, and this node has no control plane to fetch it through"
            );
            return Err(VfsError::NoWayToFetch { file: f.id.clone(), node: f.source.node_id.clone() });
        };
        let fh = self.handle();
        self.files.lock().unwrap_or_else(|p| p.into_inner()).insert(fh, (tier, content.clone()));
        Ok(Opened { fh, tier, content })
    }

    /// Tier 1: the file lives here.
    fn open_local(&self, f: &FileDoc) -> Result<Arc<dyn Content>, VfsError> {
        match self.local.open(&f.source.export_path) {
            Ok(c) => Ok(Arc::from(c)),
            Err(OpenError::Gone(_)) => Err(VfsError::NotFound),
            Err(e @ OpenError::Escapes { .. }) => {
                tracing::warn!(operation = "vfs.open", file_id = %f.id, error = %e, "read refused");
                Err(VfsError::Refused(e.to_string()))
            }
            Err(OpenError::Io { path, source }) => {
                tracing::warn!(operation = "vfs.open", file_id = %f.id, path, error = %source, "cannot open");
                Err(VfsError::Io(source))
            }
        }
    }

    /// Tiers 2 and 3: another node's file through a network mount or sync folder of this node.
    fn open_through_network_mount(&self, f: &FileDoc) -> Result<Option<Arc<dyn Content>>, VfsError> {
        let mounts = match self.store.get(&NodeDocId::for_node(&self.node_id).into())? {
            Some(Document::Node(n)) => n.network_mounts,
            _ => Vec::new(),
        };
        let (file, skipped) = network::open(&mounts, f);
        for s in &skipped {
            tracing::info!(
                operation = "vfs.open",
                file_id = %f.id,
                mount_id = %s.mount_id,
                reason = %s.reason,
                "network mount passed over"
            );
        }
        Ok(file.map(|file| Arc::new(file) as Arc<dyn Content>))
    }

    /// Reads into `buf` at `offset`: fills it, short only at the end of the file.
    pub fn read(&self, fh: HandleId, offset: u64, buf: &mut [u8]) -> Result<usize, VfsError> {
        let (_, content) = self
            .files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fh)
            .cloned()
            .ok_or(VfsError::BadHandle)?;
        Ok(content.read_at(buf, offset)?)
    }

    /// Where an open file reads from (`None` for an unknown handle).
    pub fn handle_tier(&self, fh: HandleId) -> Option<Tier> {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).get(&fh).map(|(t, _)| *t)
    }

    pub fn release(&self, fh: HandleId) {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).remove(&fh);
    }

    /// Files and bytes indexed (recomputed at most every 30 s).
    pub fn statfs(&self) -> Result<FsStats, VfsError> {
        if let Some((at, stats)) = *self.stats.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < STATS_MAX_AGE {
                return Ok(stats);
            }
        }
        let s = self.store.stats()?;
        let stats = FsStats { files: s.files_active, bytes: s.bytes_active };
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), stats));
        Ok(stats)
    }

    /// Whether a change of `file`'s document matters here now: the kernel holds its inode, or
    /// a remote handle of it is open (cheap: no store read).
    pub fn watches(&self, file: &FileId) -> bool {
        self.nodes.inode_of(file).is_some() || self.remote.as_ref().is_some_and(|r| r.has_open(file))
    }

    /// `doc` is the new state of a file: open remote handles of another version are set aside
    /// (they serve nothing more), and the inode the kernel holds for it, if any, is returned
    /// for its cached pages to be dropped.
    pub fn file_changed(&self, doc: &FileDoc) -> Option<Inode> {
        if let Some(remote) = &self.remote {
            // A deleted file's handles match no version.
            let now = match doc.status {
                FileStatus::Active => FileVersion::of_doc(doc),
                FileStatus::Deleted => FileVersion { size: u64::MAX, mtime_ns: i64::MIN },
            };
            let n = remote.superseded(&doc.id, now);
            if n > 0 {
                tracing::info!(operation = "vfs.change", file_id = %doc.id, handles = n, "open handles of the old version set aside");
            }
        }
        self.nodes.inode_of(&doc.id)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Inodes the kernel holds (with the root).
    pub fn known_inodes(&self) -> usize {
        self.nodes.len()
    }

    /// Open files and directory snapshots (for tests and status).
    pub fn open_handles(&self) -> (usize, usize) {
        (
            self.files.lock().unwrap_or_else(|p| p.into_inner()).len(),
            self.dirs.lock().unwrap_or_else(|p| p.into_inner()).len(),
        )
    }
}
