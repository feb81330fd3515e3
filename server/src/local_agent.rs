//! `mosaicfs up`: the agent in the same process joins its own hub over loopback HTTPS with the
//! same signed sync protocol as a remote agent (DESIGN §9). Its node credential is made on the
//! first start (the id in `{data_dir}/hub/local_agent`, the secret in
//! `{data_dir}/secrets/{access_key_id}.secret`, 0600) and reused after that.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use agent_core::config::{ControlPlane, SecretRef};
use agent_core::doc::CredentialRole;
use agent_core::ids::{AccessKeyId, NodeId};

use crate::{credentials, ServerError, ServerHandle};

fn id_file(data_dir: &Path) -> PathBuf {
    data_dir.join("hub").join("local_agent")
}

fn secret_file(data_dir: &Path, key: &AccessKeyId) -> PathBuf {
    data_dir.join("secrets").join(format!("{key}.secret"))
}

/// Where the local agent reaches the hub: the listen address, or loopback when it listens on
/// every interface.
fn loopback_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("https://{}", SocketAddr::new(ip, addr.port()))
}

impl ServerHandle {
    /// The `[control_plane]` of the agent running in this process, with a node credential for
    /// `node` made on first use.
    pub async fn local_agent_link(
        &self,
        node: &NodeId,
        data_dir: &Path,
    ) -> Result<ControlPlane, ServerError> {
        let other = |e: String| ServerError::Other(e);
        let blocking = |f: Box<dyn FnOnce() -> Result<(), String> + Send>| async move {
            tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string()).and_then(|r| r).map_err(other)
        };
        let path = id_file(data_dir);
        let (p, d) = (path.clone(), data_dir.to_owned());
        let kept = tokio::task::spawn_blocking(move || {
            let key: Option<AccessKeyId> =
                std::fs::read_to_string(&p).ok().and_then(|s| s.trim().parse().ok());
            key.filter(|k| secret_file(&d, k).exists())
        })
        .await
        .map_err(|e| other(e.to_string()))?;
        let reusable = match &kept {
            Some(key) => {
                let cred = credentials::get(&self.store, key).await.map_err(|e| other(e.to_string()))?;
                cred.is_some_and(|c| c.enabled && c.node_id.as_ref() == Some(node))
            }
            None => false,
        };
        let key = match kept.filter(|_| reusable) {
            Some(key) => key,
            None => {
                let (cred, secret) = credentials::create(
                    &self.store,
                    &self.vault,
                    "this machine (mosaicfs up)".into(),
                    CredentialRole::Node,
                    Some(node.clone()),
                )
                .await
                .map_err(|e| other(e.to_string()))?;
                let key = cred.access_key_id;
                let (secret_path, id_path, text) =
                    (secret_file(data_dir, &key), path.clone(), format!("{key}\n"));
                blocking(Box::new(move || {
                    agent_core::secrets::write(&SecretRef::File(secret_path), &secret)
                        .map_err(|e| e.to_string())?;
                    if let Some(dir) = id_path.parent() {
                        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                    }
                    std::fs::write(&id_path, text).map_err(|e| format!("{}: {e}", id_path.display()))
                }))
                .await?;
                tracing::info!(node_id = %node, access_key_id = %key, "local agent joined this hub");
                key
            }
        };
        Ok(ControlPlane {
            url: loopback_url(self.addr),
            secret: SecretRef::File(secret_file(data_dir, &key)),
            access_key_id: key,
            server_fingerprint: self.cert_fingerprint.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_become_loopback() {
        assert_eq!(loopback_url("0.0.0.0:8443".parse().unwrap()), "https://127.0.0.1:8443");
        assert_eq!(loopback_url("[::]:8443".parse().unwrap()), "https://[::1]:8443");
        assert_eq!(loopback_url("127.0.0.2:9".parse().unwrap()), "https://127.0.0.2:9");
    }
}
