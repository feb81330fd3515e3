//! `/api/agent/*`: what agents call, HMAC-signed (ARCHITECTURE §5, §6.2, §6.4). The signer's
//! node comes from its credential ([`AgentIdentity`]), never from the request.

use agent_core::doc::{Document, Owner};
use agent_core::ids::{DocId, FileId};
use agent_core::store::{Applied, PutError};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::agent_auth::AgentIdentity;
use crate::credentials::{self, CredentialView};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// The hub's transfer-token public key as a JWK (agents pin it when they join).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    kty: String,
    crv: String,
    alg: String,
    /// The raw Ed25519 public key, base64url without padding.
    x: String,
}

impl PublicKey {
    pub fn of(state: &AppState) -> PublicKey {
        PublicKey {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            alg: "EdDSA".into(),
            x: state.transfer.public_key().to_owned(),
        }
    }
}

/// The answer to a push: one result per document, in order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PushAnswer {
    /// `{"id", "ok": true, "rev", "seq"}` or `{"id", "ok": false, "error": {"code", "reason"}}`
    /// with code `not_owner`, `stale` (and `current_rev`), `invalid` or `conflict`.
    results: Vec<serde_json::Value>,
    /// The hub's sequence number after the batch.
    last_seq: agent_core::ids::Seq,
}

/// A transfer token and what it allows.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TransferToken {
    token: String,
    /// The serving node (the token's audience).
    node_id: String,
    file_id: FileId,
    /// Unix seconds.
    expires_at: i64,
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
        (status = 200, description = "node_id and the hub clock (server_time, unix seconds)", body = serde_json::Value),
        crate::error::ErrorResponses,
    ),
    security(("hmac" = [])),
)]
pub async fn heartbeat(agent: AgentIdentity) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "node_id": agent.node_id,
        "server_time": chrono::Utc::now().timestamp(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    docs: Vec<serde_json::Value>,
    /// The highest agent-local sequence number in the batch (monitoring only).
    #[serde(default)]
    #[allow(dead_code)]
    local_seq: Option<u64>,
}

/// `POST /api/agent/push`: bulk upsert of the signer's own documents, one answer per document
/// in order (ARCHITECTURE §5.1). A document the signer does not own is refused `not_owner`.
#[utoipa::path(
    post,
    path = "/api/agent/push",
    operation_id = "agent_push",
    tag = "agent",
    request_body = PushBody,
    responses((status = 200, body = PushAnswer), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn push(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(body): JsonBody<PushBody>,
) -> Result<Json<PushAnswer>, ApiError> {
    if body.docs.len() > MAX_PUSH_DOCS {
        return Err(ApiError::BadRequest(format!(
            "{} documents in one push; at most {MAX_PUSH_DOCS}",
            body.docs.len()
        )));
    }
    let results = apply(&state, &agent, body.docs).await?;
    let last_seq = state.store.last_seq();
    Ok(Json(PushAnswer { results, last_seq }))
}

/// Applies pushed documents with the ownership check; one JSON answer per document.
async fn apply(
    state: &AppState,
    agent: &AgentIdentity,
    docs: Vec<serde_json::Value>,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let ids: Vec<String> =
        docs.iter().map(|d| d.get("_id").and_then(|v| v.as_str()).unwrap_or("").to_owned()).collect();
    let signer = agent.node_id.clone();
    let results = state
        .store
        .run(move |s| {
            let may_write = |doc: &Document| match doc.owner() {
                Owner::Node(n) if n == signer => Ok(()),
                Owner::Node(n) => {
                    Err(format!("{} {} is owned by node {n}", doc.doc_type().as_str(), doc.id()))
                }
                Owner::Hub => Err(format!("{} is owned by the hub", doc.doc_type().as_str())),
            };
            s.apply_pushed(docs, agent_core::doc::now(), &may_write)
        })
        .await?;
    let answers: Vec<serde_json::Value> = results
        .into_iter()
        .zip(ids)
        .map(|(r, id)| match r {
            Ok(Applied::Written(w)) => serde_json::json!({"id": w.id, "ok": true, "rev": w.rev, "seq": w.seq}),
            Ok(Applied::Stale { id, current_rev }) => serde_json::json!({
                "id": id, "ok": false,
                "error": {"code": "stale", "reason": "the hub has this or a newer revision", "current_rev": current_rev},
            }),
            Err(e) => {
                let code = match &e {
                    PutError::NotOwner { .. } => "not_owner",
                    PutError::Invalid { .. } => "invalid",
                    PutError::Conflict { .. } | PutError::Rejected { .. } => "conflict",
                };
                if code == "not_owner" {
                    tracing::warn!(node_id = %agent.node_id, id, error = %e, "push refused: not the owner");
                }
                serde_json::json!({"id": id, "ok": false, "error": {"code": code, "reason": e.to_string()}})
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
) -> Result<Json<serde_json::Value>, ApiError> {
    if doc.get("type").and_then(|t| t.as_str()) != Some(expected_type) {
        return Err(ApiError::BadRequest(format!("expected a {expected_type} document")));
    }
    let answer = apply(state, agent, vec![doc]).await?.pop().unwrap_or_default();
    match answer["ok"].as_bool() {
        Some(true) => Ok(Json(answer)),
        _ if answer["error"]["code"] == "stale" => Ok(Json(answer)),
        _ if answer["error"]["code"] == "not_owner" => Err(ApiError::Forbidden),
        _ => Err(ApiError::BadRequest(answer["error"]["reason"].as_str().unwrap_or("refused").to_owned())),
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
        (status = 200, description = "One push result", body = serde_json::Value),
        crate::error::ErrorResponses,
    ),
    security(("hmac" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(doc): JsonBody<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
        (status = 200, description = "One push result", body = serde_json::Value),
        crate::error::ErrorResponses,
    ),
    security(("hmac" = [])),
)]
pub async fn utilization(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(doc): JsonBody<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    file_id: FileId,
}

/// `POST /api/agent/transfer-token {file_id}`: a short-lived EdDSA token that lets the signer
/// fetch that file from the node that owns it (ARCHITECTURE §6.4).
#[utoipa::path(
    post,
    path = "/api/agent/transfer-token",
    operation_id = "agent_transfer_token",
    tag = "agent",
    request_body = TokenRequest,
    responses((status = 200, body = TransferToken), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn transfer_token(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(body): JsonBody<TokenRequest>,
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
    Json(PublicKey::of(&state))
}
