//! Key material made on first start and kept: the TLS certificate (self-signed) and the JWT
//! signing key. Private files are created with mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
}

fn err(path: &Path, message: impl ToString) -> KeyError {
    KeyError { path: path.to_owned(), message: message.to_string() }
}

/// Writes `bytes` to a new file (mode 0600 when `private`), atomically via a temp file.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeyError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(|e| err(&tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e))
}

/// Writes a private file (mode 0600), replacing it atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    write_new(path, bytes, true)
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

/// The listener's certificate and key (PEM) and the certificate's SHA-256 fingerprint.
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// SHA-256 of the DER certificate, lowercase hex: what agents pin.
    pub fingerprint: String,
}

/// `{data_dir}/tls/{name}.crt` and `.key`, made on first start (self-signed for `localhost`,
/// the loopback addresses and the host name) and kept.
pub fn tls_identity(data_dir: &Path, name: &str, hostname: &str) -> Result<TlsIdentity, KeyError> {
    let cert_path = data_dir.join(format!("tls/{name}.crt"));
    let key_path = data_dir.join(format!("tls/{name}.key"));
    if !cert_path.exists() || !key_path.exists() {
        let names =
            vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned(), hostname.to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).map_err(|e| err(&cert_path, e))?;
        write_new(&key_path, certified.signing_key.serialize_pem().as_bytes(), true)?;
        write_new(&cert_path, certified.cert.pem().as_bytes(), false)?;
    }
    let cert_pem = std::fs::read(&cert_path).map_err(|e| err(&cert_path, e))?;
    let key_pem = std::fs::read(&key_path).map_err(|e| err(&key_path, e))?;
    let der = pem_to_der(&cert_pem).ok_or_else(|| err(&cert_path, "not a PEM certificate"))?;
    Ok(TlsIdentity { fingerprint: hex::encode(Sha256::digest(&der)), cert_pem, key_pem })
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem).ok().map(|c| c.to_vec())
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
