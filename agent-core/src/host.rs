//! Facts about the machine this process runs on.

/// The machine's host name (`gethostname`), or `localhost` if it cannot be read.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname NUL-terminates on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(s) if !s.is_empty() => s.to_owned(),
        _ => "localhost".into(),
    }
}

/// Lowers the calling thread's CPU priority (nice +10) for background work such as crawling, so
/// that interactive work — a directory listed through the mount — wins a busy CPU. Threads it
/// spawns inherit the priority. Linux only (there `nice` is per thread); elsewhere a no-op.
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority on the calling thread (who = 0) has no memory-safety preconditions.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "background priority not set");
        }
    }
}

/// Size and use of a file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskSpace {
    pub total_bytes: u64,
    pub used_bytes: u64,
    /// What an unprivileged writer may still use.
    pub available_bytes: u64,
}

/// The file system holding `path` (`statvfs`); `None` if it cannot be read.
pub fn disk_space(path: &std::path::Path) -> Option<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as u64;
    Some(DiskSpace {
        total_bytes: st.f_blocks as u64 * frsize,
        used_bytes: (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * frsize,
        available_bytes: st.f_bavail as u64 * frsize,
    })
}
