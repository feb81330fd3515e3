//! `GET /login`, `POST /login` (the form) and `POST /logout`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::session::{clear_cookie, safe_next, set_cookie};
use crate::auth::Session;
use crate::error::ApiError;
use crate::state::AppState;

/// The login form's body is refused (413) above this, before it is parsed.
pub const MAX_FORM_BYTES: usize = 4 * 1024;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    access_key_id: String,
    secret: String,
    next: Option<String>,
}

fn page(state: &AppState, status: StatusCode, next: String, message: Option<String>) -> Response {
    let name = state.instance_name.to_string();
    let html = ui::page(move || {
        leptos::view! { <ui::pages::login::LoginPage instance_name=name next=next message=message/> }
    });
    (status, Html(html)).into_response()
}

/// `GET /login`
pub async fn form(State(state): State<AppState>, Query(q): Query<Next>) -> Response {
    page(&state, StatusCode::OK, safe_next(q.next.as_deref()), None)
}

/// `POST /login`: the same check and rate limit as `POST /api/auth/login`; the token goes into
/// the session cookie and the browser back to where it was going. A refusal is the form again
/// with the reason in words.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next.as_deref());
    match crate::routes::auth::authenticate(&state, peer.ip(), f.access_key_id.trim(), f.secret).await {
        Ok((token, claims)) => {
            let max_age = claims.exp - chrono::Utc::now().timestamp();
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, set_cookie(&token, max_age));
            resp
        }
        Err(ApiError::RateLimited { retry_after_secs }) => {
            let msg = format!(
                "Too many login attempts from this address. Try again in {retry_after_secs} seconds."
            );
            page(&state, StatusCode::TOO_MANY_REQUESTS, next, Some(msg))
        }
        Err(ApiError::BadCredentials) => {
            page(&state, StatusCode::UNAUTHORIZED, next, Some("Wrong access key id or secret.".into()))
        }
        Err(e) => {
            tracing::warn!(error = %e, "web UI login failed");
            page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                Some(format!("Logging in failed: {e}. Try again.")),
            )
        }
    }
}

/// `POST /logout`: the session's token is revoked (like `POST /api/auth/logout`) and the
/// cookie removed.
pub async fn logout(State(state): State<AppState>, Extension(session): Extension<Session>) -> Response {
    if let Err(e) = crate::routes::auth::end_session(&state, &session).await {
        tracing::warn!(error = %e, "web UI logout: the token could not be revoked");
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    resp
}
