//! The web UI's routes (ARCHITECTURE §7.4): pages and fragments rendered by the `ui` crate from
//! what the same functions as the REST handlers read, on the API's HTTPS listener.
//!
//! - [`session`] — the session cookie, the redirect to the login page, the same-origin check
//!   of every state-changing request.
//! - [`login`] — the login form and logout.
//! - [`views`] — the pages and their fragments.
//! - [`events`] — one Server-Sent Events connection per page: which kinds of documents
//!   changed, at most every 500 ms.
//! - [`assets`] — the embedded static files.

mod assets;
mod events;
mod login;
mod session;
mod views;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use session::COOKIE;

/// Every route of the web UI: `(method, path, needs a session)`. A test checks that each
/// session route redirects to the login page without one.
pub const ROUTES: &[(&str, &str, bool)] = &[
    ("GET", "/login", false),
    ("POST", "/login", false),
    ("GET", "/assets/{name}", false),
    ("POST", "/logout", true),
    ("GET", "/", true),
    ("GET", "/nodes", true),
    ("GET", "/nodes/{node_id}", true),
    ("GET", "/search", true),
    ("GET", "/ui/fragments/health", true),
    ("GET", "/ui/fragments/nodes", true),
    ("GET", "/ui/fragments/search", true),
    ("GET", "/ui/fragments/search/rows", true),
    ("GET", "/ui/events", true),
    ("GET", "/ui/files/{file_id}/content", true),
];

/// The UI's router: public routes, then the routes behind a session; every non-GET request
/// must come from a page of this origin.
pub fn router(state: AppState) -> Router<AppState> {
    let public = Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::extract::DefaultBodyLimit::max(login::MAX_FORM_BYTES));
    let private = Router::new()
        .route("/logout", post(login::logout))
        .route("/", get(views::dashboard))
        .route("/nodes", get(views::nodes))
        .route("/nodes/{node_id}", get(views::node))
        .route("/search", get(views::search))
        .route("/ui/fragments/health", get(views::health_fragment))
        .route("/ui/fragments/nodes", get(views::nodes_fragment))
        .route("/ui/fragments/search", get(views::search_fragment))
        .route("/ui/fragments/search/rows", get(views::search_rows_fragment))
        .route("/ui/events", get(events::events))
        .route("/ui/files/{file_id}/content", get(crate::routes::content::content))
        .route_layer(axum::middleware::from_fn_with_state(state, session::require_page_session));
    public.merge(private).route_layer(axum::middleware::from_fn(session::same_origin))
}
