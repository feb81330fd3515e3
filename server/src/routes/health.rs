use axum::extract::State;
use axum::Json;

use crate::state::AppState;

/// `GET /health`: each subsystem's state, checked now.
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let store = state.store.run(|s| s.stats()).await;
    let store_ok = store.is_ok();
    Json(serde_json::json!({
        "status": if store_ok { "ok" } else { "degraded" },
        "subsystems": {
            "store": match store {
                Ok(st) => serde_json::json!({"status": "ok", "last_seq": st.last_seq}),
                Err(e) => serde_json::json!({"status": "error", "message": e.to_string()}),
            },
        },
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
