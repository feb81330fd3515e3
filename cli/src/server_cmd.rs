//! `mosaicfs server`: the control-plane role alone (HTTPS API, credentials, sessions) until
//! SIGTERM or SIGINT. On its very first start it creates an admin credential and prints it once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::{logging, CliError};

#[derive(Args)]
pub struct ServerArgs {
    /// Where the hub keeps its store, keys and certificate [default: the data directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address and port to listen on (HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Seconds without a push after which a node is shown offline.
    #[arg(long, default_value_t = 90)]
    offline_after_secs: u64,
    /// Login attempts allowed per minute per client IP.
    #[arg(long, default_value_t = 5)]
    login_per_minute: u32,
    /// A tracing filter for the log on stderr.
    #[arg(long, default_value = "info")]
    log_level: String,
}

pub fn run(args: ServerArgs) -> Result<(), CliError> {
    if args.login_per_minute == 0 {
        return Err(CliError::Usage("--login-per-minute must be at least 1".into()));
    }
    let data_dir = args.data_dir.unwrap_or_else(agent_core::config::default_data_dir);
    let (_level, _guard) = logging::init(&args.log_level, Some(&data_dir.join("logs")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let config = server::ServerConfig {
            data_dir: data_dir.clone(),
            listen: args.listen,
            login_per_minute: args.login_per_minute,
            offline_after: std::time::Duration::from_secs(args.offline_after_secs.max(1)),
            local_node: None,
            admin_secret_store: agent_core::secrets::Backend::File,
        };
        let handle = server::start(config).await?;
        let mut banner = format!(
            "control plane listening on https://{}\ncertificate fingerprint (SHA-256): {}\n",
            handle.addr, handle.cert_fingerprint
        );
        if let Some((key, secret, kept)) = &handle.first_admin {
            banner.push_str(&format!(
                "first start: an admin credential was created. The secret is shown only now:\n  \
                 access key id: {key}\n  secret:        {}\n  (also kept in {kept})\n",
                secret.expose(),
            ));
        }
        crate::print_stdout(&banner);
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
        }
        handle.shutdown().await?;
        Ok(())
    })
}
