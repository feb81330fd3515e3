//! Serving a node's own files, one way for every path that does it (ARCHITECTURE §10.1):
//!
//! - [`open`] — the one safe open under a watch path (`openat2(RESOLVE_BENEATH)`), and the
//!   [`Content`] a reader reads through;
//! - [`range`] — the one `Range` parser (RFC 9110);
//! - [`version`] — a file's version (size, mtime), its `ETag` and the `version` precondition;
//! - [`serve`] — what to send for a request ([`serve::plan`], pure) and the body that sends it
//!   with a `Digest` trailer ([`serve::stream`]).
//!
//! The transfer server (other agents) and the hub's `/api/files/{id}/content` both use it, so
//! the same request gets the same answer from either.

pub mod open;
pub mod range;
pub mod serve;
pub mod version;

pub use open::{Beneath, Content, LocalSource, OpenError, WatchedFiles};
pub use version::FileVersion;
