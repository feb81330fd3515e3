//! Signed requests to the hub (ARCHITECTURE §6.2) through the one pinned HTTPS client, with the
//! error classification of §5.7: transient (retried with backoff) or permanent (surfaced).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::{AuthHeader, Verifier};
use crate::config::ControlPlane;
use crate::doc::KdfParams;
use crate::http::error_chain;
use crate::ids::{AccessKeyId, Seq};

/// Why a request to the hub did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    /// Unreachable, timed out, 5xx, 408, 429, clock skew: try again later.
    #[error("{message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// The hub refused this node's credential (401, 403) or the pinned certificate changed:
    /// retrying cannot help until someone fixes it.
    #[error("{message}")]
    AuthRefused { message: String },
    /// The hub refused the request itself (another 4xx).
    #[error("{message}")]
    Refused { message: String },
    /// The hub speaks another protocol version: someone must upgrade one side.
    #[error("{message}")]
    Incompatible { message: String },
}

impl HubError {
    pub fn is_transient(&self) -> bool {
        matches!(self, HubError::Transient { .. })
    }
}

use crate::wire::sync::{ChangesQuery, HubInfo, PushRequest, TransferToken, TransferTokenRequest};
pub use crate::wire::sync::{Feed, FeedChange, PushAnswer, PushResult};
use crate::wire::{ErrorBody, ErrorCode, PROTOCOL_HEADER, PROTOCOL_VERSION};

/// The hub, as this node reaches it.
pub struct HubClient {
    http: reqwest::Client,
    base: String,
    access_key: AccessKeyId,
    secret: crate::config::SecretRef,
    /// K, derived once from the secret (Argon2id, slow) when the hub is first reached.
    key: tokio::sync::OnceCell<Verifier>,
    /// Makes every signed request distinct for the hub's replay guard.
    nonce: AtomicU64,
    last_skew_warning: Mutex<Option<Instant>>,
    skew: std::sync::atomic::AtomicI64,
}

const SKEW_WARN_SECS: i64 = 120;

