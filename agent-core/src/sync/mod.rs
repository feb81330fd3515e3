//! Replication with the control plane (ARCHITECTURE §5): a push loop that drains this node's
//! outbox and a pull loop that long-polls the hub's feed into the replica. Both retry transient
//! errors with the standard backoff forever (the outbox and the checkpoints persist, so nothing
//! is lost while the hub is away) and stop on a permanent one (the hub refused the credential).
//!
//! - [`client`] — signed requests through the pinned client; transient vs permanent errors.
//! - [`push`] / [`pull`] — the two loops.
//! - [`state`] — what `mosaicfs sync status` and `agent_status` show.
//! - [`backoff`] — 1 s, ×2, cap, ±25 % jitter.

mod backoff;
pub mod client;
mod pull;
mod push;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

pub use backoff::Backoff;
pub use client::{HubClient, HubError};
pub use state::{SharedState, SyncState};

use crate::config::SyncConfig;
use crate::ids::NodeId;
use crate::store::Store;

/// Called when the hub is reached again after an outage of at least `reconcile_after`: the
/// agent runs a reconciliation crawl (plan §4.11).
pub type OnLongOutage = Arc<dyn Fn(Duration) + Send + Sync>;

/// Running replication; `stop()` ends both loops.
pub struct Replication {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state: SharedState,
    store: Store,
}

impl Replication {
    /// Starts the push and pull loops with the agent's one hub client. The hub need not be
    /// reachable: the loops retry.
    pub fn start(
        store: Store,
        node_id: NodeId,
        client: Arc<HubClient>,
        config: SyncConfig,
        on_long_outage: Option<OnLongOutage>,
    ) -> Replication {
        let state = SharedState::new(store.clone(), client.base_url());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let ctx = Ctx {
            store: store.clone(),
            node_id,
            client,
            state: state.clone(),
            config,
            stop: stop_rx,
            on_long_outage,
        };
        let hub = ctx.client.base_url().to_owned();
        let tasks = vec![tokio::spawn(push::run(ctx.clone())), tokio::spawn(pull::run(ctx))];
        tracing::info!(operation = "sync.start", hub = %hub, "replication started");
        Replication { stop, tasks, state, store }
    }

    pub fn state(&self) -> SharedState {
        self.state.clone()
    }

    /// Gives the push loop up to `within` to deliver what is queued (a clean shutdown's last
    /// node document), then stops. Skipped when the hub is not reachable.
    pub async fn drain_and_stop(self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            let s = self.state.snapshot();
            if !s.connected || s.stopped.is_some() {
                break;
            }
            match self.store.run(|st| st.outbox_depth(st.push_checkpoint()?)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        self.stop().await
    }

    /// Ends both loops (an in-flight request is abandoned; its batch is sent again next time).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Takes back this node's own file and annotation documents from the hub when its store has
/// none (ARCHITECTURE §5.2): a node whose `agent.db` was lost keeps its file ids, and with them
/// its labels and annotations, instead of re-crawling into new ids the hub would refuse. Runs
/// before the first crawl; a fresh node gets nothing back. Returns how many were restored.
pub async fn bootstrap(store: &Store, client: &HubClient) -> Result<u64, HubError> {
    let (mut since, mut restored) = (crate::ids::Seq(0), 0);
    loop {
        let feed = client.own_documents(since, pull::BATCH).await?;
        if feed.changes.is_empty() {
            return Ok(restored);
        }
        since = feed.last_seq;
        let docs: Vec<serde_json::Value> = feed.changes.into_iter().map(|c| c.doc).collect();
        restored += store
            .run(move |s| s.restore_own(docs))
            .await
            .map_err(|e| HubError::Refused { message: format!("restoring own documents: {e}") })?;
    }
}

/// What both loops share.
#[derive(Clone)]
struct Ctx {
    store: Store,
    node_id: NodeId,
    client: Arc<HubClient>,
    state: SharedState,
    config: SyncConfig,
    stop: tokio::sync::watch::Receiver<bool>,
    on_long_outage: Option<OnLongOutage>,
}

impl Ctx {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn stopped(&self) {
        let mut rx = self.stop.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Sleeps; `false` if asked to stop meanwhile.
    async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.stopping(),
            _ = self.stopped() => false,
        }
    }

    /// The hub answered: records it, and after a long outage starts the reconciliation crawl.
    async fn reached(&self) {
        let skew = self.client.clock_skew_secs();
        if let Some(outage) = self.state.reached(crate::doc::now()).await {
            tracing::info!(
                operation = "sync.reconnect",
                outage_secs = outage.as_secs(),
                "control plane reachable again"
            );
            if let Some(f) = self.on_long_outage.as_ref().filter(|_| outage >= self.config.reconcile_after) {
                tracing::info!(
                    operation = "sync.reconcile",
                    outage_secs = outage.as_secs(),
                    "long outage: reconciliation crawl requested (changes the watcher missed meanwhile)"
                );
                f(outage);
            }
        }
        if self.state.snapshot().clock_skew_secs != Some(skew) {
            self.state.update(|s| s.clock_skew_secs = Some(skew)).await;
        }
    }

    /// Records the epoch an answer reports (§5.8); `true` when it is a new one and both
    /// checkpoints were reset (the caller drops what it holds and starts again from them).
    async fn observe_epoch(&self, hub: &crate::wire::sync::HubInfo) -> bool {
        if hub.hub_epoch.0.is_empty() {
            return false; // an older hub that does not say
        }
        let epoch = hub.hub_epoch.clone();
        match self.store.run(move |s| s.observe_hub_epoch(&epoch)).await {
            Ok(crate::store::EpochSeen::Changed { previous }) => {
                tracing::warn!(
                    operation = "sync.epoch",
                    previous = %previous,
                    epoch = %hub.hub_epoch,
                    "the control plane is a new epoch (restored from a backup?): pushing everything again and pulling its whole feed"
                );
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::error!(operation = "sync.epoch", error = %e, "hub epoch not recorded");
                false
            }
        }
    }

    /// A permanent error: replication stops until the agent is restarted with a fix.
    async fn stop_for_good(&self, during: &str, message: String) {
        tracing::error!(
            operation = "sync.stop",
            during,
            error = %message,
            "the control plane refused this node; replication stopped (local indexing goes on). \
             Re-join with `mosaicfs agent init --force` or fix the configuration, then restart"
        );
        self.state.failed(during, message.clone(), true).await;
        self.state.update(|s| s.stopped = Some(message)).await;
    }
}
