//! People's and the CLI's sessions: 24-hour HS256 JWTs with a `jti` that logout revokes, and the
//! [`Session`] extractor that every protected route takes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

pub const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;

/// `meta` keys of revoked token ids: `revoked_jti:{jti}` → expiry (unix seconds).
pub const REVOKED_PREFIX: &str = "revoked_jti:";

/// Loads the revocations that still matter and forgets the expired ones.
pub fn load_revoked(
    store: &agent_core::store::Store,
    now: i64,
) -> Result<std::collections::HashMap<String, i64>, agent_core::store::StoreError> {
    let mut live = std::collections::HashMap::new();
    for (key, value) in store.meta_with_prefix(REVOKED_PREFIX)? {
        let exp: i64 = value.parse().unwrap_or(0);
        if exp > now {
            live.insert(key[REVOKED_PREFIX.len()..].to_owned(), exp);
        } else {
            store.meta_delete(&key)?;
        }
    }
    Ok(live)
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Keyed hash for made-up salts of unknown access key ids (`GET /api/auth/kdf/{id}`).
    salt_key: [u8; 32],
}

impl JwtKeys {
    pub fn from_secret(key: &[u8]) -> JwtKeys {
        use sha2::{Digest, Sha256};
        let salt_key: [u8; 32] =
            Sha256::new().chain_update(b"mosaicfs-fake-kdf-salt").chain_update(key).finalize().into();
        JwtKeys { encoding: EncodingKey::from_secret(key), decoding: DecodingKey::from_secret(key), salt_key }
    }

    /// A stable 16-byte salt (hex) for an access key id that does not exist.
    pub fn fake_salt(&self, access_key_id: &str) -> String {
        use sha2::{Digest, Sha256};
        let h = Sha256::new().chain_update(self.salt_key).chain_update(access_key_id.as_bytes()).finalize();
        hex::encode(&h[..16])
    }
}

/// The claims of a session token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The access key id that logged in.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub fn issue(keys: &JwtKeys, access_key_id: &str, now: i64) -> Result<(String, Claims), ApiError> {
    let claims = Claims {
        sub: access_key_id.to_owned(),
        iat: now,
        exp: now + TOKEN_LIFETIME_SECS,
        jti: hex::encode(rand::random::<[u8; 16]>()),
    };
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
        .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))?;
    Ok((token, claims))
}

/// `meta` keys of the moment a credential was last disabled: `session_floor:{access_key_id}` →
/// unix seconds. Sessions issued at or before it stay refused even if the credential is enabled
/// again (a token of a disabled credential never comes back to life).
pub const SESSION_FLOOR_PREFIX: &str = "session_floor:";

/// Records that `key`'s sessions issued until now are over (its credential was disabled).
pub async fn end_sessions_of(
    store: &agent_core::store::Store,
    key: &agent_core::ids::AccessKeyId,
    now: i64,
) -> Result<(), ApiError> {
    let meta_key = format!("{SESSION_FLOOR_PREFIX}{key}");
    store.run(move |s| s.meta_set(&meta_key, &now.to_string())).await?;
    Ok(())
}

/// A request authenticated by a valid, unrevoked session token whose credential still exists,
/// is enabled and is an admin.
#[derive(Clone, Debug)]
pub struct Session {
    pub claims: Claims,
}

impl Session {
    /// Whether this session still holds: not logged out, and its credential still exists, is
    /// enabled, is an admin and was not disabled after the token was issued. Checked on every
    /// request (the extractor) and while a stream is open (`/api/changes/stream`).
    pub async fn check(state: &AppState, claims: &Claims) -> Result<(), ApiError> {
        let revoked = state.revoked.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&claims.jti);
        if revoked {
            return Err(ApiError::Unauthorized);
        }
        let key: agent_core::ids::AccessKeyId = claims.sub.parse().map_err(|_| ApiError::Unauthorized)?;
        let id = agent_core::ids::CredentialId::for_key(&key);
        let floor_key = format!("{SESSION_FLOOR_PREFIX}{key}");
        let (cred, floor) =
            state.store.run(move |s| Ok((s.get(&id.into())?, s.meta_get(&floor_key)?))).await?;
        let live = match cred {
            Some(agent_core::doc::Document::Credential(c)) => {
                c.enabled && c.role == agent_core::doc::CredentialRole::Admin
            }
            _ => false,
        };
        let floor: Option<i64> = floor.and_then(|f| f.parse().ok());
        if !live || floor.is_some_and(|f| claims.iat <= f) {
            return Err(ApiError::Unauthorized);
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(session) = parts.extensions.get::<Session>() {
            return Ok(session.clone()); // checked by `require_session` for this request
        }
        let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
        let token =
            header.to_str().ok().and_then(|h| h.strip_prefix("Bearer ")).ok_or(ApiError::Unauthorized)?;
        Session::from_token(state, token.trim()).await
    }
}

impl Session {
    /// The session a token stands for, if it is valid and [`Session::check`] holds: a bearer
    /// token of the API, or the web UI's session cookie.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Session, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &state.jwt.decoding, &validation)
            .map_err(|_| ApiError::Unauthorized)?;
        Session::check(state, &data.claims).await?;
        Ok(Session { claims: data.claims })
    }
}

/// The layer of every [`crate::routes::Access::Session`] route: a valid session or a 401,
/// checked once per request (the handler's [`Session`] extractor reads it back).
pub async fn require_session(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    let session = Session::from_request_parts(&mut parts, &state).await?;
    parts.extensions.insert(session);
    Ok(next.run(axum::extract::Request::from_parts(parts, body)).await)
}
