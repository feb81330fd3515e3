//! The io mode of each inode while FUSE passthrough is in use. The kernel keeps one mode per
//! inode: its open handles are either all in passthrough with the same backing file, or all
//! read through MosaicFS; an open in another mode fails in the kernel with EIO (it refuses even
//! a direct-io open beside passthrough ones). So every open is answered here, under one lock, in
//! the mode its inode allows:
//!
//! - the first open of an inode whose content is a file registers it as the inode's backing;
//!   later opens of the same file share that registration until the last one is released;
//! - an open with a file beside handles read through MosaicFS is read through MosaicFS too;
//! - an open of another file (the source was replaced while an old handle is still open) or of
//!   content without a file, beside passthrough handles, cannot be answered in any mode the
//!   kernel accepts: it is refused with `EBUSY` until the old handles are closed (the caller
//!   says why in the log). Remote files are never opened in passthrough, so this only happens
//!   to a local file replaced under an open handle.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::sync::Mutex;

use fuser::{BackingId, FileHandle, FopenFlags, ReplyOpen};

/// How an open was answered.
#[derive(Debug)]
pub enum Answered {
    Passthrough,
    /// Through MosaicFS, page-cached.
    Cached,
    /// Refused (`EBUSY`): the inode is in passthrough with another file.
    Busy,
    /// The kernel refused the registration; answered page-cached.
    RegisterFailed(std::io::Error),
}

/// A file's identity on its filesystem.
fn identity(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// An inode's mode and how many handles hold it.
enum IoMode {
    Passthrough { id: BackingId, file: Option<(u64, u64)>, handles: usize },
    Cached { handles: usize },
}

#[derive(Default)]
pub struct Backings {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_ino: HashMap<u64, IoMode>,
    /// Which inode each open handle is of.
    ino_of: HashMap<u64, u64>,
}

impl Backings {
    /// Answers the open of handle `fh` of `ino`, whose content is `file` when it has one.
    pub fn open(&self, ino: u64, fh: u64, file: Option<&File>, reply: ReplyOpen) -> Answered {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *inner;
        let this = file.and_then(identity);
        let answered = match (inner.by_ino.entry(ino), file) {
            (Entry::Occupied(mut o), Some(_)) => match o.get_mut() {
                IoMode::Passthrough { id, file, handles } if *file == this && this.is_some() => {
                    *handles += 1;
                    reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), id);
                    Answered::Passthrough
                }
                IoMode::Passthrough { .. } => {
                    reply.error(fuser::Errno::EBUSY);
                    return Answered::Busy;
                }
                IoMode::Cached { handles } => {
                    *handles += 1;
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                    Answered::Cached
                }
            },
            (Entry::Occupied(mut o), None) => match o.get_mut() {
                IoMode::Passthrough { .. } => {
                    reply.error(fuser::Errno::EBUSY);
                    return Answered::Busy;
                }
                IoMode::Cached { handles } => {
                    *handles += 1;
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                    Answered::Cached
                }
            },
            (Entry::Vacant(v), Some(f)) => match reply.open_backing(f) {
                Ok(id) => {
                    reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &id);
                    v.insert(IoMode::Passthrough { id, file: this, handles: 1 });
                    Answered::Passthrough
                }
                Err(e) => {
                    reply.opened(FileHandle(fh), FopenFlags::empty());
                    v.insert(IoMode::Cached { handles: 1 });
                    Answered::RegisterFailed(e)
                }
            },
            (Entry::Vacant(v), None) => {
                reply.opened(FileHandle(fh), FopenFlags::empty());
                v.insert(IoMode::Cached { handles: 1 });
                Answered::Cached
            }
        };
        inner.ino_of.insert(fh, ino);
        answered
    }

    /// Handle `fh` is closed; the inode's mode (and registration) goes with its last handle.
    pub fn release(&self, fh: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ino) = inner.ino_of.remove(&fh) else { return };
        if let Some(mode) = inner.by_ino.get_mut(&ino) {
            let handles = match mode {
                IoMode::Passthrough { handles, .. } | IoMode::Cached { handles } => handles,
            };
            *handles -= 1;
            if *handles == 0 {
                inner.by_ino.remove(&ino);
            }
        }
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.by_ino.clear();
        inner.ino_of.clear();
    }
}
