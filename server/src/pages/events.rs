//! `GET /ui/events`: one Server-Sent Events connection per open page. An event is named by the
//! kind of document that changed (`node`, `file`, `agent_status`, …) and carries the hub seq as
//! its `id`; a page's regions listen for the kinds they show (`hx-trigger="sse:node"`) and fetch
//! their fragment again. Changes are coalesced: at most one event per kind every 500 ms, so a
//! crawl of 100,000 files is a few events a second per page, not 100,000. A browser that
//! reconnects sends `Last-Event-ID` and misses nothing. The stream ends with its session.

use std::collections::{BTreeSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use agent_core::doc::DocType;
use agent_core::ids::Seq;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::stream::{self, Stream};

use crate::auth::{Claims, Session};
use crate::state::AppState;

/// At most one event per kind this often.
pub const COALESCE: Duration = Duration::from_millis(500);
const POLL_EVERY: Duration = Duration::from_millis(100);
const SESSION_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Changes read per store call while catching up.
const BATCH: usize = 5000;

pub async fn events(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let resume =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let since = resume.unwrap_or(state.store.committed_seq().0);
    Sse::new(kinds_changed(state, session.claims, since))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

struct Feed {
    state: AppState,
    claims: Claims,
    since: u64,
    pending: VecDeque<Event>,
    last_batch: Option<tokio::time::Instant>,
}

/// Which kinds of documents changed after `since`, one event per kind per [`COALESCE`].
fn kinds_changed(
    state: AppState,
    claims: Claims,
    since: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let feed = Feed { state, claims, since, pending: VecDeque::new(), last_batch: None };
    stream::unfold(feed, |mut f| async move {
        loop {
            if let Some(ev) = f.pending.pop_front() {
                return Some((Ok(ev), f));
            }
            if let Some(at) = f.last_batch {
                tokio::time::sleep_until(at + COALESCE).await;
            }
            let mut checked = std::time::Instant::now();
            if Session::check(&f.state, &f.claims).await.is_err() {
                return None;
            }
            while f.state.store.committed_seq().0 <= f.since {
                tokio::time::sleep(POLL_EVERY).await;
                if checked.elapsed() >= SESSION_CHECK_EVERY {
                    if Session::check(&f.state, &f.claims).await.is_err() {
                        return None;
                    }
                    checked = std::time::Instant::now();
                }
            }
            let mut kinds = BTreeSet::new();
            let upto = f.state.store.committed_seq().0;
            while f.since < upto {
                let since = f.since;
                let batch = match f.state.store.run(move |s| s.changes_since(Seq(since), BATCH)).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(error = %e, "web UI events: store read failed; ending the stream");
                        return None;
                    }
                };
                let Some(last) = batch.last() else { break };
                f.since = last.seq.0;
                for c in &batch {
                    let kind = DocType::ALL
                        .iter()
                        .find(|t| t.id_prefix() == c.id.prefix())
                        .map_or("other", |t| t.as_str());
                    kinds.insert(kind);
                }
            }
            let id = f.since.to_string();
            f.pending
                .extend(kinds.into_iter().map(|k| Event::default().event(k).id(id.clone()).data(id.clone())));
            f.last_batch = Some(tokio::time::Instant::now());
        }
    })
}
