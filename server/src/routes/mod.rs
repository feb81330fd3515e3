//! The router, built from one table of routes so that tests can walk every route
//! (`ROUTES` lists method, path and whether the route is public).

mod agent;
mod auth;
mod changes;
mod content;
mod credentials;
mod files;
mod health;
mod labels;
mod nodes;
pub mod openapi;
mod stream;
mod vdirs;
mod vfs;

use axum::routing::MethodRouter;
use axum::Router;

use crate::state::AppState;

/// One registered route: method, path (axum syntax) and whether it needs no authentication.
#[derive(Clone, Copy, Debug)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    pub public: bool,
}

struct Builder {
    router: Router<AppState>,
    /// `/api/agent/*`: HMAC-signed, behind `agent_auth::require_signature`.
    agent: Router<AppState>,
    routes: Vec<RouteInfo>,
}

impl Builder {
    fn add(
        mut self,
        path: &'static str,
        methods: &[(&'static str, bool)],
        mr: MethodRouter<AppState>,
    ) -> Builder {
        if path.starts_with("/api/agent/") {
            self.agent = self.agent.route(path, mr);
        } else {
            self.router = self.router.route(path, mr);
        }
        self.routes.extend(methods.iter().map(|&(method, public)| RouteInfo { method, path, public }));
        self
    }

    /// A route that another route's handler serves (`…/{*path}/preview` is dispatched by the
    /// `{*path}` POST handler, since a catch-all must end the route): listed, not routed.
    fn served_by_catch_all(mut self, path: &'static str, methods: &[(&'static str, bool)]) -> Builder {
        self.routes.extend(methods.iter().map(|&(method, public)| RouteInfo { method, path, public }));
        self
    }
}

fn build() -> Builder {
    use axum::routing::{get, post};
    const PUBLIC: bool = true;
    const AUTH: bool = false;
    Builder { router: Router::new(), agent: Router::new(), routes: Vec::new() }
        .add("/health", &[("GET", PUBLIC)], get(health::health))
        .add("/api/openapi.json", &[("GET", AUTH)], get(openapi::openapi_json))
        .add("/api/auth/login", &[("POST", PUBLIC)], post(auth::login))
        .add("/api/auth/kdf/{access_key_id}", &[("GET", PUBLIC)], get(auth::kdf))
        .add("/api/auth/whoami", &[("GET", AUTH)], get(auth::whoami))
        .add("/api/auth/logout", &[("POST", AUTH)], post(auth::logout))
        .add(
            "/api/credentials",
            &[("GET", AUTH), ("POST", AUTH)],
            get(credentials::list).post(credentials::create),
        )
        .add(
            "/api/credentials/{access_key_id}",
            &[("GET", AUTH), ("PATCH", AUTH), ("DELETE", AUTH)],
            get(credentials::get).patch(credentials::patch).delete(credentials::delete),
        )
        .add("/api/files", &[("GET", AUTH)], get(files::list))
        .add("/api/files/by-path", &[("GET", AUTH)], get(files::by_path))
        .add("/api/files/{file_id}", &[("GET", AUTH)], get(files::get))
        .add("/api/files/{file_id}/content", &[("GET", AUTH)], get(content::content))
        .add("/api/search", &[("GET", AUTH)], get(files::search))
        .add("/api/changes/stream", &[("GET", AUTH)], get(stream::stream))
        .add("/api/nodes", &[("GET", AUTH)], get(nodes::list))
        .add("/api/nodes/register", &[("POST", AUTH)], post(nodes::register))
        .add(
            "/api/nodes/{node_id}",
            &[("GET", AUTH), ("PATCH", AUTH), ("DELETE", AUTH)],
            get(nodes::get).patch(nodes::patch).delete(nodes::delete),
        )
        .add("/api/nodes/{node_id}/status", &[("GET", AUTH)], get(nodes::status))
        .add(
            "/api/nodes/{node_id}/mounts",
            &[("GET", AUTH), ("POST", AUTH)],
            get(nodes::mounts).post(nodes::add_mount),
        )
        .add(
            "/api/nodes/{node_id}/mounts/{mount_id}",
            &[("PATCH", AUTH), ("DELETE", AUTH)],
            axum::routing::patch(nodes::patch_mount).delete(nodes::delete_mount),
        )
        .add("/api/vfs", &[("GET", AUTH)], get(vfs::list))
        .add("/api/vfs/tree", &[("GET", AUTH)], get(vfs::tree))
        .add("/api/vfs/directories", &[("GET", AUTH)], get(vdirs::list))
        .add(
            "/api/vfs/directories/{*path}",
            &[("GET", AUTH), ("POST", AUTH), ("PATCH", AUTH), ("DELETE", AUTH)],
            get(vdirs::get).post(vdirs::create).patch(vdirs::patch).delete(vdirs::delete),
        )
        .served_by_catch_all("/api/vfs/directories/{*path}/preview", &[("POST", AUTH)])
        .add("/api/labels", &[("GET", AUTH)], get(labels::list))
        .add("/api/labels/assignments", &[("GET", AUTH)], get(labels::list_assignments))
        .add(
            "/api/labels/assignments/{file_id}",
            &[("GET", AUTH), ("PUT", AUTH), ("DELETE", AUTH)],
            get(labels::get_assignment).put(labels::put_assignment).delete(labels::delete_assignment),
        )
        .add(
            "/api/labels/rules",
            &[("GET", AUTH), ("POST", AUTH)],
            get(labels::list_rules).post(labels::create_rule),
        )
        .add(
            "/api/labels/rules/{rule_id}",
            &[("GET", AUTH), ("PATCH", AUTH), ("DELETE", AUTH)],
            get(labels::get_rule).patch(labels::patch_rule).delete(labels::delete_rule),
        )
        .add("/api/labels/effective", &[("GET", AUTH)], get(labels::effective))
        .add("/api/agent/heartbeat", &[("POST", AUTH)], post(agent::heartbeat))
        .add("/api/agent/push", &[("POST", AUTH)], post(agent::push))
        .add("/api/agent/changes", &[("GET", AUTH)], get(changes::changes))
        .add("/api/agent/status", &[("POST", AUTH)], post(agent::status))
        .add("/api/agent/utilization", &[("POST", AUTH)], post(agent::utilization))
        .add("/api/agent/credentials", &[("GET", AUTH)], get(agent::credential))
        .add("/api/agent/transfer-token", &[("POST", AUTH)], post(agent::transfer_token))
        .add("/api/agent/transfer-key", &[("GET", AUTH)], get(agent::transfer_key))
}

/// Every route of the API.
pub fn routes() -> Vec<RouteInfo> {
    build().routes
}

/// The API as a router (tests call it with `oneshot`; the server serves it over TLS).
pub fn app(state: AppState) -> Router {
    let built = build();
    let agent = built.agent.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        crate::agent_auth::require_signature,
    ));
    built
        .router
        .merge(agent)
        .fallback(|| async { crate::error::ApiError::NotFound("route".into()) })
        .method_not_allowed_fallback(|| async { crate::error::ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::log_request))
        .with_state(state)
}
