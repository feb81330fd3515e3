//! One safe open of a node's own files (ARCHITECTURE §6.8): every read of a source file — the
//! mount's tier 1 (passthrough included), tiers 2 and 3, the transfer server and the hub's
//! content route — opens it through [`Beneath::open`], which cannot be led out of its root by a
//! symlink, not even one swapped in between a check and the open.
//!
//! - On Linux the file is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`
//!   relative to a directory handle on the root taken when the source was set up: the kernel
//!   resolves the path (symlinks included) and refuses any step that leaves the root. A symlink
//!   that stays inside is followed.
//! - Where `openat2` is missing (Linux before 5.6, other systems), and when it refuses a step
//!   (which an absolute symlink pointing back inside the root also is), the path is opened and the
//!   opened file's real path is checked afterwards (`/proc/self/fd`, `F_GETPATH` on macOS): what
//!   is checked is what was opened, so the check cannot race with a swap either.
//! - Only regular files are opened (a FIFO or a device swapped in is refused without blocking:
//!   `O_NONBLOCK`, cleared after the check).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// Open file contents: positional reads, and the descriptor when there is one (the FUSE adapter
/// hands it to the kernel for passthrough reads).
pub trait Content: Send + Sync {
    /// Reads at `offset` into `buf`; fewer bytes only at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// The underlying file, when reads may bypass [`Content::read_at`].
    fn file(&self) -> Option<&File>;
}

impl Content for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match FileExt::read_at(self, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn file(&self) -> Option<&File> {
        Some(self)
    }
}

