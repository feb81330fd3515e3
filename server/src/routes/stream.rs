//! `GET /api/changes/stream?since=SEQ` (JWT): the hub's changes as Server-Sent Events for the UI
//! (ARCHITECTURE §5.5). One `change` event per change, `id:` = its seq, data
//! `{"seq","id","type","rev","deleted"}` — no document bodies (the UI reads what it shows through
//! the API). Resumes after `Last-Event-ID` when the browser reconnects; a comment every 15 s
//! keeps proxies from closing an idle stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use agent_core::doc::DocType;
use agent_core::ids::Seq;
use agent_core::store::{Change, Store};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;

use crate::auth::Session;
use crate::error::{ApiError, QueryParams};
use crate::state::AppState;

const BATCH: usize = 500;
const POLL_EVERY: Duration = Duration::from_millis(100);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// Start after this hub seq (default: now, only new changes). `Last-Event-ID` wins.
    since: Option<u64>,
}

fn event_of(c: &Change) -> Event {
    let doc_type =
        DocType::ALL.iter().find(|t| t.id_prefix() == c.id.prefix()).map_or("unknown", |t| t.as_str());
    let data =
        serde_json::json!({"seq": c.seq, "id": c.id, "type": doc_type, "rev": c.rev, "deleted": c.deleted});
    Event::default().id(c.seq.0.to_string()).event("change").data(data.to_string())
}

/// The changes after `since`, forever: batches from the feed, then waits for the next commit.
fn changes_after(store: Store, since: u64) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((store, since, VecDeque::<Change>::new()), |(store, mut since, mut buf)| async move {
        loop {
            if let Some(c) = buf.pop_front() {
                since = c.seq.0;
                let ev = event_of(&c);
                return Some((Ok(ev), (store, since, buf)));
            }
            while store.committed_seq().0 <= since {
                tokio::time::sleep(POLL_EVERY).await;
            }
            match store.run(move |s| s.changes_since(Seq(since), BATCH)).await {
                Ok(batch) => buf.extend(batch),
                Err(e) => {
                    tracing::warn!(error = %e, "changes stream: store read failed; ending the stream");
                    return None;
                }
            }
        }
    })
}

/// `GET /api/changes/stream`
#[utoipa::path(
    get,
    path = "/api/changes/stream",
    operation_id = "changes_stream",
    tag = "system",
    params(StreamQuery, ("Last-Event-ID" = Option<String>, Header, description = "Resume after this seq")),
    responses(
        (status = 200, description = "text/event-stream of change events", content(("text/event-stream"))),
        crate::error::ErrorResponses,
    ),
    security(("bearer" = [])),
)]
pub async fn stream(
    State(state): State<AppState>,
    _session: Session,
    headers: HeaderMap,
    QueryParams(q): QueryParams<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id").map(|v| v.to_str().map(str::parse::<u64>)) {
        Some(Ok(Ok(seq))) => Some(seq),
        Some(_) => return Err(ApiError::BadRequest("Last-Event-ID must be a sequence number".into())),
        None => None,
    };
    let since = resume.or(q.since).unwrap_or(state.store.committed_seq().0);
    Ok(Sse::new(changes_after(state.store.clone(), since))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
