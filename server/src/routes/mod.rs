//! The router, the OpenAPI document and each route's access rule, from one definition: the
//! table in [`table`]. Each entry names a handler (whose `#[utoipa::path]` annotation gives its
//! method, path and documentation) and the [`Access`] group it belongs to; the group decides how
//! it is authenticated (a layer on the whole group, not an extractor each handler must
//! remember), and a test checks that every operation's documented `security` says the same.
//! A route cannot be routed without being documented, nor documented without being routed.

mod agent;
pub(crate) mod auth;
mod changes;
mod commands;
pub(crate) mod content;
mod credentials;
pub(crate) mod files;
mod health;
mod labels;
pub(crate) mod nodes;
pub mod openapi;
mod stream;
mod vdirs;
mod vfs;

use axum::Router;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::state::AppState;

/// Who may call a route, and how a refusal looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone (`/health`, login, a credential's KDF parameters).
    Public,
    /// A person's session (JWT bearer token); refused with a 401 JSON error.
    Session,
    /// A signed agent request (HMAC, `/api/agent/*`); refused with a 401 JSON error.
    Agent,
    /// A UI page: a person's session, else a redirect to the login page (the web UI's routes).
    Page,
    /// A static asset of the UI: public, cached for long.
    Asset,
}

/// One route as the table defines it: method, path (OpenAPI form, `{param}`) and access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: String,
    pub path: String,
    pub access: Access,
}

impl RouteInfo {
    /// Anyone may call it without credentials.
    pub fn public(&self) -> bool {
        matches!(self.access, Access::Public | Access::Asset)
    }
}

/// The routes, grouped by access, with what each group holds.
pub(crate) struct Table {
    groups: Vec<(Access, OpenApiRouter<AppState>)>,
    routes: Vec<RouteInfo>,
}

impl Table {
    fn new() -> Table {
        Table { groups: Vec::new(), routes: Vec::new() }
    }

    /// Adds the handlers of one path (one `routes!(…)` per path) to the `access` group.
    fn add(mut self, access: Access, handlers: UtoipaMethodRouter<AppState>) -> Table {
        for (path, item) in &handlers.1.paths {
            for method in operations(item).map(|(m, _)| m) {
                self.routes.push(RouteInfo { method: method.into(), path: openapi_path(path), access });
            }
        }
        let group = match self.groups.iter().position(|(a, _)| *a == access) {
            Some(i) => self.groups.remove(i).1,
            None => OpenApiRouter::default(),
        };
        self.groups.push((access, group.routes(handlers)));
        self
    }

    /// A documented route that another route's handler serves (`…/{*path}/preview` is
    /// dispatched by the `{*path}` POST handler, since a catch-all must end a route).
    fn served_by_catch_all(mut self, access: Access, method: &str, path: &str) -> Table {
        self.routes.push(RouteInfo { method: method.into(), path: path.into(), access });
        self
    }
}

/// The operations of a path item, with their method names.
fn operations(
    item: &utoipa::openapi::PathItem,
) -> impl Iterator<Item = (&'static str, &utoipa::openapi::path::Operation)> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("PATCH", &item.patch),
        ("HEAD", &item.head),
        ("OPTIONS", &item.options),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
}

