//! The error body of every refusal: `{"error": {"code": "...", "message": "..."}}` (ARCHITECTURE
//! §12). `code` is machine-readable; `message` is for people and never holds internal detail.

use serde::{Deserialize, Serialize};

/// Why a request was refused. The HTTP status goes with the code (ARCHITECTURE §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no session, or an expired, revoked or malformed one.
    Unauthorized,
    /// 401: login with an unknown key or a wrong secret.
    BadCredentials,
    /// 401: a signed agent request whose signature does not verify.
    BadSignature,
    /// 401: a signed agent request outside the ±5 min window.
    ClockSkew,
    /// 401: a signed agent request seen before.
    Replay,
    /// 401: an `Authorization` header that is not a MosaicFS signature.
    MalformedAuthorization,
    /// 401: a signed agent request with an unknown or disabled credential.
    UnknownCredential,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 400: bad JSON, a failed validation, a bad parameter.
    BadRequest,
    /// 409: a stale base `_rev`, a path already taken.
    Conflict,
    /// 409: the file's bytes at its source are not the version the request expected.
    Changed,
    /// 413
    TooLarge,
    /// 416, with `Content-Range: bytes */SIZE`.
    RangeNotSatisfiable,
    /// 429, with `Retry-After`.
    RateLimited,
    /// 400: the caller speaks a protocol version the hub does not.
    ProtocolMismatch,
    /// 501: a route a later part of the product serves.
    NotImplemented,
    /// 503: the node that holds the file cannot be reached.
    NodeUnavailable,
    /// 503: something this process needs does not answer now (its store, a key not yet known).
    Unavailable,
    /// 503, with `Retry-After`: too much in flight now (transfers to this peer, signed bodies
    /// waiting for their check); retry shortly.
    Busy,
    /// A code this build does not know (a newer hub).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::ClockSkew => "clock_skew",
            ErrorCode::Replay => "replay",
            ErrorCode::MalformedAuthorization => "malformed_authorization",
            ErrorCode::UnknownCredential => "unknown_credential",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Changed => "changed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ProtocolMismatch => "protocol_mismatch",
            ErrorCode::NotImplemented => "not_implemented",
            ErrorCode::NodeUnavailable => "node_unavailable",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Busy => "busy",
            ErrorCode::Unknown => "unknown",
        }
    }

    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized
            | ErrorCode::BadCredentials
            | ErrorCode::BadSignature
            | ErrorCode::ClockSkew
            | ErrorCode::Replay
            | ErrorCode::MalformedAuthorization
            | ErrorCode::UnknownCredential => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::BadRequest | ErrorCode::ProtocolMismatch => 400,
            ErrorCode::Conflict | ErrorCode::Changed => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::RateLimited => 429,
            ErrorCode::NotImplemented => 501,
            ErrorCode::NodeUnavailable | ErrorCode::Unavailable | ErrorCode::Busy => 503,
            ErrorCode::Unknown => 500,
        }
    }

    /// Every code a server sends (for the docs table test).
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::Unauthorized,
        ErrorCode::BadCredentials,
        ErrorCode::BadSignature,
        ErrorCode::ClockSkew,
        ErrorCode::Replay,
        ErrorCode::MalformedAuthorization,
        ErrorCode::UnknownCredential,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BadRequest,
        ErrorCode::Conflict,
        ErrorCode::Changed,
        ErrorCode::TooLarge,
        ErrorCode::RangeNotSatisfiable,
        ErrorCode::RateLimited,
        ErrorCode::ProtocolMismatch,
        ErrorCode::NotImplemented,
        ErrorCode::NodeUnavailable,
        ErrorCode::Unavailable,
        ErrorCode::Busy,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody { error: ErrorDetail { code, message: message.into() } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_travel_as_snake_case_and_unknown_ones_are_read_as_unknown() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str(), "{code:?}");
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
            assert!((400..600).contains(&code.status()), "{code:?}");
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"from_the_future","message":"m"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
    }
}
