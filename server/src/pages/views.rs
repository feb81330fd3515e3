//! The pages and the fragments htmx fetches again when their data changes. Each reads through
//! the functions the REST handlers use and renders a `ui` component.

use agent_core::doc::{DocType, Document};
use agent_core::ids::Seq;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use leptos::prelude::*;
use serde::Deserialize;
use ui::pages::dashboard::{Activity, Dashboard, DashboardPage, HealthStrip};
use ui::pages::nodes::{KindFilter, NodeDetail, NodePage, NodesPage, NodesTable};
use ui::pages::search::{Hits, Results, Rows, SearchPage};
use ui::shell::{Chrome, Page};

use crate::auth::Session;
use crate::error::ApiError;
use crate::routes::{files, nodes};
use crate::state::AppState;

/// How many changes the dashboard's recent activity lists.
const RECENT: u64 = 15;

/// A page that could not be made: an error page with the reason in words (never raw JSON).
pub struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (title, message) = match &self.0 {
            ApiError::NotFound(what) => {
                ("Not found".to_string(), format!("There is no {what} (it may have been removed)."))
            }
            e if status.is_server_error() => {
                tracing::warn!(error = %e, "web UI page failed");
                (
                    "Something went wrong".to_string(),
                    format!("The page could not be made: {e}. Try again in a moment."),
                )
            }
            e => ("Not possible".to_string(), e.to_string()),
        };
        let html =
            ui::page(move || leptos::view! { <ui::pages::error::ErrorPage title=title message=message/> });
        (status, Html(html)).into_response()
    }
}

type PageResult = Result<Response, PageError>;

fn html(s: String) -> Response {
    Html(s).into_response()
}

async fn chrome(state: &AppState, session: &Session, page: Page) -> Chrome {
    let user = match session.claims.sub.parse() {
        Ok(key) => crate::credentials::get(&state.store, &key).await.ok().flatten().map(|c| c.name),
        Err(_) => None,
    };
    Chrome {
        instance_name: state.instance_name.to_string(),
        user: user.unwrap_or_else(|| session.claims.sub.clone()),
        page,
    }
}

/// `GET /`
pub async fn dashboard(State(state): State<AppState>, Extension(session): Extension<Session>) -> PageResult {
    let nodes = nodes::all_nodes(&state).await?;
    let (stats, changes) = state
        .store
        .run(|s| {
            let stats = s.stats()?;
            let changes = s.changes_since(Seq(stats.last_seq.saturating_sub(RECENT)), RECENT as usize)?;
            Ok((stats, changes))
        })
        .await
        .map_err(ApiError::from)?;
    let recent = changes
        .into_iter()
        .rev()
        .map(|c| {
            let kind =
                DocType::ALL.iter().find(|t| t.id_prefix() == c.id.prefix()).map_or("other", |t| t.as_str());
            let what = match serde_json::from_str::<Document>(&c.body) {
                Ok(Document::File(f)) => f.source.export_path,
                Ok(Document::Node(n)) => n.friendly_name,
                Ok(Document::VirtualDirectory(d)) => d.virtual_path,
                _ => c.id.to_string(),
            };
            Activity { seq: c.seq.0, kind: kind.replace('_', " "), what, deleted: c.deleted }
        })
        .collect();
    let data = Dashboard {
        nodes,
        files: stats.files_active,
        hub_seq: stats.last_seq,
        recent,
        now: chrono::Utc::now(),
    };
    let chrome = chrome(&state, &session, Page::Dashboard).await;
    Ok(html(ui::page(move || view! { <DashboardPage chrome=chrome data=data/> })))
}

/// `GET /ui/fragments/health`
pub async fn health_fragment(State(state): State<AppState>) -> PageResult {
    let nodes = nodes::all_nodes(&state).await?;
    let now = chrono::Utc::now();
    Ok(html(ui::fragment(move || view! { <HealthStrip nodes=nodes now=now/> })))
}

#[derive(Deserialize)]
pub struct KindQuery {
    kind: Option<String>,
}

