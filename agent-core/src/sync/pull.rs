//! The pull loop (ARCHITECTURE §5.2): long-poll the hub's feed from the pull checkpoint and
//! apply each batch together with its new checkpoint in one transaction. While a batch is being
//! applied, the next one is already requested (from the seq the current one reached), so a
//! cold start is not a series of round trips; a failed apply drops the prefetched batch and
//! starts again from the stored checkpoint.

use std::sync::Arc;

use super::client::{Feed, HubClient, HubError};
use super::Ctx;
use crate::ids::Seq;

pub const BATCH: usize = 2000;

/// A fetch in flight and the checkpoint it was asked from.
type Fetch = (Seq, tokio::task::JoinHandle<Result<Feed, HubError>>);

fn fetch(ctx: &Ctx, since: Seq) -> Fetch {
    let client: Arc<HubClient> = ctx.client.clone();
    let wait = ctx.config.pull_wait;
    (since, tokio::spawn(async move { client.changes(since, BATCH, wait).await }))
}

pub(super) async fn run(ctx: Ctx) {
    let mut backoff = super::Backoff::new(ctx.config.retry_cap);
    let mut next: Option<Fetch> = None;
    loop {
        if ctx.stopping() {
            break;
        }
        let pending = match next.take() {
            Some(p) => p,
            None => match ctx.store.run(|s| s.pull_checkpoint()).await {
                Ok(since) => fetch(&ctx, since),
                Err(e) => {
                    tracing::error!(operation = "sync.pull", error = %e, "cannot read the pull checkpoint");
                    if !ctx.sleep(std::time::Duration::from_secs(5)).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let (since, pending) = pending;
        let abort = pending.abort_handle();
        let waited = std::time::Instant::now();
        let feed = tokio::select! {
            feed = pending => feed.unwrap_or_else(|e| Err(HubError::Transient { message: e.to_string(), retry_after: None })),
            _ = ctx.stopped() => { abort.abort(); break; }
        };
        match feed {
            Ok(feed) => {
                backoff.reset();
                ctx.reached().await;
                if ctx.observe_epoch(&feed.hub).await {
                    continue; // a new hub: pull its whole feed from the reset checkpoint
                }
                let last_seq = feed.last_seq;
                tracing::trace!(
                    operation = "sync.pull",
                    waited_ms = waited.elapsed().as_millis() as u64,
                    "feed answer"
                );
                if !feed.changes.is_empty() {
                    next = Some(fetch(&ctx, last_seq));
                }
                let applied = apply(&ctx, since, feed).await;
                if matches!(applied, Ok(false)) {
                    // The checkpoint moved under us (a new epoch seen by the push loop).
                    if let Some((_, p)) = next.take() {
                        p.abort();
                    }
                    continue;
                }
                if let Err(e) = applied {
                    tracing::error!(operation = "sync.pull", error = %e, "pulled batch not applied; pulled again");
                    if let Some((_, p)) = next.take() {
                        p.abort();
                    }
                    ctx.state.failed("pull", e.to_string(), false).await;
                    if !ctx.sleep(backoff.next_delay()).await {
                        break;
                    }
                }
            }
            Err(HubError::AuthRefused { message } | HubError::Incompatible { message }) => {
                ctx.stop_for_good("pull", message).await;
                break;
            }
            Err(e) => {
                let permanent = !e.is_transient();
                let delay = match &e {
                    HubError::Transient { retry_after: Some(d), .. } => *d,
                    _ => backoff.next_delay(),
                };
                tracing::warn!(operation = "sync.pull", error = %e, retry_in_ms = delay.as_millis() as u64, "pull failed");
                ctx.state.failed("pull", e.to_string(), permanent).await;
                if !ctx.sleep(delay).await {
                    break;
                }
            }
        }
    }
    if let Some((_, p)) = next {
        p.abort();
    }
}

/// Applies one batch fetched from `since` and its checkpoint (one transaction), then records
/// it; `Ok(false)` when the checkpoint was no longer `since` and nothing was applied.
async fn apply(ctx: &Ctx, since: Seq, feed: Feed) -> Result<bool, crate::store::StoreError> {
    let started = std::time::Instant::now();
    let n = feed.changes.len();
    let last_seq = feed.last_seq;
    let docs: Vec<serde_json::Value> = feed.changes.into_iter().map(|c| c.doc).collect();
    let own = ctx.node_id.clone();
    let stats = ctx.store.run(move |s| s.apply_pulled(&own, docs, since, last_seq)).await?;
    if stats.skipped {
        return Ok(false);
    }
    let now = crate::doc::now();
    ctx.state
        .update(|s| {
            s.pulled += stats.applied;
            s.hub_seq = last_seq.0;
            s.last_pull_at = Some(now);
        })
        .await;
    if n > 0 {
        tracing::debug!(
            operation = "sync.pull",
            changes = n,
            applied = stats.applied,
            stale = stats.stale,
            invalid = stats.invalid,
            up_to = last_seq.0,
            duration_ms = started.elapsed().as_millis() as u64
        );
    }
    Ok(true)
}
