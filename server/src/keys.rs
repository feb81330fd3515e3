//! Key material made on first start and kept: the TLS certificate (self-signed) and the JWT
//! signing key. Private files are created with mode 0600.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
}

fn err(path: &Path, message: impl ToString) -> KeyError {
    KeyError { path: path.to_owned(), message: message.to_string() }
}

fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeyError> {
    agent_core::tls::write_atomic(path, bytes, private)
        .map_err(|e| KeyError { path: e.path, message: e.message })
}

/// Writes a private file (mode 0600), replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    write_new(path, bytes, true)
}

/// The data directory (hub.db, keys, secrets) is 0700 whatever the umask (ARCHITECTURE §6.6).
pub fn make_data_dir_private(data_dir: &Path) -> Result<(), KeyError> {
    match agent_core::private_files::make_private_dir(data_dir) {
        Ok(Some(was)) => {
            tracing::warn!(data_dir = %data_dir.display(), was = format!("{was:o}"), "the data directory was open to others; it is now 0700");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(err(data_dir, format!("cannot make the data directory private (0700): {e}"))),
    }
}

/// The 32-byte HS256 key for people's JWTs: `{data_dir}/hub/jwt.key`.
pub fn jwt_key(data_dir: &Path) -> Result<Vec<u8>, KeyError> {
    let path = data_dir.join("hub/jwt.key");
    match std::fs::read(&path) {
        Ok(k) if k.len() == 32 => Ok(k),
        Ok(_) => Err(err(&path, "expected 32 bytes")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_new(&path, &key, true)?;
            Ok(key.to_vec())
        }
        Err(e) => Err(err(&path, e)),
    }
}

/// The hub's transfer-token key (Ed25519, PKCS#8 PEM): `{data_dir}/hub/transfer_ed25519.pem`.
pub fn transfer_signer(data_dir: &Path) -> Result<agent_core::transfer_token::TransferSigner, KeyError> {
    use agent_core::transfer_token::TransferSigner;
    let path = data_dir.join("hub/transfer_ed25519.pem");
    match std::fs::read_to_string(&path) {
        Ok(pem) => TransferSigner::from_pem(&pem).map_err(|e| err(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (signer, pem) = TransferSigner::generate().map_err(|e| err(&path, e))?;
            write_new(&path, pem.as_bytes(), true)?;
            Ok(signer)
        }
        Err(e) => Err(err(&path, e)),
    }
}

pub use agent_core::tls::TlsIdentity;

/// `{data_dir}/tls/{name}.crt` and `.key`, made on first start and kept ([`agent_core::tls::identity`]).
pub fn tls_identity(data_dir: &Path, name: &str, hostname: &str) -> Result<TlsIdentity, KeyError> {
    agent_core::tls::identity(data_dir, name, hostname)
        .map_err(|e| KeyError { path: e.path, message: e.message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = jwt_key(dir.path()).unwrap();
        assert_eq!(k1, jwt_key(dir.path()).unwrap());
        let t1 = tls_identity(dir.path(), "hub", "testhost").unwrap();
        let t2 = tls_identity(dir.path(), "hub", "testhost").unwrap();
        assert_eq!(t1.fingerprint, t2.fingerprint);
        assert_eq!(t1.fingerprint.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let t1 = transfer_signer(dir.path()).unwrap();
        assert_eq!(t1.public_key(), transfer_signer(dir.path()).unwrap().public_key());
        for p in ["hub/jwt.key", "tls/hub.key", "hub/transfer_ed25519.pem"] {
            let mode = std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{p}");
        }
    }
}
