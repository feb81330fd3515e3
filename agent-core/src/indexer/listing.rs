//! Listing one directory without following symlinks.

use std::path::{Path, PathBuf};

use super::FileStat;

/// One directory's entries, split by kind, sorted by name.
#[derive(Debug, Default)]
pub struct DirListing {
    pub files: Vec<(String, FileStat)>,
    pub subdirs: Vec<String>,
    /// Symlinks (never followed) and other non-regular entries (sockets, fifos, devices).
    pub symlinks: u64,
    /// Entries that could not be indexed (non-UTF-8 names, vanished between listing and stat).
    pub errors: u64,
}

/// What listing a directory gave.
pub enum Listed {
    Ok(DirListing),
    /// The directory itself is gone.
    Missing,
    /// It exists but cannot be read (permissions, I/O error).
    Unreadable(std::io::Error),
}

/// Lists `dir`: regular files with their size and mtime (one `fstatat` each), subdirectories by
/// name. Symlinks are counted and never followed, so the walk cannot loop or leave its tree.
pub fn list_dir(dir: &Path) -> Listed {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Listed::Missing,
        Err(e) => return Listed::Unreadable(e),
    };
    let mut out = DirListing::default();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.errors += 1;
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read a directory entry");
                continue;
            }
        };
        let name = match entry.file_name().into_string() {
            Ok(n) => n,
            Err(raw) => {
                out.errors += 1;
                tracing::warn!(path = %PathBuf::from(dir).join(&raw).display(), "skipping a name that is not valid UTF-8");
                continue;
            }
        };
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                out.errors += 1;
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot read the entry type");
                continue;
            }
        };
        if file_type.is_dir() {
            out.subdirs.push(name);
        } else if file_type.is_file() {
            match entry.metadata() {
                Ok(m) => out.files.push((name, FileStat::from_metadata(&m))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    out.errors += 1;
                    tracing::debug!(path = %entry.path().display(), "file vanished during the crawl");
                }
                Err(e) => {
                    out.errors += 1;
                    tracing::warn!(path = %entry.path().display(), error = %e, "cannot stat");
                }
            }
        } else {
            if file_type.is_symlink() && std::fs::metadata(entry.path()).is_err() {
                tracing::debug!(path = %entry.path().display(), "broken symlink (not followed)");
            }
            out.symlinks += 1;
        }
    }
    out.files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    out.subdirs.sort_unstable();
    Listed::Ok(out)
}
