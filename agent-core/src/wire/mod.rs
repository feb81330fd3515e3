//! The wire contract between the parts: every body that crosses a process boundary, as one set
//! of types used by the hub (which answers with them), the agent (which pushes and pulls with
//! them), the typed API client ([`crate::api`]) and every client built on it (CLI, desktop,
//! tests). Nothing here needs the `node` feature.
//!
//! - [`error`] — the error body `{"error": {"code", "message"}}` with its [`ErrorCode`].
//! - [`sync`] — the agent protocol (ARCHITECTURE §5): push, the changes feed, transfer tokens,
//!   with the protocol version and the hub epoch every answer carries.
//! - [`auth`], [`credentials`], [`nodes`], [`files`], [`labels`], [`vdirs`], [`commands`] — the
//!   REST resources' request and response bodies (ARCHITECTURE §7.2).
//!
//! Readers ignore unknown fields (the schema is additive, ARCHITECTURE §2.1); request bodies the
//! hub parses refuse them (`deny_unknown_fields`) so a misspelt field is a 400, not a no-op.

pub mod auth;
pub mod commands;
pub mod credentials;
pub mod error;
pub mod files;
pub mod labels;
pub mod nodes;
pub mod sync;
pub mod vdirs;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use sync::{HubEpoch, PROTOCOL_HEADER, PROTOCOL_VERSION};
