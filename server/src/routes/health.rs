use agent_core::doc::{DocType, Document, NodeStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use crate::state::AppState;

/// `GET /health` (no authentication, no secrets): each subsystem's state, checked now. 200 when
/// the store answers, 503 when it does not.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "system",
    responses(
        (status = 200, description = "status, role, node_id, version, uptime_secs, subsystems", body = serde_json::Value),
        (status = 503, description = "The store does not answer", body = serde_json::Value),
    ),
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let checked = state
        .store
        .run(|s| {
            let stats = s.stats()?;
            let nodes = s.list_type(DocType::Node)?;
            let credentials = s.list_type(DocType::Credential)?;
            Ok((stats, nodes, credentials))
        })
        .await;
    let (status, code, store, nodes, auth) = match checked {
        Ok((stats, nodes, creds)) => {
            let online = nodes
                .iter()
                .filter(|d| matches!(d, Document::Node(n) if n.observed_status == Some(NodeStatus::Online)))
                .count();
            let enabled_admins = creds
                .iter()
                .filter(|d| {
                    matches!(d, Document::Credential(c)
                        if c.enabled && c.role == agent_core::doc::CredentialRole::Admin)
                })
                .count();
            (
                if enabled_admins > 0 { "ok" } else { "degraded" },
                StatusCode::OK,
                serde_json::json!({
                    "status": "ok",
                    "last_seq": stats.last_seq,
                    "files_active": stats.files_active,
                    "name_index": state.store.has_name_index(),
                    "schema_version": stats.schema_version,
                }),
                serde_json::json!({"status": "ok", "known": nodes.len(), "online": online}),
                serde_json::json!({
                    "status": if enabled_admins > 0 { "ok" } else { "degraded" },
                    "credentials": creds.len(),
                    "enabled_admins": enabled_admins,
                    "message": if enabled_admins > 0 { None } else { Some("no enabled admin credential: nobody can log in") },
                }),
            )
        }
        Err(e) => {
            let err = serde_json::json!({"status": "error", "message": e.to_string()});
            ("unhealthy", StatusCode::SERVICE_UNAVAILABLE, err.clone(), err.clone(), err)
        }
    };
    let body = serde_json::json!({
        "status": status,
        "role": "control_plane",
        "node_id": state.local.as_ref().map(|l| l.node_id.to_string()),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
        "subsystems": {
            "store": store,
            "nodes": nodes,
            "auth": auth,
            "tls": {"status": "ok", "cert_fingerprint": &*state.cert_fingerprint},
            "transfer_tokens": {"status": "ok", "public_key": state.transfer.public_key()},
            "local_files": match &state.local {
                Some(l) => serde_json::json!({"status": "ok", "watch_paths": l.watch_paths.len()}),
                None => serde_json::json!({"status": "off", "message": "no agent in this process: file content is not served here"}),
            },
        },
    });
    (code, Json(body))
}
