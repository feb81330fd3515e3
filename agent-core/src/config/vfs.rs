//! `[vfs]`: the mount of the virtual tree (ARCHITECTURE §13.4).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

#[derive(Debug, Clone, PartialEq)]
pub struct VfsConfig {
    /// Where the tree is mounted; `None`: not mounted.
    pub mount_point: Option<PathBuf>,
    /// `mount_point` is the desktop default (`~/MosaicFS`, written by the quickstart or
    /// `agent init`), not a choice of the user's: if it cannot be mounted (no FUSE, a busy
    /// mount point) the agent runs without it and reports why. An explicit mount point that
    /// cannot be mounted fails the start (ARCHITECTURE §8.2).
    pub mount_is_default: bool,
    /// How long a directory listing is reused while nothing relevant changed (zero: never).
    pub readdir_ttl: Duration,
    /// How long the kernel may keep names and attributes before asking again.
    pub attr_ttl: Duration,
    /// Let the kernel read local files directly (FUSE passthrough) when it can.
    pub passthrough: bool,
    /// Let other users see the mount (non-root needs `user_allow_other` in /etc/fuse.conf).
    pub allow_other: bool,
}

impl Default for VfsConfig {
    fn default() -> Self {
        VfsConfig {
            mount_point: None,
            mount_is_default: false,
            readdir_ttl: Duration::from_secs(5),
            attr_ttl: Duration::from_secs(1),
            passthrough: true,
            allow_other: false,
        }
    }
}

const MAX_ATTR_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVfs {
    mount_point: Option<PathBuf>,
    mount_point_is_default: Option<bool>,
    readdir_ttl_ms: Option<u64>,
    attr_ttl_ms: Option<u64>,
    passthrough: Option<bool>,
    allow_other: Option<bool>,
}

impl RawVfs {
    /// `watch_paths` are the validated watch paths: the mount point must not overlap one.
    pub(super) fn validate(self, file: &Path, watch_paths: &[PathBuf]) -> Result<VfsConfig, ConfigError> {
        let f = Fields::new(file, "vfs");
        let d = VfsConfig::default();
        let vfs = VfsConfig {
            mount_point: f.absolute("mount_point", self.mount_point)?,
            mount_is_default: self.mount_point_is_default.unwrap_or(false),
            readdir_ttl: self.readdir_ttl_ms.map_or(d.readdir_ttl, Duration::from_millis),
            attr_ttl: self.attr_ttl_ms.map_or(d.attr_ttl, Duration::from_millis),
            passthrough: self.passthrough.unwrap_or(d.passthrough),
            allow_other: self.allow_other.unwrap_or(d.allow_other),
        };
        if let Some(mp) = &vfs.mount_point {
            if let Some(i) = watch_paths.iter().position(|w| mp.starts_with(w) || w.starts_with(mp)) {
                return Err(f.err(
                    "mount_point",
                    format!("{} overlaps watch_paths[{i}]: the mount would index itself", mp.display()),
                ));
            }
        }
        if vfs.mount_is_default && vfs.mount_point.is_none() {
            return Err(f.err("mount_point_is_default", "is set but mount_point is not"));
        }
        if vfs.attr_ttl > MAX_ATTR_TTL {
            return Err(f.err("attr_ttl_ms", "must be at most 3600000 (an hour)"));
        }
        Ok(vfs)
    }
}

/// Whether this process runs for a desktop user: not root, with a graphical session
/// (`$DISPLAY` or `$WAYLAND_DISPLAY` set). Such a user gets a mount at `~/MosaicFS` by default.
/// `MOSAICFS_DESKTOP=1` (or `0`) decides instead: the desktop app sets it for what it starts,
/// and tests, which run as root here, use it.
pub fn is_desktop_user() -> bool {
    match std::env::var("MOSAICFS_DESKTOP").as_deref() {
        Ok("1") => return true,
        Ok("0") => return false,
        _ => {}
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let set = |v: &str| std::env::var_os(v).is_some_and(|x| !x.is_empty());
    !root && (set("DISPLAY") || set("WAYLAND_DISPLAY"))
}

/// The desktop default mount point, `~/MosaicFS`, for a desktop user ([`is_desktop_user`]);
/// `None` for everyone else (the mount stays opt-in).
pub fn desktop_mount_point() -> Option<PathBuf> {
    if !is_desktop_user() {
        return None;
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from)?;
    home.is_absolute().then(|| home.join("MosaicFS"))
}
