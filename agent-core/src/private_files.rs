//! Private files whatever the umask (ARCHITECTURE §6.6, §7.3): the data directory is 0700;
//! stores (with their WAL and SHM files), keys, secrets and logs are 0600.
//!
//! - Modes are set explicitly (`mode` at creation, then `chmod`), never left to the umask.
//! - Atomic writes go through `{name}.tmp` and a rename; a stale `.tmp` left by a crash (or
//!   planted) is removed first and the new one is created exclusively (`O_EXCL`, which also
//!   refuses a symlink in its place), so its mode can never carry over into the file.
//! - SQLite creates a database with mode 0644 and gives its WAL and SHM files the mode of the
//!   database: [`prepare_sqlite`] creates the (empty) database file 0600 before SQLite opens it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// Mode of private files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode 0700 (existing ones are left as they are).
pub fn create_dirs(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates `dir` if needed and makes it 0700. Returns the mode it had when it was wider.
pub fn make_private_dir(dir: &Path) -> std::io::Result<Option<u32>> {
    create_dirs(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode == DIR_MODE {
        return Ok(None);
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    Ok((mode & !DIR_MODE != 0).then_some(mode))
}

/// `path` with `.tmp` appended to its file name (`jwt.key` → `jwt.key.tmp`).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` with exactly `mode`, through a fresh temp file and a rename, so a
/// crash leaves the old file or the new one, never half of one. Missing parent directories are
/// created 0700.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir)?;
    }
    let tmp = tmp_path(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// [`write_atomic`] with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(path, bytes, FILE_MODE)
}

/// Makes an existing file 0600 (nothing when it does not exist).
pub fn restrict(path: &Path) -> std::io::Result<()> {
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Before SQLite opens `db`: creates it empty with mode 0600 when absent (an empty file is an
/// empty database), otherwise makes it and its `-wal`/`-shm` files 0600. SQLite then creates
/// the WAL and SHM files with the database's mode.
pub fn prepare_sqlite(db: &Path) -> std::io::Result<()> {
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dirs(dir)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(db) {
        Ok(f) => f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(db)?,
        Err(e) => return Err(e),
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        restrict(Path::new(&name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_directories_are_private_over_wide_modes_and_stale_temp_files() {
        // (The process umask is not changed here: tests share the process under `cargo test`.
        // `tests/tests/security.rs` starts `mosaicfs up` with umask 000.)
        let dir = tempfile::tempdir().unwrap();
        {
            let data = dir.path().join("data");
            std::fs::create_dir(&data).unwrap();
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(make_private_dir(&data).unwrap(), Some(0o755));
            assert_eq!(mode(&data), 0o700);
            assert_eq!(make_private_dir(&data).unwrap(), None);

            // A stale, world-writable temp file (or a symlink) in the way is replaced, not reused.
            let key = data.join("hub/jwt.key");
            create_dirs(key.parent().unwrap()).unwrap();
            std::fs::write(tmp_path(&key), b"stale").unwrap();
            std::fs::set_permissions(tmp_path(&key), std::fs::Permissions::from_mode(0o666)).unwrap();
            write_private(&key, b"secret").unwrap();
            assert_eq!((mode(&key), std::fs::read(&key).unwrap()), (0o600, b"secret".to_vec()));
            assert!(!tmp_path(&key).exists());
            let elsewhere = dir.path().join("elsewhere");
            std::os::unix::fs::symlink(&elsewhere, tmp_path(&key)).unwrap();
            write_private(&key, b"again").unwrap();
            assert!(!elsewhere.exists(), "the planted symlink was not followed");
            assert_eq!(mode(&key), 0o600);
            assert_eq!(mode(key.parent().unwrap()), 0o700, "new directories are 0700");

            let db = data.join("store/hub.db");
            prepare_sqlite(&db).unwrap();
            assert_eq!(mode(&db), 0o600);
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
            for f in ["store/hub.db", "store/hub.db-wal", "store/hub.db-shm"] {
                assert_eq!(mode(&data.join(f)), 0o600, "{f}");
            }
            drop(conn);
            std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
            prepare_sqlite(&db).unwrap();
            assert_eq!(mode(&db), 0o600, "an existing database is made private");
        }
    }
}
