//! `/api/agent/*`: what agents call, HMAC-signed (ARCHITECTURE §5, §6.2, §6.4). The signer's
//! node comes from its credential ([`AgentIdentity`]), never from the request.

use agent_core::doc::{Document, Owner};
use agent_core::ids::{DocId, FileId};
use agent_core::store::{Applied, PutError};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::agent_auth::AgentIdentity;
use crate::credentials::{self, CredentialView};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// Documents per push at most.
pub const MAX_PUSH_DOCS: usize = 200;

/// `POST /api/agent/heartbeat`: proves the node's credential works and returns the hub's clock
/// (agents log a skew over 2 minutes). Liveness itself travels as the node document in pushes.
pub async fn heartbeat(agent: AgentIdentity) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "node_id": agent.node_id,
        "server_time": chrono::Utc::now().timestamp(),
    }))
}

#[derive(Deserialize)]
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
pub async fn push(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(body): JsonBody<PushBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.docs.len() > MAX_PUSH_DOCS {
        return Err(ApiError::BadRequest(format!(
            "{} documents in one push; at most {MAX_PUSH_DOCS}",
            body.docs.len()
        )));
    }
    let results = apply(&state, &agent, body.docs).await?;
    let last_seq = state.store.last_seq();
    Ok(Json(serde_json::json!({"results": results, "last_seq": last_seq})))
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
pub async fn status(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(doc): JsonBody<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    push_one(&state, &agent, doc, "agent_status").await
}

/// `POST /api/agent/utilization`: a `utilization_snapshot` of the signer, through the push path.
pub async fn utilization(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(doc): JsonBody<serde_json::Value>,
) -> Result<Json<serde_json::Value>, ApiError> {
    push_one(&state, &agent, doc, "utilization_snapshot").await
}

/// `GET /api/agent/credentials`: the signing credential as the hub sees it (never the verifier).
pub async fn credential(
    State(state): State<AppState>,
    agent: AgentIdentity,
) -> Result<Json<CredentialView>, ApiError> {
    let cred = credentials::get(&state.store, &agent.access_key_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("credential".into()))?;
    Ok(Json(CredentialView::from(&cred)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    file_id: FileId,
}

/// `POST /api/agent/transfer-token {file_id}`: a short-lived EdDSA token that lets the signer
/// fetch that file from the node that owns it (ARCHITECTURE §6.4).
pub async fn transfer_token(
    State(state): State<AppState>,
    agent: AgentIdentity,
    JsonBody(body): JsonBody<TokenRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    Ok(Json(serde_json::json!({
        "token": token,
        "node_id": claims.aud,
        "file_id": claims.file_id,
        "expires_at": claims.exp,
    })))
}

/// `GET /api/agent/transfer-key`: the hub's public key for transfer tokens (agents pin it).
pub async fn transfer_key(State(state): State<AppState>, _agent: AgentIdentity) -> Json<serde_json::Value> {
    Json(transfer_key_json(&state))
}

pub fn transfer_key_json(state: &AppState) -> serde_json::Value {
    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "x": state.transfer.public_key()})
}
