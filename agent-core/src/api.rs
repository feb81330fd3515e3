//! The typed client of the control plane's REST API (ARCHITECTURE §7.2), for every program that
//! talks to a hub as a person would: the CLI, the desktop app, tests. It speaks the types of
//! [`crate::wire`] only (no hand-read JSON), over the one pinned HTTPS client of [`crate::http`].
//!
//! - **Sessions.** [`ApiClient::login`] trades an access key and its secret for a 24-hour JWT.
//!   With the credential kept ([`ApiClient::with_credential`]) the session is renewed silently:
//!   before a request when it has less than [`RENEW_MARGIN_SECS`] left, and once after a 401.
//!   A token cached elsewhere can be handed in with [`ApiClient::with_session`].
//! - **Errors.** A refusal is [`ApiError::Refused`] with the hub's [`ErrorCode`] and message
//!   (the JSON error body, typed); transport and decoding problems have their own variants.
//!
//! Agents do not use this client: their `/api/agent/*` requests are HMAC-signed
//! ([`crate::sync::HubClient`]).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth::Secret;
use crate::doc::{Command, FileDoc, NodeDoc, VirtualDirectoryDoc};
use crate::http::error_chain;
use crate::ids::{AccessKeyId, CommandId, FileId, Label, NodeId};
use crate::vtree::Listing;
use crate::wire::auth::{LoggedOut, Login, LoginAnswer, WhoAmI};
use crate::wire::commands::{CommandView, NewCommand};
use crate::wire::credentials::{CreatedCredential, CredentialPatch, CredentialView, NewCredential};
use crate::wire::files::{FilesPage, SearchPage};
use crate::wire::labels::{AssignmentAnswer, EffectiveAnswer, LabelsInUse, NewRule, SetLabels};
use crate::wire::nodes::{NodePatch, NodeStatusView, Register, Registered};
use crate::wire::vdirs::{DirPatch, NewDir, Preview, TreeNode};
use crate::wire::{ErrorBody, ErrorCode};

/// A session is renewed when it has less than this left (seconds).
pub const RENEW_MARGIN_SECS: i64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The hub answered with an error body.
    #[error("{status} {code}: {message}")]
    Refused { status: u16, code: ErrorCode, message: String },
    /// The hub could not be reached, or the connection broke.
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The answer was not what the contract says.
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
    /// A request that needs a session, and no credential to log in with.
    #[error("not logged in")]
    NotLoggedIn,
    /// The client itself could not be built (a malformed fingerprint or URL).
    #[error("{0}")]
    Setup(String),
}

impl ApiError {
    /// The hub's error code, when it answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A session token and when it ends (Unix seconds).
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// A label filter, a limit and a cursor for [`ApiClient::search`].
#[derive(Clone, Debug, Default)]
pub struct SearchOptions {
    pub labels: Vec<Label>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    pub count: bool,
}

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    credential: Option<(AccessKeyId, Secret)>,
    /// Guarded: the current session (renewed in place).
    session: tokio::sync::Mutex<Option<Session>>,
}

impl ApiClient {
    /// A client for the hub at `base` (`https://host:port`) whose certificate has `fingerprint`.
    pub fn new(base: &str, fingerprint: &str) -> Result<ApiClient, ApiError> {
        let http = crate::http::pinned_client(fingerprint).map_err(|e| ApiError::Setup(e.to_string()))?;
        let base = base.trim_end_matches('/').to_owned();
        if !base.starts_with("https://") {
            return Err(ApiError::Setup(format!("{base:?} is not an https:// URL")));
        }
        Ok(ApiClient { http, base, credential: None, session: tokio::sync::Mutex::new(None) })
    }

    /// Keeps the credential, so that the session is made and renewed when needed.
    pub fn with_credential(mut self, access_key_id: AccessKeyId, secret: Secret) -> ApiClient {
        self.credential = Some((access_key_id, secret));
        self
    }

