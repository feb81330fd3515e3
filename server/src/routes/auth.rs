use std::net::SocketAddr;
use std::time::Instant;

use agent_core::auth::Secret;
use agent_core::doc::CredentialRole;
use agent_core::ids::AccessKeyId;
use agent_core::wire::auth::{LoggedOut, Login, LoginAnswer, WhoAmI};
use axum::extract::{ConnectInfo, State};
use axum::Json;

use crate::auth::{issue, Session};
use crate::credentials;
use crate::error::ApiError;
use crate::limits::SmallJson;
use crate::state::AppState;

/// `POST /api/auth/login`: an enabled admin credential's id and secret → a 24-hour token.
/// Rate-limited per client IP (a limited attempt is not even checked). The body is at most
/// 4 KiB (413 before it is read). An unknown key costs the same Argon2id derivation as a known
/// one, so the answer's timing does not tell which keys exist.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body = Login,
    responses((status = 200, body = LoginAnswer), crate::error::ErrorResponses),
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    SmallJson(body): SmallJson<Login>,
) -> Result<Json<LoginAnswer>, ApiError> {
    let (token, claims) = authenticate(&state, peer.ip(), &body.access_key_id, body.secret).await?;
    Ok(Json(LoginAnswer { token, expires_at: claims.exp }))
}

/// Checks an access key id and secret under the login rate limit of `ip` and issues a session
/// token: the API's login and the web UI's login form both come here.
pub(crate) async fn authenticate(
    state: &AppState,
    ip: std::net::IpAddr,
    access_key_id: &str,
    secret: String,
) -> Result<(String, crate::auth::Claims), ApiError> {
    let limited = state.login_limiter.lock().unwrap_or_else(|p| p.into_inner()).attempt(ip, Instant::now());
    if let Err(retry_after_secs) = limited {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let key: AccessKeyId = access_key_id.parse().map_err(|_| ApiError::BadCredentials)?;
    let secret = Secret::from_string(secret);
    let ok = match credentials::get(&state.store, &key).await? {
        Some(cred) => {
            state.vault.secret_matches(&cred, secret).await?
                && cred.enabled
                && cred.role == CredentialRole::Admin
        }
        None => {
            // The same work as a wrong secret: Argon2id with the parameters the kdf endpoint
            // shows for this id.
            state.vault.derive(secret, fake_kdf(state, &key)).await?;
            false
        }
    };
    if !ok {
        tracing::info!(access_key_id = %key, %ip, "login refused");
        return Err(ApiError::BadCredentials);
    }
    let issued = issue(&state.jwt, key.as_str(), chrono::Utc::now().timestamp())?;
    tracing::info!(access_key_id = %key, %ip, "login");
    Ok(issued)
}

/// The stable made-up KDF parameters of an access key id that does not exist.
fn fake_kdf(state: &AppState, key: &AccessKeyId) -> agent_core::doc::KdfParams {
    let mut fake = agent_core::auth::new_kdf_params();
    fake.salt = state.jwt.fake_salt(key.as_str());
    fake
}

/// `GET /api/auth/whoami`
#[utoipa::path(
    get,
    path = "/api/auth/whoami",
    operation_id = "whoami",
    tag = "auth",
    responses((status = 200, body = WhoAmI), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn whoami(State(state): State<AppState>, session: Session) -> Result<Json<WhoAmI>, ApiError> {
    let key: AccessKeyId = session.claims.sub.parse().map_err(|_| ApiError::Unauthorized)?;
    let cred = credentials::get(&state.store, &key).await?.ok_or(ApiError::Unauthorized)?;
    Ok(Json(WhoAmI { access_key_id: key, name: cred.name, role: cred.role, expires_at: session.claims.exp }))
}

/// `POST /api/auth/logout`: this token stops working, also after a restart of the hub (the
/// revocation is kept in the hub store's `meta` until the token would have expired).
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    operation_id = "logout",
    tag = "auth",
    responses((status = 200, body = LoggedOut), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn logout(State(state): State<AppState>, session: Session) -> Result<Json<LoggedOut>, ApiError> {
    end_session(&state, &session).await?;
    Ok(Json(LoggedOut { logged_out: true }))
}

/// Revokes a session's token, also across restarts (the API's logout and the web UI's).
pub(crate) async fn end_session(state: &AppState, session: &Session) -> Result<(), ApiError> {
    let (jti, exp) = (session.claims.jti.clone(), session.claims.exp);
    state
        .store
        .run(move |s| s.meta_set(&format!("{}{jti}", crate::auth::REVOKED_PREFIX), &exp.to_string()))
        .await?;
    let now = chrono::Utc::now().timestamp();
    let mut revoked = state.revoked.lock().unwrap_or_else(|p| p.into_inner());
    revoked.retain(|_, exp| *exp > now);
    revoked.insert(session.claims.jti.clone(), session.claims.exp);
    Ok(())
}

/// `GET /api/auth/kdf/{access_key_id}`: the salt and cost a secret's holder needs to derive the
/// signing key. Public; for an unknown id it answers stable made-up parameters (derived from the
/// hub's key), so it does not reveal which ids exist.
#[utoipa::path(
    get,
    path = "/api/auth/kdf/{access_key_id}",
    operation_id = "get_kdf",
    tag = "auth",
    params(("access_key_id" = String, Path, description = "Access key id")),
    responses((status = 200, body = agent_core::doc::KdfParams), crate::error::ErrorResponses),
)]
pub async fn kdf(
    State(state): State<AppState>,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Json<agent_core::doc::KdfParams>, ApiError> {
    let key: AccessKeyId = raw.parse().map_err(ApiError::from)?;
    match credentials::get(&state.store, &key).await? {
        Some(c) => Ok(Json(c.kdf)),
        None => Ok(Json(fake_kdf(&state, &key))),
    }
}
