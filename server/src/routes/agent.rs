//! `/api/agent/*`: what agents call, HMAC-signed (ARCHITECTURE §5, §6.2, §6.4). The signer's
//! node comes from its credential ([`AgentIdentity`]), never from the request.

use agent_core::doc::Document;
use agent_core::ids::DocId;
use agent_core::store::{Applied, PutError};
use agent_core::wire::sync::{
    HeartbeatAnswer, PublicKey, PushAnswer, PushRefusal, PushRequest, PushResult, RefusalCode, TransferToken,
    TransferTokenRequest,
};
use axum::extract::State;
use axum::Json;

use crate::agent_auth::AgentIdentity;
use crate::credentials;
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;
use agent_core::wire::credentials::CredentialView;

/// The hub's transfer-token public key as a JWK.
pub fn public_key(state: &AppState) -> PublicKey {
    PublicKey::ed25519(state.transfer.public_key())
}

/// Documents per push at most.
pub const MAX_PUSH_DOCS: usize = 200;

/// `POST /api/agent/heartbeat`: proves the node's credential works and returns the hub's clock
/// (agents log a skew over 2 minutes). Liveness itself travels as the node document in pushes.
#[utoipa::path(
    post,
    path = "/api/agent/heartbeat",
    operation_id = "agent_heartbeat",
    tag = "agent",
    responses(
        (status = 200, description = "node_id and the hub clock (server_time, unix seconds)", body = HeartbeatAnswer),
        crate::error::ErrorResponses,
    ),
    security(("hmac" = [])),
)]
pub async fn heartbeat(agent: AgentIdentity) -> Json<HeartbeatAnswer> {
    Json(HeartbeatAnswer { node_id: agent.node_id, server_time: chrono::Utc::now().timestamp() })
}

/// `POST /api/agent/push`: bulk upsert of the signer's own documents, one answer per document
/// in order (ARCHITECTURE §5.1). A document the signer does not own is refused `not_owner`.
#[utoipa::path(
    post,
    path = "/api/agent/push",
    operation_id = "agent_push",
    tag = "agent",
    request_body = PushRequest,
    responses((status = 200, body = PushAnswer), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn push(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(body): JsonBody<PushRequest>,
) -> Result<Json<PushAnswer>, ApiError> {
    if body.docs.len() > MAX_PUSH_DOCS {
        return Err(ApiError::BadRequest(format!(
            "{} documents in one push; at most {MAX_PUSH_DOCS}",
            body.docs.len()
        )));
    }
    let results = apply(&state, &agent, body.docs).await?;
    let last_seq = state.store.last_seq();
    Ok(Json(PushAnswer { results, last_seq, hub: state.hub_info() }))
}

/// Applies pushed documents with the ownership check; one answer per document.
async fn apply(
    state: &AppState,
    agent: &AgentIdentity,
    docs: Vec<serde_json::Value>,
) -> Result<Vec<PushResult>, ApiError> {
    let ids: Vec<String> =
        docs.iter().map(|d| d.get("_id").and_then(|v| v.as_str()).unwrap_or("").to_owned()).collect();
    let signer = agent.node_id.clone();
    let results = state.store.run(move |s| s.apply_pushed(docs, agent_core::doc::now(), &signer)).await?;
    let answers = results
        .into_iter()
        .zip(ids)
        .map(|(r, id)| match r {
            Ok(Applied::Written(w)) => PushResult::written(w.id.to_string(), w.rev, w.seq),
            Ok(Applied::Stale { id, current_rev }) => PushResult::refused(
                id.to_string(),
                PushRefusal {
                    code: RefusalCode::Stale,
                    reason: "the hub has this or a newer revision".into(),
                    current_rev: Some(current_rev),
                },
            ),
            Err(e) => {
                let code = match &e {
                    PutError::NotOwner { .. } => RefusalCode::NotOwner,
                    PutError::Invalid { .. } => RefusalCode::Invalid,
                    PutError::Conflict { .. } | PutError::Rejected { .. } => RefusalCode::Conflict,
                    PutError::InodeTaken { .. } => RefusalCode::InodeTaken,
                };
                if code != RefusalCode::Conflict {
                    tracing::warn!(node_id = %agent.node_id, id, code = code.as_str(), error = %e, "push refused");
                }
                PushResult::refused(id, PushRefusal::new(code, e.to_string()))
            }
        })
        .collect();
    Ok(answers)
}

/// Pushes one document of the signer's and answers like one push result (400 if refused).
async fn push_one(
    state: &AppState,
    agent: &AgentIdentity,
    doc: serde_json::Value,
    expected_type: &str,
) -> Result<Json<PushResult>, ApiError> {
    if doc.get("type").and_then(|t| t.as_str()) != Some(expected_type) {
        return Err(ApiError::BadRequest(format!("expected a {expected_type} document")));
    }
    let Some(answer) = apply(state, agent, vec![doc]).await?.pop() else {
        return Err(ApiError::Internal("no answer for a pushed document".into()));
    };
    match answer.refusal() {
        None => Ok(Json(answer)),
        Some(r) if r.code == RefusalCode::Stale => Ok(Json(answer)),
        Some(r) if r.code == RefusalCode::NotOwner => Err(ApiError::Forbidden),
        Some(r) => Err(ApiError::BadRequest(r.reason)),
    }
}

/// `POST /api/agent/status`: the signer's `agent_status` document (plan §2.8), through the push path.
#[utoipa::path(
    post,
    path = "/api/agent/status",
    operation_id = "agent_status",
    tag = "agent",
    request_body(content = serde_json::Value, description = "The signer's agent_status document"),
    responses(
        (status = 200, description = "One push result", body = PushResult),
        crate::error::ErrorResponses,
    ),
    security(("hmac" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(doc): JsonBody<serde_json::Value>,
) -> Result<Json<PushResult>, ApiError> {
    push_one(&state, &agent, doc, "agent_status").await
}

/// `POST /api/agent/utilization`: a `utilization_snapshot` of the signer, through the push path.
#[utoipa::path(
    post,
    path = "/api/agent/utilization",
    operation_id = "agent_utilization",
    tag = "agent",
    request_body(content = serde_json::Value, description = "A utilization_snapshot document of the signer"),
    responses(
        (status = 200, description = "One push result", body = PushResult),
        crate::error::ErrorResponses,
    ),
    security(("hmac" = [])),
)]
pub async fn utilization(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(doc): JsonBody<serde_json::Value>,
) -> Result<Json<PushResult>, ApiError> {
    push_one(&state, &agent, doc, "utilization_snapshot").await
}