    /// Starts from a session obtained earlier (a cached token).
    pub fn with_session(self, session: Session) -> ApiClient {
        ApiClient { session: tokio::sync::Mutex::new(Some(session)), ..self }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The current session, if any (to cache it).
    pub async fn session(&self) -> Option<Session> {
        self.session.lock().await.clone()
    }

    /// `POST /api/auth/login` with the kept credential; the session is kept.
    pub async fn login(&self) -> Result<Session, ApiError> {
        let (key, secret) = self.credential.as_ref().ok_or(ApiError::NotLoggedIn)?;
        let body = Login { access_key_id: key.to_string(), secret: secret.expose().to_owned() };
        let req = self.http.post(self.url("/api/auth/login")).json(&body);
        let answer: LoginAnswer = self.decode(req).await?;
        let session = Session { token: answer.token, expires_at: answer.expires_at };
        *self.session.lock().await = Some(session.clone());
        Ok(session)
    }

    /// `POST /api/auth/logout`: the session ends at the hub too.
    pub async fn logout(&self) -> Result<(), ApiError> {
        let _: LoggedOut = self.call(reqwest::Method::POST, "/api/auth/logout", None::<&()>).await?;
        *self.session.lock().await = None;
        Ok(())
    }

    pub async fn whoami(&self) -> Result<WhoAmI, ApiError> {
        self.get("/api/auth/whoami").await
    }

    // ---- nodes -------------------------------------------------------------------------------

    pub async fn nodes(&self) -> Result<Vec<NodeDoc>, ApiError> {
        self.get("/api/nodes").await
    }

    pub async fn node(&self, node: &NodeId) -> Result<NodeDoc, ApiError> {
        self.get(&format!("/api/nodes/{node}")).await
    }

    pub async fn patch_node(&self, node: &NodeId, patch: &NodePatch) -> Result<NodeDoc, ApiError> {
        self.call(reqwest::Method::PATCH, &format!("/api/nodes/{node}"), Some(patch)).await
    }

    /// `DELETE /api/nodes/{id}`: disables the node and its credentials.
    pub async fn disable_node(&self, node: &NodeId) -> Result<NodeDoc, ApiError> {
        self.call(reqwest::Method::DELETE, &format!("/api/nodes/{node}"), None::<&()>).await
    }

    pub async fn node_status(&self, node: &NodeId) -> Result<NodeStatusView, ApiError> {
        self.get(&format!("/api/nodes/{node}/status")).await
    }

    pub async fn register_node(&self, register: &Register) -> Result<Registered, ApiError> {
        self.call(reqwest::Method::POST, "/api/nodes/register", Some(register)).await
    }

    /// Asks `node` to run `command` (ARCHITECTURE §5.9).
    pub async fn issue_command(&self, node: &NodeId, command: Command) -> Result<CommandView, ApiError> {
        let body = NewCommand { command };
        self.call(reqwest::Method::POST, &format!("/api/nodes/{node}/commands"), Some(&body)).await
    }

    pub async fn command(&self, id: &CommandId) -> Result<CommandView, ApiError> {
        let node = id.node().ok_or_else(|| ApiError::Setup(format!("{id} names no node")))?;
        self.get(&format!("/api/nodes/{node}/commands/{}", id.key().rsplit("::").next().unwrap_or(""))).await
    }

    // ---- files and search --------------------------------------------------------------------

    pub async fn files_page(&self, limit: usize, cursor: Option<&str>) -> Result<FilesPage, ApiError> {
        let mut q = vec![("limit", limit.to_string())];
        q.extend(cursor.map(|c| ("cursor", c.to_owned())));
        self.get(&format!("/api/files?{}", encode(&q))).await
    }

    pub async fn file(&self, id: &FileId) -> Result<FileDoc, ApiError> {
        self.get(&format!("/api/files/{}", id.key())).await
    }

    pub async fn file_by_path(&self, node: &NodeId, path: &str) -> Result<FileDoc, ApiError> {
        let q = [("node_id", node.to_string()), ("path", path.to_owned())];
        self.get(&format!("/api/files/by-path?{}", encode(&q))).await
    }

    pub async fn search(&self, query: &str, options: &SearchOptions) -> Result<SearchPage, ApiError> {
        let mut q = vec![("q", query.to_owned())];
        q.extend(options.labels.iter().map(|l| ("label", l.to_string())));
        q.extend(options.limit.map(|l| ("limit", l.to_string())));
        q.extend(options.cursor.clone().map(|c| ("cursor", c)));
        if options.count {
            q.push(("count", "true".into()));
        }
        self.get(&format!("/api/search?{}", encode(&q))).await
    }

    /// `GET /api/files/{id}/content`: the response, its status checked (200 or 206), for the
    /// caller to stream. `range` is `(start, end exclusive)`.
    pub async fn content(
        &self,
        id: &FileId,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::Response, ApiError> {
        let path = format!("/api/files/{}/content", id.key());
        let token = self.token().await?;
        let mut req =
            self.http.get(self.url(&path)).bearer_auth(&token).timeout(Duration::from_secs(24 * 3600));
        if let Some((a, b)) = range {
            req = req.header(reqwest::header::RANGE, format!("bytes={a}-{}", b.saturating_sub(1)));
        }
        let url = self.url(&path);
        let resp = req.send().await.map_err(|e| unreachable(&url, &e))?;
        check(resp).await
    }

    // ---- virtual directories -----------------------------------------------------------------

    /// `GET /api/vfs?path=`: what a directory lists.
    pub async fn listing(&self, path: &str) -> Result<Listing, ApiError> {
        self.get(&format!("/api/vfs?{}", encode(&[("path", path.to_owned())]))).await
    }

    pub async fn tree(&self) -> Result<TreeNode, ApiError> {
        self.get("/api/vfs/tree").await
    }

    pub async fn directories(&self) -> Result<Vec<VirtualDirectoryDoc>, ApiError> {
        self.get("/api/vfs/directories").await
    }

    pub async fn directory(&self, path: &str) -> Result<VirtualDirectoryDoc, ApiError> {
        self.get(&dir_route(path)).await
    }

    pub async fn create_directory(&self, path: &str, dir: &NewDir) -> Result<VirtualDirectoryDoc, ApiError> {
        self.call(reqwest::Method::POST, &dir_route(path), Some(dir)).await
    }

    pub async fn patch_directory(
        &self,
        path: &str,
        patch: &DirPatch,
    ) -> Result<VirtualDirectoryDoc, ApiError> {
        self.call(reqwest::Method::PATCH, &dir_route(path), Some(patch)).await
    }

    pub async fn delete_directory(&self, path: &str) -> Result<(), ApiError> {
        self.call_empty(reqwest::Method::DELETE, &dir_route(path)).await
    }

    pub async fn preview_directory(&self, path: &str, preview: &Preview) -> Result<Listing, ApiError> {
        let route = format!("{}/preview", dir_route(path));
        self.call(reqwest::Method::POST, &route, Some(preview)).await
    }

    // ---- labels ------------------------------------------------------------------------------

    pub async fn labels(&self) -> Result<LabelsInUse, ApiError> {
        self.get("/api/labels").await
    }

    pub async fn set_labels(&self, file: &FileId, labels: Vec<Label>) -> Result<AssignmentAnswer, ApiError> {
        let route = format!("/api/labels/assignments/{}", file.key());
        self.call(reqwest::Method::PUT, &route, Some(&SetLabels { labels })).await
    }

    pub async fn effective_labels(&self, file: &FileId) -> Result<EffectiveAnswer, ApiError> {
        self.get(&format!("/api/labels/effective?{}", encode(&[("file_id", file.to_string())]))).await
    }

    pub async fn create_label_rule(&self, rule: &NewRule) -> Result<crate::doc::LabelRuleDoc, ApiError> {
        self.call(reqwest::Method::POST, "/api/labels/rules", Some(rule)).await
    }

    // ---- credentials -------------------------------------------------------------------------

    pub async fn credentials(&self) -> Result<Vec<CredentialView>, ApiError> {
        self.get("/api/credentials").await
    }

    pub async fn create_credential(&self, new: &NewCredential) -> Result<CreatedCredential, ApiError> {
        self.call(reqwest::Method::POST, "/api/credentials", Some(new)).await
    }

    pub async fn patch_credential(
        &self,
        key: &AccessKeyId,
        patch: &CredentialPatch,
    ) -> Result<CredentialView, ApiError> {
        self.call(reqwest::Method::PATCH, &format!("/api/credentials/{key}"), Some(patch)).await
    }

    pub async fn delete_credential(&self, key: &AccessKeyId) -> Result<(), ApiError> {
        self.call_empty(reqwest::Method::DELETE, &format!("/api/credentials/{key}")).await
    }

    // ---- the machinery -----------------------------------------------------------------------

    fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// A session token: the current one, renewed first when it is about to end and a
    /// credential is kept.
    async fn token(&self) -> Result<String, ApiError> {
        let current = self.session.lock().await.clone();
        let now = chrono::Utc::now().timestamp();
        match current {
            Some(s) if s.expires_at - now > RENEW_MARGIN_SECS || self.credential.is_none() => Ok(s.token),
            _ if self.credential.is_some() => Ok(self.login().await?.token),
            _ => Err(ApiError::NotLoggedIn),
        }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call(reqwest::Method::GET, path, None::<&()>).await
    }

    /// One authenticated request with a JSON body and a JSON answer; after a 401 the session
    /// is made again once (when a credential is kept) and the request repeated.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let resp = self.send(method, path, body).await?;
        let url = self.url(path);
        resp.json().await.map_err(|e| ApiError::Decode { url, message: error_chain(&e) })
    }

    /// Like [`ApiClient::call`] for answers without a body (204).
    async fn call_empty(&self, method: reqwest::Method, path: &str) -> Result<(), ApiError> {
        self.send(method, path, None::<&()>).await.map(drop)
    }

    async fn send<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            let mut req = self.http.request(method.clone(), self.url(path)).bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let url = self.url(path);
            let resp = req.send().await.map_err(|e| unreachable(&url, &e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !retried && self.credential.is_some() {
                retried = true;
                *self.session.lock().await = None;
                continue;
            }
            return check(resp).await;
        }
    }

    async fn decode<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ApiError> {
        let resp = req.send().await.map_err(|e| unreachable(&self.base, &e))?;
        let url = resp.url().to_string();
        let resp = check(resp).await?;
        resp.json().await.map_err(|e| ApiError::Decode { url, message: error_chain(&e) })
    }
}

/// `/api/vfs/directories/{path below the root}`.
fn dir_route(path: &str) -> String {
    let below: Vec<String> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC).to_string())
        .collect();
    format!("/api/vfs/directories/{}", below.join("/"))
}

