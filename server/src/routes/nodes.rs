//! `/api/nodes`: node registration, the hub-owned configuration of a node (friendly name,
//! enabled, network mounts), soft delete, and what the node reports about itself.

use agent_core::doc::{CredentialRole, DocType, Document, NetworkMount, NodeDoc};
use agent_core::ids::{AgentStatusId, DocId, NodeDocId, NodeId, Rev};
use agent_core::store::Store;
use agent_core::wire::nodes::{
    MountPatch, NewMount, NodePatch, NodeStatusView, Register, Registered, ReplicaView,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Session;
use crate::credentials::{self, CredentialView};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// `POST /api/nodes/register` (admin session, used by `mosaicfs agent init`): issues a
/// credential bound to the node. The secret is in this response only; the node stores it in its
/// keychain or a 0600 file and signs its requests with the key derived from it. The response
/// also carries the hub's transfer-token public key, which the node pins.
#[utoipa::path(
    post,
    path = "/api/nodes/register",
    operation_id = "register_node",
    tag = "nodes",
    request_body = Register,
    responses((status = 201, body = Registered), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn register(
    State(state): State<AppState>,
    _session: Session,
    JsonBody(body): JsonBody<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let node_id = body.node_id.unwrap_or_else(NodeId::generate);
    let name = body.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| format!("node {node_id}"));
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest("name must be 1-200 characters".into()));
    }
    let (cred, secret) =
        credentials::create(&state.store, &state.vault, name, CredentialRole::Node, Some(node_id.clone()))
            .await?;
    tracing::info!(node_id = %node_id, access_key_id = %cred.access_key_id, "node registered");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            node_id,
            credential: CredentialView::from(&cred),
            access_key_id: cred.access_key_id,
            secret: secret.expose().to_owned(),
            kdf: cred.kdf,
            hub_transfer_public_key: super::agent::public_key(&state),
        }),
    ))
}

/// `GET /api/nodes`: node documents the hub holds (they arrive from agents' pushes).
#[utoipa::path(
    get,
    path = "/api/nodes",
    operation_id = "list_nodes",
    tag = "nodes",
    responses((status = 200, body = Vec<NodeDoc>), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, _session: Session) -> Result<Json<Vec<NodeDoc>>, ApiError> {
    all_nodes(&state).await.map(Json)
}

/// Every node document (the API's list and the web UI's pages).
pub(crate) async fn all_nodes(state: &AppState) -> Result<Vec<NodeDoc>, ApiError> {
    let docs = state.store.run(|s| s.list_type(DocType::Node)).await?;
    Ok(docs
        .into_iter()
        .filter_map(|d| match d {
            Document::Node(n) => Some(n),
            _ => None,
        })
        .collect())
}

fn node_id(raw: &str) -> Result<NodeId, ApiError> {
    Ok(raw.parse()?)
}

fn read_node(s: &Store, node: &NodeId) -> agent_core::store::Result<Option<NodeDoc>> {
    Ok(match s.get(&NodeDocId::for_node(node).into())? {
        Some(Document::Node(n)) => Some(n),
        _ => None,
    })
}

/// `GET /api/nodes/{node_id}`
#[utoipa::path(
    get,
    path = "/api/nodes/{node_id}",
    operation_id = "get_node",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    responses((status = 200, body = NodeDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
) -> Result<Json<NodeDoc>, ApiError> {
    let node = node_id(&raw)?;
    let n = node.clone();
    state
        .store
        .run(move |s| read_node(s, &n))
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound(format!("node {node}")))
}

