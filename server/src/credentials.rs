//! Credential records in the hub store: create (the secret is returned once and never stored),
//! look up, and verify a secret. Argon2id runs on the blocking pool.

use agent_core::auth::{derive_verifier, new_kdf_params, Secret, Verifier};
use agent_core::doc::{self, CredentialDoc, CredentialRole, Document};
use agent_core::ids::{AccessKeyId, CredentialId, NodeId, Rev};
use agent_core::store::Store;
pub use agent_core::wire::credentials::CredentialView;

use crate::error::ApiError;

/// Makes a credential and stores its verifier; returns the secret (shown once).
pub async fn create(
    store: &Store,
    name: String,
    role: CredentialRole,
    node_id: Option<NodeId>,
) -> Result<(CredentialDoc, Secret), ApiError> {
    let secret = Secret::generate();
    let kdf = new_kdf_params();
    let (s, k) = (secret.clone(), kdf.clone());
    let verifier = tokio::task::spawn_blocking(move || derive_verifier(&s, &k))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let key = AccessKeyId::generate();
    let cred = CredentialDoc {
        id: CredentialId::for_key(&key),
        rev: Rev::NONE,
        access_key_id: key,
        name,
        kdf,
        verifier: verifier.to_hex(),
        enabled: true,
        role,
        node_id,
        created_at: doc::now(),
        last_used_at: None,
    };
    let mut stored = cred.clone();
    let written = store.run(move |s| s.put(cred.into())).await?;
    stored.rev = written.rev;
    Ok((stored, secret))
}

pub async fn get(store: &Store, key: &AccessKeyId) -> Result<Option<CredentialDoc>, ApiError> {
    let id = CredentialId::for_key(key);
    match store.run(move |s| s.get(&id.into())).await? {
        Some(Document::Credential(c)) => Ok(Some(c)),
        _ => Ok(None),
    }
}

pub async fn list(store: &Store) -> Result<Vec<CredentialDoc>, ApiError> {
    let docs = store.run(|s| s.list_type(doc::DocType::Credential)).await?;
    Ok(docs
        .into_iter()
        .filter_map(|d| match d {
            Document::Credential(c) => Some(c),
            _ => None,
        })
        .collect())
}

/// Whether `secret` is this credential's (constant-time compare, Argon2id off the runtime).
pub async fn secret_matches(cred: &CredentialDoc, secret: Secret) -> Result<bool, ApiError> {
    let kdf = cred.kdf.clone();
    let Some(stored) = Verifier::from_hex(&cred.verifier) else {
        return Err(ApiError::Internal(format!(
            "credential {} has a malformed verifier",
            cred.access_key_id
        )));
    };
    let derived = tokio::task::spawn_blocking(move || derive_verifier(&secret, &kdf))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(derived.matches(&stored))
}

/// Disables every enabled credential bound to `node` (soft delete of a node); returns how many.
pub async fn disable_for_node(store: &Store, node: &NodeId) -> Result<usize, ApiError> {
    let node = node.clone();
    let n = store
        .run(move |s| {
            let mut n = 0;
            for d in s.list_type(doc::DocType::Credential)? {
                if let Document::Credential(mut c) = d {
                    if c.node_id.as_ref() == Some(&node) && c.enabled {
                        c.enabled = false;
                        s.put(c.into())?;
                        n += 1;
                    }
                }
            }
            Ok(n)
        })
        .await?;
    Ok(n)
}
