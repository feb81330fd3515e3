//! The FUSE adapter (ARCHITECTURE §13.4): [`crate::vfs::Vfs`] served through `fuser`, read-only.
//!
//! - Each callback is a few lines: decode, call the core, encode; [`errno`] is the one mapping
//!   from core errors to error numbers.
//! - Callbacks that may wait (store queries, disk reads) run on worker threads and reply from
//!   there, so the session never stalls: metadata (`lookup`, `getattr`, `opendir`, `statfs`) and
//!   data (`open`, `read`) have separate pools, so even many slow reads leave `ls` answering.
//! - Reads of local files use FUSE passthrough when the kernel offers it (Linux 6.9+, and the
//!   process may register backing files, i.e. root): the kernel then reads the source file
//!   itself. Otherwise `read` calls come here.
//! - Writes of any kind get `EROFS` (the mount is also made read-only).
//! - [`mount`] checks the mount point first: a stale mount left by a crashed run is detached,
//!   a live one or a non-empty directory is refused, and a missing FUSE gets a clear error.

mod adapter;
mod backing;
mod pool;
mod prepare;
mod probes;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::VfsConfig;
use crate::vfs::{Vfs, VfsError};

pub use prepare::{detach, MountError};

/// Whether the kernel reads local files itself (FUSE passthrough).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passthrough {
    /// No file was opened yet (the kernel's answer is known at the first open).
    NotYetKnown,
    InUse,
    /// Switched off (by config, or because the kernel refused it); reads come through the agent.
    Off,
}

/// What the mount is doing (for `agent_status`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountState {
    pub mount_point: PathBuf,
    /// False once the session ended without the agent asking (`fusermount3 -u` by hand).
    pub serving: bool,
    pub passthrough: Passthrough,
}

/// A mounted tree; [`Mounted::unmount`] ends it (dropping it unmounts too).
pub struct Mounted {
    session: Option<fuser::BackgroundSession>,
    mount_point: PathBuf,
    state: Arc<adapter::Shared>,
    /// The thread that follows file changes (see [`follow_changes`]) and its stop flag.
    changes: Option<(Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// The error number for a core error (the one mapping).
pub fn errno(e: &VfsError) -> i32 {
    match e {
        VfsError::NotFound => libc::ENOENT,
        VfsError::NotDir => libc::ENOTDIR,
        VfsError::IsDir => libc::EISDIR,
        VfsError::ReadOnly => libc::EROFS,
        VfsError::BadHandle => libc::EBADF,
        VfsError::Refused(_) => libc::EACCES,
        VfsError::Io(io) => io.raw_os_error().unwrap_or(libc::EIO),
        VfsError::Remote(r) => r.errno(),
        VfsError::NoWayToFetch { .. } | VfsError::Store(_) | VfsError::Rule(_) => libc::EIO,
    }
}

/// Mounts `vfs` at `mount_point` and serves it from background threads.
pub fn mount(vfs: Arc<Vfs>, mount_point: &Path, options: &VfsConfig) -> Result<Mounted, MountError> {
    let mount_point = prepare::mount_point(mount_point)?;
    prepare::fuse_available()?;
    let state = Arc::new(adapter::Shared::new(vfs.clone(), options).map_err(MountError::Io)?);
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("mosaicfs".into()),
        fuser::MountOption::Subtype("mosaicfs".into()),
        fuser::MountOption::RO,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::NoAtime,
        fuser::MountOption::DefaultPermissions,
    ];
    if options.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    let fs = adapter::Adapter::new(state.clone());
    let session = fuser::spawn_mount(fs, &mount_point, &config)
        .map_err(|e| MountError::Mount { path: mount_point.clone(), source: e })?;
    tracing::info!(operation = "mount", mount_point = %mount_point.display(), "virtual tree mounted");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let changes = {
        let (notifier, stop) = (session.notifier(), stop.clone());
        std::thread::Builder::new()
            .name("vfs-changes".into())
            .spawn(move || follow_changes(&vfs, &notifier, &stop))
            .map_err(MountError::Io)?
    };
    Ok(Mounted { session: Some(session), mount_point, state, changes: Some((stop, changes)) })
}

/// How often the change follower looks at the store.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Follows the store's file changes: for each file whose inode the kernel holds or that has an
/// open remote handle, the old version's handles are set aside and the kernel drops the inode's
/// cached pages (ARCHITECTURE §13.4), so no reader mixes two versions.
fn follow_changes(vfs: &Vfs, notifier: &fuser::Notifier, stop: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let store = vfs.store().clone();
    let mut seen = store.committed_seq();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(FOLLOW_EVERY);
        if store.committed_seq() == seen {
            continue;
        }
        loop {
            let changes = match store.changes_of_type_since(crate::doc::DocType::File, seen, 1000) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(operation = "vfs.change", error = %e, "file changes not read");
                    break;
                }
            };
            let Some(last) = changes.last().map(|c| c.seq) else { break };
            for change in changes {
                let Ok(file_id) = change.id.as_str().parse::<crate::ids::FileId>() else { continue };
                if change.deleted || !vfs.watches(&file_id) {
                    continue;
                }
                let Ok(crate::doc::Document::File(doc)) = serde_json::from_str(&change.body) else {
                    continue;
                };
                if let Some(ino) = vfs.file_changed(&doc) {
                    if let Err(e) = notifier.inval_inode(fuser::INodeNo(ino.0), 0, 0) {
                        // ENOENT: the kernel forgot the inode meanwhile.
                        tracing::debug!(operation = "vfs.change", ino = ino.0, error = %e, "inode not invalidated");
                    }
                }
            }
            seen = last;
        }
    }
}

impl Mounted {
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// A probe of the mount's state that outlives this borrow (the status reporter holds it).
    pub fn state_source(&self) -> impl Fn() -> MountState + Send + Sync + 'static {
        let (state, mount_point) = (self.state.clone(), self.mount_point.clone());
        move || MountState {
            mount_point: mount_point.clone(),
            serving: state.serving(),
            passthrough: state.passthrough(),
        }
    }

    /// Unmounts and waits for the session to end. A mount still in use (a shell sitting in
    /// it) is detached instead: it disappears once the last user leaves.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), MountError> {
        if let Some((stop, thread)) = self.changes.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = thread.join();
        }
        let Some(session) = self.session.take() else { return Ok(()) };
        match session.umount_and_join() {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(
                    operation = "unmount",
                    mount_point = %self.mount_point.display(),
                    error = %e,
                    "unmount refused (in use?); detaching the mount instead"
                );
                detach(&self.mount_point)?;
            }
        }
        self.state.shutdown();
        tracing::info!(operation = "unmount", mount_point = %self.mount_point.display(), "virtual tree unmounted");
        Ok(())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = self.end() {
            tracing::warn!(operation = "unmount", error = %e, "unmount failed");
        }
    }
}

#[cfg(test)]
mod tests;
