//! The router, built from one table of routes so that tests can walk every route
//! (`ROUTES` lists method, path and whether the route is public).

mod agent;
mod auth;
mod credentials;
mod files;
mod health;
mod nodes;

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
}

fn build() -> Builder {
    use axum::routing::{get, post};
    const PUBLIC: bool = true;
    const AUTH: bool = false;
    Builder { router: Router::new(), agent: Router::new(), routes: Vec::new() }
        .add("/health", &[("GET", PUBLIC)], get(health::health))
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
        .add("/api/search", &[("GET", AUTH)], get(files::search))
        .add("/api/nodes", &[("GET", AUTH)], get(nodes::list))
        .add("/api/nodes/register", &[("POST", AUTH)], post(nodes::register))
        .add("/api/nodes/{node_id}", &[("GET", AUTH)], get(nodes::get))
        .add("/api/agent/heartbeat", &[("POST", AUTH)], post(agent::heartbeat))
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
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::log_request))
        .with_state(state)
}
