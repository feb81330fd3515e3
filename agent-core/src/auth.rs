//! Credentials and request signing, shared by agents, the hub and the CLI (DESIGN §4,
//! docs/ARCHITECTURE.md §6). Pure functions: no I/O, no clock of their own.
//!
//! - A credential is an access key id plus a secret shown once. The hub keeps only the verifier
//!   `K = Argon2id(secret, salt)`; the holder of the secret derives the same `K` from the salt and
//!   parameters in the credential's `kdf`, so neither side ever sends the secret again.
//! - Agent → hub requests are signed with HMAC-SHA256 keyed by `K` over the canonical string
//!   ([`canonical_string`]) and carried in the `Authorization` header ([`AuthHeader`]).
//! - [`derive_verifier`] is deliberately slow (tens of milliseconds): call it off the async
//!   runtime (`spawn_blocking`).

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::doc::KdfParams;
use crate::ids::AccessKeyId;

/// The scheme name: first line of the canonical string and of the `Authorization` header.
pub const SCHEME: &str = "MOSAICFS-HMAC-SHA256";
/// Signed requests are accepted this many seconds either side of the hub's clock.
pub const WINDOW_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed Authorization header: {0}")]
    MalformedHeader(&'static str),
    #[error("request timestamp is {skew_secs} s away from the server's clock (allowed: ±{WINDOW_SECS} s)")]
    ClockSkew { skew_secs: i64 },
    #[error("signature does not match")]
    BadSignature,
    #[error("this request was already seen (replay)")]
    Replay,
    #[error("unsupported key derivation {0:?}")]
    UnsupportedKdf(String),
    #[error("invalid key derivation parameters: {0}")]
    InvalidKdf(String),
}

/// A credential's secret. Shown once at creation; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// 32 random bytes, base32 (RFC 4648, no padding): 52 characters.
    pub fn generate() -> Secret {
        let bytes: [u8; 32] = rand::random();
        Secret(base32(&bytes))
    }

    pub fn from_string(s: String) -> Secret {
        Secret(s.trim().to_owned())
    }

    /// The secret itself, for showing once or storing in the keychain / a 0600 file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// `K`: the 32-byte key both sides derive from the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Verifier([u8; 32]);

impl Verifier {
    /// Lowercase hex, as stored in the credential document.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Verifier> {
        let bytes = hex::decode(s).ok()?;
        Some(Verifier(bytes.try_into().ok()?))
    }

    /// The raw key (the hub seals it at rest).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Verifier {
        Verifier(bytes)
    }

    /// Constant-time comparison (login compares a recomputed verifier with the stored one).
    pub fn matches(&self, other: &Verifier) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(***)")
    }
}

/// Fresh parameters for a new credential: a random 16-byte salt and the OWASP-recommended
/// Argon2id cost (19 MiB, 2 passes, 1 lane).
pub fn new_kdf_params() -> KdfParams {
    let salt: [u8; 16] = rand::random();
    KdfParams { algorithm: "argon2id".into(), salt: hex::encode(salt), m_cost: 19_456, t_cost: 2, p_cost: 1 }
}

/// `K = Argon2id(secret, salt)`. Slow on purpose: never call it on an async worker thread.
pub fn derive_verifier(secret: &Secret, kdf: &KdfParams) -> Result<Verifier, AuthError> {
    if kdf.algorithm != "argon2id" {
        return Err(AuthError::UnsupportedKdf(kdf.algorithm.clone()));
    }
    let salt = hex::decode(&kdf.salt).map_err(|e| AuthError::InvalidKdf(format!("salt: {e}")))?;
    let params = argon2::Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| AuthError::InvalidKdf(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(secret.expose().as_bytes(), &salt, &mut out)
        .map_err(|e| AuthError::InvalidKdf(e.to_string()))?;
    Ok(Verifier(out))
}

/// RFC 3986: everything but the unreserved characters is percent-encoded.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The canonical form of a query string: every `k=v` pair decoded exactly as the hub's query
/// parser decodes it (`application/x-www-form-urlencoded`: `+` is a space, then percent-decoding,
/// then UTF-8 with replacement), re-encoded with RFC 3986 (a space is `%20`, a plus `%2B`),
/// sorted by key then value, joined with `&`. So two queries sign alike exactly when the hub
/// reads them alike (`a+b` and `a%20b` are one value; `a%2Bb` is another).
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| {
                let spaced = s.replace('+', " ");
                let raw: Vec<u8> = percent_decode_str(&spaced).collect();
                utf8_percent_encode(&String::from_utf8_lossy(&raw), NOT_UNRESERVED).to_string()
            };
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// The string an agent signs (docs/ARCHITECTURE.md §6.2).
pub fn canonical_string(method: &str, path: &str, query: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "{SCHEME}\n{}\n{path}\n{}\n{timestamp}\n{}",
        method.to_ascii_uppercase(),
        canonical_query(query),
        hex::encode(Sha256::digest(body))
    )
}

