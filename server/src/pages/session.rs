//! The web UI's session: the JWT of a login in a cookie the page's scripts cannot read and
//! other sites cannot send, a redirect to the login page without one, and a same-origin check
//! of every state-changing request (a CSRF defence that needs no token in the forms).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Session;
use crate::state::AppState;

/// The cookie's name. The `__Host-` prefix makes browsers refuse it unless it is `Secure`,
/// for `Path=/` and without a `Domain` (no other host or path can set or shadow it).
pub const COOKIE: &str = "__Host-mosaicfs-session";

/// `Set-Cookie` for a new session that lasts `max_age_secs`.
pub fn set_cookie(token: &str, max_age_secs: i64) -> HeaderValue {
    let v = format!(
        "{COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        max_age_secs.max(0)
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| clear_cookie())
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-mosaicfs-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The session cookie's value, if the request carries one.
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Where to go back to after logging in: a path on this site only (`/x`, never `//host` or
/// `/\host`, which browsers read as another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n']) =>
        {
            n.to_owned()
        }
        _ => "/".into(),
    }
}

/// The layer of every page behind a session: a valid session cookie (the [`Session`] is put in
/// the request for the handler), else the login page — a redirect for a page, an
/// `HX-Redirect` for an htmx request (it would otherwise swap the login page into a region).
pub async fn require_page_session(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let session = match token(req.headers()) {
        Some(t) => Session::from_token(&state, t).await.ok(),
        None => None,
    };
    match session {
        Some(s) => {
            req.extensions_mut().insert(s);
            next.run(req).await
        }
        None => {
            let here = req.uri().path_and_query().map_or("/", |p| p.as_str());
            let back = if req.method() == Method::GET && !here.starts_with("/ui/") { here } else { "/" };
            let login = format!(
                "/login?next={}",
                percent_encoding::utf8_percent_encode(back, percent_encoding::NON_ALPHANUMERIC)
            );
            let mut resp = if req.headers().contains_key("hx-request") {
                let mut r = StatusCode::UNAUTHORIZED.into_response();
                if let Ok(v) = HeaderValue::from_str(&login) {
                    r.headers_mut().insert("hx-redirect", v);
                }
                r
            } else {
                axum::response::Redirect::to(&login).into_response()
            };
            if token(req.headers()).is_some() {
                resp.headers_mut().insert(header::SET_COOKIE, clear_cookie());
            }
            resp
        }
    }
}

/// Refuses a state-changing request (any method but GET and HEAD) that a page of another site
/// sent: its `Origin` must be this site's, or — for browsers that send none — its
/// `Sec-Fetch-Site` must say `same-origin`. Requests with neither are refused too.
pub async fn same_origin(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) || is_same_origin(&req) {
        return next.run(req).await;
    }
    tracing::info!(method = %req.method(), path = %req.uri().path(), "web UI: a cross-site request was refused");
    let html = ui::page(|| {
        leptos::view! {
            <ui::pages::error::ErrorPage
                title="Refused".to_string()
                message="This request came from another site (or from a page that did not say where it came from), so it was not carried out. Go back to MosaicFS and try again from there.".to_string()/>
        }
    });
    (StatusCode::FORBIDDEN, axum::response::Html(html)).into_response()
}

fn is_same_origin(req: &Request) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    match req.headers().get(header::ORIGIN).map(|o| o.to_str()) {
        Some(Ok(origin)) => host.is_some_and(|h| origin.strip_prefix("https://") == Some(h)),
        Some(Err(_)) => false,
        None => req.headers().get("sec-fetch-site").is_some_and(|v| v == "same-origin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others_and_next_stays_on_this_site() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-mosaicfs-session=tok.en; b=2"));
        assert_eq!(token(&h), Some("tok.en"));
        h.insert(header::COOKIE, HeaderValue::from_static("mosaicfs-session=x; __Host-mosaicfs-session="));
        assert_eq!(token(&h), None);
        assert_eq!(safe_next(Some("/nodes?kind=bridge")), "/nodes?kind=bridge");
        for bad in
            ["//evil.example", "/\\evil.example", "https://evil.example", "nodes", "/a\r\nSet-Cookie: x"]
        {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_cookie_cannot_be_read_by_scripts_or_sent_by_other_sites() {
        let c = set_cookie("abc", 60);
        let c = c.to_str().unwrap();
        for part in
            ["__Host-mosaicfs-session=abc", "Secure", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=60"]
        {
            assert!(c.contains(part), "{c}");
        }
        assert!(!c.contains("Domain"));
    }
}
