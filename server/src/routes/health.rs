use agent_core::doc::{DocType, Document, NodeStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use std::time::Instant;

use crate::state::{AppState, HealthFigures};

/// `GET /health` (no authentication, no secrets): each subsystem's state. The store's figures
/// are cached (read again at most every 2 s while the store changes, at least every 30 s), so an
/// unauthenticated caller cannot make the hub scan tables per request. 200 when the store
/// answers, 503 when it does not.
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
    let figures = {
        let mut cached = state.health.lock().await;
        let seq = state.store.committed_seq().0;
        match cached.as_ref().filter(|c| c.fresh(seq, Instant::now())) {
            Some(c) => c.figures.clone(),
            None => {
                let read = HealthFigures { at: Instant::now(), seq, figures: read_figures(&state).await };
                let figures = read.figures.clone();
                *cached = Some(read);
                figures
            }
        }
    };
    let (status, code, store, nodes, auth) = match figures {
        Ok((status, store, nodes, auth)) => (status, StatusCode::OK, store, nodes, auth),
        Err(message) => {
            let err = serde_json::json!({"status": "error", "message": message});
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

/// The store's part of `/health`: `(status, store, nodes, auth)`, or the store's error.
async fn read_figures(state: &AppState) -> Figures {
    let checked = state
        .store
        .run(|s| {
            let stats = s.stats()?;
            let nodes = s.list_type(DocType::Node)?;
            let credentials = s.list_type(DocType::Credential)?;
            Ok((stats, nodes, credentials))
        })
        .await;
    let (stats, nodes, creds) = checked.map_err(|e| e.to_string())?;
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
    Ok((
        if enabled_admins > 0 { "ok" } else { "degraded" },
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
    ))
}

type Figures = Result<(&'static str, serde_json::Value, serde_json::Value, serde_json::Value), String>;
