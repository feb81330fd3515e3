//! `mosaicfs up --config FILE`: this machine's agent and the control plane in one process
//! (DESIGN §9), each with its own SQLite file in the same data directory (`agent.db`,
//! `hub.db`). Until replication lands (issue 4) the two run side by side; the agent will reach
//! its hub through the same HTTPS sync protocol as a remote agent.

use std::net::SocketAddr;
use std::path::PathBuf;

use agent_core::agent::Agent;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::{config_or_exit, logging, CliError};

#[derive(Args)]
pub struct UpArgs {
    /// The agent configuration file (its data directory also holds the hub's files).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address and port of the control plane (HTTPS).
    #[arg(long, default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
    /// Seconds without a push after which a node is shown offline.
    #[arg(long, default_value_t = 90)]
    offline_after_secs: u64,
    /// Login attempts allowed per minute per client IP.
    #[arg(long, default_value_t = 5)]
    login_per_minute: u32,
}

pub fn run(args: UpArgs) -> Result<(), CliError> {
    if args.login_per_minute == 0 {
        return Err(CliError::Usage("--login-per-minute must be at least 1".into()));
    }
    let path = args.config.unwrap_or_else(crate::default_config_path);
    let config = config_or_exit(&path)?;
    let (level, _guard) = logging::init(&config.log.level, Some(&config.log.dir))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let server_config = server::ServerConfig {
            data_dir: config.data_dir.clone(),
            listen: args.listen,
            login_per_minute: args.login_per_minute,
            offline_after: std::time::Duration::from_secs(args.offline_after_secs.max(1)),
            admin_secret_store: agent_core::secrets::Backend::Keychain,
            local_node: Some(server::state::LocalNode {
                node_id: config.load_or_create_node_id().map_err(CliError::Config)?,
                watch_paths: config.watch_paths.clone(),
            }),
        };
        let source = config.source.clone();
        let hub = server::start(server_config).await?;
        let agent = match Agent::start(config.clone()).await {
            Ok(a) => a,
            Err(e) => {
                let _ = hub.shutdown().await;
                return Err(match e {
                    agent_core::agent::AgentError::Config(c) => CliError::Config(c),
                    other => CliError::Runtime(other.into()),
                });
            }
        };
        let mut banner = format!(
            "mosaicfs is up: node {} indexing {} watch path(s)\ncontrol plane: https://{} (certificate SHA-256 {})\n",
            agent.node_id(),
            config.watch_paths.len(),
            hub.addr,
            hub.cert_fingerprint
        );
        if let Some((key, secret, kept)) = &hub.first_admin {
            banner.push_str(&format!(
                "first start: an admin credential was created. The secret is shown only now:\n  \
                 access key id: {key}\n  secret:        {}\n  (also kept in {kept})\n",
                secret.expose(),
            ));
        }
        crate::print_stdout(&banner);
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received; shutting down"); break; }
                _ = int.recv() => { tracing::info!("SIGINT received; shutting down"); break; }
                _ = hup.recv() => crate::agent_cmd::reload_level(&source, &level).await,
            }
        }
        let agent_result = agent.shutdown().await;
        let hub_result = hub.shutdown().await;
        agent_result?;
        hub_result?;
        Ok(())
    })
}
