//! Before mounting: is FUSE there, and is the mount point usable? A stale mount left by a
//! crashed run (the kernel answers `ENOTCONN`, "transport endpoint is not connected") is
//! detached; anything else in the way is a clear error.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("FUSE is not available: {0}")]
    Unavailable(String),
    #[error("mount point {path}: {reason}")]
    MountPoint { path: PathBuf, reason: String },
    #[error("cannot mount at {path}: {source}")]
    Mount { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn bad(path: &Path, reason: impl Into<String>) -> MountError {
    MountError::MountPoint { path: path.to_owned(), reason: reason.into() }
}

/// Whether `path` is a mount point, from `/proc/self/mountinfo` (Linux), with its type.
fn mounted_type(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let wanted = path.to_str()?;
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        (unescape(fields.get(4)?) == wanted).then(|| fields.get(sep + 1).unwrap_or(&"").to_string())
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let oct: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&oct, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&oct);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Detaches whatever is mounted at `path` (lazy unmount: gone for new users at once).
pub fn detach(path: &Path) -> Result<(), MountError> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| bad(path, "contains NUL"))?;
        // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
            return Ok(());
        }
    }
    let status = std::process::Command::new("fusermount3")
        .args(["-u", "-z", "--"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(bad(path, format!("cannot unmount (fusermount3 -uz exited with {s})"))),
        Err(e) => Err(bad(path, format!("cannot unmount: fusermount3: {e}"))),
    }
}

/// Makes `path` ready to mount on: absolute, a directory (created if absent), not mounted
/// (a stale mount is detached), empty. Returns it.
pub fn mount_point(path: &Path) -> Result<PathBuf, MountError> {
    if !path.is_absolute() {
        return Err(bad(path, "is not an absolute path"));
    }
    let stale = |path: &Path| -> Result<(), MountError> {
        tracing::warn!(
            operation = "mount",
            mount_point = %path.display(),
            "a stale mount left by a crashed run was found; detaching it"
        );
        detach(path)
    };
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => stale(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path).map_err(|e| bad(path, format!("cannot create: {e}")))?;
        }
        Err(e) => return Err(bad(path, e.to_string())),
        Ok(m) if !m.is_dir() => return Err(bad(path, "is not a directory")),
        Ok(_) => {
            if let Some(fstype) = mounted_type(path) {
                // The kernel may answer `stat` from its cache; listing asks the (dead) daemon.
                match std::fs::read_dir(path) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => stale(path)?,
                    _ => {
                        return Err(bad(
                            path,
                            format!(
                                "is already a mount point ({fstype}); is another MosaicFS running? Unmount it first"
                            ),
                        ))
                    }
                }
            }
        }
    }
    let mut entries = std::fs::read_dir(path).map_err(|e| bad(path, e.to_string()))?;
    if entries.next().is_some() {
        return Err(bad(path, "is not empty (MosaicFS mounts only on an empty directory)"));
    }
    Ok(path.to_owned())
}

/// FUSE needs `/dev/fuse`, and a non-root user needs `fusermount3` as well.
pub fn fuse_available() -> Result<(), MountError> {
    #[cfg(target_os = "linux")]
    {
        if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse") {
            return Err(MountError::Unavailable(format!(
                "/dev/fuse: {e} (install fuse3 — Debian/Ubuntu: apt install fuse3 — and load the fuse module; \
                 in a container, add --device /dev/fuse --cap-add SYS_ADMIN)"
            )));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 && which("fusermount3").is_none() {
            return Err(MountError::Unavailable(
                "fusermount3 not found (install fuse3 — Debian/Ubuntu: apt install fuse3)".into(),
            ));
        }
    }
    #[cfg(target_os = "macos")]
    {
        if !Path::new("/Library/Filesystems/macfuse.fs").exists() {
            return Err(MountError::Unavailable(
                "macFUSE is not installed (https://osxfuse.github.io)".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(target_os = "linux")]
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_point_is_created_and_must_be_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mp = dir.path().join("a/b/mnt");
        assert_eq!(mount_point(&mp).unwrap(), mp);
        assert!(mp.is_dir());
        std::fs::write(mp.join("x"), b"").unwrap();
        let e = mount_point(&mp).unwrap_err().to_string();
        assert!(e.contains("is not empty"), "{e}");
        let e = mount_point(&mp.join("x")).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let e = mount_point(Path::new("rel/mnt")).unwrap_err().to_string();
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn a_live_mount_point_is_refused() {
        // `/proc` is a mount point on every Linux system.
        if cfg!(target_os = "linux") {
            let e = mount_point(Path::new("/proc")).unwrap_err().to_string();
            assert!(e.contains("already a mount point (proc)"), "{e}");
        }
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/mnt/my\040files"), "/mnt/my files");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
    }
}
