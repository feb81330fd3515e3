//! What replication is doing, shared by the push and pull loops, the status reporter and
//! `mosaicfs sync status` (which reads the copy kept in the store's `meta` table, so it works
//! from another process while the agent runs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::doc::ErrorEntry;
use crate::store::{Store, StoreError};

/// The `meta` key holding [`SyncState`] as JSON.
pub const SYNC_STATE: &str = "sync_state";
const MAX_RECENT_ERRORS: usize = 50;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncState {
    pub hub_url: String,
    /// The last request to the hub succeeded.
    pub connected: bool,
    /// Since when the hub has been unreachable (`None` while connected).
    pub outage_since: Option<DateTime<Utc>>,
    pub last_push_at: Option<DateTime<Utc>>,
    pub last_pull_at: Option<DateTime<Utc>>,
    /// The hub's sequence number as of the last pull answer.
    pub hub_seq: u64,
    /// Documents the hub accepted from this node, since the agent started.
    pub pushed: u64,
    /// Documents refused for good (`not_owner`, `invalid`, `conflict`), since the agent started.
    pub rejected: u64,
    /// Documents applied from the hub's feed, since the agent started.
    pub pulled: u64,
    /// Hub clock minus ours, seconds, from the last answer's `Date` header.
    pub clock_skew_secs: Option<i64>,
    pub last_error: Option<SyncError>,
    /// Newest first, at most 50.
    pub recent_errors: Vec<ErrorEntry>,
    /// Replication stopped on a permanent error (the hub refused this node's credential).
    pub stopped: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncError {
    pub at: DateTime<Utc>,
    /// `push`, `pull` or `connect`.
    pub during: String,
    pub message: String,
    /// Not retried (auth refused, document rejected).
    pub permanent: bool,
}

/// The state behind a lock, saved to the store after every change worth showing.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Mutex<SyncState>>,
    store: Store,
}

impl SharedState {
    pub fn new(store: Store, hub_url: &str) -> SharedState {
        let state = SyncState { hub_url: hub_url.to_owned(), ..SyncState::default() };
        SharedState { inner: Arc::new(Mutex::new(state)), store }
    }

    pub fn snapshot(&self) -> SyncState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the state and saves it (on the blocking pool: this is a SQLite write).
    pub async fn update(&self, f: impl FnOnce(&mut SyncState)) {
        let json = {
            let mut s = self.lock();
            f(&mut s);
            serde_json::to_string(&*s).unwrap_or_default()
        };
        if let Err(e) = self.store.run(move |st| st.meta_set(SYNC_STATE, &json)).await {
            tracing::warn!(error = %e, "sync state not saved");
        }
    }

    /// A request succeeded. Returns how long the outage that just ended lasted, if there was one.
    pub async fn reached(&self, now: DateTime<Utc>) -> Option<Duration> {
        let mut outage = None;
        let was_connected = self.lock().connected;
        if was_connected {
            return None;
        }
        self.update(|s| {
            s.connected = true;
            outage = s.outage_since.take().and_then(|t| (now - t).to_std().ok());
        })
        .await;
        outage
    }

    /// A request failed; `permanent` errors are not retried.
    pub async fn failed(&self, during: &str, message: String, permanent: bool) {
        let now = crate::doc::now();
        let during = during.to_owned();
        self.update(move |s| {
            if !permanent {
                s.connected = false;
                s.outage_since.get_or_insert(now);
            }
            s.recent_errors.insert(
                0,
                ErrorEntry { at: now, subsystem: format!("sync.{during}"), message: message.clone() },
            );
            s.recent_errors.truncate(MAX_RECENT_ERRORS);
            s.last_error = Some(SyncError { at: now, during, message, permanent });
        })
        .await
    }
}

/// The state as the running (or last) agent saved it; `None` if this store never synced.
pub fn load(store: &Store) -> Result<Option<SyncState>, StoreError> {
    Ok(store.meta_get(SYNC_STATE)?.and_then(|j| serde_json::from_str(&j).ok()))
}