/// `/a/{*rest}` (axum's catch-all) as OpenAPI writes it: `/a/{rest}`.
fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The one definition of the API.
pub(crate) fn table() -> Table {
    use Access::{Agent, Public, Session};
    Table::new()
        .add(Public, routes!(health::health))
        .add(Public, routes!(auth::login))
        .add(Public, routes!(auth::kdf))
        .add(Session, routes!(openapi::openapi_json))
        .add(Session, routes!(auth::whoami))
        .add(Session, routes!(auth::logout))
        .add(Session, routes!(credentials::list, credentials::create))
        .add(Session, routes!(credentials::get, credentials::patch, credentials::delete))
        .add(Session, routes!(files::list))
        .add(Session, routes!(files::by_path))
        .add(Session, routes!(files::get))
        .add(Session, routes!(content::content))
        .add(Session, routes!(files::search))
        .add(Session, routes!(stream::stream))
        .add(Session, routes!(nodes::list))
        .add(Session, routes!(nodes::register))
        .add(Session, routes!(nodes::get, nodes::patch, nodes::delete))
        .add(Session, routes!(nodes::status))
        .add(Session, routes!(nodes::mounts, nodes::add_mount))
        .add(Session, routes!(nodes::patch_mount, nodes::delete_mount))
        .add(Session, routes!(commands::issue))
        .add(Session, routes!(commands::get))
        .add(Session, routes!(vfs::list))
        .add(Session, routes!(vfs::tree))
        .add(Session, routes!(vdirs::list))
        .add(Session, routes!(vdirs::get, vdirs::create, vdirs::patch, vdirs::delete))
        .served_by_catch_all(Session, "POST", "/api/vfs/directories/{path}/preview")
        .add(Session, routes!(labels::list))
        .add(Session, routes!(labels::list_assignments))
        .add(Session, routes!(labels::get_assignment, labels::put_assignment, labels::delete_assignment))
        .add(Session, routes!(labels::list_rules, labels::create_rule))
        .add(Session, routes!(labels::get_rule, labels::patch_rule, labels::delete_rule))
        .add(Session, routes!(labels::effective))
        .add(Agent, routes!(agent::heartbeat))
        .add(Agent, routes!(agent::push))
        .add(Agent, routes!(changes::changes))
        .add(Agent, routes!(agent::status))
        .add(Agent, routes!(agent::utilization))
        .add(Agent, routes!(agent::credential))
        .add(Agent, routes!(agent::transfer_token))
        .add(Agent, routes!(agent::transfer_key))
}

/// Every route of the API.
pub fn routes() -> Vec<RouteInfo> {
    table().routes
}

/// The OpenAPI document the table defines (with the base of [`openapi::base`]).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = openapi::base();
    for (_, group) in table().groups {
        doc.merge(group.split_for_parts().1);
    }
    doc.paths.paths = std::mem::take(&mut doc.paths.paths)
        .into_iter()
        .map(|(path, item)| (openapi_path(&path), item))
        .collect();
    doc
}

/// The API as a router (tests call it with `oneshot`; the server serves it over TLS): each
/// group behind the layer that authenticates it.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    for (access, group) in table().groups {
        let (group, _) = group.split_for_parts();
        router = router.merge(match access {
            Access::Session => group.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::auth::require_session,
            )),
            Access::Agent => group.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::agent_auth::require_signature,
            )),
            Access::Public | Access::Page | Access::Asset => group,
        });
    }
    router
        .merge(crate::pages::router(state.clone()))
        .fallback(|| async { crate::error::ApiError::NotFound("route".into()) })
        .method_not_allowed_fallback(|| async { crate::error::ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(crate::log_request))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented `security` of every operation agrees with the group that enforces it.
    #[test]
    fn every_operation_documents_the_access_its_group_enforces() {
        let doc = document();
        let mut checked = 0;
        for route in routes() {
            let Some(item) = doc.paths.paths.get(&route.path) else {
                panic!("{} {} is routed but not documented", route.method, route.path)
            };
            let (_, op) = operations(item)
                .find(|(m, _)| *m == route.method)
                .unwrap_or_else(|| panic!("{} {} is not documented", route.method, route.path));
            let schemes: Vec<String> = op
                .security
                .iter()
                .flatten()
                .flat_map(|req| serde_json::to_value(req).ok())
                .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
                .flatten()
                .collect();
            let want: &[&str] = match route.access {
                Access::Public | Access::Asset => &[],
                Access::Session | Access::Page => &["bearer"],
                Access::Agent => &["hmac"],
            };
            assert_eq!(schemes, want, "{} {}", route.method, route.path);
            checked += 1;
        }
        assert!(checked > 50, "{checked} routes");
        let documented: usize = doc.paths.paths.values().map(|i| operations(i).count()).sum();
        assert_eq!(documented, checked, "every documented operation is in the table");
    }

    #[test]
    fn catch_all_routes_are_documented_in_openapi_form() {
        assert_eq!(openapi_path("/api/vfs/directories/{*path}"), "/api/vfs/directories/{path}");
        assert!(routes().iter().any(|r| r.path == "/api/vfs/directories/{path}" && r.method == "PATCH"));
        assert!(routes().iter().all(|r| !r.path.contains('*')));
    }
}
