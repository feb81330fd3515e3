//! The nodes page (every node, filtered by kind) and one node's page.

use agent_core::doc::{AgentStatusDoc, NodeDoc, UtilizationSnapshotDoc};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

use crate::components::{ago, bytes, node_kind, NodeHealth, UsageBar};
use crate::shell::{Chrome, Shell};

/// Which nodes the list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindFilter {
    All,
    Physical,
    Bridge,
}

impl KindFilter {
    /// From `?kind=`: unknown values show everything.
    pub fn parse(raw: Option<&str>) -> KindFilter {
        match raw {
            Some("physical") => KindFilter::Physical,
            Some("bridge") => KindFilter::Bridge,
            _ => KindFilter::All,
        }
    }

    fn keeps(self, node: &NodeDoc) -> bool {
        match self {
            KindFilter::All => true,
            KindFilter::Physical => node_kind(node) == "physical",
            KindFilter::Bridge => node_kind(node) == "bridge",
        }
    }
}

#[component]
pub fn NodesPage(
    chrome: Chrome,
    nodes: Vec<NodeDoc>,
    filter: KindFilter,
    now: DateTime<Utc>,
) -> impl IntoView {
    let tabs = [
        (KindFilter::All, "All", "/nodes"),
        (KindFilter::Physical, "Machines", "/nodes?kind=physical"),
        (KindFilter::Bridge, "Bridges", "/nodes?kind=bridge"),
    ]
    .into_iter()
    .map(|(f, label, href)| {
        let current = (f == filter).then_some("true");
        view! { <a href=href aria-current=current>{label}</a> }
    })
    .collect_view();
    let fragment = match filter {
        KindFilter::All => "/ui/fragments/nodes".to_string(),
        KindFilter::Physical => "/ui/fragments/nodes?kind=physical".into(),
        KindFilter::Bridge => "/ui/fragments/nodes?kind=bridge".into(),
    };
    view! {
        <Shell chrome=chrome>
            <h1>"Nodes"</h1>
            <nav class="filters" aria-label="Kind">{tabs}</nav>
            <NodesTable nodes=nodes filter=filter now=now fragment=fragment/>
        </Shell>
    }
}

