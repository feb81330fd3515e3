//! Backing files registered for FUSE passthrough. The kernel allows one backing file per inode
//! at a time: an open of an inode that names a different backing file than the inode's other
//! open handles fails (EBUSY, seen as EIO). So every open of an inode shares the registration
//! of the first one, until the last of its handles is released.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::sync::Mutex;

use fuser::{BackingId, FileHandle, FopenFlags, ReplyOpen};

#[derive(Default)]
pub struct Backings {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Per inode: its registration and how many handles use it.
    by_ino: HashMap<u64, (BackingId, usize)>,
    /// Which inode each passthrough handle is of.
    ino_of: HashMap<u64, u64>,
}

impl Backings {
    /// Answers the open of handle `fh` of `ino` in passthrough: with the inode's registration,
    /// or a new one of `file` (under the lock, so two first opens of one inode cannot register
    /// two files). If registering fails, the reply comes back for a plain open.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        file: &File,
        reply: ReplyOpen,
    ) -> Result<(), (ReplyOpen, std::io::Error)> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *inner;
        let entry = match inner.by_ino.entry(ino) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => match reply.open_backing(file) {
                Ok(id) => v.insert((id, 0)),
                Err(e) => return Err((reply, e)),
            },
        };
        entry.1 += 1;
        reply.opened_passthrough(FileHandle(fh), FopenFlags::empty(), &entry.0);
        inner.ino_of.insert(fh, ino);
        Ok(())
    }

    /// Handle `fh` is closed; the inode's registration goes with its last handle.
    pub fn release(&self, fh: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(ino) = inner.ino_of.remove(&fh) else { return };
        if let Some((_, opens)) = inner.by_ino.get_mut(&ino) {
            *opens -= 1;
            if *opens == 0 {
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
