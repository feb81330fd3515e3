//! `GET /api/agent/changes?since=&limit=&wait=`: the hub's changes feed for one node, filtered
//! to what that node may see (ARCHITECTURE §5.2–§5.4), with long-poll.

use agent_core::ids::{NodeId, Seq};
use agent_core::store::{Change, Store};
use agent_core::wire::sync::{ChangesQuery, Feed, FeedChange};
use axum::extract::State;
use axum::Json;

use crate::agent_auth::AgentIdentity;
use crate::error::{ApiError, QueryParams};
use crate::state::AppState;

pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 2000;
pub const DEFAULT_WAIT_SECS: u64 = 30;
pub const MAX_WAIT_SECS: u64 = 60;
/// How often a waiting long-poll looks at the committed sequence number.
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether `node` receives this change (ARCHITECTURE §5.3). `own_hub_edit` says whether the
/// node's own two-owner document was edited by the hub after `since` (§5.4).
pub fn visible_to(node: &NodeId, change: &Change, doc: &serde_json::Value, own_hub_edit: bool) -> bool {
    let owner_field = |path: &[&str]| {
        path.iter().try_fold(doc, |v, k| v.get(*k)).and_then(|v| v.as_str()).map(|s| s == node.as_str())
    };
    match change.id.prefix() {
        "dir" | "label_file" | "label_rule" => true,
        "credential" | "status" | "utilization" | "command_result" => false,
        // Commands go to the node they are for only (tombstones too: nobody else held them).
        "command" => change.id.as_str().starts_with(&format!("command::{node}::")),
        // Every node evaluates every directory, so it needs everyone's files and annotations,
        // but not its own back (it is their writer). Tombstones carry no owner: all get them.
        "file" => change.deleted || owner_field(&["source", "node_id"]) != Some(true),
        "annotation" => change.deleted || owner_field(&["node_id"]) != Some(true),
        "node" => change.id.as_str() != format!("node::{node}") || own_hub_edit,
        "plugin" => owner_field(&["node_id"]) == Some(true),
        "notification" => owner_field(&["source", "node_id"]) == Some(true) && own_hub_edit,
        _ => false,
    }
}

/// Whether a change is one of `node`'s own live documents that a rebuilt store takes back.
fn own_document(node: &NodeId, change: &Change, doc: &serde_json::Value) -> bool {
    let owner = match change.id.prefix() {
        "file" => doc.get("source").and_then(|s| s.get("node_id")),
        "annotation" => doc.get("node_id"),
        _ => None,
    };
    !change.deleted && owner.and_then(|v| v.as_str()) == Some(node.as_str())
}

/// One scan: up to `limit` visible changes after `since` (only the node's own documents with
/// `own`), and where the scan stopped.
fn scan(
    s: &Store,
    node: &NodeId,
    since: u64,
    limit: usize,
    own_only: bool,
) -> agent_core::store::Result<(Vec<FeedChange>, u64)> {
    let mut out = Vec::new();
    let mut reached = since;
    loop {
        let batch = s.changes_since(Seq(reached), limit.max(200))?;
        let done = batch.len() < limit.max(200);
        for change in batch {
            let doc: serde_json::Value = serde_json::from_str(&change.body).unwrap_or_default();
            let visible = if own_only {
                own_document(node, &change, &doc)
            } else {
                let hub_edit = matches!(change.id.prefix(), "node" | "notification")
                    && s.hub_fields_seq(&change.id)?.0 > since;
                visible_to(node, &change, &doc, hub_edit)
            };
            if visible {
                out.push(FeedChange {
                    seq: change.seq,
                    id: change.id,
                    rev: change.rev,
                    deleted: change.deleted,
                    doc,
                });
            }
            reached = change.seq.0;
            if out.len() == limit {
                return Ok((out, reached));
            }
        }
        if done {
            return Ok((out, reached));
        }
    }
}

/// `GET /api/agent/changes`
#[utoipa::path(
    get,
    path = "/api/agent/changes",
    operation_id = "agent_changes",
    tag = "agent",
    params(ChangesQuery),
    responses((status = 200, body = Feed), crate::error::ErrorResponses),
    security(("hmac" = [])),
)]
pub async fn changes(
    State(state): State<AppState>,
    agent: AgentIdentity,
    QueryParams(q): QueryParams<ChangesQuery>,
) -> Result<Json<Feed>, ApiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!("limit must be 1-{MAX_LIMIT}")));
    }
    let wait = if q.own { 0 } else { q.wait.unwrap_or(DEFAULT_WAIT_SECS) };
    if wait > MAX_WAIT_SECS {
        return Err(ApiError::BadRequest(format!("wait must be 0-{MAX_WAIT_SECS} seconds")));
    }
    if !q.own {
        // `since` is what the node's replica has applied (its pull checkpoint).
        let mark = crate::state::PullMark { applied_hub_seq: q.since, at: chrono::Utc::now() };
        state.pulls.lock().unwrap_or_else(|p| p.into_inner()).insert(agent.node_id.clone(), mark);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait);
    let mut since = q.since;
    loop {
        let node = agent.node_id.clone();
        let own = q.own;
        let (changes, reached) = state.store.run(move |s| scan(s, &node, since, limit, own)).await?;
        if !changes.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(Feed { changes, last_seq: Seq(reached.max(q.since)), hub: state.hub_info() }));
        }
        // Nothing visible yet: wait for the next commit (or the deadline), then scan on.
        since = reached;
        let _waiting = Waiting::new(&state.waiting_pulls);
        while state.store.committed_seq().0 <= since && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// Counts a long-poll as waiting while it lives (also when the request is dropped).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Waiting<'a> {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
