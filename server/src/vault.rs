//! The hub's credential keys at rest and the Argon2id work on them (ARCHITECTURE §6.1, §6.6).
//!
//! - **Sealed verifiers.** A credential's verifier `K` signs as that credential (HMAC key,
//!   DESIGN §4), so `hub.db` never holds it in the clear: it is sealed with ChaCha20-Poly1305
//!   under a 32-byte key kept outside the database (`{data_dir}/hub/verifier.key`, 0600), with
//!   the access key id as associated data (a sealed verifier cannot be moved to another
//!   credential). Stored form: `sealed-v1:` + hex(nonce ‖ ciphertext ‖ tag). A copy of `hub.db`
//!   alone signs nothing. Verifiers written before this existed are sealed at the next start.
//! - **Argon2id under a bound.** Every derivation (login, a new credential) runs on the
//!   blocking pool, at most [`ARGON2_PARALLEL`] at once (each one takes 19 MiB); the others
//!   wait their turn without holding a thread.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use agent_core::auth::{derive_verifier, Secret, Verifier};
use agent_core::doc::{CredentialDoc, DocType, Document, KdfParams};
use agent_core::ids::AccessKeyId;
use agent_core::store::Store;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::error::ApiError;
use crate::keys::KeyError;

/// Argon2id derivations running at once, at most.
pub const ARGON2_PARALLEL: usize = 2;

/// The prefix of a sealed verifier in the credential document.
const SEALED: &str = "sealed-v1:";

/// Where the sealing key lives, below the data directory.
pub const KEY_FILE: &str = "hub/verifier.key";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("credential {0}: its verifier is not sealed")]
    NotSealed(AccessKeyId),
    #[error("credential {0}: its verifier does not open with this hub's key")]
    WrongKey(AccessKeyId),
}

/// The sealing key and the Argon2 bound. One per hub process (in `AppState`).
pub struct Vault {
    key: LessSafeKey,
    argon2: tokio::sync::Semaphore,
    /// Derivations in flight now, and the most ever at once (reported to tests).
    running: AtomicUsize,
    peak: AtomicUsize,
    derived: AtomicUsize,
}

impl Vault {
    pub fn new(key: &[u8; 32]) -> Vault {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 takes a 32-byte key"));
        Vault {
            key: LessSafeKey::new(unbound),
            argon2: tokio::sync::Semaphore::new(ARGON2_PARALLEL),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            derived: AtomicUsize::new(0),
        }
    }

