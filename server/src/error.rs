//! The one error type of the HTTP API: every failure is a 4xx (or 503) with a JSON body
//! `{"error": {"code", "message"}}`. Internal details are logged, not sent.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use agent_core::wire::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid credentials")]
    BadCredentials,
    /// A signed agent request that does not verify: `code` says why (`bad_signature`,
    /// `clock_skew`, `replay`, `malformed_authorization`, `unknown_credential`).
    #[error("{message}")]
    BadSignature { code: ErrorCode, message: String },
    /// An agent that speaks another protocol version.
    #[error("{0}")]
    ProtocolMismatch(String),
    #[error("not allowed")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(String),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    /// The file at its source is not the version the request expected.
    #[error("{0}")]
    Changed(String),
    #[error("request body larger than {} bytes", crate::MAX_BODY_BYTES)]
    TooLarge,
    #[error("too many login attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A route a later part of the product serves (said plainly, never faked).
    #[error("{0}")]
    NotImplemented(String),
    /// Something this request needs is not reachable now (another node): the message says what.
    #[error("{0}")]
    Unavailable(String),
    /// Too much in flight now (bodies waiting for their signature check): retry shortly.
    #[error("busy; retry shortly")]
    Busy,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The code sent; its HTTP status is [`ErrorCode::status`] (one table, ARCHITECTURE §12).
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized => ErrorCode::Unauthorized,
            ApiError::BadCredentials => ErrorCode::BadCredentials,
            ApiError::BadSignature { code, .. } => *code,
            ApiError::ProtocolMismatch(_) => ErrorCode::ProtocolMismatch,
            ApiError::Forbidden => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Changed(_) => ErrorCode::Changed,
            ApiError::TooLarge => ErrorCode::TooLarge,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::NotImplemented(_) => ErrorCode::NotImplemented,
            ApiError::Unavailable(_) => ErrorCode::NodeUnavailable,
            ApiError::Busy => ErrorCode::Busy,
            ApiError::Internal(_) => ErrorCode::Unavailable,
        }
    }
}

impl From<agent_core::store::StoreError> for ApiError {
    fn from(e: agent_core::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// A malformed id in a path or query is the client's mistake.
impl From<agent_core::ids::IdError> for ApiError {
    fn from(e: agent_core::ids::IdError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let body = Json(ErrorBody::new(code, self.to_string()));
        let mut resp = (status, body).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        if let ApiError::Busy = self {
            resp.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        }
        resp
    }
}

/// The error responses every operation documents (OpenAPI): any 4xx with an [`ErrorBody`].
#[derive(utoipa::IntoResponses)]
pub enum ErrorResponses {
    /// A JSON error: bad input, authentication, not found, conflict, rate limit.
    #[response(status = "4XX")]
    Client(ErrorBody),
}

/// JSON bodies: a malformed or mistyped body is a 400 with our JSON error, not axum's text.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::TooLarge),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Query strings: a malformed or mistyped query is a 400 with our JSON error, not axum's text.
pub struct QueryParams<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}