fn encode(pairs: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn unreachable(url: &str, e: &reqwest::Error) -> ApiError {
    ApiError::Unreachable { url: url.to_owned(), message: error_chain(e) }
}

/// A success passes; an error status becomes [`ApiError::Refused`] with the hub's code.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ApiError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let url = resp.url().to_string();
    let text = resp.text().await.unwrap_or_default();
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            ApiError::Refused { status: status.as_u16(), code: body.error.code, message: body.error.message }
        }
        Err(_) => ApiError::Decode { url, message: format!("{status} without an error body") },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_routes_encode_each_component() {
        assert_eq!(dir_route("/work/pdfs"), "/api/vfs/directories/work/pdfs");
        assert_eq!(dir_route("a b/é"), "/api/vfs/directories/a%20b/%C3%A9");
        assert_eq!(dir_route("/"), "/api/vfs/directories/");
    }

    #[test]
    fn only_https_hubs_and_real_fingerprints() {
        let fp = "ab".repeat(32);
        assert!(matches!(ApiClient::new("http://hub:8443", &fp), Err(ApiError::Setup(_))));
        assert!(matches!(ApiClient::new("https://hub:8443", "nope"), Err(ApiError::Setup(_))));
        assert_eq!(ApiClient::new("https://hub:8443/", &fp).unwrap().base_url(), "https://hub:8443");
    }
}
