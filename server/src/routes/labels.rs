//! `/api/labels`: direct assignments (one document per file, deterministic id, upsert), rules
//! (labels for every file under a path prefix), and effective labels through the one
//! evaluator, `agent_core::labels::LabelIndex`.

use agent_core::doc::{self, Document, FileDoc, LabelAssignmentDoc, LabelRuleDoc};
use agent_core::ids::{DocId, FileId, Label, LabelAssignmentId, LabelRuleId, Rev};
use agent_core::labels::LabelIndex;
use agent_core::store::Store;
use agent_core::wire::files::PageQuery as Page;
use agent_core::wire::labels::{
    AssignmentAnswer, AssignmentsPage, EffectiveAnswer, EffectiveQuery, LabelInUse, LabelsInUse, NewRule,
    RulePatch, SetLabels,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Session;
use crate::error::{ApiError, JsonBody, QueryParams};
use crate::state::AppState;

const MAX_LABELS: usize = 100;

/// Runs `f` with the hub's materialized label index (`AppState::labels`), brought up to date
/// from the store's changes first, on the blocking pool.
pub async fn with_index<R: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&LabelIndex) -> R + Send + 'static,
) -> Result<R, ApiError> {
    let cache = state.labels.clone();
    Ok(state
        .store
        .run(move |s| {
            cache.catch_up(s)?;
            Ok(cache.with(f))
        })
        .await?)
}

fn file_id(raw: &str) -> Result<FileId, ApiError> {
    let full = if raw.starts_with("file::") { raw.to_owned() } else { format!("file::{raw}") };
    Ok(full.parse()?)
}

fn check_labels(labels: &[Label]) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::BadRequest(format!("at most {MAX_LABELS} labels")));
    }
    Ok(())
}

async fn load_file(store: &Store, id: &FileId) -> Result<FileDoc, ApiError> {
    let key = DocId::from(id);
    match store.run(move |s| s.get(&key)).await? {
        Some(Document::File(f)) => Ok(f),
        _ => Err(ApiError::NotFound(format!("file {id}"))),
    }
}

