//! `/api/credentials`: access keys (ARCHITECTURE §6.1). The secret appears in one answer only.

use serde::{Deserialize, Serialize};

use crate::doc::{CredentialDoc, CredentialRole};
use crate::ids::{AccessKeyId, NodeId};

/// What the API shows of a credential: never the verifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialView {
    pub access_key_id: AccessKeyId,
    pub name: String,
    pub role: CredentialRole,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&CredentialDoc> for CredentialView {
    fn from(c: &CredentialDoc) -> Self {
        CredentialView {
            access_key_id: c.access_key_id.clone(),
            name: c.name.clone(),
            role: c.role,
            enabled: c.enabled,
            node_id: c.node_id.clone(),
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        }
    }
}

/// `POST /api/credentials`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCredential {
    pub name: String,
    #[serde(default = "admin")]
    pub role: CredentialRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<NodeId>,
}

fn admin() -> CredentialRole {
    CredentialRole::Admin
}

/// A new credential: the secret appears in this answer only.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedCredential {
    pub credential: CredentialView,
    pub access_key_id: AccessKeyId,
    pub secret: String,
}

impl std::fmt::Debug for CreatedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedCredential").field("credential", &self.credential).finish_non_exhaustive()
    }
}

/// `PATCH /api/credentials/{access_key_id}`: enable/disable, rename.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
