//! `fuser::Filesystem` over the VFS core: decode, call the core (on a worker thread when it may
//! wait), encode. Nothing else lives here.
//!
//! - Every request that reaches a worker runs in a `fuse` tracing span with its `op`, `ino` and
//!   the calling `pid`, so whatever it logs says which program asked for what.
//! - Three pools: metadata; data of local files (tiers 1–3); data of other nodes' files (tier
//!   4, which may wait seconds on a slow owner). A local read never queues behind a remote one.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, PollEvents, PollFlags,
    PollNotifier, RenameFlags, ReplyAttr, ReplyBmap, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request,
    TimeOrNow, WriteFlags,
};

use super::backing::Answered;
use super::errno;
use super::pool::Pool;
use super::probes;
use crate::config::VfsConfig;
use crate::vfs::{Attr, HandleId, Inode, Kind, Tier, Vfs, VfsError};

/// Worker threads for metadata calls, for data of local files and for data of remote files.
const META_THREADS: usize = 4;
const LOCAL_DATA_THREADS: usize = 6;
const REMOTE_DATA_THREADS: usize = 6;

thread_local! {
    /// Each data worker reads into its own buffer, allocated once (a read is at most 1 MiB).
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

use super::Passthrough;

/// [`Passthrough`] as stored in an atomic.
const PASSTHROUGH_UNKNOWN: u8 = 0;
const PASSTHROUGH_ON: u8 = 1;
const PASSTHROUGH_OFF: u8 = 2;

/// What the adapter's callbacks and its workers share.
pub struct Shared {
    vfs: Arc<Vfs>,
    meta: Pool,
    local_data: Pool,
    remote_data: Pool,
    ttl: Duration,
    uid: u32,
    gid: u32,
    passthrough: AtomicU8,
    /// Backing files registered for passthrough, one per inode.
    backing: super::backing::Backings,
    /// Cleared when the session ends (an unmount, whoever asked for it).
    serving: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn new(vfs: Arc<Vfs>, options: &VfsConfig) -> std::io::Result<Shared> {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Shared {
            vfs,
            meta: Pool::new("vfs-meta", META_THREADS)?,
            local_data: Pool::new("vfs-data", LOCAL_DATA_THREADS)?,
            remote_data: Pool::new("vfs-remote", REMOTE_DATA_THREADS)?,
            ttl: options.attr_ttl,
            uid,
            gid,
            passthrough: AtomicU8::new(if options.passthrough {
                PASSTHROUGH_UNKNOWN
            } else {
                PASSTHROUGH_OFF
            }),
            backing: Default::default(),
            serving: std::sync::atomic::AtomicBool::new(true),
        })
    }

    pub fn passthrough(&self) -> Passthrough {
        match self.passthrough.load(Ordering::Relaxed) {
            PASSTHROUGH_ON => Passthrough::InUse,
            PASSTHROUGH_OFF => Passthrough::Off,
            _ => Passthrough::NotYetKnown,
        }
    }

    fn passthrough_off(&self, why: &str) {
        if self.passthrough.swap(PASSTHROUGH_OFF, Ordering::Relaxed) != PASSTHROUGH_OFF {
            tracing::info!(
                operation = "mount",
                reason = why,
                "FUSE passthrough not used; reads go through MosaicFS"
            );
        }
    }

    pub fn serving(&self) -> bool {
        self.serving.load(Ordering::Relaxed)
    }

    pub fn shutdown(&self) {
        self.meta.shutdown();
        self.local_data.shutdown();
        self.remote_data.shutdown();
        self.backing.clear();
    }

    /// The pool for data of files read through `tier`.
    fn data_pool(&self, tier: Tier) -> &Pool {
        match tier {
            Tier::Local | Tier::NetworkMount => &self.local_data,
            Tier::Remote => &self.remote_data,
        }
    }

    fn attr(&self, a: &Attr) -> FileAttr {
        let (kind, perm, nlink) = match a.kind {
            Kind::Directory => (FileType::Directory, 0o555, 2),
            Kind::File => (FileType::RegularFile, 0o444, 1),
        };
        FileAttr {
            ino: INodeNo(a.ino.0),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.mtime,
            crtime: a.mtime,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        }
    }
}

fn err(e: &VfsError) -> Errno {
    Errno::from_i32(errno(e))
}