impl HubClient {
    pub fn new(cp: &ControlPlane) -> Result<HubClient, HubError> {
        let http = crate::http::pinned_client(&cp.server_fingerprint)
            .map_err(|e| HubError::AuthRefused { message: e.to_string() })?;
        Ok(HubClient {
            http,
            base: cp.url.trim_end_matches('/').to_owned(),
            access_key: cp.access_key_id.clone(),
            secret: cp.secret.clone(),
            key: tokio::sync::OnceCell::new(),
            nonce: AtomicU64::new(rand::random::<u32>() as u64),
            last_skew_warning: Mutex::new(None),
            skew: std::sync::atomic::AtomicI64::new(0),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Hub clock minus ours, seconds, from the last answer.
    pub fn clock_skew_secs(&self) -> i64 {
        self.skew.load(Ordering::Relaxed)
    }

    /// Reads the secret and the credential's KDF parameters and derives K (once).
    async fn key(&self) -> Result<&Verifier, HubError> {
        self.key
            .get_or_try_init(|| async {
                let kdf: KdfParams = self
                    .send(reqwest::Method::GET, &format!("/api/auth/kdf/{}", self.access_key), None, None)
                    .await?
                    .json()
                    .await
                    .map_err(|e| transient(format!("kdf parameters: {}", error_chain(&e))))?;
                let secret = self.secret.clone();
                tokio::task::spawn_blocking(move || -> Result<Verifier, HubError> {
                    let secret = crate::secrets::read(&secret)
                        .map_err(|e| HubError::AuthRefused { message: format!("node secret: {e}") })?;
                    crate::auth::derive_verifier(&secret, &kdf)
                        .map_err(|e| HubError::AuthRefused { message: e.to_string() })
                })
                .await
                .map_err(|e| transient(e.to_string()))?
            })
            .await
    }

    /// `POST /api/agent/push`.
    pub async fn push(&self, docs: Vec<serde_json::Value>, local_seq: Seq) -> Result<PushAnswer, HubError> {
        let body = serde_json::to_vec(&PushRequest { docs, local_seq: Some(local_seq) })
            .map_err(|e| HubError::Refused { message: e.to_string() })?;
        let resp =
            self.signed(reqwest::Method::POST, "/api/agent/push", String::new(), Some(body), None).await?;
        let answer: PushAnswer =
            resp.json().await.map_err(|e| transient(format!("push answer: {}", error_chain(&e))))?;
        compatible(&answer.hub)?;
        Ok(answer)
    }

    /// `GET /api/agent/changes`: long-polls up to `wait`.
    pub async fn changes(&self, since: Seq, limit: usize, wait: Duration) -> Result<Feed, HubError> {
        let query = ChangesQuery {
            since: since.0,
            limit: Some(limit),
            wait: Some(wait.as_secs()),
            ..Default::default()
        };
        let timeout = wait + Duration::from_secs(30);
        self.feed(&query, Some(timeout), "changes feed").await
    }

    /// `GET /api/agent/changes?own=true`: this node's own live documents (the bootstrap).
    pub async fn own_documents(&self, since: Seq, limit: usize) -> Result<Feed, HubError> {
        let query = ChangesQuery { since: since.0, limit: Some(limit), own: true, ..Default::default() };
        self.feed(&query, None, "own documents").await
    }

    async fn feed(
        &self,
        query: &ChangesQuery,
        timeout: Option<Duration>,
        what: &str,
    ) -> Result<Feed, HubError> {
        let query =
            serde_urlencoded::to_string(query).map_err(|e| HubError::Refused { message: e.to_string() })?;
        let resp = self.signed(reqwest::Method::GET, "/api/agent/changes", query, None, timeout).await?;
        let feed: Feed = resp.json().await.map_err(|e| transient(format!("{what}: {}", error_chain(&e))))?;
        compatible(&feed.hub)?;
        Ok(feed)
    }

    /// `POST /api/agent/transfer-token`: a token to fetch `file` from its owner, and when it
    /// expires (Unix seconds).
    pub async fn transfer_token(&self, file: &crate::ids::FileId) -> Result<(String, i64), HubError> {
        let body = serde_json::to_vec(&TransferTokenRequest { file_id: file.clone() })
            .map_err(|e| HubError::Refused { message: e.to_string() })?;
        let resp = self
            .signed(reqwest::Method::POST, "/api/agent/transfer-token", String::new(), Some(body), None)
            .await?;
        let a: TransferToken =
            resp.json().await.map_err(|e| transient(format!("transfer token: {}", error_chain(&e))))?;
        Ok((a.token, a.expires_at))
    }

    /// `GET /api/agent/transfer-key`: the hub's public key for transfer tokens.
    pub async fn transfer_key(&self) -> Result<String, HubError> {
        let resp =
            self.signed(reqwest::Method::GET, "/api/agent/transfer-key", String::new(), None, None).await?;
        let key: crate::wire::sync::PublicKey =
            resp.json().await.map_err(|e| transient(format!("transfer key: {}", error_chain(&e))))?;
        Ok(key.x)
    }

    async fn signed(
        &self,
        method: reqwest::Method,
        path: &str,
        query: String,
        body: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, HubError> {
        let key = self.key().await?;
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let query =
            if query.is_empty() { format!("nonce={nonce}") } else { format!("{query}&nonce={nonce}") };
        let body_bytes = body.as_deref().unwrap_or(b"");
        let header = AuthHeader::sign(
            &self.access_key,
            key,
            method.as_str(),
            path,
            &query,
            chrono::Utc::now().timestamp(),
            body_bytes,
        );
        let path_q = format!("{path}?{query}");
        self.send(method, &path_q, Some((header.to_string(), body)), timeout).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        signed: Option<(String, Option<Vec<u8>>)>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, HubError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut req = self.http.request(method, &url).header(PROTOCOL_HEADER, PROTOCOL_VERSION);
        if let Some((auth, body)) = signed {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
            if let Some(b) = body {
                req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b);
            }
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = req.send().await.map_err(|e| {
            let chain = error_chain(&e);
            if chain.contains("is not the pinned") {
                HubError::AuthRefused { message: format!("{}: {chain}", self.base) }
            } else {
                transient(format!("{}: {chain}", self.base))
            }
        })?;
        self.check_clock(&resp);
        classify(resp).await
    }

    /// Compares the hub's `Date` with our clock; WARN at most hourly beyond 2 minutes.
    fn check_clock(&self, resp: &reqwest::Response) {
        let date = resp.headers().get(reqwest::header::DATE).and_then(|d| d.to_str().ok());
        let Some(skew) = date.and_then(|d| skew_secs(d, chrono::Utc::now())) else { return };
        self.skew.store(skew, Ordering::Relaxed);
        let mut last = self.last_skew_warning.lock().unwrap_or_else(|p| p.into_inner());
        if should_warn(skew, *last, Instant::now()) {
            *last = Some(Instant::now());
            tracing::warn!(
                skew_secs = skew,
                hub = %self.base,
                "this machine's clock differs from the hub's by more than 2 minutes; \
                 beyond 5 minutes the hub refuses signed requests"
            );
        }
    }
}

/// Hub clock minus ours, in seconds, from an HTTP `Date` header (RFC 7231 IMF-fixdate).
fn skew_secs(date_header: &str, now: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let hub = chrono::DateTime::parse_from_rfc2822(date_header).ok()?;
    Some(hub.timestamp() - now.timestamp())
}

/// A skew beyond 2 minutes is logged, at most once an hour.
fn should_warn(skew: i64, last_warning: Option<Instant>, now: Instant) -> bool {
    skew.abs() > SKEW_WARN_SECS
        && last_warning.is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(3600))
}

/// A hub that speaks another protocol cannot be talked to: a permanent error that says which side
/// to upgrade.
fn compatible(hub: &HubInfo) -> Result<(), HubError> {
    hub.check().map_err(|message| HubError::Incompatible { message })
}

fn transient(message: String) -> HubError {
    HubError::Transient { message, retry_after: None }
}

/// 2xx passes; the rest becomes a [`HubError`] with the hub's JSON message.
async fn classify(resp: reqwest::Response) -> Result<reqwest::Response, HubError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let url = resp.url().path().to_owned();
    let body: Option<ErrorBody> = resp.json().await.ok();
    let code = body.as_ref().map(|b| b.error.code);
    let detail = body.map(|b| b.error.message).unwrap_or_else(|| "no details".into());
    let message = format!("{url}: {status}: {detail}");
    Err(match (status.as_u16(), code) {
        (408 | 429 | 500..=599, _) => HubError::Transient { message, retry_after },
        (401, Some(ErrorCode::ClockSkew | ErrorCode::Replay)) => HubError::Transient { message, retry_after },
        (_, Some(ErrorCode::ProtocolMismatch)) => HubError::Incompatible { message },
        (401 | 403, _) => HubError::AuthRefused { message },
        _ => HubError::Refused { message },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_skew_from_the_date_header() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-25T06:00:00Z").unwrap().to_utc();
        assert_eq!(skew_secs("Wed, 25 Nov 2026 06:03:00 GMT", now), Some(180));
        assert_eq!(skew_secs("Wed, 25 Nov 2026 05:59:30 GMT", now), Some(-30));
        assert_eq!(skew_secs("yesterday", now), None);
    }

    #[test]
    fn skew_is_logged_beyond_two_minutes_at_most_hourly() {
        let t0 = Instant::now();
        assert!(!should_warn(120, None, t0), "2 minutes is tolerated");
        assert!(should_warn(121, None, t0));
        assert!(should_warn(-300, None, t0));
        assert!(!should_warn(500, Some(t0), t0 + Duration::from_secs(60)));
        assert!(should_warn(500, Some(t0), t0 + Duration::from_secs(3600)));
    }
}
