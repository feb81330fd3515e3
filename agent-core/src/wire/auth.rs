//! `/api/auth/*`: login for a 24-hour session token, who am I, logout (ARCHITECTURE §6.3).

use serde::{Deserialize, Serialize};

use crate::doc::CredentialRole;
use crate::ids::AccessKeyId;

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub access_key_id: String,
    pub secret: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginAnswer {
    /// A JWT for `Authorization: Bearer`, valid 24 hours.
    pub token: String,
    /// Unix seconds.
    pub expires_at: i64,
}

impl std::fmt::Debug for LoginAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAnswer").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WhoAmI {
    pub access_key_id: AccessKeyId,
    pub name: String,
    pub role: CredentialRole,
    /// When the session ends (Unix seconds).
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoggedOut {
    pub logged_out: bool,
}
