//! Why a remote read failed, typed (ARCHITECTURE §10.3). The VFS turns every one of these into
//! one error number ([`RemoteError::errno`]); the text is for the log line, which names the node
//! and the file — never sent to a peer.

use crate::cache::store::CacheError;
use crate::ids::{FileId, NodeId};
use crate::sync::HubError;
use crate::transfer::client::FetchError;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The owner's node document is not here yet, or advertises no transfer server.
    #[error("node {node} serves no files now: {why}")]
    NoEndpoint { node: NodeId, why: &'static str },
    /// The hub did not issue a transfer token.
    #[error("no transfer token from the hub: {0}")]
    NoToken(#[source] HubError),
    /// The transfer itself failed (unreachable, refused, broken, wrong digest).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A range came back shorter or longer than asked.
    #[error("asked for {asked} bytes, got {got}")]
    WrongLength { asked: u64, got: u64 },
    /// The owner's disk no longer has the version this node's document describes.
    #[error(
        "{path} changed on node {node} since it was indexed; its new version arrives with the next sync"
    )]
    Changed { node: NodeId, path: String },
    /// The file changed while this handle was open: it serves nothing more (never a mix of
    /// two versions).
    #[error("file {0} changed while it was open; open it again")]
    Superseded(FileId),
    /// The cache could not store or read what was fetched.
    #[error("cache: {0}")]
    Cache(#[from] CacheError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Every attempt failed; the last error says why.
    #[error("{attempts} attempts failed; last: {last}")]
    GaveUp { attempts: usize, last: Box<RemoteError> },
}

impl RemoteError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RemoteError::Fetch(e) => e.is_retryable() && !e.is_changed(),
            RemoteError::NoEndpoint { .. } | RemoteError::NoToken(_) | RemoteError::WrongLength { .. } => {
                true
            }
            RemoteError::Cache(CacheError::DigestMismatch { .. } | CacheError::SizeMismatch { .. }) => true,
            _ => false,
        }
    }

    /// The error number a reader gets: `ESTALE` for a handle whose file changed, `EIO` else.
    pub fn errno(&self) -> i32 {
        match self {
            RemoteError::Superseded(_) => libc::ESTALE,
            RemoteError::GaveUp { last, .. } => last.errno(),
            _ => libc::EIO,
        }
    }

    /// As an `io::Error` for [`crate::content::Content::read_at`], keeping the error number.
    pub fn into_io(self) -> std::io::Error {
        match self {
            RemoteError::Io(e) => e,
            other => std::io::Error::from_raw_os_error(other.errno()),
        }
    }
}