/// `GET /api/agent/credentials`: the signing credential as the hub sees it (never the verifier).
#[utoipa::path(
    get,
    path = "/api/agent/credentials",
    operation_id = "agent_credential",
    tag = "agent",
    responses((status = 200, body = CredentialView), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn credential(
    State(state): State<AppState>,
    agent: AgentIdentity,
) -> Result<Json<CredentialView>, ApiError> {
    let cred = credentials::get(&state.store, &agent.access_key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("credential".into()))?;
    Ok(Json(CredentialView::from(&cred)))
}

/// `POST /api/agent/transfer-token {file_id}`: a short-lived EdDSA token that lets the signer
/// fetch that file from the node that owns it (ARCHITECTURE §6.4).
#[utoipa::path(
    post,
    path = "/api/agent/transfer-token",
    operation_id = "agent_transfer_token",
    tag = "agent",
    request_body = TransferTokenRequest,
    responses((status = 200, body = TransferToken), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn transfer_token(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(body): JsonBody<TransferTokenRequest>,
) -> Result<Json<TransferToken>, ApiError> {
    let id = DocId::from(&body.file_id);
    let file = match state.store.run(move |s| s.get(&id)).await? {
        Some(Document::File(f)) if f.status == agent_core::doc::FileStatus::Active => f,
        _ => return Err(ApiError::NotFound(format!("file {}", body.file_id))),
    };
    let server = file.source.node_id.clone();
    if server == agent.node_id {
        return Err(ApiError::BadRequest("the file is on the requesting node: read it locally".into()));
    }
    let now = chrono::Utc::now().timestamp();
    let (token, claims) = state
        .transfer
        .issue(agent.node_id.as_str(), &server, &file.id, now, agent_core::transfer_token::MAX_TTL_SECS)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::debug!(node_id = %agent.node_id, file_id = %file.id, serving = %server, "transfer token issued");
    Ok(Json(TransferToken { token, node_id: claims.aud, file_id: claims.file_id, expires_at: claims.exp }))
}

/// `GET /api/agent/transfer-key`: the hub's public key for transfer tokens (agents pin it).
#[utoipa::path(
    get,
    path = "/api/agent/transfer-key",
    operation_id = "agent_transfer_key",
    tag = "agent",
    responses((status = 200, body = PublicKey), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn transfer_key(State(state): State<AppState>, _agent: AgentIdentity) -> Json<PublicKey> {
    Json(public_key(&state))
}