    /// A vault with a random key that lives as long as the process (tests, and until
    /// [`load`] replaces it at start).
    pub fn ephemeral() -> Vault {
        Vault::new(&rand::random())
    }

    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED)
    }

    /// The stored form of `verifier` for the credential `owner`.
    pub fn seal(&self, owner: &AccessKeyId, verifier: &Verifier) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut buf = verifier.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner.as_str().as_bytes()),
                &mut buf,
            )
            .unwrap_or_else(|_| unreachable!("sealing 32 bytes cannot fail"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{SEALED}{}", hex::encode(out))
    }

    /// The verifier of the credential `owner` from its stored form.
    pub fn open(&self, owner: &AccessKeyId, stored: &str) -> Result<Verifier, VaultError> {
        let hex_part = stored.strip_prefix(SEALED).ok_or_else(|| VaultError::NotSealed(owner.clone()))?;
        let wrong = || VaultError::WrongKey(owner.clone());
        let bytes = hex::decode(hex_part).map_err(|_| wrong())?;
        if bytes.len() <= NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(owner.as_str().as_bytes()), &mut buf)
            .map_err(|_| wrong())?;
        let raw: [u8; 32] = plain.try_into().map_err(|_| wrong())?;
        Ok(Verifier::from_bytes(raw))
    }

    /// `K = Argon2id(secret, kdf)` on the blocking pool, at most [`ARGON2_PARALLEL`] at once.
    pub async fn derive(&self, secret: Secret, kdf: KdfParams) -> Result<Verifier, ApiError> {
        let _permit = self.argon2.acquire().await.map_err(|e| ApiError::Internal(e.to_string()))?;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let derived = tokio::task::spawn_blocking(move || derive_verifier(&secret, &kdf)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.derived.fetch_add(1, Ordering::SeqCst);
        derived.map_err(|e| ApiError::Internal(e.to_string()))?.map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Whether `secret` is `cred`'s (Argon2id under the bound, constant-time compare).
    pub async fn secret_matches(&self, cred: &CredentialDoc, secret: Secret) -> Result<bool, ApiError> {
        let stored = self.signing_key(cred)?;
        Ok(self.derive(secret, cred.kdf.clone()).await?.matches(&stored))
    }

    /// The HMAC key of `cred` (its verifier, unsealed).
    pub fn signing_key(&self, cred: &CredentialDoc) -> Result<Verifier, ApiError> {
        self.open(&cred.access_key_id, &cred.verifier).map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// The most Argon2id derivations that ever ran at once in this process.
    pub fn peak_parallel(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// How many Argon2id derivations this process ran.
    pub fn derivations(&self) -> usize {
        self.derived.load(Ordering::SeqCst)
    }
}

/// The vault of the hub in `data_dir`: its key from `hub/verifier.key` (made on first start),
/// and every verifier still in the clear sealed with it (blocking). A database whose verifiers
/// are sealed but whose key file is gone is refused with what to do, never given a new key.
pub fn load(data_dir: &Path, store: &Store) -> Result<Vault, KeyError> {
    let path = data_dir.join(KEY_FILE);
    let fail = |message: String| KeyError { path: path.clone(), message };
    let credentials: Vec<CredentialDoc> = store
        .list_type(DocType::Credential)
        .map_err(|e| fail(format!("reading the credentials: {e}")))?
        .into_iter()
        .filter_map(|d| match d {
            Document::Credential(c) => Some(c),
            _ => None,
        })
        .collect();
    let vault = match std::fs::read(&path) {
        Ok(bytes) => {
            let key: [u8; 32] = bytes.try_into().map_err(|_| fail("expected 32 bytes".into()))?;
            Vault::new(&key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if credentials.iter().any(|c| Vault::is_sealed(&c.verifier)) {
                return Err(fail(
                    "missing: the credentials in hub.db are sealed with this key and cannot be used \
                     without it; restore it from a copy of the data directory"
                        .into(),
                ));
            }
            let key: [u8; 32] = rand::random();
            agent_core::private_files::write_private(&path, &key).map_err(|e| fail(e.to_string()))?;
            Vault::new(&key)
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let mut sealed = 0;
    for mut cred in credentials.into_iter().filter(|c| !Vault::is_sealed(&c.verifier)) {
        let Some(clear) = Verifier::from_hex(&cred.verifier) else {
            tracing::error!(access_key_id = %cred.access_key_id, "credential with a malformed verifier left as it is");
            continue;
        };
        cred.verifier = vault.seal(&cred.access_key_id, &clear);
        store.put(cred.into()).map_err(|e| fail(format!("sealing a verifier: {e}")))?;
        sealed += 1;
    }
    if sealed > 0 {
        tracing::info!(credentials = sealed, key = %path.display(), "verifiers sealed at rest");
    }
    Ok(vault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_verifier_opens_only_with_its_key_and_for_its_credential() {
        let vault = Vault::ephemeral();
        let (a, b) = (AccessKeyId::generate(), AccessKeyId::generate());
        let k = Verifier::from_bytes(rand::random());
        let sealed = vault.seal(&a, &k);
        assert!(Vault::is_sealed(&sealed) && !sealed.contains(&k.to_hex()), "{sealed}");
        assert_ne!(sealed, vault.seal(&a, &k), "a fresh nonce each time");
        assert_eq!(vault.open(&a, &sealed).unwrap(), k);
        assert!(matches!(vault.open(&b, &sealed), Err(VaultError::WrongKey(_))), "bound to its credential");
        assert!(matches!(Vault::ephemeral().open(&a, &sealed), Err(VaultError::WrongKey(_))));
        assert!(matches!(vault.open(&a, &k.to_hex()), Err(VaultError::NotSealed(_))));
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(vault.open(&a, &flipped).is_err(), "tampering is detected");
        for junk in ["sealed-v1:", "sealed-v1:zz", "sealed-v1:00"] {
            assert!(vault.open(&a, junk).is_err(), "{junk}");
        }
    }
}
