//! The pull loop (ARCHITECTURE §5.2): long-poll the hub's feed from the pull checkpoint and
//! apply each batch together with its new checkpoint in one transaction.

use super::client::HubError;
use super::Ctx;

pub const BATCH: usize = 500;

pub(super) async fn run(ctx: Ctx) {
    let mut backoff = super::Backoff::new(ctx.config.retry_cap);
    loop {
        if ctx.stopping() {
            return;
        }
        let since = match ctx.store.run(|s| s.pull_checkpoint()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(operation = "sync.pull", error = %e, "cannot read the pull checkpoint");
                if !ctx.sleep(std::time::Duration::from_secs(5)).await {
                    return;
                }
                continue;
            }
        };
        let feed = tokio::select! {
            feed = ctx.client.changes(since, BATCH, ctx.config.pull_wait) => feed,
            _ = ctx.stopped() => return,
        };
        match feed {
            Ok(feed) => {
                backoff.reset();
                ctx.reached().await;
                let started = std::time::Instant::now();
                let n = feed.changes.len();
                let last_seq = feed.last_seq;
                let docs: Vec<serde_json::Value> = feed.changes.into_iter().map(|c| c.doc).collect();
                let own = ctx.node_id.clone();
                match ctx.store.run(move |s| s.apply_pulled(&own, docs, last_seq)).await {
                    Ok(stats) => {
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
                    }
                    Err(e) => {
                        tracing::error!(operation = "sync.pull", error = %e, "pulled batch not applied; pulled again");
                        ctx.state.failed("pull", e.to_string(), false).await;
                        if !ctx.sleep(backoff.next_delay()).await {
                            return;
                        }
                    }
                }
            }
            Err(HubError::AuthRefused { message }) => {
                ctx.stop_for_good("pull", message).await;
                return;
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
                    return;
                }
            }
        }
    }
}
