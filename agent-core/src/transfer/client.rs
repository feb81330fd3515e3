//! The requesting side of a transfer (ARCHITECTURE §6.4, §10): `GET /api/agent/transfer/{id}`
//! on the owner's endpoint, over TLS pinned to the certificate its node document names, with a
//! hub-issued token. The body is read chunk by chunk while a SHA-256 is computed; the end of the
//! body is accepted only when the `Digest` trailer matches what arrived. A chunk that does not
//! come within the idle limit, a body cut short, a missing or wrong trailer are errors: the
//! caller discards what it got.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use crate::content::FileVersion;
use crate::http::{error_chain, pinned_transfer_client};
use crate::ids::{FileId, NodeId};
use crate::wire::{ErrorBody, ErrorCode};

/// Where a node serves its files (from its node document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub node_id: NodeId,
    /// `https://host:port`
    pub endpoint: String,
    /// SHA-256 of its certificate, lowercase hex.
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("node {node} at {endpoint}: {message}")]
    Unreachable { node: NodeId, endpoint: String, message: String },
    /// The owner refused: 4xx with its JSON error (`changed`, `not_found`, `forbidden`, ...).
    #[error("node {node} answered {status} {code}: {message}")]
    Refused { node: NodeId, status: u16, code: ErrorCode, message: String },
    /// The bytes are not what the owner said it sent.
    #[error("node {node} sent bytes whose SHA-256 is not the digest it announced")]
    DigestMismatch { node: NodeId },
    /// The body ended early, stalled, or had no digest.
    #[error("node {node}: transfer broken: {message}")]
    Broken { node: NodeId, message: String },
}

impl FetchError {
    /// Whether another attempt may succeed (a refusal will not, except a server error or an
    /// expired token, which the caller renews).
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Refused { status, .. } => *status >= 500 || *status == 401 || *status == 408,
            _ => true,
        }
    }

    /// The owner says the file is no longer the version asked for.
    pub fn is_changed(&self) -> bool {
        matches!(self, FetchError::Refused { code: ErrorCode::Changed, .. })
    }
}

/// The longest wait for the next chunk of a body.
pub const IDLE_LIMIT: Duration = Duration::from_secs(5);

/// One pinned client per peer certificate, kept for connection reuse.
#[derive(Default)]
pub struct Transfers {
    clients: Mutex<HashMap<String, reqwest::Client>>,
}

impl Transfers {
    pub fn new() -> Transfers {
        Transfers::default()
    }

    fn client(&self, peer: &Peer) -> Result<reqwest::Client, FetchError> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(&peer.fingerprint) {
            return Ok(c.clone());
        }
        let c = pinned_transfer_client(&peer.fingerprint).map_err(|e| FetchError::Unreachable {
            node: peer.node_id.clone(),
            endpoint: peer.endpoint.clone(),
            message: e.to_string(),
        })?;
        clients.insert(peer.fingerprint.clone(), c.clone());
        Ok(c)
    }

    /// Starts fetching `file` at `version` (all of it, or `[start, end)`); the owner refuses
    /// with 409 `changed` when its disk no longer has that version.
    pub async fn get(
        &self,
        peer: &Peer,
        token: &str,
        file: &FileId,
        version: FileVersion,
        range: Option<(u64, u64)>,
    ) -> Result<Incoming, FetchError> {
        if !crate::doc::TransferEndpoint::is_valid_endpoint(&peer.endpoint) {
            return Err(FetchError::Unreachable {
                node: peer.node_id.clone(),
                endpoint: peer.endpoint.clone(),
                message: "not an https://host:port endpoint; refused".into(),
            });
        }
        let url = format!(
            "{}/api/agent/transfer/{}?version={}",
            peer.endpoint.trim_end_matches('/'),
            file,
            version.token()
        );
        let mut req = self.client(peer)?.get(&url).bearer_auth(token).header(reqwest::header::TE, "trailers");
        if let Some((start, end)) = range {
            req = req.header(reqwest::header::RANGE, format!("bytes={start}-{}", end.saturating_sub(1)));
        }
        let unreachable = |message: String| FetchError::Unreachable {
            node: peer.node_id.clone(),
            endpoint: peer.endpoint.clone(),
            message,
        };
        let resp = match tokio::time::timeout(IDLE_LIMIT, req.send()).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(unreachable(error_chain(&e))),
            Err(_) => return Err(unreachable(format!("no answer within {} s", IDLE_LIMIT.as_secs()))),
        };
        let status = resp.status().as_u16();
        if !(status == 200 && range.is_none() || status == 206 && range.is_some()) {
            let body: Option<ErrorBody> = match tokio::time::timeout(IDLE_LIMIT, resp.json()).await {
                Ok(Ok(v)) => Some(v),
                _ => None,
            };
            let (code, message) = match body {
                Some(b) => (b.error.code, b.error.message),
                None => (ErrorCode::Unknown, format!("unexpected answer ({status})")),
            };
            return Err(FetchError::Refused { node: peer.node_id.clone(), status, code, message });
        }
        if let Some((start, _)) = range {
            let content_range =
                resp.headers().get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok());
            let starts_at = content_range
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split_once('-'))
                .and_then(|(a, _)| a.parse::<u64>().ok());
            if starts_at != Some(start) {
                return Err(FetchError::Broken {
                    node: peer.node_id.clone(),
                    message: format!("asked for bytes from {start}, got Content-Range {content_range:?}"),
                });
            }
        }
        let expected = resp.content_length();
        let body = http::Response::<reqwest::Body>::from(resp).into_body();
        Ok(Incoming {
            node: peer.node_id.clone(),
            body,
            hasher: Sha256::new(),
            received: 0,
            expected,
            digest: None,
        })
    }
}

