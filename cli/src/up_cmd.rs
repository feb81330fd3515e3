//! `mosaicfs up --config FILE`: this machine's agent and the control plane in one process
//! (DESIGN §9), each with its own SQLite file in the same data directory (`agent.db`,
//! `hub.db`). The agent reaches its hub through the same signed HTTPS sync protocol as a remote
//! agent, over loopback, with a node credential made on the first start.

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
    #[command(flatten)]
    hub: crate::server_cmd::HubArgs,
}

pub fn run(args: UpArgs) -> Result<(), CliError> {
    let path = args.config.unwrap_or_else(crate::default_config_path);
    let config = config_or_exit(&path)?;
    let local_node_id = config.load_or_create_node_id().map_err(CliError::Config)?;
    let local = server::state::LocalNode::new(local_node_id.clone(), config.watch_paths.clone());
    let server_config =
        args.hub.config(config.data_dir.clone(), agent_core::secrets::Backend::Keychain, Some(local))?;
    let (level, _guard) = logging::init(&config.log.level, Some(&config.log.dir))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let source = config.source.clone();
        let hub = server::start(server_config).await?;
        let mut config = config;
        if config.control_plane.is_none() {
            match hub.local_agent_link(&local_node_id, &config.data_dir).await {
                Ok(link) => config.control_plane = Some(link),
                Err(e) => {
                    let _ = hub.shutdown().await;
                    return Err(CliError::Runtime(anyhow::anyhow!("cannot join the local agent to its hub: {e}")));
                }
            }
        }
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
        banner.push_str(&crate::agent_cmd::mount_line(&agent));
        banner.push_str(&crate::server_cmd::first_admin_banner(&hub));
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