/// Opens `ino` and answers in the io mode its inode allows ([`super::backing`]): through
/// passthrough when the kernel takes the file's descriptor, else with reads coming here.
fn open(s: &Shared, ino: INodeNo, write: bool, reply: ReplyOpen) {
    let opened = match s.vfs.open(Inode(ino.0), write) {
        Ok(o) => o,
        Err(e) => return reply.error(err(&e)),
    };
    if s.passthrough() == Passthrough::Off {
        return reply.opened(FileHandle(opened.fh.0), FopenFlags::empty());
    }
    // Only local files are read in passthrough: a remote file's cache entry is replaced by each
    // new version, and the kernel cannot switch an open inode to another backing file.
    let file = match opened.tier {
        Tier::Local | Tier::NetworkMount => opened.content.file(),
        Tier::Remote => None,
    };
    match s.backing.open(ino.0, opened.fh.0, file, reply) {
        Answered::Passthrough => s.passthrough.store(PASSTHROUGH_ON, Ordering::Relaxed),
        Answered::RegisterFailed(e) => s.passthrough_off(&format!("cannot register a backing file: {e}")),
        Answered::Busy => {
            s.vfs.release(opened.fh);
            tracing::warn!(
                operation = "fuse.open",
                ino = ino.0,
                "this file was replaced at its source while an older copy of it is open through \
                 the mount; it opens again (EBUSY until then) once the older copy is closed"
            );
        }
        Answered::Cached => {}
    }
}

pub struct Adapter {
    shared: Arc<Shared>,
}

impl Adapter {
    pub fn new(shared: Arc<Shared>) -> Adapter {
        Adapter { shared }
    }

    /// Runs `f` on the metadata workers with the shared state.
    fn meta(&self, f: impl FnOnce(&Shared) + Send + 'static) {
        let s = self.shared.clone();
        self.shared.meta.run(move || f(&s));
    }

    /// [`Adapter::meta`] inside the request's span.
    fn meta_in(&self, span: tracing::Span, f: impl FnOnce(&Shared) + Send + 'static) {
        self.meta(move |s| span.in_scope(|| f(s)));
    }

    /// Runs `f` on the data workers of `tier`, inside the request's span.
    fn data_in(&self, tier: Tier, span: tracing::Span, f: impl FnOnce(&Shared) + Send + 'static) {
        let s = self.shared.clone();
        self.shared.data_pool(tier).run(move || span.in_scope(|| f(&s)));
    }
}

