//! HMAC-SHA256 authentication of agent requests (`/api/agent/*`, DESIGN §4, ARCHITECTURE §6.2):
//! a middleware that checks the window, the credential (enabled, bound to a node), the signature
//! over method, path, query and body, and replays, then hands the handler an [`AgentIdentity`].

use agent_core::auth::{AuthError, AuthHeader};
use agent_core::doc::CredentialRole;
use agent_core::ids::{AccessKeyId, NodeId};
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::credentials;
use crate::error::{ApiError, ErrorCode};
use crate::limits;
use crate::state::AppState;

/// How long a signed request may take to get its turn in the body budget, and to send its body.
const BODY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Who signed an agent request.
#[derive(Clone, Debug)]
pub struct AgentIdentity {
    pub access_key_id: AccessKeyId,
    pub node_id: NodeId,
}

fn bad(e: AuthError) -> ApiError {
    let code = match e {
        AuthError::MalformedHeader(_) => ErrorCode::MalformedAuthorization,
        AuthError::ClockSkew { .. } => ErrorCode::ClockSkew,
        AuthError::Replay => ErrorCode::Replay,
        _ => ErrorCode::BadSignature,
    };
    ApiError::BadSignature { code, message: e.to_string() }
}

/// An agent that says it speaks another protocol is refused before anything else (absent: 1).
fn check_protocol(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    use agent_core::wire::{PROTOCOL_HEADER, PROTOCOL_VERSION};
    let Some(v) = headers.get(PROTOCOL_HEADER) else { return Ok(()) };
    match v.to_str().ok().and_then(|v| v.trim().parse::<u32>().ok()) {
        Some(PROTOCOL_VERSION) => Ok(()),
        Some(theirs) => Err(ApiError::ProtocolMismatch(format!(
            "this hub speaks agent protocol {PROTOCOL_VERSION}, the agent {theirs}: upgrade the {}",
            if theirs < PROTOCOL_VERSION { "agent" } else { "hub" }
        ))),
        None => Err(ApiError::BadRequest(format!("{PROTOCOL_HEADER} must be a number"))),
    }
}

/// The middleware on every `/api/agent/*` route.
pub async fn require_signature(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check_protocol(req.headers())?;
    let header = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized)?
        .to_str()
        .map_err(|_| bad(AuthError::MalformedHeader("not ASCII")))?;
    let auth = AuthHeader::parse(header).map_err(bad)?;
    let now = chrono::Utc::now().timestamp();
    agent_core::auth::check_window(auth.timestamp, now).map_err(|e| {
        tracing::warn!(access_key_id = %auth.credential, error = %e, "agent request outside the time window");
        bad(e)
    })?;
    let cred =
        credentials::get(&state.store, &auth.credential).await?.ok_or_else(|| ApiError::BadSignature {
            code: ErrorCode::UnknownCredential,
            message: "unknown or disabled credential".into(),
        })?;
    let node_id = match (&cred.role, &cred.node_id, cred.enabled) {
        (CredentialRole::Node, Some(node), true) => node.clone(),
        (_, _, false) => {
            return Err(ApiError::BadSignature {
                code: ErrorCode::UnknownCredential,
                message: "unknown or disabled credential".into(),
            })
        }
        _ => return Err(ApiError::Forbidden),
    };
    let key = state.vault.signing_key(&cred)?;

    let (mut parts, body) = req.into_parts();
    // Bounded before a byte is hashed: the route's cap (413 at once when announced larger), a
    // share of the hub-wide budget for bodies not yet verified, and a time limit to send it.
    let cap = limits::agent_body_cap(parts.uri.path());
    limits::check_announced(&parts.headers, cap)?;
    let announced = limits::content_length(&parts.headers)?.map_or(cap, |n| n as usize);
    let kib = (announced.min(cap) / 1024 + 1) as u32;
    let _budget = tokio::time::timeout(BODY_WAIT, state.agent_bodies.clone().acquire_many_owned(kib))
        .await
        .map_err(|_| ApiError::Busy)?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let bytes = tokio::time::timeout(BODY_WAIT, axum::body::to_bytes(body, cap))
        .await
        .map_err(|_| ApiError::BadRequest("the request body did not arrive in time".into()))?
        .map_err(|_| ApiError::TooLarge)?;
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    auth.verify(&key, &method, &path, &query, &bytes, now).map_err(bad)?;
    state.replay.lock().unwrap_or_else(|p| p.into_inner()).check_and_record(&auth, now).map_err(bad)?;

    parts.extensions.insert(AgentIdentity { access_key_id: auth.credential, node_id });
    Ok(next.run(Request::from_parts(parts, Body::from(bytes))).await)
}

impl FromRequestParts<AppState> for AgentIdentity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AgentIdentity>().cloned().ok_or(ApiError::Unauthorized)
    }
}
