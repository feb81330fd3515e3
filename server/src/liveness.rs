//! Observed node status (plan §11.3, ARCHITECTURE §5.6): a node whose last accepted push is older
//! than `offline_after` is marked `observed_status = offline`; its next push marks it online
//! again (the merge in `Store::apply_pushed`). The sweep runs at start — so a restarted hub
//! re-evaluates every node from the `last_seen` it kept, and marks none offline before its time —
//! and then every `offline_after / 3` (at most 30 s). It is a hub observation, not a hub edit: it
//! does not send a node its own document back.

use std::time::Duration;

use agent_core::doc::{DocType, Document, NodeStatus};
use agent_core::store::Store;

/// One pass: marks silent nodes offline; returns how many changed.
pub fn sweep(
    store: &Store,
    offline_after: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> agent_core::store::Result<usize> {
    let limit = chrono::Duration::from_std(offline_after).unwrap_or(chrono::Duration::MAX);
    let mut changed = 0;
    for d in store.list_type(DocType::Node)? {
        let Document::Node(mut n) = d else { continue };
        let silent = n.last_seen.is_none_or(|seen| now.signed_duration_since(seen) > limit);
        if n.observed_status == Some(NodeStatus::Online) && silent {
            n.observed_status = Some(NodeStatus::Offline);
            let node = n.node_id.clone();
            match store.put(Document::Node(n)) {
                Ok(_) => {
                    tracing::info!(node_id = %node, offline_after_secs = offline_after.as_secs(), "node offline: no push in time");
                    changed += 1;
                }
                // A push merged meanwhile: the node is alive; the next sweep looks again.
                Err(e) if e.as_conflict().is_some() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}

/// The sweep task: at start, then every `offline_after / 3` (1 s to 30 s).
pub fn spawn(store: Store, offline_after: Duration) -> tokio::task::JoinHandle<()> {
    let every = (offline_after / 3).clamp(Duration::from_secs(1), Duration::from_secs(30));
    tokio::spawn(async move {
        loop {
            let s = store.clone();
            if let Err(e) = s.run(move |s| sweep(s, offline_after, chrono::Utc::now())).await {
                tracing::warn!(error = %e, "liveness sweep failed");
            }
            tokio::time::sleep(every).await;
        }
    })
}
