//! `[transfer]`: the server other agents fetch this node's files from (ARCHITECTURE §10.1).

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use super::fields::Fields;
use super::ConfigError;

pub const DEFAULT_TRANSFER_PORT: u16 = 7443;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// Serve at all (only a node that has joined a control plane does: tokens come from the hub).
    pub enabled: bool,
    /// Where to listen (default `0.0.0.0:7443`).
    pub listen: SocketAddr,
    /// Whether `listen` was written in the file (if not, a busy default port falls back to any
    /// free port instead of failing).
    pub listen_explicit: bool,
    /// The URL other agents use (`https://host:port`); default: this machine's address on the
    /// route to the control plane, and the port listened on.
    pub advertise: Option<String>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            enabled: true,
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_TRANSFER_PORT)),
            listen_explicit: false,
            advertise: None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransfer {
    enabled: Option<bool>,
    listen: Option<String>,
    advertise: Option<String>,
}

impl RawTransfer {
    pub(super) fn validate(self, file: &Path) -> Result<TransferConfig, ConfigError> {
        let f = Fields::new(file, "transfer");
        let d = TransferConfig::default();
        let listen = match &self.listen {
            Some(l) => l.trim().parse::<SocketAddr>().map_err(|_| {
                f.err("listen", format!("{l:?} is not an address and port (like \"0.0.0.0:7443\")"))
            })?,
            None => d.listen,
        };
        let advertise = match self.advertise {
            Some(a) => {
                let url = reqwest::Url::parse(a.trim())
                    .ok()
                    .filter(|u| u.scheme() == "https" && u.host().is_some() && u.path() == "/")
                    .ok_or_else(|| f.err("advertise", format!("{a:?} is not an https://host:port URL")))?;
                Some(url.as_str().trim_end_matches('/').to_owned())
            }
            None => None,
        };
        Ok(TransferConfig {
            enabled: self.enabled.unwrap_or(d.enabled),
            listen,
            listen_explicit: self.listen.is_some(),
            advertise,
        })
    }
}
