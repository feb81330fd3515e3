//! `ui`: the web UI's pages and fragments, as Leptos components rendered to HTML on the server
//! (no WebAssembly), and the static files they use, embedded in the binary.
//!
//! The control plane (`server::pages`) reads the data, renders a component with [`page`] or
//! [`fragment`] and serves the result; htmx swaps fragments in place when the page's
//! Server-Sent Events say their data changed. This crate reads nothing itself: it depends only
//! on the document types of `agent-core`.
//!
//! Module map:
//! - [`shell`] — the frame of every signed-in page (top bar, sidebar, live-update connection).
//! - [`components`] — node health pill, label chip, usage bar, sizes and times.
//! - [`pages`] — login, dashboard, nodes and a node, search; an error page.
//! - [`assets`] — embedded CSS, JavaScript (htmx 2 and its SSE extension) and icon, under
//!   content-hashed names.

pub mod assets;
pub mod components;
pub mod pages;
pub mod shell;

use leptos::prelude::*;

/// A whole page: the doctype and the rendered `<html>`.
pub fn page<V: IntoView + 'static>(view: impl FnOnce() -> V) -> String {
    format!("<!DOCTYPE html>{}", fragment(view))
}

/// A part of a page (what an htmx request swaps in).
pub fn fragment<V: IntoView + 'static>(view: impl FnOnce() -> V) -> String {
    Owner::new().with(|| view().to_html())
}

#[cfg(test)]
mod tests;