/// `GET /api/labels`: every label in use, with how many files and rules carry it.
#[utoipa::path(
    get,
    path = "/api/labels",
    operation_id = "list_labels",
    tag = "labels",
    responses((status = 200, body = LabelsInUse), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list(State(state): State<AppState>, _s: Session) -> Result<Json<LabelsInUse>, ApiError> {
    let labels = with_index(&state, |index| {
        index
            .all_labels()
            .into_iter()
            .map(|(label, u)| LabelInUse { label, files: u.files, rules: u.rules })
            .collect()
    })
    .await?;
    Ok(Json(LabelsInUse { labels }))
}

/// `GET /api/labels/assignments?limit=&cursor=`: direct assignments in id order.
#[utoipa::path(
    get,
    path = "/api/labels/assignments",
    operation_id = "list_label_assignments",
    tag = "labels",
    params(Page),
    responses((status = 200, body = AssignmentsPage), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list_assignments(
    State(state): State<AppState>,
    _s: Session,
    QueryParams(q): QueryParams<Page>,
) -> Result<Json<AssignmentsPage>, ApiError> {
    let limit = super::files::limit(q.limit)?;
    let after = match q.cursor {
        Some(c) => Some(c.parse::<LabelAssignmentId>()?.to_string()),
        None => None,
    };
    let docs =
        state.store.run(move |s| s.list_id_prefix("label_file::", after.as_deref(), limit, false)).await?;
    let next = if docs.len() == limit { docs.last().map(|d| d.id().to_string()) } else { None };
    Ok(Json(AssignmentsPage { assignments: docs, next_cursor: next }))
}

/// `GET /api/labels/assignments/{file_id}`
#[utoipa::path(
    get,
    path = "/api/labels/assignments/{file_id}",
    operation_id = "get_label_assignment",
    tag = "labels",
    params(
        ("file_id" = String, Path, description = "File id, with or without its `file::` prefix"),
    ),
    responses((status = 200, body = LabelAssignmentDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn get_assignment(
    State(state): State<AppState>,
    _s: Session,
    Path(raw): Path<String>,
) -> Result<Json<LabelAssignmentDoc>, ApiError> {
    let file = file_id(&raw)?;
    let id = DocId::from(LabelAssignmentId::for_file(&file));
    match state.store.run(move |s| s.get(&id)).await? {
        Some(Document::LabelAssignment(a)) => Ok(Json(a)),
        _ => Err(ApiError::NotFound(format!("label assignment for {file}"))),
    }
}

/// `PUT /api/labels/assignments/{file_id}`: sets the file's direct labels (creates or replaces
/// the one assignment document of the file; an empty list removes it).
#[utoipa::path(
    put,
    path = "/api/labels/assignments/{file_id}",
    operation_id = "put_label_assignment",
    tag = "labels",
    params(
        ("file_id" = String, Path, description = "File id, with or without its `file::` prefix"),
    ),
    request_body = SetLabels,
    responses((status = 200, body = AssignmentAnswer), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn put_assignment(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<SetLabels>,
) -> Result<Json<AssignmentAnswer>, ApiError> {
    let file = file_id(&raw)?;
    check_labels(&body.labels)?;
    load_file(&state.store, &file).await?;
    let mut labels = body.labels;
    labels.sort();
    labels.dedup();
    let by = session.claims.sub.clone();
    let result = state
        .store
        .run(move |s| {
            let id = LabelAssignmentId::for_file(&file);
            for _ in 0..5 {
                let current = match s.get(&DocId::from(&id))? {
                    Some(Document::LabelAssignment(a)) => Some(a),
                    _ => None,
                };
                let written = match (&current, labels.is_empty()) {
                    (None, true) => return Ok(None),
                    (Some(a), true) => s.delete(&DocId::from(&id), a.rev).map(|_| None),
                    (_, false) => {
                        let doc = LabelAssignmentDoc {
                            id: id.clone(),
                            rev: current.as_ref().map_or(Rev::NONE, |a| a.rev),
                            file_id: file.clone(),
                            labels: labels.clone(),
                            updated_at: doc::now(),
                            updated_by: Some(by.clone()),
                        };
                        s.put(doc.clone().into()).map(|w| Some(LabelAssignmentDoc { rev: w.rev, ..doc }))
                    }
                };
                match written {
                    Err(e) if e.as_conflict().is_some() => continue,
                    other => return other,
                }
            }
            Err(agent_core::store::StoreError::Task("assignment kept changing".into()))
        })
        .await?;
    Ok(Json(AssignmentAnswer { assignment: result }))
}

/// `DELETE /api/labels/assignments/{file_id}`
#[utoipa::path(
    delete,
    path = "/api/labels/assignments/{file_id}",
    operation_id = "delete_label_assignment",
    tag = "labels",
    params(
        ("file_id" = String, Path, description = "File id, with or without its `file::` prefix"),
    ),
    responses((status = 204, description = "Deleted"), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn delete_assignment(
    State(state): State<AppState>,
    session: Session,
    path: Path<String>,
) -> Result<StatusCode, ApiError> {
    let Json(a) = get_assignment(State(state.clone()), session, Path(path.0.clone())).await?;
    let id = DocId::from(&a.id);
    state.store.run(move |s| s.delete(&id, a.rev)).await.map_err(conflict_or)?;
    Ok(StatusCode::NO_CONTENT)
}

fn conflict_or(e: agent_core::store::StoreError) -> ApiError {
    if e.as_conflict().is_some() {
        ApiError::Conflict(e.to_string())
    } else {
        ApiError::from(e)
    }
}

fn check_rule(name: &str, prefix: &str, labels: &[Label]) -> Result<(), ApiError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 200 {
        return Err(ApiError::BadRequest("name must be 1-200 characters".into()));
    }
    let dir = prefix.strip_suffix('/').unwrap_or("");
    let normalized = dir.is_empty() && prefix == "/"
        || agent_core::doc::FileSource::new("node-x".parse().expect("valid node id"), dir).is_some();
    if !prefix.ends_with('/') || !normalized {
        return Err(ApiError::BadRequest(format!(
            "path_prefix {prefix:?} must be a normalized absolute directory path ending in '/'"
        )));
    }
    if labels.is_empty() {
        return Err(ApiError::BadRequest("a rule needs at least one label".into()));
    }
    check_labels(labels)
}

fn rules_of(docs: Vec<Document>) -> Vec<LabelRuleDoc> {
    docs.into_iter()
        .filter_map(|d| match d {
            Document::LabelRule(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// `GET /api/labels/rules`
#[utoipa::path(
    get,
    path = "/api/labels/rules",
    operation_id = "list_label_rules",
    tag = "labels",
    responses((status = 200, body = Vec<LabelRuleDoc>), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list_rules(
    State(state): State<AppState>,
    _s: Session,
) -> Result<Json<Vec<LabelRuleDoc>>, ApiError> {
    Ok(Json(rules_of(state.store.run(|s| s.list_type(doc::DocType::LabelRule)).await?)))
}

/// `POST /api/labels/rules`
#[utoipa::path(
    post,
    path = "/api/labels/rules",
    operation_id = "create_label_rule",
    tag = "labels",
    request_body = NewRule,
    responses((status = 201, body = LabelRuleDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn create_rule(
    State(state): State<AppState>,
    _s: Session,
    JsonBody(r): JsonBody<NewRule>,
) -> Result<(StatusCode, Json<LabelRuleDoc>), ApiError> {
    check_rule(&r.name, &r.path_prefix, &r.labels)?;
    let now = doc::now();
    let mut rule = LabelRuleDoc {
        id: LabelRuleId::generate(),
        rev: Rev::NONE,
        name: r.name.trim().to_owned(),
        node_id: r.node_id,
        path_prefix: r.path_prefix,
        labels: r.labels,
        enabled: r.enabled,
        created_at: now,
        updated_at: now,
    };
    let doc = rule.clone();
    rule.rev = state.store.run(move |s| s.put(doc.into())).await?.rev;
    Ok((StatusCode::CREATED, Json(rule)))
}

fn rule_id(raw: &str) -> Result<LabelRuleId, ApiError> {
    let full = if raw.starts_with("label_rule::") { raw.to_owned() } else { format!("label_rule::{raw}") };
    Ok(full.parse()?)
}

/// `GET /api/labels/rules/{rule_id}`
#[utoipa::path(
    get,
    path = "/api/labels/rules/{rule_id}",
    operation_id = "get_label_rule",
    tag = "labels",
    params(
        ("rule_id" = String, Path, description = "Rule id, with or without its label_rule:: prefix"),
    ),
    responses((status = 200, body = LabelRuleDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn get_rule(
    State(state): State<AppState>,
    _s: Session,
    Path(raw): Path<String>,
) -> Result<Json<LabelRuleDoc>, ApiError> {
    let id = DocId::from(rule_id(&raw)?);
    match state.store.run(move |s| s.get(&id)).await? {
        Some(Document::LabelRule(r)) => Ok(Json(r)),
        _ => Err(ApiError::NotFound(format!("rule {raw}"))),
    }
}

/// `PATCH /api/labels/rules/{rule_id}` against the revision read (`_rev`; 409 when stale).
#[utoipa::path(
    patch,
    path = "/api/labels/rules/{rule_id}",
    operation_id = "patch_label_rule",
    tag = "labels",
    params(
        ("rule_id" = String, Path, description = "Rule id, with or without its label_rule:: prefix"),
    ),
    request_body = RulePatch,
    responses((status = 200, body = LabelRuleDoc), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn patch_rule(
    State(state): State<AppState>,
    s: Session,
    Path(raw): Path<String>,
    JsonBody(p): JsonBody<RulePatch>,
) -> Result<Json<LabelRuleDoc>, ApiError> {
    let Json(mut rule) = get_rule(State(state.clone()), s, Path(raw)).await?;
    if rule.rev != p.rev {
        return Err(ApiError::Conflict(format!("rule is at revision {}, not {}", rule.rev, p.rev)));
    }
    if let Some(v) = p.name {
        rule.name = v.trim().to_owned();
    }
    if let Some(v) = p.node_id {
        rule.node_id = v;
    }
    if let Some(v) = p.path_prefix {
        rule.path_prefix = v;
    }
    if let Some(v) = p.labels {
        rule.labels = v;
    }
    if let Some(v) = p.enabled {
        rule.enabled = v;
    }
    check_rule(&rule.name, &rule.path_prefix, &rule.labels)?;
    rule.updated_at = doc::now();
    let doc = rule.clone();
    rule.rev = state.store.run(move |s| s.put(doc.into())).await.map_err(conflict_or)?.rev;
    Ok(Json(rule))
}

/// `DELETE /api/labels/rules/{rule_id}`
#[utoipa::path(
    delete,
    path = "/api/labels/rules/{rule_id}",
    operation_id = "delete_label_rule",
    tag = "labels",
    params(
        ("rule_id" = String, Path, description = "Rule id, with or without its label_rule:: prefix"),
    ),
    responses((status = 204, description = "Deleted"), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn delete_rule(
    State(state): State<AppState>,
    s: Session,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let Json(rule) = get_rule(State(state.clone()), s, Path(raw)).await?;
    let id = DocId::from(&rule.id);
    state.store.run(move |s| s.delete(&id, rule.rev)).await.map_err(conflict_or)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/labels/effective?file_id=`: the file's labels and where each comes from.
#[utoipa::path(
    get,
    path = "/api/labels/effective",
    operation_id = "get_effective_labels",
    tag = "labels",
    params(EffectiveQuery),
    responses((status = 200, body = EffectiveAnswer), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn effective(
    State(state): State<AppState>,
    _s: Session,
    QueryParams(q): QueryParams<EffectiveQuery>,
) -> Result<Json<EffectiveAnswer>, ApiError> {
    let file = load_file(&state.store, &file_id(&q.file_id)?).await?;
    let (id, eff) = with_index(&state, move |index| (file.id.clone(), index.effective(&file))).await?;
    Ok(Json(EffectiveAnswer { file_id: id, effective: eff }))
}
