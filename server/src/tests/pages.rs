//! The web UI's routes through the router: session cookie, redirects, CSRF, login failures,
//! error pages. (The browser tests in `tests/tests/ui.rs` drive the same pages in Chromium.)

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

const HOST: &str = "hub.test:8443";

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The session cookie this answer sets (`name=value`), if any.
    fn cookie(&self) -> Option<String> {
        let c = self.headers.get(header::SET_COOKIE)?.to_str().ok()?;
        let pair = c.split(';').next()?.to_owned();
        if pair.ends_with('=') {
            None
        } else {
            Some(pair)
        }
    }
}

async fn send(
    api: &Api,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<String>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path).header(header::HOST, HOST);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Answer { status, headers, body }
}

const SAME_SITE: &[(&str, &str)] = &[("origin", "https://hub.test:8443")];

async fn log_in(api: &Api) -> String {
    let form = format!("access_key_id={}&secret={}&next=%2Fnodes", api.admin.0, api.admin.1.expose());
    let a = send(api, "POST", "/login", None, SAME_SITE, Some(form)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.location(), "/nodes");
    a.cookie().expect("a session cookie")
}

#[tokio::test]
async fn every_page_without_a_session_leads_to_the_login_page() {
    let api = api(100).await;
    for (method, path, private) in crate::pages::ROUTES {
        if !private {
            continue;
        }
        let path = path.replace("{node_id}", "node-x").replace("{file_id}", "x");
        let extra: &[(&str, &str)] = if *method == "GET" { &[] } else { SAME_SITE };
        let a = send(&api, method, &path, None, extra, None).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{method} {path}");
        assert!(a.location().starts_with("/login?next="), "{method} {path}: {}", a.location());
        // htmx asks for fragments: it is told where to go instead of swapping the login page in.
        let a = send(
            &api,
            method,
            &path,
            Some("__Host-mosaicfs-session=forged"),
            &[("hx-request", "true"), SAME_SITE[0]],
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(a.headers["hx-redirect"].to_str().unwrap().starts_with("/login"));
        assert!(
            a.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"),
            "a dead cookie is removed"
        );
    }
    let a = send(&api, "GET", "/nodes?kind=bridge", None, &[], None).await;
    assert_eq!(a.location(), "/login?next=%2Fnodes%3Fkind%3Dbridge");
}

#[tokio::test]
async fn a_login_sets_a_strict_cookie_that_opens_every_page_until_logout() {
    let api = api(100).await;
    let cookie = log_in(&api).await;
    for path in [
        "/",
        "/nodes",
        "/search?q=report",
        "/ui/fragments/health",
        "/ui/fragments/nodes",
        "/ui/fragments/search?q=x",
    ] {
        let a = send(&api, "GET", path, Some(&cookie), &[], None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(a.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{path}");
    }
    let a = send(&api, "GET", "/", Some(&cookie), &[], None).await;
    assert!(a.body.contains("Dashboard") && a.body.contains("admin"), "the user's credential name");
    // The API does not take the cookie: a bearer token only (no CSRF through /api).
    let a = send(&api, "GET", "/api/nodes", Some(&cookie), &[], None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let a = send(&api, "POST", "/logout", Some(&cookie), SAME_SITE, None).await;
    assert_eq!((a.status, a.location()), (StatusCode::SEE_OTHER, "/login"));
    assert!(a.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let a = send(&api, "GET", "/", Some(&cookie), &[], None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "the token is revoked, not only the cookie dropped");
}

#[tokio::test]
async fn state_changing_requests_from_another_site_are_refused() {
    let api = api(100).await;
    let cookie = log_in(&api).await;
    let form = format!("access_key_id={}&secret={}", api.admin.0, api.admin.1.expose());
    for extra in [
        vec![],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://hub.test:8443")],
        vec![("sec-fetch-site", "cross-site")],
    ] {
        let a = send(&api, "POST", "/login", None, &extra, Some(form.clone())).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{extra:?}");
        assert!(a.body.contains("came from another site"));
        let a = send(&api, "POST", "/logout", Some(&cookie), &extra, None).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{extra:?}");
    }
    let a = send(&api, "GET", "/", Some(&cookie), &[], None).await;
    assert_eq!(a.status, StatusCode::OK, "the refused logouts did nothing");
    let a = send(&api, "POST", "/logout", Some(&cookie), &[("sec-fetch-site", "same-origin")], None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "a browser that sends no Origin but Sec-Fetch-Site");
}

#[tokio::test]
async fn login_failures_are_said_in_the_page() {
    let api = api(2).await;
    let wrong = format!("access_key_id={}&secret=nope", api.admin.0);
    let a = send(&api, "POST", "/login", None, SAME_SITE, Some(wrong.clone())).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.contains("Wrong access key id or secret.") && a.body.contains("<form"));
    assert!(a.cookie().is_none());
    let _ = send(&api, "POST", "/login", None, SAME_SITE, Some(wrong.clone())).await;
    let a = send(&api, "POST", "/login", None, SAME_SITE, Some(wrong)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.body.contains("Too many login attempts from this address. Try again in"), "{}", a.body);

    let huge = format!("access_key_id={}&secret={}", api.admin.0, "x".repeat(10_000));
    let a = send(&api, "POST", "/login", None, SAME_SITE, Some(huge)).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = send(&api, "GET", "/login?next=//evil.example", None, &[], None).await;
    assert!(a.body.contains(r#"name="next" value="/""#), "no open redirect");
}

#[tokio::test]
async fn a_disabled_credential_ends_its_browser_session() {
    let api = api(100).await;
    let cookie = log_in(&api).await;
    let (other, other_secret) =
        credentials::create(&api.store, &api.vault, "second".into(), CredentialRole::Admin, None)
            .await
            .unwrap();
    let (_, v) = api.login(&other.access_key_id, other_secret.expose()).await;
    let token = v["token"].as_str().unwrap().to_owned();
    let (s, _) = api.call("GET", &format!("/api/credentials/{}", api.admin.0), Some(&token), None).await;
    assert_eq!(s, StatusCode::OK);
    let patch = serde_json::json!({"enabled": false});
    let (s, _) =
        api.call("PATCH", &format!("/api/credentials/{}", api.admin.0), Some(&token), Some(patch)).await;
    assert_eq!(s, StatusCode::OK);
    let a = send(&api, "GET", "/nodes", Some(&cookie), &[], None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn missing_things_and_assets_answer_as_pages_not_json() {
    let api = api(100).await;
    let cookie = log_in(&api).await;
    let a = send(&api, "GET", "/nodes/node-nowhere", Some(&cookie), &[], None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(
        a.body.contains("<!DOCTYPE html>") && a.body.contains("There is no node node-nowhere"),
        "{}",
        a.body
    );
    let a = send(&api, "GET", "/nodes/..%2F..%2Fetc", Some(&cookie), &[], None).await;
    assert!(a.status.is_client_error() && a.body.contains("<!DOCTYPE html>"), "{}", a.body);
    let a = send(&api, "GET", "/ui/fragments/search?q=%5B", Some(&cookie), &[], None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("role=\"alert\""), "a bad glob is said in the results: {}", a.body);

    let login = send(&api, "GET", "/login", None, &[], None).await;
    let css = login
        .body
        .split("href=\"")
        .find_map(|s| s.split('"').next().filter(|u| u.ends_with(".css")))
        .unwrap();
    let a = send(&api, "GET", css, None, &[], None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(a.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/css"));
    let a = send(&api, "GET", "/assets/app.css", None, &[], None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}