/// A response body being received and hashed.
pub struct Incoming {
    node: NodeId,
    body: reqwest::Body,
    hasher: Sha256,
    received: u64,
    expected: Option<u64>,
    digest: Option<[u8; 32]>,
}

impl Incoming {
    /// The next chunk; `Ok(None)` once the body ended and its digest matched.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        if self.digest.is_some() {
            return Ok(None);
        }
        let broken = |node: &NodeId, message: String| FetchError::Broken { node: node.clone(), message };
        loop {
            let frame = match tokio::time::timeout(IDLE_LIMIT, self.body.frame()).await {
                Err(_) => {
                    return Err(broken(
                        &self.node,
                        format!("nothing received for {} s", IDLE_LIMIT.as_secs()),
                    ))
                }
                Ok(None) => return Err(broken(&self.node, "the body ended without a digest".into())),
                Ok(Some(Err(e))) => return Err(broken(&self.node, error_chain(&e))),
                Ok(Some(Ok(frame))) => frame,
            };
            let frame = match frame.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        continue;
                    }
                    self.hasher.update(&data);
                    self.received += data.len() as u64;
                    return Ok(Some(data));
                }
                Err(frame) => frame,
            };
            let Ok(trailers) = frame.into_trailers() else { continue };
            let announced = trailers.get("digest").and_then(|v| v.to_str().ok()).and_then(parse_digest);
            let Some(announced) = announced else {
                return Err(broken(&self.node, "the trailer has no sha-256 digest".into()));
            };
            if let Some(n) = self.expected.filter(|n| *n != self.received) {
                return Err(broken(&self.node, format!("{} bytes received of {n}", self.received)));
            }
            let got: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            if got != announced {
                return Err(FetchError::DigestMismatch { node: self.node.clone() });
            }
            self.digest = Some(got);
            return Ok(None);
        }
    }

    /// The verified SHA-256 of the body, once [`Incoming::chunk`] returned `Ok(None)`.
    pub fn digest(&self) -> Option<[u8; 32]> {
        self.digest
    }

    /// Reads the whole body into memory (for ranges, which are bounded: `len` is the size
    /// asked for, allocated once) and returns it once its digest matched.
    pub async fn collect(mut self, len: usize) -> Result<Verified, FetchError> {
        let mut bytes = Vec::with_capacity(len);
        while let Some(chunk) = self.chunk().await? {
            bytes.extend_from_slice(&chunk);
        }
        let digest = self
            .digest
            .ok_or_else(|| FetchError::Broken { node: self.node.clone(), message: "no digest".into() })?;
        Ok(Verified { bytes, digest })
    }
}

/// Bytes whose SHA-256 matched the `Digest` trailer their sender announced (only
/// [`Incoming::collect`] makes one, so holding one means the check was done).
pub struct Verified {
    bytes: Vec<u8>,
    digest: [u8; 32],
}

impl Verified {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// `sha-256=<base64>` (RFC 3230 `Digest`) → the 32 bytes.
pub fn parse_digest(value: &str) -> Option<[u8; 32]> {
    value.split(',').find_map(|part| {
        let (alg, b64) = part.trim().split_once('=')?;
        if !alg.eq_ignore_ascii_case("sha-256") {
            return None;
        }
        base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?.try_into().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_from_the_trailer_value() {
        let d = Sha256::digest(b"abc");
        let b64 = base64::engine::general_purpose::STANDARD.encode(d);
        assert_eq!(parse_digest(&format!("sha-256={b64}")), Some(d.into()));
        assert_eq!(parse_digest(&format!("md5=xyz, SHA-256={b64}")), Some(d.into()));
        assert_eq!(parse_digest("sha-256=notbase64!"), None);
        assert_eq!(parse_digest("sha-256=YWJj"), None, "not 32 bytes");
    }
}
