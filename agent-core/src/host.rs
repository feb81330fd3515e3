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