/// `GET /nodes?kind=physical|bridge`
pub async fn nodes(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(q): Query<KindQuery>,
) -> PageResult {
    let nodes = nodes::all_nodes(&state).await?;
    let filter = KindFilter::parse(q.kind.as_deref());
    let chrome = chrome(&state, &session, Page::Nodes).await;
    let now = chrono::Utc::now();
    Ok(html(ui::page(move || view! { <NodesPage chrome=chrome nodes=nodes filter=filter now=now/> })))
}

/// `GET /ui/fragments/nodes?kind=…`
pub async fn nodes_fragment(State(state): State<AppState>, RawQuery(raw): RawQuery) -> PageResult {
    let nodes = nodes::all_nodes(&state).await?;
    let kind = raw.as_deref().and_then(|r| r.strip_prefix("kind="));
    let filter = KindFilter::parse(kind);
    let fragment = match raw {
        Some(r) if filter != KindFilter::All => format!("/ui/fragments/nodes?{r}"),
        _ => "/ui/fragments/nodes".into(),
    };
    let now = chrono::Utc::now();
    Ok(html(ui::fragment(
        move || view! { <NodesTable nodes=nodes filter=filter now=now fragment=fragment/> },
    )))
}

/// `GET /nodes/{node_id}`
pub async fn node(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Path(raw): Path<String>,
) -> PageResult {
    let (node, status) = nodes::node_status(&state, &raw).await?;
    let detail = NodeDetail {
        node,
        status: match status.agent_status {
            Some(Document::AgentStatus(s)) => Some(s),
            _ => None,
        },
        utilization: match status.utilization {
            Some(Document::UtilizationSnapshot(u)) => Some(u),
            _ => None,
        },
        behind: status.replica.map(|r| r.behind),
        now: chrono::Utc::now(),
    };
    let chrome = chrome(&state, &session, Page::Nodes).await;
    Ok(html(ui::page(move || view! { <NodePage chrome=chrome detail=detail/> })))
}

/// One page of hits for the raw query `q=…[&cursor=…]`, or the reason there are none.
async fn hits(state: &AppState, raw: Option<&str>) -> Hits {
    let params: Vec<(String, String)> =
        raw.and_then(|r| serde_urlencoded::from_str(r).ok()).unwrap_or_default();
    let query = params.iter().find(|(k, _)| k == "q").map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
    if query.is_empty() {
        return Hits::default();
    }
    let cursor = params.iter().find(|(k, _)| k == "cursor").map(|(_, v)| v.clone());
    let mut api: Vec<(&str, &str)> = vec![("q", &query), ("limit", "100"), ("count", "true")];
    if let Some(c) = &cursor {
        api.push(("cursor", c));
    }
    let api = serde_urlencoded::to_string(&api).unwrap_or_default();
    match files::search_files(state, Some(&api)).await {
        Ok(page) => {
            Hits { query, files: page.files, next_cursor: page.next_cursor, total: page.total, problem: None }
        }
        Err(e) => Hits { query, problem: Some(e.to_string()), ..Hits::default() },
    }
}

/// `GET /search?q=…`
pub async fn search(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    RawQuery(raw): RawQuery,
) -> PageResult {
    let hits = hits(&state, raw.as_deref()).await;
    let chrome = chrome(&state, &session, Page::Search).await;
    Ok(html(ui::page(move || view! { <SearchPage chrome=chrome hits=hits/> })))
}

/// `GET /ui/fragments/search?q=…`: the results region, as the user types.
pub async fn search_fragment(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let hits = hits(&state, raw.as_deref()).await;
    html(ui::fragment(move || view! { <Results hits=hits/> }))
}

/// `GET /ui/fragments/search/rows?q=…&cursor=…`: the next page of rows (infinite scroll).
pub async fn search_rows_fragment(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let hits = hits(&state, raw.as_deref()).await;
    if let Some(p) = hits.problem.clone() {
        let row = ui::fragment(move || view! { <tr><td colspan="3" role="alert">{p}</td></tr> });
        return (StatusCode::OK, Html(row)).into_response();
    }
    html(ui::fragment(move || view! { <Rows hits=hits/> }))
}
