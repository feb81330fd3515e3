use agent_core::doc::CredentialRole;
use agent_core::ids::{AccessKeyId, CredentialId};
use agent_core::wire::credentials::{
    CreatedCredential as Created, CredentialPatch as Patch, NewCredential as Create,
};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use crate::auth::Session;
use crate::credentials::{self, CredentialView};
use crate::error::{ApiError, JsonBody};
use crate::state::AppState;

/// `POST /api/credentials`: the secret is in this response and nowhere else, ever.
#[utoipa::path(
    post,
    path = "/api/credentials",
    operation_id = "create_credential",
    tag = "credentials",
    request_body = Create,
    responses((status = 201, body = Created), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn create(
    State(state): State<AppState>,
    _session: Session,
    JsonBody(body): JsonBody<Create>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::BadRequest("name must be 1-200 characters".into()));
    }
    if (body.role == CredentialRole::Node) != body.node_id.is_some() {
        return Err(ApiError::BadRequest("node_id is required for, and only for, role \"node\"".into()));
    }
    let (cred, secret) =
        credentials::create(&state.store, &state.vault, name, body.role, body.node_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            credential: CredentialView::from(&cred),
            access_key_id: cred.access_key_id,
            secret: secret.expose().to_owned(),
        }),
    ))
}

/// `GET /api/credentials`
#[utoipa::path(
    get,
    path = "/api/credentials",
    operation_id = "list_credentials",
    tag = "credentials",
    responses((status = 200, body = Vec<CredentialView>), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    _session: Session,
) -> Result<Json<Vec<CredentialView>>, ApiError> {
    Ok(Json(credentials::list(&state.store).await?.iter().map(CredentialView::from).collect()))
}

fn parse_key(raw: &str) -> Result<AccessKeyId, ApiError> {
    raw.parse().map_err(ApiError::from)
}

/// `GET /api/credentials/{access_key_id}`
#[utoipa::path(
    get,
    path = "/api/credentials/{access_key_id}",
    operation_id = "get_credential",
    tag = "credentials",
    params(("access_key_id" = String, Path, description = "Access key id")),
    responses((status = 200, body = CredentialView), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn get(
    State(state): State<AppState>,
    _session: Session,
    Path(raw): Path<String>,
) -> Result<Json<CredentialView>, ApiError> {
    let key = parse_key(&raw)?;
    let cred = credentials::get(&state.store, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("credential {key}")))?;
    Ok(Json(CredentialView::from(&cred)))
}

/// `PATCH /api/credentials/{access_key_id}`: enable/disable, rename.
#[utoipa::path(
    patch,
    path = "/api/credentials/{access_key_id}",
    operation_id = "patch_credential",
    tag = "credentials",
    params(("access_key_id" = String, Path, description = "Access key id")),
    request_body = Patch,
    responses((status = 200, body = CredentialView), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn patch(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
    JsonBody(body): JsonBody<Patch>,
) -> Result<Json<CredentialView>, ApiError> {
    let key = parse_key(&raw)?;
    if body.enabled == Some(false) && session.claims.sub == key.as_str() {
        return Err(ApiError::Conflict("a credential cannot disable itself while logged in with it".into()));
    }
    let mut cred = credentials::get(&state.store, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("credential {key}")))?;
    let disabling = cred.enabled && body.enabled == Some(false);
    if let Some(e) = body.enabled {
        cred.enabled = e;
    }
    if let Some(n) = body.name {
        let n = n.trim().to_owned();
        if n.is_empty() || n.chars().count() > 200 {
            return Err(ApiError::BadRequest("name must be 1-200 characters".into()));
        }
        cred.name = n;
    }
    let mut updated = cred.clone();
    let w = state.store.run(move |s| s.put(cred.into())).await.map_err(|e| match e.as_conflict() {
        Some(_) => ApiError::Conflict("the credential changed meanwhile; retry".into()),
        None => e.into(),
    })?;
    updated.rev = w.rev;
    if disabling {
        // Its sessions end now and stay ended if it is enabled again.
        crate::auth::end_sessions_of(&state.store, &key, chrono::Utc::now().timestamp()).await?;
    }
    Ok(Json(CredentialView::from(&updated)))
}

/// `DELETE /api/credentials/{access_key_id}`
#[utoipa::path(
    delete,
    path = "/api/credentials/{access_key_id}",
    operation_id = "delete_credential",
    tag = "credentials",
    params(("access_key_id" = String, Path, description = "Access key id")),
    responses((status = 204, description = "Deleted"), crate::error::ErrorResponses),
    security(("bearer" = [])),
)]
pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let key = parse_key(&raw)?;
    if session.claims.sub == key.as_str() {
        return Err(ApiError::Conflict("a credential cannot delete itself while logged in with it".into()));
    }
    let cred = credentials::get(&state.store, &key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("credential {key}")))?;
    let id = CredentialId::for_key(&key);
    state.store.run(move |s| s.delete(&id.into(), cred.rev)).await?;
    Ok(StatusCode::NO_CONTENT)
}
