//! Small pieces several pages use: a node's health pill, a label chip, a usage bar, times.

use agent_core::doc::{NodeDoc, NodeStatus};
use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// What a person needs to know of a node at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeHealth {
    Online,
    Offline,
    Disabled,
}

impl NodeHealth {
    /// The hub's observation decides (an agent that died never said it went offline).
    pub fn of(node: &NodeDoc) -> NodeHealth {
        if !node.enabled {
            NodeHealth::Disabled
        } else if node.observed_status == Some(NodeStatus::Online) {
            NodeHealth::Online
        } else {
            NodeHealth::Offline
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeHealth::Online => "online",
            NodeHealth::Offline => "offline",
            NodeHealth::Disabled => "disabled",
        }
    }
}

/// Physical machine or a bridge to a cloud service.
pub fn node_kind(node: &NodeDoc) -> &'static str {
    if node.role.is_some() {
        "bridge"
    } else {
        "physical"
    }
}

/// A node's name with its health, linking to its page.
#[component]
pub fn NodeBadge(node: NodeDoc) -> impl IntoView {
    let health = NodeHealth::of(&node);
    let href = format!("/nodes/{}", node.node_id);
    let label = format!("{}: {}", node.friendly_name, health.as_str());
    view! {
        <a class=format!("pill {}", health.as_str()) href=href aria-label=label data-node=node.node_id.to_string()>
            {node.friendly_name.clone()}
        </a>
    }
}

/// A label: solid when assigned to the file itself, outlined when it comes from a rule.
#[component]
pub fn LabelChip(label: String, inherited: bool) -> impl IntoView {
    let (class, title) =
        if inherited { ("chip inherited", "from a rule") } else { ("chip direct", "assigned") };
    view! { <span class=class title=title>{label}</span> }
}

/// Used over total, as a bar coloured by how full it is.
#[component]
pub fn UsageBar(used: u64, total: u64) -> impl IntoView {
    let pct = used.saturating_mul(100).checked_div(total).unwrap_or(0).min(100);
    let class = match pct {
        0..=79 => "bar",
        80..=94 => "bar high",
        _ => "bar full",
    };
    view! {
        <div class=class role="meter" aria-valuemin="0" aria-valuemax="100" aria-valuenow=pct.to_string()
            aria-label=format!("{pct}% used")>
            <span style=format!("width:{pct}%")></span>
        </div>
    }
}

/// `1.5 GB`-style sizes (decimal units, as file managers show them).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// How long before `now`, in the largest whole unit (`12 s ago`, `3 min ago`, `2 days ago`).
pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let s = (now - then).num_seconds();
    match s {
        i64::MIN..=-1 => "just now".into(),
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_naturally() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        let now = Utc::now();
        assert_eq!(ago(now, now - chrono::Duration::seconds(5)), "5 s ago");
        assert_eq!(ago(now, now - chrono::Duration::minutes(3)), "3 min ago");
        assert_eq!(ago(now, now - chrono::Duration::days(2)), "2 days ago");
        assert_eq!(ago(now, now + chrono::Duration::seconds(5)), "just now");
    }
}
