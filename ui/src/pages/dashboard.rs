//! The dashboard: every node's health, what needs attention, totals, what changed lately.

use agent_core::doc::NodeDoc;
use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::components::{ago, NodeBadge, NodeHealth};
use crate::shell::{Chrome, Shell};

/// What the dashboard shows, read by the server.
#[derive(Clone, Debug)]
pub struct Dashboard {
    pub nodes: Vec<NodeDoc>,
    pub files: u64,
    pub hub_seq: u64,
    pub recent: Vec<Activity>,
    pub now: DateTime<Utc>,
}

/// One recent change in the hub's store.
#[derive(Clone, Debug)]
pub struct Activity {
    pub seq: u64,
    /// The document's type (`file`, `node`, …).
    pub kind: String,
    /// A file's path or a node's name; else the document id.
    pub what: String,
    pub deleted: bool,
}

#[component]
pub fn DashboardPage(chrome: Chrome, data: Dashboard) -> impl IntoView {
    let online = data.nodes.iter().filter(|n| NodeHealth::of(n) == NodeHealth::Online).count();
    let recent = data
        .recent
        .into_iter()
        .map(|a| {
            let change = if a.deleted { "removed" } else { "changed" };
            view! { <tr><td>{a.seq}</td><td>{a.kind}</td><td>{a.what}</td><td>{change}</td></tr> }
        })
        .collect_view();
    view! {
        <Shell chrome=chrome>
            <h1>"Dashboard"</h1>
            <HealthStrip nodes=data.nodes.clone() now=data.now/>
            <form action="/search" role="search" class="panel">
                <label for="dash-search" class="muted">"Search every file by name (press / to focus)"</label>
                <input type="search" id="dash-search" name="q" data-search placeholder="report.pdf, *.jpg, …"/>
            </form>
            <section class="totals" aria-label="Totals">
                <div><strong id="total-files">{data.files}</strong>"files indexed"</div>
                <div><strong id="total-nodes">{data.nodes.len()}</strong>"nodes"</div>
                <div><strong id="total-online">{online}</strong>"online"</div>
                <div><strong>{data.hub_seq}</strong>"changes recorded"</div>
            </section>
            <h2>"Recent activity"</h2>
            <table>
                <thead><tr><th scope="col">"#"</th><th scope="col">"Type"</th><th scope="col">"What"</th><th scope="col">"Change"</th></tr></thead>
                <tbody>{recent}</tbody>
            </table>
        </Shell>
    }
}

/// The health strip and the banner of nodes that need attention: a fragment of its own
/// (`/ui/fragments/health`), fetched again when a node document changes.
#[component]
pub fn HealthStrip(nodes: Vec<NodeDoc>, now: DateTime<Utc>) -> impl IntoView {
    let offline: Vec<String> = nodes
        .iter()
        .filter(|n| NodeHealth::of(n) == NodeHealth::Offline)
        .map(|n| match n.last_seen {
            Some(t) => format!("{} (last seen {})", n.friendly_name, ago(now, t)),
            None => n.friendly_name.clone(),
        })
        .collect();
    let banner = (!offline.is_empty()).then(|| {
        let n = offline.len();
        let what = if n == 1 { "node is offline" } else { "nodes are offline" };
        view! { <div class="banner warn" role="status">{format!("{n} {what}: {}", offline.join(", "))}</div> }
    });
    let pills = nodes.into_iter().map(|n| view! { <NodeBadge node=n/> }).collect_view();
    view! {
        <section id="health" aria-label="Node health" hx-get="/ui/fragments/health" hx-trigger="sse:node" hx-swap="outerHTML">
            {banner}
            <div class="strip panel">{pills}</div>
        </section>
    }
}
