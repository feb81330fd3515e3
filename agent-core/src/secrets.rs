//! Where a node keeps its credential secret (DESIGN §4, ARCHITECTURE §6.6): the OS keychain
//! (`keyring-core`: Secret Service on Linux, the login keychain on macOS) where one answers, a
//! 0600 file on headless nodes, or an environment variable. `agent.toml` only says where
//! ([`SecretRef`]); never the secret.
//!
//! Keychain calls block (a locked Secret Service collection even waits forever on an unlock
//! prompt), so they run on a plain thread with a timeout; call these functions from blocking
//! code (`spawn_blocking` in async code).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use crate::auth::Secret;
use crate::config::SecretRef;

/// The keychain service name MosaicFS uses.
pub const SERVICE: &str = "mosaicfs";
/// How long a keychain operation may take before the keychain counts as unavailable.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {0} is not set (or not UTF-8)")]
    Env(String),
    #[error("OS keychain ({service}/{account}): {message}")]
    Keychain { service: String, account: String, message: String },
}

/// Which kind of place to keep a new secret in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Keychain,
    File,
}

/// The platform's keychain store (not yet contacted).
fn os_store() -> keyring_core::Result<Arc<CredentialStore>> {
    #[cfg(target_os = "macos")]
    let store: Arc<CredentialStore> = apple_native_keyring_store::keychain::Store::new()?;
    #[cfg(target_os = "linux")]
    let store: Arc<CredentialStore> = zbus_secret_service_keyring_store::Store::new()?;
    #[cfg(not(any(target_os = "macos", target_os = "linux")))]
    return Err(keyring_core::Error::NotSupportedByStore("no OS keychain on this platform".into()));
    #[cfg(any(target_os = "macos", target_os = "linux"))]
    Ok(store)
}

/// Runs `f` against a keychain store on its own thread; gives up after [`KEYCHAIN_TIMEOUT`].
fn with_keychain<T: Send + 'static>(
    store: Option<Arc<CredentialStore>>,
    f: impl FnOnce(&Arc<CredentialStore>) -> keyring_core::Result<T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = store.map_or_else(os_store, Ok).and_then(|s| f(&s));
        let _ = tx.send(result.map_err(|e| e.to_string()));
    });
    rx.recv_timeout(KEYCHAIN_TIMEOUT).unwrap_or_else(|_| {
        Err(format!("no answer within {KEYCHAIN_TIMEOUT:?} (locked, or waiting on a prompt nobody sees)"))
    })
}

/// Whether the OS keychain works here: round-trips a probe item. `MOSAICFS_SECRETS=file`
/// answers no without asking (containers, CI).
pub fn keychain_available() -> Result<(), String> {
    if std::env::var("MOSAICFS_SECRETS").as_deref() == Ok("file") {
        return Err("MOSAICFS_SECRETS=file".into());
    }
    with_keychain(None, |store| {
        let entry = Entry::new_in_store(store, SERVICE, "__probe__")?;
        entry.set_password("probe")?;
        let back = entry.get_password()?;
        entry.delete_credential()?;
        if back == "probe" {
            Ok(())
        } else {
            Err(keyring_core::Error::BadStoreFormat("the probe read back another value".into()))
        }
    })
}

/// Keeps `secret` for `account` (an access key id): in the keychain when `prefer` is
/// `Keychain` and the keychain answers, else in `{secrets_dir}/{account}.secret` (0600).
/// Returns where it went, for `agent.toml`, and logs the choice.
pub fn store_new(
    prefer: Backend,
    secrets_dir: &Path,
    account: &str,
    secret: &Secret,
) -> Result<SecretRef, SecretError> {
    if prefer == Backend::Keychain {
        match keychain_available() {
            Ok(()) => {
                let r = SecretRef::Keyring { service: SERVICE.into(), account: account.into() };
                write(&r, secret)?;
                tracing::info!(store = "keychain", account, "node secret stored in the OS keychain");
                return Ok(r);
            }
            Err(why) => tracing::info!(reason = %why, "OS keychain unavailable; using a 0600 file"),
        }
    }
    let r = SecretRef::File(secrets_dir.join(format!("{account}.secret")));
    write(&r, secret)?;
    if let SecretRef::File(p) = &r {
        tracing::info!(store = "file", path = %p.display(), "node secret stored in a 0600 file");
    }
    Ok(r)
}

