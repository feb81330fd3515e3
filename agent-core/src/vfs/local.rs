//! Tier 1 (plan §4.8): a file that lives on this node is read straight from `source.export_path`,
//! after checking that the canonical path (symlinks resolved) lies under a watch path, so a
//! symlink in a watched tree that points elsewhere (`~/Docs/x -> /etc/shadow`) is refused.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

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
    #[error("{path} resolves to {resolved}, outside the directories it may be read from")]
    Escapes { path: String, resolved: PathBuf },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Opens local files for reading (blocking).
pub trait LocalSource: Send + Sync {
    fn open(&self, export_path: &str) -> Result<Box<dyn Content>, OpenError>;
}

/// The real thing: files under this node's watch paths.
pub struct WatchedFiles {
    /// Canonical watch paths (those that exist when the mount starts).
    roots: Vec<PathBuf>,
}

impl WatchedFiles {
    pub fn new(watch_paths: &[PathBuf]) -> WatchedFiles {
        let roots = watch_paths.iter().filter_map(|p| p.canonicalize().ok()).collect();
        WatchedFiles { roots }
    }
}

impl LocalSource for WatchedFiles {
    fn open(&self, export_path: &str) -> Result<Box<dyn Content>, OpenError> {
        Ok(Box::new(open_within(Path::new(export_path), &self.roots)?))
    }
}

/// Opens the regular file at `path` for reading if its canonical path (symlinks resolved) lies
/// under one of `roots` (canonical themselves).
pub fn open_within(path: &Path, roots: &[PathBuf]) -> Result<File, OpenError> {
    let shown = path.display().to_string();
    let resolved = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => OpenError::Gone(shown.clone()),
        _ => OpenError::Io { path: shown.clone(), source: e },
    })?;
    if !roots.iter().any(|root| resolved.starts_with(root)) {
        return Err(OpenError::Escapes { path: shown, resolved });
    }
    match File::open(&resolved) {
        Ok(f) if f.metadata().map(|m| m.is_file()).unwrap_or(false) => Ok(f),
        Ok(_) => Err(OpenError::Gone(shown)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(OpenError::Gone(shown)),
        Err(e) => Err(OpenError::Io { path: shown, source: e }),
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
        std::fs::create_dir_all(&watched).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(watched.join("a.txt"), b"hello").unwrap();
        std::fs::write(outside.join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), watched.join("link")).unwrap();
        std::os::unix::fs::symlink(watched.join("a.txt"), watched.join("inner-link")).unwrap();
        let files = WatchedFiles::new(std::slice::from_ref(&watched));

        let f = files.open(watched.join("a.txt").to_str().unwrap()).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(f.read_at(&mut buf, 1).unwrap(), 4);
        assert_eq!(&buf[..4], b"ello");
        assert!(files.open(watched.join("inner-link").to_str().unwrap()).is_ok(), "a link inside is fine");
        let e = files.open(watched.join("link").to_str().unwrap()).err().unwrap();
        assert!(matches!(e, OpenError::Escapes { .. }), "{e}");
        let e = files.open(watched.join("missing").to_str().unwrap()).err().unwrap();
        assert!(matches!(e, OpenError::Gone(_)), "{e}");
        let e = files.open(outside.join("secret").to_str().unwrap()).err().unwrap();
        assert!(matches!(e, OpenError::Escapes { .. }), "not under a watch path: {e}");
    }
}
