//! Agent-to-agent transfers (ARCHITECTURE §6.4, §10).
//!
//! - [`serve`]: the endpoint that streams this node's files to other agents with a transfer
//!   token, through the shared [`crate::content`] module (feature `node`).
//! - [`listen`]: that endpoint over TLS with the node's own certificate, and what the node
//!   document advertises (feature `node`).
//! - [`client`]: the requesting side — pinned TLS, a token, the body hashed as it arrives and
//!   accepted only when the trailer matches (also used by the hub for `/api/files/{id}/content`).

pub mod client;
#[cfg(feature = "node")]
pub mod listen;
#[cfg(feature = "node")]
pub mod serve;

#[cfg(all(test, feature = "node"))]
mod tests;
