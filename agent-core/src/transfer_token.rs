//! Transfer tokens (DESIGN §4, ARCHITECTURE §6.4): short-lived EdDSA (Ed25519) JWTs the hub
//! signs so that one agent may fetch one file from another. The serving agent verifies them
//! with the hub's public key, pinned when it joined; no agent holds another's secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::ids::{FileId, NodeId};

/// The issuer of every transfer token.
pub const ISSUER: &str = "hub";
/// The longest a token lives.
pub const MAX_TTL_SECS: i64 = 300;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferClaims {
    pub iss: String,
    /// The requesting node (`control_plane` for downloads through the hub).
    pub sub: String,
    /// The serving node.
    pub aud: String,
    pub file_id: FileId,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("transfer key: {0}")]
    Key(String),
    #[error("transfer token rejected: {0}")]
    Rejected(String),
}

/// The hub's signing key.
pub struct TransferSigner {
    encoding: EncodingKey,
    public: String,
}

impl TransferSigner {
    /// A new random key, and its PKCS#8 PEM form to keep.
    pub fn generate() -> Result<(TransferSigner, String), TokenError> {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let pem =
            key.to_pkcs8_pem(Default::default()).map_err(|e| TokenError::Key(e.to_string()))?.to_string();
        Ok((TransferSigner::from_pem(&pem)?, pem))
    }

    /// Loads a key written by [`TransferSigner::generate`].
    pub fn from_pem(pem: &str) -> Result<TransferSigner, TokenError> {
        let key =
            ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| TokenError::Key(e.to_string()))?;
        let der = key.to_pkcs8_der().map_err(|e| TokenError::Key(e.to_string()))?;
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        Ok(TransferSigner { encoding, public: URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()) })
    }

    /// The public key: the raw 32 bytes, base64url without padding (a JWK's `x`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// A token for `requester` to fetch `file` from `server`, valid for `ttl_secs` (at most 5 min).
    pub fn issue(
        &self,
        requester: &str,
        server: &NodeId,
        file: &FileId,
        now: i64,
        ttl_secs: i64,
    ) -> Result<(String, TransferClaims), TokenError> {
        let claims = TransferClaims {
            iss: ISSUER.into(),
            sub: requester.into(),
            aud: server.to_string(),
            file_id: file.clone(),
            iat: now,
            exp: now + ttl_secs.clamp(1, MAX_TTL_SECS),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .map_err(|e| TokenError::Key(e.to_string()))?;
        Ok((token, claims))
    }
}

/// What a serving agent checks tokens with.
pub struct TransferVerifier {
    decoding: DecodingKey,
}

impl TransferVerifier {
    /// From the hub's published public key (base64url of the raw 32 bytes).
    pub fn from_public_key(x: &str) -> Result<TransferVerifier, TokenError> {
        let raw = URL_SAFE_NO_PAD.decode(x.trim()).map_err(|e| TokenError::Key(e.to_string()))?;
        if raw.len() != 32 {
            return Err(TokenError::Key(format!("expected 32 bytes, got {}", raw.len())));
        }
        let decoding =
            DecodingKey::from_ed_components(x.trim()).map_err(|e| TokenError::Key(e.to_string()))?;
        Ok(TransferVerifier { decoding })
    }

    /// Checks the signature, issuer, audience (`me`) and expiry (no leeway), and that the token
    /// is for `file`.
    pub fn verify(&self, token: &str, me: &NodeId, file: &FileId) -> Result<TransferClaims, TokenError> {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = 0;
        v.set_issuer(&[ISSUER]);
        v.set_audience(&[me.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<TransferClaims>(token, &self.decoding, &v)
            .map_err(|e| TokenError::Rejected(e.to_string()))?;
        if &data.claims.file_id != file {
            return Err(TokenError::Rejected(format!("token is for {}, not {file}", data.claims.file_id)));
        }
        if data.claims.exp - data.claims.iat > MAX_TTL_SECS {
            return Err(TokenError::Rejected("token lifetime over 5 minutes".into()));
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_server_file_and_key() {
        let (signer, pem) = TransferSigner::generate().unwrap();
        let again = TransferSigner::from_pem(&pem).unwrap();
        assert_eq!(signer.public_key(), again.public_key());
        let verifier = TransferVerifier::from_public_key(signer.public_key()).unwrap();
        let (server, other): (NodeId, NodeId) = ("node-aaa".parse().unwrap(), "node-bbb".parse().unwrap());
        let file = FileId::generate();
        let now = chrono::Utc::now().timestamp();
        let (token, claims) = signer.issue("node-ccc", &server, &file, now, 60).unwrap();
        assert_eq!(verifier.verify(&token, &server, &file).unwrap(), claims);
        assert!(verifier.verify(&token, &other, &file).is_err(), "wrong audience");
        assert!(verifier.verify(&token, &server, &FileId::generate()).is_err(), "wrong file");
        let (expired, _) = signer.issue("node-ccc", &server, &file, now - 600, 60).unwrap();
        assert!(verifier.verify(&expired, &server, &file).is_err(), "expired");
        let (stranger, _) = TransferSigner::generate().unwrap();
        let (forged, _) = stranger.issue("node-ccc", &server, &file, now, 60).unwrap();
        assert!(verifier.verify(&forged, &server, &file).is_err(), "another key");
        let mut tampered = token.clone();
        tampered.pop();
        assert!(verifier.verify(&tampered, &server, &file).is_err());
        assert!(TransferVerifier::from_public_key("not-a-key").is_err());
    }
}
