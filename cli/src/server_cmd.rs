//! `mosaicfs server`: the control-plane role alone (HTTPS API, credentials, sessions) until
//! SIGTERM or SIGINT. On its very first start it creates an admin credential and prints it once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::{logging, CliError};

/// The control plane's options, shared by `mosaicfs server` and `mosaicfs up`.
#[derive(Args)]
pub struct HubArgs {
    /// Address and port of the control plane (HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Seconds without a push after which a node is shown offline.
    #[arg(long, default_value_t = 90)]
    offline_after_secs: u64,
    /// Login attempts allowed per minute per client IP.
    #[arg(long, default_value_t = 5)]
    login_per_minute: u32,
    /// Seconds a directory listing of `GET /api/vfs` may be served from the readdir cache
    /// (0: no cache).
    #[arg(long, default_value_t = 5)]
    readdir_ttl_secs: u64,
    /// The name the web UI shows for this MosaicFS [default: the host name].
    #[arg(long)]
    instance_name: Option<String>,
}

impl HubArgs {
    /// The server's configuration for `data_dir` (a usage error for a zero login limit).
    pub fn config(
        &self,
        data_dir: PathBuf,
        admin_secret_store: agent_core::secrets::Backend,
        local_node: Option<server::state::LocalNode>,
    ) -> Result<server::ServerConfig, CliError> {
        if self.login_per_minute == 0 {
            return Err(CliError::Usage("--login-per-minute must be at least 1".into()));
        }
        Ok(server::ServerConfig {
            data_dir,
            listen: self.listen,
            login_per_minute: self.login_per_minute,
            offline_after: std::time::Duration::from_secs(self.offline_after_secs.max(1)),
            readdir_ttl: std::time::Duration::from_secs(self.readdir_ttl_secs),
            instance_name: self.instance_name.clone().filter(|n| !n.trim().is_empty()),
            admin_secret_store,
            local_node,
        })
    }
}

/// The lines a first start prints about the admin credential it made (empty otherwise).
pub fn first_admin_banner(handle: &server::ServerHandle) -> String {
    match &handle.first_admin {
        Some((key, secret, kept)) => format!(
            "first start: an admin credential was created. The secret is shown only now:\n  \
             access key id: {key}\n  secret:        {}\n  (also kept in {kept})\n",
            secret.expose(),
        ),
        None => String::new(),
    }
}

#[derive(Args)]
pub struct ServerArgs {
    /// Where the hub keeps its store, keys and certificate [default: the data directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(flatten)]
    hub: HubArgs,
    /// A tracing filter for the log on stderr.
    #[arg(long, default_value = "info")]
    log_level: String,
}

pub fn run(args: ServerArgs) -> Result<(), CliError> {
    let data_dir = args.data_dir.unwrap_or_else(agent_core::config::default_data_dir);
    let config = args.hub.config(data_dir.clone(), agent_core::secrets::Backend::File, None)?;
    let (_level, _guard) = logging::init(&args.log_level, Some(&data_dir.join("logs")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let handle = server::start(config).await?;
        let mut banner = format!(
            "control plane listening on https://{}\ncertificate fingerprint (SHA-256): {}\n",
            handle.addr, handle.cert_fingerprint
        );
        banner.push_str(&first_admin_banner(&handle));
        crate::print_stdout(&banner);
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
        }
        handle.shutdown().await?;
        Ok(())
    })
}
