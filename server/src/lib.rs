//! `server`: the control-plane role as a library — the HTTPS API, credentials and sessions.
//!
//! Module map:
//! - [`routes`] — the router, built from one route table (`routes::routes()` lists every route).
//! - [`agent_auth`] — HMAC-signed agent requests (`/api/agent/*`): window, credential, signature,
//!   replay.
//! - [`auth`] — 24-hour JWT sessions and the `Session` extractor; logout revokes by `jti`.
//! - [`credentials`] — credential records: create (secret shown once), verify (Argon2id off the
//!   runtime).
//! - [`keys`] — the self-signed TLS certificate and the JWT key, made on first start and kept.
//! - [`state`] — `AppState` and the login rate limiter.
//! - [`error`] — `ApiError`: every failure is a 4xx (or 503) with a JSON body.
//!
//! - [`vault`] — credential verifiers sealed at rest (`hub/verifier.key`), Argon2id under a
//!   small bound.
//! - [`limits`] — body caps checked before reading (login, signed agent requests).
//! - [`liveness`] — marks nodes observed offline after a silence.
//! - [`default_tree`] — `/machines/{machine}/{watch path}` kept in step with the node
//!   documents, and the starter directories (`/recent`, `/by-type/…`) of a new hub.
//! - [`local_agent`] — the node credential of the agent that `mosaicfs up` runs in-process.
//! - [`pages`] — the web UI: pages and fragments of the `ui` crate, session cookie, live events.

pub mod agent_auth;
pub mod auth;
pub mod credentials;
pub mod default_tree;
pub mod error;
pub mod keys;
pub mod limits;
pub mod liveness;
pub mod local_agent;
pub mod pages;
pub mod routes;
pub mod state;
pub mod vault;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agent_core::auth::Secret;
use agent_core::doc::{self, CredentialRole, DocType, Document, VirtualDirectoryDoc};
use agent_core::ids::{AccessKeyId, DirId};
use agent_core::store::{Store, StoreError};

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The hub listener's bounds per client address (ARCHITECTURE §7.1): open connections (a
/// browser uses a few, an agent two or three), and how long a write may wait for a client
/// that reads nothing before the connection is dropped.
pub const LISTENER_LIMITS: agent_core::net_guard::Limits =
    agent_core::net_guard::Limits { connections_per_peer: 256, stall: std::time::Duration::from_secs(30) };

#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Holds `hub.db`, `hub/jwt.key`, `tls/hub.{crt,key}`, `secrets/admin.secret`.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Login attempts per minute per client IP.
    pub login_per_minute: u32,
    /// The agent running in the same process (`mosaicfs up`), whose files the hub serves.
    pub local_node: Option<state::LocalNode>,
    /// Where the first admin's secret is kept: the OS keychain when one answers (desktops,
    /// `mosaicfs up`), else `secrets/admin.secret` (0600; always for headless `mosaicfs server`).
    pub admin_secret_store: agent_core::secrets::Backend,
    /// A node with no push for this long is observed offline (default 90 s: 3 heartbeats).
    pub offline_after: std::time::Duration,
    /// How long `GET /api/vfs` may serve a listing from the readdir cache (0: never).
    pub readdir_ttl: std::time::Duration,
    /// The name the web UI shows for this MosaicFS (default: the host name).
    pub instance_name: Option<String>,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            data_dir,
            listen,
            login_per_minute: 5,
            local_node: None,
            admin_secret_store: agent_core::secrets::Backend::File,
            offline_after: std::time::Duration::from_secs(90),
            readdir_ttl: state::READDIR_TTL,
            instance_name: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A running server.
pub struct ServerHandle {
    pub addr: SocketAddr,
    /// SHA-256 of the certificate (what agents pin).
    pub cert_fingerprint: String,
    /// The admin credential made on the very first start (its secret is shown once), and where
    /// it is kept (`secrets/admin.secret`, mode 0600, or the OS keychain).
    pub first_admin: Option<(AccessKeyId, Secret, String)>,
    handle: axum_server::Handle<SocketAddr>,
    liveness: tokio::task::JoinHandle<()>,
    default_tree: tokio::task::JoinHandle<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    store: Store,
    vault: Arc<vault::Vault>,
}

impl ServerHandle {
    /// Stops accepting, lets requests in flight finish (up to 10 s), closes the store.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.liveness.abort();
        self.default_tree.abort();
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        let _ = self.task.await;
        let store = self.store.clone();
        store.run(|s| s.clone().close()).await?;
        Ok(())
    }
}

