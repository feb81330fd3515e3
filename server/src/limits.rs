//! Bounds on what an unauthenticated or not yet verified client can make the hub hold
//! (ARCHITECTURE §6.3, §6.2): request bodies refused by their `Content-Length` before a byte is
//! read (and cut off at the cap when the length is not announced), and a budget of bytes that
//! signed agent requests may hold in memory at once before their signature is checked.

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;

use crate::error::ApiError;

/// `POST /api/auth/login`: an access key id and a 52-character secret fit many times over.
pub const LOGIN_BODY_BYTES: usize = 4 * 1024;

/// Body caps of the signed agent routes: a push carries up to 200 documents; every other agent
/// request is one small document or nothing.
pub const AGENT_PUSH_BODY_BYTES: usize = crate::MAX_BODY_BYTES;
pub const AGENT_BODY_BYTES: usize = 1024 * 1024;

/// Bytes of signed agent request bodies held at once before their signature is verified, in
/// KiB (the unit of the budget's permits): four full pushes.
pub const AGENT_BODY_BUDGET_KIB: usize = 4 * AGENT_PUSH_BODY_BYTES / 1024;

/// The cap of a signed agent request's body on `path`.
pub fn agent_body_cap(path: &str) -> usize {
    if path == "/api/agent/push" {
        AGENT_PUSH_BODY_BYTES
    } else {
        AGENT_BODY_BYTES
    }
}

/// The announced `Content-Length`, if any (an unparsable one is a bad request).
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get(axum::http::header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("Content-Length is not a number".into())),
    }
}

/// Refuses a body announced larger than `cap` before reading any of it.
pub fn check_announced(headers: &HeaderMap, cap: usize) -> Result<(), ApiError> {
    match content_length(headers)? {
        Some(n) if n > cap as u64 => Err(ApiError::TooLarge),
        _ => Ok(()),
    }
}

/// Reads a body of at most `cap` bytes: refused at once when announced larger, cut off (413)
/// as soon as more arrives when not announced.
pub async fn read_capped(headers: &HeaderMap, body: Body, cap: usize) -> Result<Bytes, ApiError> {
    check_announced(headers, cap)?;
    axum::body::to_bytes(body, cap).await.map_err(|_| ApiError::TooLarge)
}

/// A JSON body of at most [`LOGIN_BODY_BYTES`], for the public login route: a bigger one is a
/// 413 before it is read or parsed. Malformed JSON is a 400 like everywhere else.
pub struct SmallJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for SmallJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let json = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim() == "application/json"));
        // The length is checked before the content type: a huge body is refused unread.
        let bytes = read_capped(&parts.headers, body, LOGIN_BODY_BYTES).await?;
        if !json {
            return Err(ApiError::BadRequest("expected Content-Type: application/json".into()));
        }
        serde_json::from_slice(&bytes)
            .map(SmallJson)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused_announced_or_not() {
        let mut headers = HeaderMap::new();
        headers.insert("content-length", "16777216".parse().unwrap());
        // The announced length alone decides: the body is never polled.
        let never = Body::from_stream(futures_util::stream::pending::<Result<Bytes, std::io::Error>>());
        assert!(matches!(read_capped(&headers, never, 4096).await, Err(ApiError::TooLarge)));

        let unannounced = HeaderMap::new();
        let big = Body::from(vec![b'x'; 5000]);
        assert!(matches!(read_capped(&unannounced, big, 4096).await, Err(ApiError::TooLarge)));
        let fits = Body::from(vec![b'x'; 4096]);
        assert_eq!(read_capped(&unannounced, fits, 4096).await.unwrap().len(), 4096);

        headers.insert("content-length", "lots".parse().unwrap());
        assert!(matches!(check_announced(&headers, 1), Err(ApiError::BadRequest(_))));
    }
}
