//! Whether an agent is running on a data directory: the running agent holds an exclusive
//! `flock` on `<data_dir>/agent.lock` (which also names its pid) for its whole life. The kernel
//! drops the lock when the process ends, cleanly or not, so another process (`mosaicfs sync
//! status`) can tell a running agent from a stopped one without trusting any saved state.
//! A second agent on the same data directory is refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "agent.lock";

#[derive(Debug, thiserror::Error)]
pub enum LivenessError {
    #[error("another agent (pid {pid}) is running on {}", path.display())]
    AlreadyRunning { path: PathBuf, pid: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Held by the running agent; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// What a probe of the lock file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// An agent holds the lock.
    Running { pid: String },
    /// No agent holds it (the file exists: an agent ran here before).
    NotRunning,
    /// No agent has run on this data directory since locks existed.
    Unknown,
}

impl RunLock {
    /// Takes the lock for this process and writes its pid into the file.
    pub fn acquire(data_dir: &Path) -> Result<RunLock, LivenessError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |source| LivenessError::Io { path: path.clone(), source };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        if !try_flock(&file, libc::LOCK_EX).map_err(io)? {
            let pid = read_pid(&file);
            return Err(LivenessError::AlreadyRunning { path, pid });
        }
        file.set_len(0).map_err(io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
        Ok(RunLock { _file: file })
    }
}

/// Asks whether an agent is running on `data_dir` (from any process; takes no lasting lock).
pub fn probe(data_dir: &Path) -> Result<Liveness, LivenessError> {
    let path = data_dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Liveness::Unknown),
        Err(source) => return Err(LivenessError::Io { path, source }),
    };
    // A shared lock is refused while the agent holds its exclusive one; if it is granted, it is
    // released when `file` closes.
    match try_flock(&file, libc::LOCK_SH) {
        Ok(true) => Ok(Liveness::NotRunning),
        Ok(false) => Ok(Liveness::Running { pid: read_pid(&file) }),
        Err(source) => Err(LivenessError::Io { path, source }),
    }
}

/// `Ok(false)` when another open file description holds a conflicting lock.
fn try_flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(err)
    }
}

fn read_pid(file: &File) -> String {
    let mut s = String::new();
    let _ = file.take(32).read_to_string(&mut s);
    let pid = s.trim();
    if pid.is_empty() {
        "unknown".into()
    } else {
        pid.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_reads_as_running_and_a_released_one_as_not_running() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(probe(dir.path()).unwrap(), Liveness::Unknown);
        let lock = RunLock::acquire(dir.path()).unwrap();
        assert_eq!(probe(dir.path()).unwrap(), Liveness::Running { pid: std::process::id().to_string() });
        assert!(matches!(RunLock::acquire(dir.path()), Err(LivenessError::AlreadyRunning { .. })));
        drop(lock);
        assert_eq!(probe(dir.path()).unwrap(), Liveness::NotRunning);
        let _again = RunLock::acquire(dir.path()).unwrap();
    }
}
