//! The search page: results as you type (100 ms after the last keystroke), more as you scroll.

use agent_core::doc::FileDoc;
use leptos::prelude::*;

use crate::components::bytes;
use crate::shell::{Chrome, Shell};

/// One page of hits, as the search API answers it.
#[derive(Clone, Debug, Default)]
pub struct Hits {
    pub query: String,
    pub files: Vec<FileDoc>,
    pub next_cursor: Option<String>,
    pub total: Option<u64>,
    /// Why there are no results (a bad glob, …), in words.
    pub problem: Option<String>,
}

#[component]
pub fn SearchPage(chrome: Chrome, hits: Hits) -> impl IntoView {
    let query = hits.query.clone();
    view! {
        <Shell chrome=chrome>
            <h1>"Search"</h1>
            <form action="/search" role="search" class="panel" hx-get="/ui/fragments/search" hx-target="#results"
                hx-trigger="input changed delay:100ms from:#q, search from:#q" hx-swap="outerHTML" hx-push-url="false">
                <label for="q" class="muted">"A part of the name, or a glob (*, ?, [ ], { })"</label>
                <input type="search" id="q" name="q" value=query data-search autofocus autocomplete="off"/>
            </form>
            <Results hits=hits/>
        </Shell>
    }
}

/// The results region; its last row fetches the next page when it scrolls into view.
#[component]
pub fn Results(hits: Hits) -> impl IntoView {
    let summary = match (&hits.problem, hits.query.is_empty(), hits.total) {
        (Some(p), _, _) => view! { <div class="banner error" role="alert">{p.clone()}</div> }.into_any(),
        (None, true, _) => view! { <p class="muted">"Type to search every node's files."</p> }.into_any(),
        (None, false, Some(n)) => {
            view! { <p class="muted" id="hit-count">{format!("{n} files")}</p> }.into_any()
        }
        (None, false, None) => {
            view! { <p class="muted" id="hit-count">{format!("{} files shown", hits.files.len())}</p> }
                .into_any()
        }
    };
    view! {
        <section id="results" aria-live="polite">
            {summary}
            <table>
                <thead><tr><th scope="col">"Name"</th><th scope="col" class="hide-narrow">"Folder"</th><th scope="col">"Size"</th></tr></thead>
                <tbody><Rows hits=hits/></tbody>
            </table>
        </section>
    }
}

/// Result rows, and a last row that loads the next page (infinite scroll).
#[component]
pub fn Rows(hits: Hits) -> impl IntoView {
    let more = hits.next_cursor.as_ref().map(|c| {
        let url = format!(
            "/ui/fragments/search/rows?q={}&cursor={}",
            encode(&hits.query),
            encode(c)
        );
        view! { <tr hx-get=url hx-trigger="revealed" hx-swap="outerHTML"><td colspan="3" class="muted">"Loading more…"</td></tr> }
    });
    let rows = hits
        .files
        .into_iter()
        .map(|f| {
            let folder = f.source.export_parent.clone();
            view! {
                <tr>
                    <td><a href=format!("/ui/files/{}/content", f.id) download>{f.name.clone()}</a></td>
                    <td class="hide-narrow"><code>{folder}</code></td>
                    <td>{bytes(f.size)}</td>
                </tr>
            }
        })
        .collect_view();
    view! { {rows}{more} }
}

/// Percent-encodes a query parameter value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
