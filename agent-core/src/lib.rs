//! `agent-core`: everything that runs a MosaicFS node, as a library.
//!
//! Module map (docs/ARCHITECTURE.md has the full picture):
//!
//! - [`api`] — the typed client of the hub's REST API (sessions renewed, errors typed), for the
//!   CLI, the desktop app and tests.
//! - [`auth`] — credentials (Argon2id verifier) and HMAC request signing, shared with the hub.
//! - [`host`] — facts about this machine (host name).
//! - [`http`] — the one HTTP client: HTTPS pinned to a certificate fingerprint.
//! - [`ids`] — typed identifiers (`FileId`, `NodeId`, `Inode`, `Rev`, ...).
//! - [`doc`] — the eleven document types and their JSON form.
//! - [`labels`] — effective labels of a file (assignments + rules): the one evaluator.
//! - [`label_cache`] — the materialized label index, built at start and kept current from the
//!   store's changes.
//! - [`vtree`] — the virtual tree: path resolution and directory listings (readdir evaluation).
//! - [`vfs`] — the filesystem core over the virtual tree: lookup, getattr, readdir, open, read
//!   (feature `node`).
//! - [`cache`] — the cache of remote files: keys, block maps, `index.db`, verified writes and
//!   eviction (feature `node`).
//! - [`remote`] — tier 4: other nodes' files fetched from their transfer servers through the
//!   cache, whole or by ranges, with bounded retries (feature `node`).
//! - [`mount`] — the FUSE adapter over [`vfs`] (`fuser`), read-only (feature `node`).
//! - [`rules`] — the step pipeline of virtual directories: compiled once, evaluated per file.
//! - [`transfer`] — agent-to-agent transfers: the TLS endpoint serving this node's files
//!   (feature `node`) and the client that fetches and verifies them.
//! - [`transfer_token`] — hub-signed EdDSA tokens for agent-to-agent transfers.
//! - [`tls`] — self-signed TLS identities (hub listener, transfer server) and atomic key files.
//! - [`net_guard`] — what one peer can hold of a listener: connections per address, and a
//!   peer that stops reading dropped (feature `listen`, part of `node`; the hub uses it too).
//! - [`private_files`] — the data directory 0700, stores, keys, secrets and logs 0600, whatever
//!   the umask; atomic writes that never reuse a stale temp file.
//! - [`secrets`] — the node secret in the OS keychain, a 0600 file or the environment.
//! - [`store`] — the embedded SQLite document store (one writer, WAL, numbered migrations).
//! - [`commands`] — runs the commands the hub sends this node (its changes feed) and answers
//!   them with result documents (feature `node`).
//! - [`content`] — serving this node's own files: the one safe open under the watch paths, the
//!   one `Range` parser, versions and `ETag`s, the body with its `Digest` trailer (used by the
//!   transfer server and the hub's content route).
//! - [`config`] — `agent.toml`: parsed, validated and defaulted in one place.
//! - [`indexer`] — turns what `stat` says into file documents; the one local writer of files (feature `node`).
//! - [`crawler`] — walks the watch paths and reconciles the store with the disk (feature `node`).
//! - [`watcher`] — inotify/FSEvents changes, debounced, into the same reconciliation (feature `node`).
//! - [`node`] — the node document and its heartbeat (feature `node`).
//! - [`sync`] — replication with the control plane: push and pull loops (feature `node`).
//! - [`report`] — the `agent_status` document and utilization snapshots (feature `node`).
//! - [`wire`] — the wire contract: every body that crosses a process boundary (push, changes
//!   feed, error body, REST resources), shared by hub, agent and clients.
//! - [`agent`] — starts a node from a config and returns a handle with `shutdown()` (feature `node`).
//!
//! The control-plane server uses this crate with `default-features = false`: ids, documents, the
//! store, the rule engine and the virtual tree, the wire types, auth and the `content` module
//! (its content route serves the hub node's files as the transfer server does), without the
//! crawler, the watcher, the cache or the mount.

#[cfg(feature = "node")]
pub mod agent;
pub mod api;
pub mod auth;
#[cfg(all(feature = "node", unix))]
pub mod cache;
#[cfg(feature = "node")]
pub mod commands;
pub mod config;
#[cfg(unix)]
pub mod content;
#[cfg(feature = "node")]
pub mod crawler;
pub mod doc;
pub mod host;
pub mod http;
pub mod ids;
#[cfg(feature = "node")]
pub mod indexer;
pub mod label_cache;
pub mod labels;
#[cfg(all(feature = "node", unix))]
pub mod mount;
#[cfg(feature = "listen")]
pub mod net_guard;
#[cfg(feature = "node")]
pub mod node;
pub mod private_files;
#[cfg(all(feature = "node", unix))]
pub mod remote;
#[cfg(feature = "node")]
pub mod report;
pub mod rules;
pub mod secrets;
pub mod store;
#[cfg(feature = "node")]
pub mod sync;
pub mod tls;
#[cfg(unix)]
pub mod transfer;
pub mod transfer_token;
#[cfg(all(feature = "node", unix))]
pub mod vfs;
pub mod vtree;
#[cfg(feature = "node")]
pub mod watcher;
pub mod wire;
