//! The one HTTP client of agent-core: HTTPS to peers that use self-signed certificates,
//! trusted by their SHA-256 fingerprint only (ARCHITECTURE §6.5: no CA, no host-name check).
//!
//! - [`pinned_client`] accepts exactly one certificate (the control plane's, pinned at join, or
//!   another agent's from its node document); [`pinned_transfer_client`] is the same with the
//!   timeouts of a transfer.
//! - [`fetch_fingerprint`] connects once without trusting anything, to show the fingerprint to
//!   the person joining a node (trust on first use, like SSH). Nothing is sent over it.
//!
//! The handshake's signatures are still verified against the presented certificate's key, so a
//! peer must hold the private key of the pinned certificate. No client follows redirects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Client(String),
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
}

/// SHA-256 of a DER certificate, lowercase hex (what agents pin).
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Normalizes a fingerprint as people paste it (`AB:CD:…` or `abcd…`); `None` if it is not
/// 32 bytes of hex.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let hex: String =
        s.chars().filter(|c| *c != ':' && !c.is_whitespace()).collect::<String>().to_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

#[derive(Debug)]
struct Pinned {
    /// `None`: accept any certificate (only to read its fingerprint).
    expected: Option<String>,
    seen: Mutex<Option<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity);
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(fp.clone());
        match &self.expected {
            Some(want) if *want != fp => {
                Err(rustls::Error::General(format!("certificate fingerprint {fp} is not the pinned {want}")))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// How long requests of a client may take.
#[derive(Clone, Copy)]
enum Timeouts {
    /// API calls: 10 s to connect, 60 s in all.
    Api,
    /// Transfers: 3 s to connect, then no total limit (a stream can be long); the reader bounds
    /// the wait for each chunk itself.
    Transfer,
}

fn build(expected: Option<String>, timeouts: Timeouts) -> Result<(reqwest::Client, Arc<Pinned>), HttpError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned { expected, seen: Mutex::new(None), provider: provider.clone() });
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Client(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    // No redirects: a peer (the hub, another agent) answers for itself; a redirect could
    // send the request, with its token or signature, somewhere else.
    let builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none());
    let builder = match timeouts {
        Timeouts::Api => builder.connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(60)),
        Timeouts::Transfer => builder.connect_timeout(Duration::from_secs(3)),
    };
    let client = builder.build().map_err(|e| HttpError::Client(e.to_string()))?;
    Ok((client, verifier))
}

/// A client that talks only to the holder of the certificate with this fingerprint.
pub fn pinned_client(fingerprint: &str) -> Result<reqwest::Client, HttpError> {
    Ok(build(Some(normalized(fingerprint)?), Timeouts::Api)?.0)
}

/// The same for transfers: a short connect timeout and no limit on the whole response.
pub fn pinned_transfer_client(fingerprint: &str) -> Result<reqwest::Client, HttpError> {
    Ok(build(Some(normalized(fingerprint)?), Timeouts::Transfer)?.0)
}

fn normalized(fingerprint: &str) -> Result<String, HttpError> {
    normalize_fingerprint(fingerprint)
        .ok_or_else(|| HttpError::Client(format!("{fingerprint:?} is not a SHA-256 fingerprint")))
}

/// Connects to `base_url` (GET `/health`, no credentials) and returns the SHA-256 fingerprint
/// of the certificate it presented.
pub async fn fetch_fingerprint(base_url: &str) -> Result<String, HttpError> {
    let (client, verifier) = build(None, Timeouts::Api)?;
    let url = format!("{}/health", base_url.trim_end_matches('/'));
    let result = client.get(&url).send().await;
    let seen = verifier.seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match (seen, result) {
        (Some(fp), _) => Ok(fp),
        (None, Err(e)) => Err(HttpError::Unreachable { url, message: error_chain(&e) }),
        (None, Ok(_)) => Err(HttpError::Unreachable { url, message: "no TLS certificate seen".into() }),
    }
}

/// An error with its causes, on one line (reqwest hides the interesting part in the source).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "node")]
    #[tokio::test]
    async fn pinned_clients_follow_no_redirects() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let id = crate::tls::identity(dir.path(), "peer", "localhost").unwrap();
        let followed = Arc::new(AtomicUsize::new(0));
        let hits = followed.clone();
        let app = axum::Router::new()
            .route(
                "/start",
                axum::routing::get(|| async {
                    (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, "/elsewhere")])
                }),
            )
            .route(
                "/elsewhere",
                axum::routing::get(move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    async { "followed" }
                }),
            );
        let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(id.cert_pem.clone(), id.key_pem.clone())
            .await
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = axum_server::from_tcp_rustls(listener, rustls).unwrap();
        tokio::spawn(server.serve(app.into_make_service()));
        for client in
            [pinned_client(&id.fingerprint).unwrap(), pinned_transfer_client(&id.fingerprint).unwrap()]
        {
            let resp = client.get(format!("https://127.0.0.1:{port}/start")).send().await.unwrap();
            assert_eq!(resp.status(), 302);
        }
        assert_eq!(followed.load(Ordering::SeqCst), 0, "the redirect was not followed");
    }

    #[test]
    fn fingerprints_normalize() {
        let hex = "ab".repeat(32);
        assert_eq!(normalize_fingerprint(&hex.to_uppercase()).as_deref(), Some(hex.as_str()));
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(normalize_fingerprint(&colons).as_deref(), Some(hex.as_str()));
        assert_eq!(normalize_fingerprint("abc"), None);
        assert_eq!(normalize_fingerprint(&"zz".repeat(32)), None);
    }
}
