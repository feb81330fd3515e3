//! The agent's transfer listener: [`super::serve::router`] over TLS with this node's own
//! self-signed certificate (`{data_dir}/tls/transfer.{crt,key}`), and the endpoint other agents
//! are told about in the node document (URL and certificate fingerprint, which they pin).
//!
//! What one peer can hold of it is bounded (ARCHITECTURE §10.1): [`LIMITS`] connections per
//! address, a connection whose peer stops reading is dropped ([`crate::net_guard`]), and at
//! most [`TRANSFERS_PER_PEER`] transfers stream to one address and [`TRANSFERS_MAX`] in all
//! (each holds a reader thread); one more is answered 503 `busy` with `Retry-After`, which the
//! requester retries. `/health` is never limited.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::serve::{router, Served};
use crate::config::TransferConfig;
use crate::doc::TransferEndpoint;
use crate::net_guard::{Guard, Limits, PeerSlot, PeerSlots};

/// Connections per peer address, and how long a write may wait for a peer that reads nothing.
pub const LIMITS: Limits = Limits { connections_per_peer: 32, stall: Duration::from_secs(20) };
/// Transfers streaming at once to one peer address, and to all together.
pub const TRANSFERS_PER_PEER: usize = 16;
pub const TRANSFERS_MAX: usize = 64;
/// A new connection must send its first request within this (after the TLS handshake, which
/// has its own 10 s).
const FIRST_REQUEST: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("transfer.listen: cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("transfer server certificate: {0}")]
    Key(#[from] crate::tls::KeyFileError),
    #[error("transfer server TLS: {0}")]
    Tls(std::io::Error),
}

/// A running transfer server.
pub struct TransferServer {
    addr: SocketAddr,
    endpoint: TransferEndpoint,
    served: Arc<Served>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TransferServer {
    /// Binds, loads (or makes) the certificate and starts serving. `hub_url` picks the address
    /// advertised when none is configured: this machine's address on the route to the hub.
    pub async fn start(
        config: &TransferConfig,
        data_dir: &Path,
        served: Arc<Served>,
        hub_url: Option<&str>,
    ) -> Result<TransferServer, ListenError> {
        let dir = data_dir.to_owned();
        let identity = tokio::task::spawn_blocking(move || {
            crate::tls::identity(&dir, "transfer", &crate::host::hostname())
        })
        .await
        .map_err(|e| ListenError::Tls(std::io::Error::other(e.to_string())))??;
        let listener = bind(config)?;
        let addr =
            listener.local_addr().map_err(|source| ListenError::Bind { addr: config.listen, source })?;
        let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(identity.cert_pem, identity.key_pem)
            .await
            .map_err(ListenError::Tls)?;
        let handle = axum_server::Handle::new();
        let guard = Guard::new(LIMITS);
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls).acceptor(guard);
        let server = axum_server::from_tcp(listener)
            .map_err(|source| ListenError::Bind { addr, source })?
            .acceptor(acceptor)
            .first_request_timeout(FIRST_REQUEST)
            .handle(handle.clone());
        let streams = Streams::new();
        let app = router(served.clone())
            .layer(axum::middleware::from_fn_with_state(streams, limit_streams))
            .into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(server.serve(app));
        let url = match &config.advertise {
            Some(url) => url.clone(),
            None => {
                let ip = advertised_ip(addr.ip(), hub_url).await;
                format!("https://{}", SocketAddr::new(ip, addr.port()))
            }
        };
        tracing::info!(operation = "transfer.start", %addr, endpoint = %url, fingerprint = %identity.fingerprint, "transfer server listening (HTTPS)");
        Ok(TransferServer {
            addr,
            endpoint: TransferEndpoint { endpoint: url, cert_fingerprint: identity.fingerprint },
            served,
            handle,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the node document advertises.
    pub fn endpoint(&self) -> &TransferEndpoint {
        &self.endpoint
    }

    /// What `agent_status` reports of the server (its endpoint, whether tokens can be checked).
    pub fn state_source(&self) -> Arc<dyn Fn() -> crate::report::TransferState + Send + Sync> {
        let (served, endpoint) = (self.served.clone(), self.endpoint.endpoint.clone());
        Arc::new(move || crate::report::TransferState {
            endpoint: endpoint.clone(),
            key_known: served.verifier.get().is_some(),
            sent: served.sent.snapshot(),
        })
    }

    /// Stops accepting, gives streams in progress a second to finish, then closes.
    pub async fn stop(self) {
        self.handle.graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        let _ = self.task.await;
    }
}

/// Transfers streaming now: per peer address and in all.
struct Streams {
    per_peer: Arc<PeerSlots>,
    all: Arc<tokio::sync::Semaphore>,
}

impl Streams {
    fn new() -> Arc<Streams> {
        Arc::new(Streams {
            per_peer: PeerSlots::new(TRANSFERS_PER_PEER),
            all: Arc::new(tokio::sync::Semaphore::new(TRANSFERS_MAX)),
        })
    }
}

/// Admits a transfer if its peer and the server have room, and keeps its slot until the
/// response body is finished or dropped (the peer went away, or stopped reading).
async fn limit_streams(
    State(streams): State<Arc<Streams>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if !req.uri().path().starts_with("/api/agent/transfer/") {
        return next.run(req).await;
    }
    let Some(slot) = streams.per_peer.try_take(peer.ip()) else {
        return busy(format!("{TRANSFERS_PER_PEER} transfers to {} are open already", peer.ip()));
    };
    let Ok(permit) = streams.all.clone().try_acquire_owned() else {
        return busy(format!("{TRANSFERS_MAX} transfers are open already"));
    };
    next.run(req).await.map(|body| Body::new(Holding { body, _held: (slot, permit) }))
}

fn busy(message: String) -> Response {
    tracing::debug!(operation = "transfer.serve", %message, "transfer refused: busy");
    let body = crate::wire::ErrorBody::new(crate::wire::ErrorCode::Busy, message);
    let mut resp = (axum::http::StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    resp
}

/// A response body that holds its transfer's slot until it is finished or dropped.
struct Holding {
    body: Body,
    _held: (PeerSlot, tokio::sync::OwnedSemaphorePermit),
}

impl http_body::Body for Holding {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The configured address; when the default port is taken (another agent on this machine), any
/// free port instead, logged. A port written in the file must be free.
fn bind(config: &TransferConfig) -> Result<std::net::TcpListener, ListenError> {
    let listener = match std::net::TcpListener::bind(config.listen) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && !config.listen_explicit => {
            let any = SocketAddr::new(config.listen.ip(), 0);
            tracing::warn!(
                operation = "transfer.start",
                wanted = %config.listen,
                "the default transfer port is in use; listening on a free port (set [transfer] listen to fix one)"
            );
            std::net::TcpListener::bind(any).map_err(|source| ListenError::Bind { addr: any, source })?
        }
        Err(source) => return Err(ListenError::Bind { addr: config.listen, source }),
    };
    listener.set_nonblocking(true).map_err(|source| ListenError::Bind { addr: config.listen, source })?;
    Ok(listener)
}

/// The address to advertise: the one listened on if it is specific, otherwise the local address
/// of the route to the hub (a UDP `connect` sends nothing), otherwise loopback.
async fn advertised_ip(listening: IpAddr, hub_url: Option<&str>) -> IpAddr {
    if !listening.is_unspecified() {
        return listening;
    }
    let host_port = hub_url.and_then(|u| reqwest::Url::parse(u).ok()).and_then(|u| {
        let host = u.host_str()?.trim_matches(['[', ']']).to_owned();
        Some((host, u.port_or_known_default()?))
    });
    let Some((host, port)) = host_port else { return IpAddr::from([127, 0, 0, 1]) };
    let Ok(mut addrs) = tokio::net::lookup_host((host.as_str(), port)).await else {
        return IpAddr::from([127, 0, 0, 1]);
    };
    let Some(hub) = addrs.next() else { return IpAddr::from([127, 0, 0, 1]) };
    let local = if hub.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    std::net::UdpSocket::bind(local)
        .and_then(|s| s.connect(hub).and_then(|_| s.local_addr()))
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}