fn mac(key: &Verifier) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; 32 bytes cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(&key.0)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Lowercase hex HMAC-SHA256 of the canonical string.
pub fn sign(key: &Verifier, canonical: &str) -> String {
    let mut m = mac(key);
    m.update(canonical.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Checks a signature in constant time.
pub fn verify(key: &Verifier, canonical: &str, signature_hex: &str) -> Result<(), AuthError> {
    let sig = hex::decode(signature_hex).map_err(|_| AuthError::BadSignature)?;
    let mut m = mac(key);
    m.update(canonical.as_bytes());
    m.verify_slice(&sig).map_err(|_| AuthError::BadSignature)
}

/// Accepts `timestamp` if it is within ±[`WINDOW_SECS`] of `now` (both unix seconds). Any
/// `i64` is answered without overflow (`i64::MIN` once wrapped to "inside the window" in
/// release builds and panicked in debug ones).
pub fn check_window(timestamp: i64, now: i64) -> Result<(), AuthError> {
    if timestamp.abs_diff(now) > WINDOW_SECS.unsigned_abs() {
        Err(AuthError::ClockSkew { skew_secs: timestamp.saturating_sub(now) })
    } else {
        Ok(())
    }
}

/// Whether two unix times are within the window of each other (no overflow for any `i64`).
fn within_window(a: i64, b: i64) -> bool {
    a.abs_diff(b) <= WINDOW_SECS.unsigned_abs()
}

/// `Authorization: MOSAICFS-HMAC-SHA256 Credential=<id>, Timestamp=<unix>, Signature=<hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub credential: AccessKeyId,
    pub timestamp: i64,
    pub signature: String,
}

impl AuthHeader {
    /// Signs a request: the header value for `Authorization`.
    pub fn sign(
        credential: &AccessKeyId,
        key: &Verifier,
        method: &str,
        path: &str,
        query: &str,
        timestamp: i64,
        body: &[u8],
    ) -> AuthHeader {
        let canonical = canonical_string(method, path, query, timestamp, body);
        AuthHeader { credential: credential.clone(), timestamp, signature: sign(key, &canonical) }
    }

    pub fn parse(value: &str) -> Result<AuthHeader, AuthError> {
        let rest = value
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(AuthError::MalformedHeader("expected the MOSAICFS-HMAC-SHA256 scheme"))?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for part in rest.split(',') {
            let (k, v) =
                part.trim().split_once('=').ok_or(AuthError::MalformedHeader("expected key=value"))?;
            if fields.insert(k, v).is_some() {
                return Err(AuthError::MalformedHeader("repeated field"));
            }
        }
        let get = |k: &'static str| fields.get(k).copied().ok_or(AuthError::MalformedHeader(k));
        let credential = get("Credential")?.parse().map_err(|_| AuthError::MalformedHeader("Credential"))?;
        let timestamp = get("Timestamp")?.parse().map_err(|_| AuthError::MalformedHeader("Timestamp"))?;
        let signature = get("Signature")?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::MalformedHeader("Signature"));
        }
        Ok(AuthHeader { credential, timestamp, signature: signature.to_ascii_lowercase() })
    }

    /// Checks the window, then the signature, for a request as received.
    pub fn verify(
        &self,
        key: &Verifier,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), AuthError> {
        check_window(self.timestamp, now)?;
        verify(key, &canonical_string(method, path, query, self.timestamp, body), &self.signature)
    }
}

