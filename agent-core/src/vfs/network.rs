//! Tiers 2 and 3 (plan §4.8, ARCHITECTURE §13.3): a file of another node may be reachable on
//! this machine through a network mount (`cifs`, `nfs`) or a cloud sync folder (`icloud_local`,
//! `gdrive_local`) listed in this node's document (`network_mounts`, edited on the hub).
//!
//! The file's path below the mount's `remote_base_export_path` is translated onto
//! `local_mount_path`. Network mounts are tried before sync folders, higher `priority` first.
//! A candidate is used only if it opens within its mount point (a symlink that escapes is
//! refused) and its size equals the file document's (a stale or half-synced copy is passed
//! over). An iCloud file evicted from the device (only its `.NAME.icloud` placeholder is there)
//! is passed over as well. When no candidate serves, the caller falls back to tier 4.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::content::{Beneath, OpenError};
use crate::doc::{FileDoc, NetworkMount, NetworkMountType};

/// The tier of a mount type: 2 for network mounts, 3 for sync folders.
fn tier(t: NetworkMountType) -> u8 {
    match t {
        NetworkMountType::Cifs | NetworkMountType::Nfs => 2,
        NetworkMountType::IcloudLocal | NetworkMountType::GdriveLocal => 3,
    }
}

/// The mounts that cover `file`, in the order they are tried, with the translated local path.
pub fn candidates<'a>(mounts: &'a [NetworkMount], file: &FileDoc) -> Vec<(&'a NetworkMount, PathBuf)> {
    let mut out: Vec<(&NetworkMount, PathBuf)> = mounts
        .iter()
        .filter(|m| m.remote_node_id == file.source.node_id)
        .filter_map(|m| {
            let base = m.remote_base_export_path.trim_end_matches('/');
            let rel = file.source.export_path.strip_prefix(base)?.strip_prefix('/')?;
            Some((m, Path::new(&m.local_mount_path).join(rel)))
        })
        .collect();
    out.sort_by_key(|(m, _)| (tier(m.mount_type), std::cmp::Reverse(m.priority)));
    out
}

/// Whether iCloud has evicted `path` from this device (its `.NAME.icloud` placeholder is there
/// and the file is not).
fn icloud_evicted(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return false };
    !path.exists() && dir.join(format!(".{}.icloud", name.to_string_lossy())).exists()
}

/// Why a candidate was passed over (logged by the caller).
#[derive(Debug)]
pub struct Skipped {
    pub mount_id: String,
    pub reason: String,
}

/// Opens the first candidate that serves `file`, with the reasons the others were passed over.
pub fn open(mounts: &[NetworkMount], file: &FileDoc) -> (Option<File>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    for (m, path) in candidates(mounts, file) {
        let skip = |reason: String| Skipped { mount_id: m.mount_id.clone(), reason };
        if m.mount_type == NetworkMountType::IcloudLocal && icloud_evicted(&path) {
            skipped.push(skip("evicted from this device by iCloud".into()));
            continue;
        }
        let Some(root) = Beneath::new(Path::new(&m.local_mount_path)) else {
            skipped.push(skip(format!("{} is not there (not mounted?)", m.local_mount_path)));
            continue;
        };
        match root.open(&path) {
            Ok(f) => match f.metadata() {
                Ok(meta) if meta.len() == file.size => return (Some(f), skipped),
                Ok(meta) => skipped.push(skip(format!(
                    "{} has {} bytes, the index says {} (stale or still syncing)",
                    path.display(),
                    meta.len(),
                    file.size
                ))),
                Err(e) => skipped.push(skip(format!("{}: {e}", path.display()))),
            },
            Err(e @ (OpenError::Gone(_) | OpenError::Escapes { .. } | OpenError::Io { .. })) => {
                skipped.push(skip(e.to_string()))
            }
        }
    }
    (None, skipped)
}