/// Writes a secret where `r` says (an environment variable cannot be written).
pub fn write(r: &SecretRef, secret: &Secret) -> Result<(), SecretError> {
    match r {
        SecretRef::File(path) => write_file(path, secret.expose()),
        SecretRef::Env(var) => Err(SecretError::Env(var.clone())),
        SecretRef::Keyring { service, account } => {
            let (s, a, v) = (service.clone(), account.clone(), secret.expose().to_owned());
            with_keychain(None, move |store| Entry::new_in_store(store, &s, &a)?.set_password(&v)).map_err(
                |message| SecretError::Keychain {
                    service: service.clone(),
                    account: account.clone(),
                    message,
                },
            )
        }
    }
}

/// Reads the secret `r` points to. A file readable by group or others is refused.
pub fn read(r: &SecretRef) -> Result<Secret, SecretError> {
    read_with(r, None)
}

fn read_with(r: &SecretRef, store: Option<Arc<CredentialStore>>) -> Result<Secret, SecretError> {
    match r {
        SecretRef::File(path) => read_file(path).map(Secret::from_string),
        SecretRef::Env(var) => std::env::var(var)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(Secret::from_string)
            .ok_or_else(|| SecretError::Env(var.clone())),
        SecretRef::Keyring { service, account } => {
            let (s, a) = (service.clone(), account.clone());
            with_keychain(store, move |store| Entry::new_in_store(store, &s, &a)?.get_password())
                .map(Secret::from_string)
                .map_err(|message| SecretError::Keychain {
                    service: service.clone(),
                    account: account.clone(),
                    message,
                })
        }
    }
}

fn write_file(path: &Path, value: &str) -> Result<(), SecretError> {
    let err = |p: &Path, e: std::io::Error| SecretError::File { path: p.to_owned(), message: e.to_string() };
    if let Some(dir) = path.parent() {
        crate::private_files::make_private_dir(dir).map_err(|e| err(dir, e))?;
    }
    crate::private_files::write_private(path, format!("{value}\n").as_bytes()).map_err(|e| err(path, e))
}

fn read_file(path: &Path) -> Result<String, SecretError> {
    let err = |message: String| SecretError::File { path: path.to_owned(), message };
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(err(format!(
            "mode {:o} lets others read it; run `chmod 600 {}`",
            meta.permissions().mode() & 0o777,
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(err("empty".into()));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_are_private_and_refused_when_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let secret = Secret::generate();
        let r = store_new(Backend::File, &dir.path().join("secrets"), "MFSKEY", &secret).unwrap();
        let SecretRef::File(path) = &r else { panic!("{r:?}") };
        assert_eq!(std::fs::metadata(path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&r).unwrap().expose(), secret.expose());
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&r).unwrap_err().to_string().contains("chmod 600"));
        assert!(read(&SecretRef::File(dir.path().join("none"))).is_err());
    }

    #[test]
    fn env_secrets_are_read_not_written() {
        let var = "MOSAICFS_TEST_SECRET_ENV_ONLY";
        assert!(read(&SecretRef::Env(var.into())).is_err());
        assert!(write(&SecretRef::Env(var.into()), &Secret::generate()).is_err());
    }

    #[test]
    fn keychain_entries_round_trip_through_a_store() {
        let store: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let r = SecretRef::Keyring { service: SERVICE.into(), account: "MFSACCOUNT".into() };
        assert!(read_with(&r, Some(store.clone())).is_err(), "nothing stored yet");
        Entry::new_in_store(&store, SERVICE, "MFSACCOUNT").unwrap().set_password("s3cret").unwrap();
        assert_eq!(read_with(&r, Some(store)).unwrap().expose(), "s3cret");
    }
}