impl fmt::Display for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{SCHEME} Credential={}, Timestamp={}, Signature={}",
            self.credential, self.timestamp, self.signature
        )
    }
}

/// Remembers accepted `(credential, signature)` pairs for the length of the window, so the same
/// signed request cannot be played twice. Not thread-safe by itself: wrap it in a mutex.
#[derive(Default)]
pub struct ReplayGuard {
    /// (credential, signature) → the request's timestamp
    seen: HashMap<(String, String), i64>,
}

impl ReplayGuard {
    /// Records the request; `Err(Replay)` if it was seen within the window.
    pub fn check_and_record(&mut self, header: &AuthHeader, now: i64) -> Result<(), AuthError> {
        if self.seen.len() > 10_000 {
            self.seen.retain(|_, ts| within_window(now, *ts));
        }
        let key = (header.credential.to_string(), header.signature.clone());
        if self.seen.get(&key).is_some_and(|ts| within_window(now, *ts)) {
            return Err(AuthError::Replay);
        }
        self.seen.insert(key, header.timestamp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast_kdf() -> KdfParams {
        // Tests use a cheap cost; the format is the same.
        KdfParams { m_cost: 64, t_cost: 1, ..new_kdf_params() }
    }

    #[test]
    fn the_holder_of_the_secret_derives_the_stored_verifier() {
        let secret = Secret::generate();
        assert_eq!(secret.expose().len(), 52);
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        let kdf = fast_kdf();
        let stored = derive_verifier(&secret, &kdf).unwrap();
        let again = derive_verifier(&Secret::from_string(format!("{}\n", secret.expose())), &kdf).unwrap();
        assert!(stored.matches(&again));
        assert_eq!(Verifier::from_hex(&stored.to_hex()), Some(stored.clone()));
        let other = derive_verifier(&Secret::generate(), &kdf).unwrap();
        assert!(!stored.matches(&other));
        let other_salt = derive_verifier(&secret, &fast_kdf()).unwrap();
        assert!(!stored.matches(&other_salt), "the salt matters");
        assert!(matches!(
            derive_verifier(&secret, &KdfParams { algorithm: "md5".into(), ..kdf }),
            Err(AuthError::UnsupportedKdf(_))
        ));
    }

    #[test]
    fn canonical_string_matches_the_documented_example() {
        let c = canonical_string(
            "get",
            "/api/agent/changes",
            "wait=30&since=18342&limit=500",
            1_764_000_000,
            b"",
        );
        assert_eq!(
            c,
            "MOSAICFS-HMAC-SHA256\nGET\n/api/agent/changes\nlimit=500&since=18342&wait=30\n1764000000\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn canonical_query_decodes_reencodes_and_sorts() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("q=a%20b&flag"), "flag=&q=a%20b");
        assert_eq!(canonical_query("q=a+b"), "q=a%20b", "+ is a space, as the hub decodes it");
        assert_eq!(canonical_query("q=a+b"), canonical_query("q=a%20b"));
        assert_eq!(canonical_query("q=a%2Bb"), "q=a%2Bb", "an encoded plus stays a plus");
        assert_eq!(canonical_query("path=%2fx%2Fy~z"), "path=%2Fx%2Fy~z");
        assert_eq!(canonical_query("n=%C3%A9"), canonical_query("n=\u{e9}"));
    }

    #[test]
    fn the_canonical_query_is_what_the_hub_decodes() {
        // The hub reads queries with serde_urlencoded (axum's `Query`). Two query strings must
        // sign alike exactly when it reads them as the same pairs.
        let decoded = |q: &str| {
            let mut pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).unwrap();
            pairs.sort();
            pairs
        };
        let queries = [
            "q=a+b",
            "q=a%20b",
            "q=a%2Bb",
            "q=a%2bb",
            "q=+",
            "q=%2B",
            "k+y=v",
            "k%20y=v",
            "a=%FF",
            "a=%EF%BF%BD",
            "x=%C3%A9&x=%c3%a9",
            "x=1&y",
            "y=&x=1",
            "n=%",
            "n=%25",
            "path=%2Fa%2Fb",
            "path=/a/b",
        ];
        for a in queries {
            for b in queries {
                assert_eq!(
                    canonical_query(a) == canonical_query(b),
                    decoded(a) == decoded(b),
                    "{a:?} vs {b:?}: canonical {:?} / {:?}, decoded {:?} / {:?}",
                    canonical_query(a),
                    canonical_query(b),
                    decoded(a),
                    decoded(b)
                );
            }
        }
    }

    #[test]
    fn signed_requests_verify_and_tampering_fails() {
        let key = derive_verifier(&Secret::generate(), &fast_kdf()).unwrap();
        let id = AccessKeyId::generate();
        let body = br#"{"docs":[]}"#;
        let h = AuthHeader::sign(&id, &key, "POST", "/api/agent/push", "", 1000, body);
        let parsed = AuthHeader::parse(&h.to_string()).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.verify(&key, "POST", "/api/agent/push", "", body, 1000 + 299), Ok(()));
        assert_eq!(
            parsed.verify(&key, "POST", "/api/agent/push", "", b"{}", 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&key, "PUT", "/api/agent/push", "", body, 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&key, "POST", "/api/agent/pull", "", body, 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&key, "POST", "/api/agent/push", "x=1", body, 1000),
            Err(AuthError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&key, "POST", "/api/agent/push", "", body, 1000 + 301),
            Err(AuthError::ClockSkew { skew_secs: -301 })
        );
        let other = derive_verifier(&Secret::generate(), &fast_kdf()).unwrap();
        assert_eq!(
            parsed.verify(&other, "POST", "/api/agent/push", "", body, 1000),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            "",
            "Bearer x",
            "MOSAICFS-HMAC-SHA256 Credential=MFSABCDEFGHIJKLMNOPQ",
            "MOSAICFS-HMAC-SHA256 Credential=nope, Timestamp=1, Signature=00",
            "MOSAICFS-HMAC-SHA256 Credential=MFSABCDEFGHIJKLMNOPQ, Timestamp=x, Signature=00",
        ] {
            assert!(matches!(AuthHeader::parse(bad), Err(AuthError::MalformedHeader(_))), "{bad:?}");
        }
    }

    #[test]
    fn extreme_timestamps_are_outside_the_window_without_overflow() {
        let now = 1_764_000_000;
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1, 0, now - 301, now + 301] {
            assert!(
                matches!(check_window(ts, now), Err(AuthError::ClockSkew { .. })),
                "{ts} is outside the window"
            );
        }
        assert_eq!(check_window(i64::MIN, i64::MAX), Err(AuthError::ClockSkew { skew_secs: i64::MIN }));
        assert_eq!(check_window(i64::MAX, i64::MIN), Err(AuthError::ClockSkew { skew_secs: i64::MAX }));
        assert_eq!(check_window(now - 300, now), Ok(()));
        assert_eq!(check_window(now + 300, now), Ok(()));

        // The replay guard's arithmetic holds for any recorded timestamp too.
        let key = derive_verifier(&Secret::generate(), &fast_kdf()).unwrap();
        let mut guard = ReplayGuard::default();
        for ts in [i64::MIN, i64::MAX] {
            let h = AuthHeader::sign(&AccessKeyId::generate(), &key, "GET", "/x", "", ts, b"");
            assert_eq!(guard.check_and_record(&h, now), Ok(()));
            assert_eq!(guard.check_and_record(&h, now), Ok(()), "a far-off timestamp is not remembered");
        }
    }

    #[test]
    fn a_replayed_request_is_refused_within_the_window() {
        let key = derive_verifier(&Secret::generate(), &fast_kdf()).unwrap();
        let h = AuthHeader::sign(&AccessKeyId::generate(), &key, "GET", "/x", "", 5000, b"");
        let mut guard = ReplayGuard::default();
        assert_eq!(guard.check_and_record(&h, 5000), Ok(()));
        assert_eq!(guard.check_and_record(&h, 5100), Err(AuthError::Replay));
        let h2 = AuthHeader::sign(&h.credential, &key, "GET", "/x", "", 5001, b"");
        assert_eq!(guard.check_and_record(&h2, 5100), Ok(()), "a new timestamp is a new request");
    }
}
