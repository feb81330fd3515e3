//! Credential records in the hub store: create (the secret is returned once and never stored;
//! the verifier is sealed by the [`Vault`]), look up. Argon2id runs in the vault, on the
//! blocking pool under a bound.

use agent_core::auth::{new_kdf_params, Secret};
use agent_core::doc::{self, CredentialDoc, CredentialRole, Document};
use agent_core::ids::{AccessKeyId, CredentialId, NodeId, Rev};
use agent_core::store::Store;
pub use agent_core::wire::credentials::CredentialView;

use crate::error::ApiError;
use crate::vault::Vault;

/// Makes a credential and stores its verifier, sealed; returns the secret (shown once).
pub async fn create(
    store: &Store,
    vault: &Vault,
    name: String,
    role: CredentialRole,
    node_id: Option<NodeId>,
) -> Result<(CredentialDoc, Secret), ApiError> {
    let secret = Secret::generate();
    let kdf = new_kdf_params();
    let verifier = vault.derive(secret.clone(), kdf.clone()).await?;
    let key = AccessKeyId::generate();
    let sealed = vault.seal(&key, &verifier);
    let cred = CredentialDoc {
        id: CredentialId::for_key(&key),
        rev: Rev::NONE,
        access_key_id: key,
        name,
        kdf,
        verifier: sealed,
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