/// Read-modify-write of a node document's hub-owned fields. `base`: the revision the client
/// read (409 when it is not current); `None` retries a few times against concurrent merges of
/// the agent's pushes.
async fn update_node(
    state: &AppState,
    node: NodeId,
    base: Option<Rev>,
    edit: impl Fn(&mut NodeDoc) -> Result<(), ApiError> + Send + 'static,
) -> Result<NodeDoc, ApiError> {
    state
        .store
        .run(move |s| {
            for _ in 0..5 {
                let Some(mut doc) = read_node(s, &node)? else {
                    return Ok(Err(ApiError::NotFound(format!("node {node}"))));
                };
                if let Some(base) = base.filter(|b| *b != doc.rev) {
                    return Ok(Err(ApiError::Conflict(format!(
                        "node {node} is at revision {}, not {base}",
                        doc.rev
                    ))));
                }
                if let Err(e) = edit(&mut doc) {
                    return Ok(Err(e));
                }
                match s.put_hub_edit(Document::Node(doc.clone())) {
                    Ok(w) => {
                        doc.rev = w.rev;
                        return Ok(Ok(doc));
                    }
                    Err(e) if e.as_conflict().is_some() && base.is_none() => continue,
                    Err(e) if e.as_conflict().is_some() => {
                        return Ok(Err(ApiError::Conflict(e.to_string())));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Err(ApiError::Conflict(format!("node {node} kept changing; try again"))))
        })
        .await?
}

/// `PATCH /api/nodes/{node_id}`: the hub-owned fields only (`friendly_name`, `enabled`,
/// `network_mounts`), against the revision read (`_rev`; 409 when stale).
#[utoipa::path(
    patch,
    path = "/api/nodes/{node_id}",
    operation_id = "patch_node",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    request_body = NodePatch,
    responses((status = 200, body = NodeDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn patch(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
    JsonBody(p): JsonBody<NodePatch>,
) -> Result<Json<NodeDoc>, ApiError> {
    let node = node_id(&raw)?;
    if let Some(name) = &p.friendly_name {
        check_name(name)?;
    }
    if let Some(mounts) = &p.network_mounts {
        mounts.iter().try_for_each(check_mount)?;
        let mut ids: Vec<&str> = mounts.iter().map(|m| m.mount_id.as_str()).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(ApiError::BadRequest("mount_id values must be unique".into()));
        }
    }
    let doc = update_node(&state, node, Some(p.rev), move |n| {
        if let Some(name) = &p.friendly_name {
            n.friendly_name = name.trim().to_owned();
        }
        if let Some(e) = p.enabled {
            n.enabled = e;
        }
        if let Some(m) = &p.network_mounts {
            n.network_mounts = m.clone();
        }
        Ok(())
    })
    .await?;
    Ok(Json(doc))
}

/// `DELETE /api/nodes/{node_id}`: soft delete. The node is disabled and its credentials too, so
/// it can no longer sign requests; its documents stay (re-enable with PATCH and a credential
/// update). Idempotent.
#[utoipa::path(
    delete,
    path = "/api/nodes/{node_id}",
    operation_id = "delete_node",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    responses((status = 200, body = NodeDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
) -> Result<Json<NodeDoc>, ApiError> {
    let node = node_id(&raw)?;
    let doc = update_node(&state, node.clone(), None, |n| {
        n.enabled = false;
        Ok(())
    })
    .await?;
    let disabled = credentials::disable_for_node(&state.store, &node).await?;
    tracing::info!(node_id = %node, credentials_disabled = disabled, "node disabled");
    Ok(Json(doc))
}

/// `GET /api/nodes/{node_id}/status`: the hub's observation and what the node last reported
/// (its `agent_status` and newest utilization snapshot; `null` until it has pushed them).
#[utoipa::path(
    get,
    path = "/api/nodes/{node_id}/status",
    operation_id = "get_node_status",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    responses((status = 200, body = NodeStatusView), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn status(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
) -> Result<Json<NodeStatusView>, ApiError> {
    node_status(&state, &raw).await.map(|(_, view)| Json(view))
}

/// A node's document and what the hub observes of it and it last reported (the API's status
/// and the web UI's node page).
pub(crate) async fn node_status(state: &AppState, raw: &str) -> Result<(NodeDoc, NodeStatusView), ApiError> {
    let node = node_id(raw)?;
    let n = node.clone();
    let (doc, status, util) = state
        .store
        .run(move |s| {
            let doc = read_node(s, &n)?;
            let status = s.get(&DocId::from(AgentStatusId::for_node(&n)))?;
            let util = s.list_id_prefix(&format!("utilization::{n}::"), None, 1, true)?.pop();
            Ok((doc, status, util))
        })
        .await?;
    let doc = doc.ok_or(ApiError::NotFound(format!("node {node}")))?;
    let mark = state.pulls.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied();
    let hub_seq = state.store.committed_seq().0;
    let replica = mark.map(|m| ReplicaView {
        applied_hub_seq: m.applied_hub_seq,
        hub_seq,
        behind: hub_seq.saturating_sub(m.applied_hub_seq),
        last_pull_at: m.at,
    });
    let view = NodeStatusView {
        node_id: node,
        enabled: doc.enabled,
        observed_status: doc.observed_status,
        last_seen: doc.last_seen,
        reported_status: doc.status,
        last_heartbeat: doc.last_heartbeat,
        agent_status: status,
        utilization: util,
        replica,
    };
    Ok((doc, view))
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "friendly_name must be 1-200 characters without control characters".into(),
        ));
    }
    Ok(())
}

fn check_mount(m: &NetworkMount) -> Result<(), ApiError> {
    let id_ok = (1..=64).contains(&m.mount_id.len())
        && m.mount_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(ApiError::BadRequest(format!("mount_id {:?}: 1-64 of [A-Za-z0-9_-]", m.mount_id)));
    }
    for (field, path) in
        [("remote_base_export_path", &m.remote_base_export_path), ("local_mount_path", &m.local_mount_path)]
    {
        if agent_core::doc::FileSource::new(m.remote_node_id.clone(), path).is_none() && path != "/" {
            return Err(ApiError::BadRequest(format!("{field} {path:?} is not a normalized absolute path")));
        }
    }
    Ok(())
}

/// `GET /api/nodes/{node_id}/mounts`
#[utoipa::path(
    get,
    path = "/api/nodes/{node_id}/mounts",
    operation_id = "list_node_mounts",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    responses((status = 200, body = Vec<NetworkMount>), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn mounts(
    State(state): State<AppState>,
    session: Session,
    path: Path<String>,
) -> Result<Json<Vec<NetworkMount>>, ApiError> {
    let Json(doc) = get(State(state), session, path).await?;
    Ok(Json(doc.network_mounts))
}

/// `POST /api/nodes/{node_id}/mounts`: adds a network mount (409 if its `mount_id` exists).
#[utoipa::path(
    post,
    path = "/api/nodes/{node_id}/mounts",
    operation_id = "add_node_mount",
    tag = "nodes",
    params(("node_id" = String, Path, description = "Node id")),
    request_body = NewMount,
    responses((status = 201, body = NetworkMount), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn add_mount(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
    JsonBody(m): JsonBody<NewMount>,
) -> Result<(StatusCode, Json<NetworkMount>), ApiError> {
    let node = node_id(&raw)?;
    let mount = NetworkMount {
        mount_id: m.mount_id.unwrap_or_else(uuid_short),
        mount_type: m.mount_type,
        remote_node_id: m.remote_node_id,
        remote_base_export_path: m.remote_base_export_path,
        local_mount_path: m.local_mount_path,
        priority: m.priority,
    };
    check_mount(&mount)?;
    let added = mount.clone();
    update_node(&state, node, None, move |n| {
        if n.network_mounts.iter().any(|x| x.mount_id == added.mount_id) {
            return Err(ApiError::Conflict(format!("mount {} exists", added.mount_id)));
        }
        n.network_mounts.push(added.clone());
        Ok(())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(mount)))
}

/// `PATCH /api/nodes/{node_id}/mounts/{mount_id}`
#[utoipa::path(
    patch,
    path = "/api/nodes/{node_id}/mounts/{mount_id}",
    operation_id = "patch_node_mount",
    tag = "nodes",
    params(
        ("node_id" = String, Path, description = "Node id"),
        ("mount_id" = String, Path, description = "Mount id"),
    ),
    request_body = MountPatch,
    responses((status = 200, body = NetworkMount), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn patch_mount(
    State(state): State<AppState>,
    _session: Session,
    Path((raw, mount_id)): Path<(String, String)>,
    JsonBody(p): JsonBody<MountPatch>,
) -> Result<Json<NetworkMount>, ApiError> {
    let node = node_id(&raw)?;
    let id = mount_id.clone();
    let doc = update_node(&state, node, None, move |n| {
        let m = n
            .network_mounts
            .iter_mut()
            .find(|m| m.mount_id == id)
            .ok_or_else(|| ApiError::NotFound(format!("mount {id}")))?;
        if let Some(v) = p.mount_type {
            m.mount_type = v;
        }
        if let Some(v) = &p.remote_node_id {
            m.remote_node_id = v.clone();
        }
        if let Some(v) = &p.remote_base_export_path {
            m.remote_base_export_path = v.clone();
        }
        if let Some(v) = &p.local_mount_path {
            m.local_mount_path = v.clone();
        }
        if let Some(v) = p.priority {
            m.priority = v;
        }
        check_mount(m)
    })
    .await?;
    let m = doc.network_mounts.into_iter().find(|m| m.mount_id == mount_id);
    m.map(Json).ok_or(ApiError::NotFound("mount".into()))
}

/// `DELETE /api/nodes/{node_id}/mounts/{mount_id}`
#[utoipa::path(
    delete,
    path = "/api/nodes/{node_id}/mounts/{mount_id}",
    operation_id = "delete_node_mount",
    tag = "nodes",
    params(
        ("node_id" = String, Path, description = "Node id"),
        ("mount_id" = String, Path, description = "Mount id"),
    ),
    responses((status = 204, description = "Deleted"), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn delete_mount(
    State(state): State<AppState>,
    _session: Session,
    Path((raw, mount_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let node = node_id(&raw)?;
    update_node(&state, node, None, move |n| {
        let before = n.network_mounts.len();
        n.network_mounts.retain(|m| m.mount_id != mount_id);
        if n.network_mounts.len() == before {
            return Err(ApiError::NotFound(format!("mount {mount_id}")));
        }
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn uuid_short() -> String {
    let r: u64 = rand::random();
    format!("m-{r:016x}")
}
