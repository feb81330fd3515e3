//! Key material a process makes on first start and keeps: a self-signed TLS identity (the hub's
//! listener, each agent's transfer server) whose SHA-256 fingerprint peers pin (ARCHITECTURE
//! §6.5), written atomically, private keys with mode 0600.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct KeyFileError {
    pub path: PathBuf,
    pub message: String,
}

fn err(path: &Path, message: impl ToString) -> KeyFileError {
    KeyFileError { path: path.to_owned(), message: message.to_string() }
}

/// Writes `bytes` to `path` (mode 0600 when `private`, else 0644) through a fresh temp file and
/// a rename ([`crate::private_files::write_atomic`]), so a crash leaves the old file or the new
/// one, never half of one, and a stale temp file's mode never carries over.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<(), KeyFileError> {
    let mode = if private { crate::private_files::FILE_MODE } else { 0o644 };
    crate::private_files::write_atomic(path, bytes, mode).map_err(|e| err(path, e))
}

/// A listener's certificate and key (PEM) and the certificate's SHA-256 fingerprint.
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// SHA-256 of the DER certificate, lowercase hex: what peers pin.
    pub fingerprint: String,
}

/// `{data_dir}/tls/{name}.crt` and `.key`, made on first start (self-signed for `localhost`,
/// the loopback addresses and the host name) and kept.
pub fn identity(data_dir: &Path, name: &str, hostname: &str) -> Result<TlsIdentity, KeyFileError> {
    let cert_path = data_dir.join(format!("tls/{name}.crt"));
    let key_path = data_dir.join(format!("tls/{name}.key"));
    if !cert_path.exists() || !key_path.exists() {
        let names =
            vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned(), hostname.to_owned()];
        let certified = rcgen::generate_simple_self_signed(names).map_err(|e| err(&cert_path, e))?;
        write_atomic(&key_path, certified.signing_key.serialize_pem().as_bytes(), true)?;
        write_atomic(&cert_path, certified.cert.pem().as_bytes(), false)?;
    }
    let cert_pem = std::fs::read(&cert_path).map_err(|e| err(&cert_path, e))?;
    let key_pem = std::fs::read(&key_path).map_err(|e| err(&key_path, e))?;
    let der = pem_to_der(&cert_pem).ok_or_else(|| err(&cert_path, "not a PEM certificate"))?;
    Ok(TlsIdentity { fingerprint: hex::encode(Sha256::digest(&der)), cert_pem, key_pem })
}

/// The SHA-256 fingerprint of the PEM certificate at `path` (what a client on the same machine
/// pins without asking: the CLI next to a running hub, tests).
pub fn certificate_fingerprint(path: &Path) -> Result<String, KeyFileError> {
    let pem = std::fs::read(path).map_err(|e| err(path, e))?;
    let der = pem_to_der(&pem).ok_or_else(|| err(path, "not a PEM certificate"))?;
    Ok(hex::encode(Sha256::digest(&der)))
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem).ok().map(|c| c.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_made_once_and_its_key_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = identity(dir.path(), "transfer", "testhost").unwrap();
        let b = identity(dir.path(), "transfer", "testhost").unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_eq!(a.fingerprint.len(), 64);
        let crt = dir.path().join("tls/transfer.crt");
        assert_eq!(certificate_fingerprint(&crt).unwrap(), a.fingerprint);
        let mode = std::fs::metadata(dir.path().join("tls/transfer.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
