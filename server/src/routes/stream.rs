//! `GET /api/changes/stream?since=SEQ` (JWT): the hub's changes as Server-Sent Events for the UI
//! (ARCHITECTURE §5.5). One `change` event per change, `id:` = its seq, data
//! `{"seq","id","type","rev","deleted"}` — no document bodies (the UI reads what it shows through
//! the API). Resumes after `Last-Event-ID` when the browser reconnects; a comment every 15 s
//! keeps proxies from closing an idle stream. The stream ends when its session does (logout, or
//! its credential disabled or deleted).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use agent_core::doc::DocType;
use agent_core::ids::Seq;
use agent_core::store::Change;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;

use crate::auth::{Claims, Session};
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

/// How often an open stream re-checks its session (logout, credential disabled or deleted).
const SESSION_CHECK_EVERY: Duration = Duration::from_secs(1);

/// The changes after `since`, for as long as the session holds: batches from the feed, then
/// waits for the next commit. The stream ends when the session is logged out or its credential
/// disabled or deleted (checked before each batch and every second while waiting).
fn changes_after(
    state: AppState,
    claims: Claims,
    since: u64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let seed = (state, claims, since, VecDeque::<Change>::new());
    stream::unfold(seed, |(state, claims, mut since, mut buf)| async move {
        loop {
            if let Some(c) = buf.pop_front() {
                since = c.seq.0;
                let ev = event_of(&c);
                return Some((Ok(ev), (state, claims, since, buf)));
            }
            let mut checked = std::time::Instant::now();
            if !session_holds(&state, &claims).await {
                return None;
            }
            while state.store.committed_seq().0 <= since {
                tokio::time::sleep(POLL_EVERY).await;
                if checked.elapsed() >= SESSION_CHECK_EVERY {
                    if !session_holds(&state, &claims).await {
                        return None;
                    }
                    checked = std::time::Instant::now();
                }
            }
            let store = state.store.clone();
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

async fn session_holds(state: &AppState, claims: &Claims) -> bool {
    match Session::check(state, claims).await {
        Ok(()) => true,
        Err(e) => {
            tracing::info!(access_key_id = %claims.sub, reason = %e, "changes stream: the session ended; closing it");
            false
        }
    }
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
    session: Session,
    headers: HeaderMap,
    QueryParams(q): QueryParams<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = match headers.get("last-event-id").map(|v| v.to_str().map(str::parse::<u64>)) {
        Some(Ok(Ok(seq))) => Some(seq),
        Some(_) => return Err(ApiError::BadRequest("Last-Event-ID must be a sequence number".into())),
        None => None,
    };
    let since = resume.or(q.since).unwrap_or(state.store.committed_seq().0);
    Ok(Sse::new(changes_after(state.clone(), session.claims, since))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