/// Opens the hub store and keys, makes the root directory and the first admin if absent, and
/// serves the API over TLS.
pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    let dir = config.data_dir.clone();
    let (store, jwt_key, transfer, tls, first_admin_needed, revoked, vault) =
        tokio::task::spawn_blocking(move || {
            keys::make_data_dir_private(&dir)?;
            let store = Store::open_hub(&dir.join("hub.db"))?;
            let vault = Arc::new(vault::load(&dir, &store)?);
            let jwt = keys::jwt_key(&dir)?;
            let transfer = keys::transfer_signer(&dir)?;
            let tls = keys::tls_identity(&dir, "hub", &agent_core::host::hostname())?;
            let no_credentials = store.list_type(DocType::Credential)?.is_empty();
            let revoked = auth::load_revoked(&store, chrono::Utc::now().timestamp())?;
            Ok::<_, ServerError>((store, jwt, transfer, tls, no_credentials, revoked, vault))
        })
        .await
        .map_err(|e| ServerError::Other(e.to_string()))??;

    ensure_root_directory(&store).await?;
    let first_admin =
        if first_admin_needed { Some(make_first_admin(&store, &vault, &config).await?) } else { None };

    let mut state = state::AppState::new(
        store.clone(),
        auth::JwtKeys::from_secret(&jwt_key),
        config.login_per_minute,
        revoked,
        transfer,
    );
    state.local = config.local_node.clone().map(Arc::new);
    if let Some(name) = &config.instance_name {
        state.instance_name = name.as_str().into();
    }
    state.vault = vault.clone();
    state.listings = Arc::new(agent_core::vtree::Listings::new(state.labels.clone(), config.readdir_ttl));
    state.cert_fingerprint = Arc::from(tls.fingerprint.as_str());
    let default_tree = default_tree::spawn(store.clone(), state.vdir_writes.clone());
    let app = routes::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(tls.cert_pem, tls.key_pem)
        .await
        .map_err(ServerError::Tls)?;
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    listener.set_nonblocking(true).map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Listen { addr: config.listen, source })?;
    let handle = axum_server::Handle::new();
    // What one client address can hold: connections, and writes to a client that reads nothing.
    let guard = agent_core::net_guard::Guard::new(LISTENER_LIMITS);
    let server = axum_server::from_tcp(listener)
        .map_err(|source| ServerError::Listen { addr: config.listen, source })?
        .acceptor(axum_server::tls_rustls::RustlsAcceptor::new(rustls).acceptor(guard))
        .first_request_timeout(std::time::Duration::from_secs(30))
        .handle(handle.clone());
    let task = tokio::spawn(server.serve(app));
    tracing::info!(operation = "server.start", %addr, fingerprint = %tls.fingerprint, "control plane listening (HTTPS)");
    let liveness = liveness::spawn(store.clone(), config.offline_after);
    Ok(ServerHandle {
        addr,
        cert_fingerprint: tls.fingerprint,
        first_admin,
        handle,
        liveness,
        default_tree,
        task,
        store,
        vault,
    })
}

/// The root virtual directory (`dir::root`) exists from the first start.
async fn ensure_root_directory(store: &Store) -> Result<(), ServerError> {
    store
        .run(|s| {
            if s.get(&DirId::root().into())?.is_none() {
                s.put(Document::VirtualDirectory(VirtualDirectoryDoc::root(doc::now())))?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

async fn make_first_admin(
    store: &Store,
    vault: &vault::Vault,
    config: &ServerConfig,
) -> Result<(AccessKeyId, Secret, String), ServerError> {
    let (cred, secret) =
        credentials::create(store, vault, "admin (first start)".into(), CredentialRole::Admin, None)
            .await
            .map_err(|e| ServerError::Other(e.to_string()))?;
    let path = config.data_dir.join("secrets/admin.secret");
    let text = format!("{}\n{}\n", cred.access_key_id, secret.expose());
    let (p, s, key) = (path.clone(), secret.clone(), cred.access_key_id.clone());
    let prefer = config.admin_secret_store;
    let kept = tokio::task::spawn_blocking(move || -> Result<String, ServerError> {
        use agent_core::secrets::{self, Backend, SERVICE};
        if prefer == Backend::Keychain && secrets::keychain_available().is_ok() {
            let r =
                agent_core::config::SecretRef::Keyring { service: SERVICE.into(), account: key.to_string() };
            if secrets::write(&r, &s).is_ok() {
                return Ok(format!("the OS keychain ({SERVICE}/{key})"));
            }
        }
        keys::write_private(&p, text.as_bytes())?;
        Ok(format!("{}, mode 0600", p.display()))
    })
    .await
    .map_err(|e| ServerError::Other(e.to_string()))??;
    tracing::info!(access_key_id = %cred.access_key_id, kept_in = %kept, "first admin credential created");
    Ok((cred.access_key_id, secret, kept))
}

/// One log line per request: method, path, status, latency.
pub async fn log_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        operation = "http",
        %method,
        path,
        status = resp.status().as_u16(),
        duration_ms = started.elapsed().as_millis() as u64
    );
    resp
}

#[cfg(test)]
mod tests;