/// Why a local file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0} is gone")]
    Gone(String),
    #[error("{path} leads outside the directories it may be read from")]
    Escapes { path: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Opens local files for reading (blocking).
pub trait LocalSource: Send + Sync {
    fn open(&self, export_path: &str) -> Result<Box<dyn Content>, OpenError>;
}

/// One directory files may be read from, held open.
#[derive(Debug)]
pub struct Beneath {
    /// The path as configured (export paths start with it).
    path: PathBuf,
    /// The directory it named when it was opened, and its real path (for the fallback check).
    dir: OwnedFd,
    real: PathBuf,
}

impl Beneath {
    /// Opens the directory `path` (`None` if it is not a readable directory now).
    pub fn new(path: &Path) -> Option<Beneath> {
        let dir = File::open(path).ok()?;
        if !dir.metadata().ok()?.is_dir() {
            return None;
        }
        let real = path.canonicalize().ok()?;
        Some(Beneath { path: path.to_owned(), dir: OwnedFd::from(dir), real })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path` below this root, as a relative path of normal components (`None`: not below it,
    /// or with `.`/`..` in it).
    fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        let rel = path.strip_prefix(&self.path).ok()?;
        rel.components().all(|c| matches!(c, Component::Normal(_))).then_some(rel)
    }

    /// Whether `path` (as written, not resolved) lies below this root.
    pub fn covers(&self, path: &Path) -> bool {
        self.relative(path).is_some_and(|r| !r.as_os_str().is_empty())
    }

    /// Opens the regular file at `path` (below this root) for reading, never leaving the root.
    pub fn open(&self, path: &Path) -> Result<File, OpenError> {
        let shown = || path.display().to_string();
        let rel = self
            .relative(path)
            .filter(|r| !r.as_os_str().is_empty())
            .ok_or_else(|| OpenError::Escapes { path: shown() })?;
        let file = self.open_relative(rel).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENOTDIR) => OpenError::Gone(shown()),
            // openat2 refuses a step out of the root with EXDEV, a magic link with ELOOP.
            Some(libc::EXDEV | libc::ELOOP) => OpenError::Escapes { path: shown() },
            _ => OpenError::Io { path: shown(), source: e },
        })?;
        let meta = file.metadata().map_err(|e| OpenError::Io { path: shown(), source: e })?;
        if !meta.is_file() {
            return Err(OpenError::Gone(shown()));
        }
        clear_nonblock(&file).map_err(|e| OpenError::Io { path: shown(), source: e })?;
        Ok(file)
    }

    #[cfg(target_os = "linux")]
    fn open_relative(&self, rel: &Path) -> io::Result<File> {
        match openat2_beneath(&self.dir, rel) {
            // No openat2 here; or a step the kernel would not take beneath the root, which an
            // absolute symlink pointing back inside also is: open it and check what was opened.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EXDEV)) => {
                self.open_then_check(rel)
            }
            other => other,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn open_relative(&self, rel: &Path) -> io::Result<File> {
        self.open_then_check(rel)
    }

    /// The fallback: open, then check the real path of what was opened.
    fn open_then_check(&self, rel: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(self.path.join(rel))?;
        let opened = real_path_of(&file)?;
        if opened.starts_with(&self.real) {
            Ok(file)
        } else {
            Err(io::Error::from_raw_os_error(libc::EXDEV))
        }
    }
}

#[cfg(target_os = "linux")]
fn openat2_beneath(dir: &OwnedFd, rel: &Path) -> io::Result<File> {
    use std::os::unix::ffi::OsStrExt;
    let c_rel = std::ffi::CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `open_how` is a plain C struct; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    loop {
        // SAFETY: the pointers are valid for the duration of the call and `how`'s size is passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                c_rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            return Ok(unsafe { File::from_raw_fd(fd as i32) });
        }
        let e = io::Error::last_os_error();
        // EAGAIN: a rename raced the lookup (RESOLVE_BENEATH asks to retry).
        if !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
            return Err(e);
        }
    }
}

/// The path the kernel has for an open file.
fn real_path_of(file: &File) -> io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
    }
    #[cfg(target_os = "macos")]
    {
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: F_GETPATH writes at most PATH_MAX bytes into `buf`.
        let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETPATH, buf.as_mut_ptr()) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(&buf[..end])))
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = file;
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

fn clear_nonblock(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function borrows; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The real thing: files under this node's watch paths.
#[derive(Debug)]
pub struct WatchedFiles {
    /// The watch paths that were directories when the source was set up.
    roots: Vec<Beneath>,
}

impl WatchedFiles {
    pub fn new(watch_paths: &[PathBuf]) -> WatchedFiles {
        WatchedFiles { roots: watch_paths.iter().filter_map(|p| Beneath::new(p)).collect() }
    }
}

impl LocalSource for WatchedFiles {
    fn open(&self, export_path: &str) -> Result<Box<dyn Content>, OpenError> {
        let path = Path::new(export_path);
        match self.roots.iter().find(|r| r.covers(path)) {
            Some(root) => Ok(Box::new(root.open(path)?)),
            None => Err(OpenError::Escapes { path: export_path.to_owned() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_files_under_a_watch_path_and_refuses_escaping_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("watched");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(watched.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(watched.join("a.txt"), b"hello").unwrap();
        std::fs::write(outside.join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), watched.join("link")).unwrap();
        std::os::unix::fs::symlink(&outside, watched.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(watched.join("a.txt"), watched.join("inner-link")).unwrap();
        std::os::unix::fs::symlink("../a.txt", watched.join("sub/relative-inner")).unwrap();
        let files = WatchedFiles::new(std::slice::from_ref(&watched));
        let path = |p: &str| watched.join(p).to_str().unwrap().to_owned();

        let f = files.open(&path("a.txt")).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(f.read_at(&mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert!(files.open(&path("inner-link")).is_ok(), "a link inside is fine");
        assert!(files.open(&path("sub/relative-inner")).is_ok(), "a relative link inside is fine");
        for escaping in ["link", "dirlink/secret"] {
            let e = files.open(&path(escaping)).err().unwrap();
            assert!(matches!(e, OpenError::Escapes { .. }), "{escaping}: {e}");
        }
        let e = files.open(&path("missing")).err().unwrap();
        assert!(matches!(e, OpenError::Gone(_)), "{e}");
        let e = files.open(outside.join("secret").to_str().unwrap()).err().unwrap();
        assert!(matches!(e, OpenError::Escapes { .. }), "not under a watch path: {e}");
        let e = files.open(&format!("{}/../outside/secret", watched.display())).err().unwrap();
        assert!(matches!(e, OpenError::Escapes { .. }), "dot-dot: {e}");
        let e = files.open(watched.to_str().unwrap()).err().unwrap();
        assert!(matches!(e, OpenError::Escapes { .. }), "the root itself is no file: {e}");
    }

    #[test]
    fn a_fifo_swapped_in_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let root = Beneath::new(dir.path()).unwrap();
        assert!(matches!(root.open(&fifo), Err(OpenError::Gone(_))));
    }

    #[test]
    fn the_fallback_checks_what_it_opened() {
        let dir = tempfile::tempdir().unwrap();
        let (watched, outside) = (dir.path().join("w"), dir.path().join("o"));
        std::fs::create_dir_all(&watched).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(watched.join("in"), b"1").unwrap();
        std::fs::write(outside.join("secret"), b"2").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), watched.join("out")).unwrap();
        let root = Beneath::new(&watched).unwrap();
        assert!(root.open_then_check(Path::new("in")).is_ok());
        let e = root.open_then_check(Path::new("out")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EXDEV));
    }
}