/// The span of one FUSE request.
fn span(op: &'static str, req: &Request, ino: u64) -> tracing::Span {
    tracing::info_span!("fuse", op, ino, pid = req.pid())
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // The kernel drops an inode's cached pages when its size or mtime changes (a new version
        // arrived); changes the agent learns of are also pushed (`Mounted`'s change follower).
        let _ = config.add_capabilities(InitFlags::FUSE_AUTO_INVAL_DATA);
        if self.shared.passthrough() == Passthrough::Off {
            return Ok(());
        }
        if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_err() {
            self.shared.passthrough_off("the kernel does not offer passthrough");
        } else if config.set_max_stack_depth(2).is_err() {
            self.shared.passthrough_off("the kernel refused the stacking depth");
        }
        Ok(())
    }

    fn destroy(&mut self) {
        self.shared.serving.store(false, Ordering::Relaxed);
        tracing::info!(operation = "mount", "FUSE session ended");
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(name) = name.to_str().map(str::to_owned) else { return reply.error(Errno::ENOENT) };
        self.meta_in(span("lookup", req, parent.0), move |s| match s.vfs.lookup(Inode(parent.0), &name) {
            Ok(a) => reply.entry(&s.ttl, &s.attr(&a), Generation(0)),
            Err(e) => reply.error(err(&e)),
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.shared.vfs.forget(Inode(ino.0), nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.meta_in(span("getattr", req, ino.0), move |s| match s.vfs.getattr(Inode(ino.0)) {
            Ok(a) => reply.attr(&s.ttl, &s.attr(&a)),
            Err(e) => reply.error(err(&e)),
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.0 & libc::O_ACCMODE != libc::O_RDONLY || flags.0 & libc::O_TRUNC != 0;
        let span = span("open", req, ino.0);
        // Which pool may wait for this open is a store read: a metadata worker looks it up and
        // hands the open to the data pool of its tier.
        let shared = self.shared.clone();
        self.meta_in(span.clone(), move |s| {
            let tier = s.vfs.tier_of(Inode(ino.0));
            s.data_pool(tier).run(move || span.in_scope(|| open(&shared, ino, write, reply)));
        });
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(tier) = self.shared.vfs.handle_tier(HandleId(fh.0)) else {
            return reply.error(Errno::EBADF);
        };
        self.data_in(tier, span("read", req, ino.0), move |s| {
            READ_BUFFER.with(|buf| {
                let mut buf = buf.borrow_mut();
                let size = size as usize;
                if buf.len() < size {
                    buf.resize(size, 0);
                }
                match s.vfs.read(HandleId(fh.0), offset, &mut buf[..size]) {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(e) => reply.error(err(&e)),
                }
            })
        });
    }

    /// Called at every `close`: nothing is buffered (the mount is read-only), so nothing to do.
    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.shared.backing.release(fh.0);
        self.shared.vfs.release(HandleId(fh.0));
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.meta_in(span("opendir", req, ino.0), move |s| match s.vfs.opendir(Inode(ino.0)) {
            Ok(fh) => reply.opened(FileHandle(fh.0), FopenFlags::empty()),
            Err(e) => reply.error(err(&e)),
        });
    }

    fn readdir(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        // The snapshot is in memory: no waiting, answered here.
        let snapshot = match self.shared.vfs.readdir(HandleId(fh.0)) {
            Ok(s) => s,
            Err(e) => return reply.error(err(&e)),
        };
        let mut index = offset as usize;
        while let Some(e) = snapshot.entry(index) {
            let kind = if e.kind == Kind::Directory { FileType::Directory } else { FileType::RegularFile };
            if reply.add(INodeNo(e.ino.0), index as u64 + 1, kind, &e.name) {
                break;
            }
            index += 1;
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.shared.vfs.releasedir(HandleId(fh.0));
        reply.ok();
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.meta_in(span("statfs", req, ino.0), move |s| match s.vfs.statfs() {
            Ok(st) => reply.statfs(st.bytes.div_ceil(4096), 0, 0, st.files, 0, 4096, 255, 4096),
            Err(e) => reply.error(err(&e)),
        });
    }

    // ---- everything that would change the tree: read-only -------------------------------

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, _target: &Path, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(&self, _req: &Request, _ino: INodeNo, _newparent: INodeNo, _newname: &OsStr, reply: ReplyEntry) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    // ---- probes: the answers of a read-only filesystem without xattrs (`probes`) ----------

    fn getxattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, _size: u32, reply: ReplyXattr) {
        reply.error(probes::GETXATTR);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        match probes::listxattr(size) {
            probes::XattrList::Size(n) => reply.size(n),
            probes::XattrList::Data(d) => reply.data(d),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(probes::WRITE);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(probes::WRITE);
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.meta_in(span("access", req, ino.0), move |s| match s.vfs.getattr(Inode(ino.0)) {
            Ok(_) => match probes::access(mask.bits()) {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            },
            Err(e) => reply.error(err(&e)),
        });
    }

    fn readlink(&self, _req: &Request, _ino: INodeNo, reply: ReplyData) {
        reply.error(probes::READLINK);
    }

    /// Nothing is buffered: a sync of a read-only file has nothing to do.
    fn fsync(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn fsyncdir(&self, _req: &Request, _ino: INodeNo, _fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        reply.ok();
    }

    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(probes::IOCTL);
    }

    /// Always readable (the kernel asks only when a program polls a file of the tree).
    fn poll(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        reply.poll(events & (PollEvents::POLLIN | PollEvents::POLLRDNORM));
    }

    fn bmap(&self, _req: &Request, _ino: INodeNo, _blocksize: u32, _idx: u64, reply: ReplyBmap) {
        reply.error(probes::BMAP);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(probes::WRITE);
    }

    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.meta_in(span("lseek", req, ino.0), move |s| match s.vfs.getattr(Inode(ino.0)) {
            Ok(a) => match probes::lseek(a.size, offset, whence) {
                Ok(at) => reply.offset(at),
                Err(e) => reply.error(e),
            },
            Err(e) => reply.error(err(&e)),
        });
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(probes::WRITE);
    }
}
