use axum::Json;

use crate::agent_auth::AgentIdentity;

/// `POST /api/agent/heartbeat`: proves the node's credential works and returns the hub's clock
/// (agents log a skew over 2 minutes). Recording liveness arrives with replication (issue 4).
pub async fn heartbeat(agent: AgentIdentity) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "node_id": agent.node_id,
        "server_time": chrono::Utc::now().timestamp(),
    }))
}
