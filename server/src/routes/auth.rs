use std::net::SocketAddr;
use std::time::Instant;

use agent_core::auth::Secret;
use agent_core::doc::CredentialRole;
use agent_core::ids::AccessKeyId;
use axum::extract::{ConnectInfo, State};
use axum::Json;
use serde::Deserialize;

use crate::auth::{issue, Session};
use crate::credentials;
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    access_key_id: String,
    secret: String,
}

/// `POST /api/auth/login`: an enabled admin credential's id and secret → a 24-hour token.
/// Rate-limited per client IP (a limited attempt is not even checked).
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(body): JsonBody<Login>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limited =
        state.login_limiter.lock().unwrap_or_else(|p| p.into_inner()).attempt(peer.ip(), Instant::now());
    if let Err(retry_after_secs) = limited {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let key: AccessKeyId = body.access_key_id.parse().map_err(|_| ApiError::BadCredentials)?;
    let cred = credentials::get(&state.store, &key).await?.ok_or(ApiError::BadCredentials)?;
    let ok = credentials::secret_matches(&cred, Secret::from_string(body.secret)).await?;
    if !ok || !cred.enabled || cred.role != CredentialRole::Admin {
        tracing::info!(access_key_id = %key, ip = %peer.ip(), "login refused");
        return Err(ApiError::BadCredentials);
    }
    let (token, claims) = issue(&state.jwt, key.as_str(), chrono::Utc::now().timestamp())?;
    tracing::info!(access_key_id = %key, ip = %peer.ip(), "login");
    Ok(Json(serde_json::json!({"token": token, "expires_at": claims.exp})))
}

/// `GET /api/auth/whoami`
pub async fn whoami(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<serde_json::Value>, ApiError> {
    let key: AccessKeyId = session.claims.sub.parse().map_err(|_| ApiError::Unauthorized)?;
    let cred = credentials::get(&state.store, &key).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(serde_json::json!({
        "access_key_id": key,
        "name": cred.name,
        "role": cred.role,
        "expires_at": session.claims.exp,
    })))
}

/// `POST /api/auth/logout`: this token stops working, also after a restart of the hub (the
/// revocation is kept in the hub store's `meta` until the token would have expired).
pub async fn logout(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (jti, exp) = (session.claims.jti.clone(), session.claims.exp);
    state
        .store
        .run(move |s| s.meta_set(&format!("{}{jti}", crate::auth::REVOKED_PREFIX), &exp.to_string()))
        .await?;
    let now = chrono::Utc::now().timestamp();
    let mut revoked = state.revoked.lock().unwrap_or_else(|p| p.into_inner());
    revoked.retain(|_, exp| *exp > now);
    revoked.insert(session.claims.jti, session.claims.exp);
    Ok(Json(serde_json::json!({"logged_out": true})))
}

/// `GET /api/auth/kdf/{access_key_id}`: the salt and cost a secret's holder needs to derive the
/// signing key. Public; for an unknown id it answers stable made-up parameters (derived from the
/// hub's key), so it does not reveal which ids exist.
pub async fn kdf(
    State(state): State<AppState>,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Json<agent_core::doc::KdfParams>, ApiError> {
    let key: AccessKeyId = raw.parse().map_err(ApiError::from)?;
    match credentials::get(&state.store, &key).await? {
        Some(c) => Ok(Json(c.kdf)),
        None => {
            let mut fake = agent_core::auth::new_kdf_params();
            fake.salt = state.jwt.fake_salt(key.as_str());
            Ok(Json(fake))
        }
    }
}
