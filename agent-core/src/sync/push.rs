//! The push loop (ARCHITECTURE §5.1): the outbox, in local seq order, 200 documents per push;
//! the checkpoint moves only after the hub answered for every document of the batch.

use std::time::Duration;

use super::client::HubError;
use super::Ctx;
use crate::ids::{DocId, Rev, Seq};
use crate::store::Change;
use crate::wire::sync::RefusalCode;

pub const BATCH: usize = 200;
/// How often an idle push loop looks for local writes (the coalescing window).
const IDLE_POLL: Duration = Duration::from_millis(200);

pub(super) async fn run(ctx: Ctx) {
    let mut backoff = super::Backoff::new(ctx.config.retry_cap);
    loop {
        if ctx.stopping() {
            return;
        }
        // Read before the outbox: a write committed after this wakes the idle wait below.
        let seen = ctx.store.committed_seq();
        let read = ctx.store.run(|s| {
            let after = s.push_checkpoint()?;
            s.outbox_batch(after, BATCH).map(|(batch, upto)| (after, batch, upto))
        });
        let (after, batch, upto) = match read.await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(operation = "sync.push", error = %e, "cannot read the outbox");
                if !ctx.sleep(Duration::from_secs(5)).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            if upto > after {
                advance(&ctx, after, upto).await; // only documents pulled from the hub since
            }
            while ctx.store.committed_seq() == seen {
                if !ctx.sleep(IDLE_POLL).await {
                    return;
                }
            }
            continue;
        }
        match push_batch(&ctx, batch, after, upto).await {
            Ok(()) => backoff.reset(),
            Err(HubError::AuthRefused { message } | HubError::Incompatible { message }) => {
                ctx.stop_for_good("push", message).await;
                return;
            }
            Err(e) => {
                let delay = match &e {
                    HubError::Transient { retry_after: Some(d), .. } => *d,
                    _ => backoff.next_delay(),
                };
                tracing::warn!(
                    operation = "sync.push",
                    error = %e,
                    retry_in_ms = delay.as_millis() as u64,
                    "push failed; the outbox keeps the documents"
                );
                ctx.state.failed("push", e.to_string(), false).await;
                if !ctx.sleep(delay).await {
                    return;
                }
            }
        }
    }
}

/// Pushes one batch and records the answers; `Ok` once the checkpoint moved past it.
async fn push_batch(ctx: &Ctx, batch: Vec<Change>, after: Seq, upto: Seq) -> Result<(), HubError> {
    let high = batch.last().map(|c| c.seq).unwrap_or(Seq(0));
    let started = std::time::Instant::now();
    let mut docs = Vec::with_capacity(batch.len());
    for change in &batch {
        match serde_json::from_str::<serde_json::Value>(&change.body) {
            Ok(v) => docs.push(v),
            Err(e) => tracing::error!(id = %change.id, error = %e, "unreadable local document not pushed"),
        }
    }
    let sent = docs.len();
    let answer = match ctx.client.push(docs, high).await {
        Ok(a) => a,
        Err(HubError::Refused { message }) => {
            // The hub refused the batch as a whole (malformed, too large): retrying it
            // unchanged cannot succeed, so it is surfaced and skipped.
            tracing::error!(operation = "sync.push", error = %message, documents = sent, "push refused; batch skipped");
            ctx.state.failed("push", message, true).await;
            advance(ctx, after, upto).await;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    ctx.reached().await;
    if ctx.observe_epoch(&answer.hub).await {
        return Ok(()); // everything is pushed again from the start
    }
    let (mut ok, mut rejected) = (0u64, 0u64);
    for result in &answer.results {
        let id = &result.id;
        match result.refusal() {
            None => ok += 1,
            Some(r) if r.code == RefusalCode::Stale => stale(ctx, id, &batch, r.current_rev).await,
            Some(r) if r.code == RefusalCode::InodeTaken => new_inode(ctx, id, &r.reason).await,
            Some(r) => {
                rejected += 1;
                let code = r.code.as_str();
                tracing::warn!(
                    operation = "sync.push",
                    id,
                    code,
                    reason = r.reason,
                    "the hub refused a document; not retried"
                );
                ctx.state.failed("push", format!("{id}: {code}: {}", r.reason), true).await;
            }
        }
    }
    advance(ctx, after, upto).await;
    let now = crate::doc::now();
    ctx.state
        .update(|s| {
            s.pushed += ok;
            s.rejected += rejected;
            s.last_push_at = Some(now);
        })
        .await;
    tracing::debug!(
        operation = "sync.push",
        documents = sent,
        ok,
        rejected,
        up_to = high.0,
        duration_ms = started.elapsed().as_millis() as u64
    );
    Ok(())
}

/// The hub holds this or a newer revision. If ours is lower (this store was rebuilt), the
/// document is raised above the hub's so the owner's current content is pushed and wins.
async fn stale(ctx: &Ctx, id: &str, batch: &[Change], current: Option<Rev>) {
    let (Some(current), Ok(doc_id)) = (current, id.parse::<DocId>()) else { return };
    let ours = batch.iter().find(|c| c.id.as_str() == id).map(|c| c.rev);
    if ours.is_some_and(|r| r >= current) {
        return; // answered before (a retried batch, or the echo of a hub edit, §5.4)
    }
    match ctx.store.run(move |s| s.raise_rev(&doc_id, current)).await {
        Ok(Some(w)) => {
            tracing::info!(id, rev = w.rev.0, "local revision raised above the hub's; pushed again")
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(id, error = %e, "revision not raised"),
    }
}

/// The hub refused a file because another file or directory holds its inode (a random draw
/// can collide): it gets a new inode and is pushed again.
async fn new_inode(ctx: &Ctx, id: &str, reason: &str) {
    let Ok(file) = id.parse::<crate::ids::FileId>() else { return };
    match ctx.store.run(move |s| s.reinode(&file)).await {
        Ok(Some((w, inode))) => tracing::info!(
            operation = "sync.push",
            id,
            inode = inode.0,
            rev = w.rev.0,
            reason,
            "the file's inode was taken; pushed again with a new one"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(operation = "sync.push", id, error = %e, "no new inode drawn"),
    }
}

/// Moves the push checkpoint from `from` to `to` (not if a new hub epoch reset it meanwhile).
async fn advance(ctx: &Ctx, from: Seq, to: Seq) {
    if let Err(e) = ctx.store.run(move |s| s.advance_push_checkpoint(from, to)).await {
        tracing::error!(operation = "sync.push", error = %e, "push checkpoint not saved; the batch will be sent again");
    }
}
