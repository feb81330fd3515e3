//! Each page rendered from documents: real content, escaped names, the regions htmx refreshes.

use agent_core::doc::NodeDoc;
use chrono::Utc;

use crate::components::NodeHealth;
use crate::pages::dashboard::{Activity, Dashboard, DashboardPage};
use crate::pages::login::LoginPage;
use crate::pages::nodes::{KindFilter, NodeDetail, NodePage, NodesPage};
use crate::pages::search::{Hits, SearchPage};
use crate::shell::{Chrome, Page};

fn node(id: &str, name: &str, online: bool, bridge: bool) -> NodeDoc {
    let now = Utc::now().to_rfc3339();
    let mut v = serde_json::json!({
        "_id": format!("node::{id}"), "_rev": 1, "node_id": id, "friendly_name": name,
        "platform": {"os": "linux", "arch": "x86_64"}, "hostname": "h", "agent_version": "0.1.0",
        "watch_paths": ["/home/me/Documents"], "status": "online", "started_at": now,
        "last_heartbeat": now, "observed_status": if online { "online" } else { "offline" }, "last_seen": now,
    });
    if bridge {
        v["role"] = serde_json::json!("bridge");
    }
    serde_json::from_value(v).expect("a node document")
}

fn chrome(page: Page) -> Chrome {
    Chrome { instance_name: "hub <one>".into(), user: "admin".into(), page }
}

#[test]
fn the_dashboard_shows_every_node_the_offline_banner_and_totals() {
    let nodes = vec![node("node-a", "laptop", true, false), node("node-b", "<script>nas", false, false)];
    let data = Dashboard {
        nodes,
        files: 1234,
        hub_seq: 99,
        recent: vec![Activity { seq: 98, kind: "file".into(), what: "/docs/a.pdf".into(), deleted: false }],
        now: Utc::now(),
    };
    let html = crate::page(|| leptos::view! { <DashboardPage chrome=chrome(Page::Dashboard) data=data/> });
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
    assert!(html.contains("hub &lt;one&gt;"), "the instance name, escaped");
    assert!(html.contains("&lt;script&gt;nas"), "node names are escaped");
    assert!(!html.contains("<script>nas"));
    assert!(html.contains("1 node is offline: &lt;script&gt;nas"));
    assert!(html.contains(">1234<") && html.contains("/docs/a.pdf"));
    assert!(html.contains(r#"href="/" aria-current="page""#));
    assert!(html.contains(r#"hx-trigger="sse:node""#) && html.contains(r#"sse-connect="/ui/events""#));
}

#[test]
fn the_nodes_page_filters_by_kind_and_links_each_node() {
    let nodes = vec![node("node-a", "laptop", true, false), node("node-s3", "bucket", true, true)];
    let html = crate::page(|| {
        leptos::view! { <NodesPage chrome=chrome(Page::Nodes) nodes=nodes filter=KindFilter::Bridge now=Utc::now()/> }
    });
    assert!(html.contains(r#"href="/nodes/node-s3""#));
    assert!(!html.contains(r#"href="/nodes/node-a""#), "a machine is filtered out of bridges");
    assert!(html.contains(r#"href="/nodes?kind=bridge" aria-current="true""#));
    assert_eq!(KindFilter::parse(Some("nonsense")), KindFilter::All);
}

#[test]
fn a_node_page_says_what_is_unknown_instead_of_failing() {
    let n = node("node-a", "laptop", false, false);
    assert_eq!(NodeHealth::of(&n), NodeHealth::Offline);
    let detail = NodeDetail { node: n, status: None, utilization: None, behind: Some(3), now: Utc::now() };
    let html = crate::page(|| leptos::view! { <NodePage chrome=chrome(Page::Nodes) detail=detail/> });
    assert!(html.contains("No utilization reported yet.") && html.contains("3 changes behind"));
    assert!(html.contains("/home/me/Documents") && html.contains("No recent errors."));
}

#[test]
fn the_login_page_shows_why_the_last_attempt_failed() {
    let html = crate::page(|| {
        leptos::view! { <LoginPage instance_name="hub".into() next="/nodes".into() message=Some("Too many attempts".into())/> }
    });
    assert!(html.contains(r#"role="alert""#) && html.contains("Too many attempts"));
    assert!(html.contains(r#"name="next" value="/nodes""#));
    assert!(html.contains(r#"type="password""#));
}

#[test]
fn search_results_page_on_by_a_cursor_row() {
    let hits =
        Hits { query: "a b".into(), next_cursor: Some("r5".into()), total: Some(7), ..Hits::default() };
    let html = crate::page(|| leptos::view! { <SearchPage chrome=chrome(Page::Search) hits=hits/> });
    assert!(html.contains("7 files"));
    assert!(html.contains(r#"hx-get="/ui/fragments/search/rows?q=a%20b&amp;cursor=r5""#), "{html}");
    let bad = Hits { query: "[".into(), problem: Some("invalid glob".into()), ..Hits::default() };
    let html = crate::fragment(|| leptos::view! { <crate::pages::search::Results hits=bad/> });
    assert!(html.contains("invalid glob"));
}