/// The table of nodes, a fragment fetched again when a node document changes.
#[component]
pub fn NodesTable(
    nodes: Vec<NodeDoc>,
    filter: KindFilter,
    now: DateTime<Utc>,
    fragment: String,
) -> impl IntoView {
    let rows = nodes
        .into_iter()
        .filter(|n| filter.keeps(n))
        .map(|n| {
            let health = NodeHealth::of(&n);
            let seen = n.last_seen.map_or_else(|| "never".to_string(), |t| ago(now, t));
            view! {
                <tr data-node=n.node_id.to_string()>
                    <td><a href=format!("/nodes/{}", n.node_id)>{n.friendly_name.clone()}</a></td>
                    <td><span class=format!("pill {}", health.as_str())>{health.as_str()}</span></td>
                    <td>{node_kind(&n)}</td>
                    <td class="hide-narrow">{format!("{} / {}", n.platform.os, n.platform.arch)}</td>
                    <td class="hide-narrow">{n.watch_paths.len()}</td>
                    <td>{seen}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table id="nodes" hx-get=fragment hx-trigger="sse:node" hx-swap="outerHTML">
            <thead><tr>
                <th scope="col">"Name"</th><th scope="col">"Health"</th><th scope="col">"Kind"</th>
                <th scope="col" class="hide-narrow">"Platform"</th><th scope="col" class="hide-narrow">"Watch paths"</th>
                <th scope="col">"Last seen"</th>
            </tr></thead>
            <tbody>{rows}</tbody>
        </table>
    }
}

/// What one node's page shows.
#[derive(Clone, Debug)]
pub struct NodeDetail {
    pub node: NodeDoc,
    pub status: Option<AgentStatusDoc>,
    pub utilization: Option<UtilizationSnapshotDoc>,
    /// Hub changes its replica has not applied yet.
    pub behind: Option<u64>,
    pub now: DateTime<Utc>,
}

#[component]
pub fn NodePage(chrome: Chrome, detail: NodeDetail) -> impl IntoView {
    let NodeDetail { node, status, utilization, behind, now } = detail;
    let health = NodeHealth::of(&node);
    let seen = node.last_seen.map_or_else(|| "never".to_string(), |t| ago(now, t));
    let storage = match utilization.as_ref() {
        None => view! { <p class="muted">"No utilization reported yet."</p> }.into_any(),
        Some(u) => {
            let rows = u
                .storage
                .iter()
                .map(|s| {
                    view! {
                        <tr>
                            <td><code>{s.path.clone()}</code></td>
                            <td><UsageBar used=s.used_bytes total=s.total_bytes/></td>
                            <td>{format!("{} of {}", bytes(s.used_bytes), bytes(s.total_bytes))}</td>
                            <td>{bytes(s.available_bytes)}" free"</td>
                        </tr>
                    }
                })
                .collect_view();
            let indexed = format!(
                "{} files, {} indexed (as of {})",
                u.indexed_files,
                bytes(u.indexed_bytes),
                ago(now, u.captured_at)
            );
            view! {
            <p class="muted">{indexed}</p>
            <table><thead><tr><th scope="col">"Volume"</th><th scope="col">"Used"</th><th scope="col">"Of"</th><th scope="col">"Free"</th></tr></thead><tbody>{rows}</tbody></table>
        }
        .into_any()
        }
    };
    let watch_rows = node
        .watch_paths
        .iter()
        .map(|p| {
            let st = status.as_ref().and_then(|s| s.watch_paths.iter().find(|w| &w.path == p));
            let files = st.map_or_else(|| "—".to_string(), |w| w.files.to_string());
            view! { <tr><td><code>{p.clone()}</code></td><td>{files}</td></tr> }
        })
        .collect_view();
    let mounts = if node.network_mounts.is_empty() {
        view! { <p class="muted">"No network mounts: other nodes' files are fetched through their transfer servers."</p> }.into_any()
    } else {
        let rows = node
            .network_mounts
            .iter()
            .map(|m| view! { <tr><td><code>{m.local_mount_path.clone()}</code></td><td>{m.remote_node_id.to_string()}</td><td><code>{m.remote_base_export_path.clone()}</code></td><td>{m.priority}</td></tr> })
            .collect_view();
        view! { <table><thead><tr><th scope="col">"Mounted at"</th><th scope="col">"Node"</th><th scope="col">"Its path"</th><th scope="col">"Priority"</th></tr></thead><tbody>{rows}</tbody></table> }.into_any()
    };
    let errors = status.as_ref().map(|s| s.recent_errors.clone()).unwrap_or_default();
    let errors = if errors.is_empty() {
        view! { <p class="muted">"No recent errors."</p> }.into_any()
    } else {
        let rows = errors
            .into_iter()
            .rev()
            .map(|e| view! { <tr><td>{ago(now, e.at)}</td><td>{e.subsystem}</td><td>{e.message}</td></tr> })
            .collect_view();
        view! { <table><thead><tr><th scope="col">"When"</th><th scope="col">"Where"</th><th scope="col">"What"</th></tr></thead><tbody>{rows}</tbody></table> }.into_any()
    };
    let replica = match behind {
        Some(0) => "up to date".to_string(),
        Some(n) => format!("{n} changes behind"),
        None => "not pulled from this hub process yet".into(),
    };
    view! {
        <Shell chrome=chrome>
            <h1>{node.friendly_name.clone()}" "<span class=format!("pill {}", health.as_str())>{health.as_str()}</span></h1>
            <section class="panel" aria-label="Status">
                <dl class="facts">
                    <dt>"Node id"</dt><dd><code>{node.node_id.to_string()}</code></dd>
                    <dt>"Host"</dt><dd>{node.hostname.clone()}</dd>
                    <dt>"Kind"</dt><dd>{node_kind(&node)}</dd>
                    <dt>"Platform"</dt><dd>{format!("{} / {}", node.platform.os, node.platform.arch)}</dd>
                    <dt>"Agent"</dt><dd>{node.agent_version.clone()}</dd>
                    <dt>"Last seen"</dt><dd>{seen}</dd>
                    <dt>"Running since"</dt><dd>{ago(now, node.started_at)}</dd>
                    <dt>"Replica"</dt><dd>{replica}</dd>
                </dl>
            </section>
            <h2>"Storage"</h2>
            {storage}
            <h2>"Watch paths"</h2>
            <p class="muted">"Set in the agent's own agent.toml on that machine."</p>
            <table><thead><tr><th scope="col">"Path"</th><th scope="col">"Files"</th></tr></thead><tbody>{watch_rows}</tbody></table>
            <h2>"Network mounts"</h2>
            {mounts}
            <h2>"Recent errors"</h2>
            {errors}
        </Shell>
    }
}
