use agent_core::doc::{CredentialRole, DocType, Document, NodeDoc};
use agent_core::ids::{NodeDocId, NodeId};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use crate::auth::Session;
use crate::credentials::{self, CredentialView};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The joining node's id (from its `node_id` file); generated when absent.
    #[serde(default)]
    node_id: Option<NodeId>,
    /// A name for the node's credential (default: `node <id>`).
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/nodes/register` (admin session, used by `mosaicfs agent init`): issues a
/// credential bound to the node. The secret is in this response only; the node stores it in its
/// keychain or a 0600 file and signs its requests with the key derived from it.
pub async fn register(
    State(state): State<AppState>,
    _session: Session,
    JsonBody(body): JsonBody<Register>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let node_id = body.node_id.unwrap_or_else(NodeId::generate);
    let name = body.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| format!("node {node_id}"));
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest("name must be 1-200 characters".into()));
    }
    let (cred, secret) =
        credentials::create(&state.store, name, CredentialRole::Node, Some(node_id.clone())).await?;
    tracing::info!(node_id = %node_id, access_key_id = %cred.access_key_id, "node registered");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "node_id": node_id,
            "access_key_id": cred.access_key_id,
            "secret": secret.expose(),
            "kdf": cred.kdf,
            "credential": CredentialView::from(&cred),
        })),
    ))
}

/// `GET /api/nodes`: node documents the hub holds (they arrive from agents with replication).
pub async fn list(State(state): State<AppState>, _session: Session) -> Result<Json<Vec<NodeDoc>>, ApiError> {
    let docs = state.store.run(|s| s.list_type(DocType::Node)).await?;
    Ok(Json(
        docs.into_iter()
            .filter_map(|d| match d {
                Document::Node(n) => Some(n),
                _ => None,
            })
            .collect(),
    ))
}

/// `GET /api/nodes/{node_id}`
pub async fn get(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
) -> Result<Json<NodeDoc>, ApiError> {
    let node: NodeId = raw.parse().map_err(ApiError::from)?;
    let id = NodeDocId::for_node(&node);
    match state.store.run(move |s| s.get(&id.into())).await? {
        Some(Document::Node(n)) => Ok(Json(n)),
        _ => Err(ApiError::NotFound(format!("node {node}"))),
    }
}
