//! `[control_plane]`: how this node reaches its hub (ARCHITECTURE §6.7). All four keys are
//! required once the section exists; the secret is a reference, never the secret itself.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;
use crate::ids::AccessKeyId;

/// How this node reaches its hub. Present once the node has joined a control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    pub url: String,
    pub access_key_id: AccessKeyId,
    /// Where the secret lives; the secret itself is never in agent.toml.
    pub secret: SecretRef,
    /// SHA-256 of the hub's certificate (lowercase hex), pinned at join.
    pub server_fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `file:/path` — a file readable only by the agent (mode 0600).
    File(PathBuf),
    /// `keyring:service/account` — the OS keychain.
    Keyring { service: String, account: String },
    /// `env:VAR` — an environment variable.
    Env(String),
}

impl SecretRef {
    /// `file:/abs/path`, `keyring:service/account` or `env:VAR`.
    pub fn parse(s: &str) -> Option<SecretRef> {
        let (scheme, rest) = s.split_once(':')?;
        match scheme {
            "file" if Path::new(rest).is_absolute() => Some(SecretRef::File(PathBuf::from(rest))),
            "keyring" => {
                let (service, account) = rest.split_once('/')?;
                (!service.is_empty() && !account.is_empty())
                    .then(|| SecretRef::Keyring { service: service.into(), account: account.into() })
            }
            "env" if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Some(SecretRef::Env(rest.into()))
            }
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControlPlane {
    url: String,
    access_key_id: String,
    secret: String,
    server_fingerprint: String,
}

impl RawControlPlane {
    pub(super) fn validate(self, file: &Path) -> Result<ControlPlane, ConfigError> {
        let f = Fields::new(file, "control_plane");
        let url = self.url.trim_end_matches('/').to_owned();
        let host = url.strip_prefix("https://").unwrap_or("");
        if host.is_empty() || host.contains(['/', ' ', '?', '#']) {
            return Err(f.err("url", format!("{:?} is not an https://host[:port] URL", self.url)));
        }
        let access_key_id = self
            .access_key_id
            .parse()
            .map_err(|e: crate::ids::IdError| f.err("access_key_id", e.to_string()))?;
        let secret = SecretRef::parse(&self.secret).ok_or_else(|| {
            f.err(
                "secret",
                "must say where the secret lives (file:/path, keyring:service/account or env:VAR), never the secret itself",
            )
        })?;
        let fp = self.server_fingerprint.to_ascii_lowercase().replace(':', "");
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(f.err(
                "server_fingerprint",
                "expected the SHA-256 of the hub's certificate as 64 hex digits",
            ));
        }
        Ok(ControlPlane { url, access_key_id, secret, server_fingerprint: fp })
    }
}
