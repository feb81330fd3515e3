//! The top-level keys: `data_dir`, `watch_paths`, `exclude` (ARCHITECTURE §8.1), and the
//! platform's default data directory (§7.3).

use std::path::{Path, PathBuf};

use super::fields::Fields;
use super::ConfigError;

pub(super) fn data_dir(file: &Path, raw: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    Ok(Fields::new(file, "").absolute("data_dir", raw)?.unwrap_or_else(default_data_dir))
}

/// Absolute, normalized, none inside another. Empty only for a node that joined a hub.
pub(super) fn watch_paths(file: &Path, raw: &[String], joined: bool) -> Result<Vec<PathBuf>, ConfigError> {
    let f = Fields::new(file, "");
    if raw.is_empty() && !joined {
        return Err(f.err("watch_paths", "is empty: name at least one directory to index"));
    }
    let mut watch_paths: Vec<PathBuf> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let field = format!("watch_paths[{i}]");
        let norm = normalize_abs(p).ok_or_else(|| f.err(&field, format!("{p:?} is not an absolute path")))?;
        for (j, other) in watch_paths.iter().enumerate() {
            if norm.starts_with(other) || other.starts_with(&norm) {
                return Err(f.err(&field, format!("{p:?} overlaps watch_paths[{j}] ({})", other.display())));
            }
        }
        watch_paths.push(norm);
    }
    Ok(watch_paths)
}

/// Every pattern must compile (globset).
pub(super) fn exclude(file: &Path, raw: &[String]) -> Result<(), ConfigError> {
    let f = Fields::new(file, "");
    for (i, g) in raw.iter().enumerate() {
        globset::Glob::new(g).map_err(|e| f.err(&format!("exclude[{i}]"), e.kind().to_string()))?;
    }
    Ok(())
}

/// `/a/b/` → `/a/b`; `None` for relative paths or paths with `.`/`..` components.
fn normalize_abs(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::RootDir => {}
            std::path::Component::Normal(n) => out.push(n),
            _ => return None,
        }
    }
    Some(out)
}

/// DESIGN §9: headless nodes (running as root, e.g. a system service or container) keep data in
/// `/var/lib/mosaicfs`; a desktop user in the platform's per-user data directory.
/// `MOSAICFS_DATA_DIR` overrides both.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MOSAICFS_DATA_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    #[cfg(unix)]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/lib/mosaicfs");
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/MosaicFS");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(x) => PathBuf::from(x).join("mosaicfs"),
        None => home.join(".local/share/mosaicfs"),
    }
}
