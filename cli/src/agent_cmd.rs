//! `mosaicfs agent --config FILE`: run the agent until SIGTERM or SIGINT. SIGHUP re-reads
//! `[log] level` from the config file and applies it without a restart.

use std::path::PathBuf;

use agent_core::agent::Agent;
use agent_core::config::AgentConfig;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::{config_or_exit, logging, CliError};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    /// The agent configuration file [default: $MOSAICFS_CONFIG, /etc/mosaicfs/agent.toml for
    /// root, ~/.config/mosaicfs/agent.toml otherwise].
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum AgentCommand {
    /// Join this machine to a control plane: pin its certificate, register the node, keep the
    /// node's secret, write agent.toml and install the service.
    Init(crate::init_cmd::InitArgs),
}

pub fn run(args: AgentArgs) -> Result<(), CliError> {
    if let Some(AgentCommand::Init(init)) = args.command {
        return crate::init_cmd::run(init);
    }
    let path = args.config.unwrap_or_else(crate::default_config_path);
    let config = config_or_exit(&path)?;
    let (level, _guard) = logging::init(&config.log.level, Some(&config.log.dir))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(config, level))
}

async fn serve(config: AgentConfig, level: logging::LevelHandle) -> Result<(), CliError> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let source = config.source.clone();
    let agent = Agent::start(config).await.map_err(|e| match e {
        agent_core::agent::AgentError::Config(c) => CliError::Config(c),
        other => CliError::Runtime(other.into()),
    })?;
    let mut banner = format!("mosaicfs agent running as node {} (stop with Ctrl-C)\n", agent.node_id());
    banner.push_str(&mount_line(&agent));
    crate::print_stdout(&banner);
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received; shutting down"); break; }
            _ = int.recv() => { tracing::info!("SIGINT received; shutting down"); break; }
            _ = hup.recv() => reload_level(&source, &level).await,
        }
    }
    agent.shutdown().await?;
    Ok(())
}

/// Re-reads the config file; a bad file is reported and the running level kept.
pub(crate) async fn reload_level(source: &std::path::Path, level: &logging::LevelHandle) {
    let source = source.to_owned();
    let loaded = tokio::task::spawn_blocking(move || AgentConfig::load(&source)).await;
    match loaded {
        Ok(Ok(config)) => match level.set(&config.log.level) {
            Ok(()) => tracing::info!(level = %config.log.level, "log level changed"),
            Err(e) => tracing::warn!(error = %e, "log level not changed"),
        },
        Ok(Err(e)) => tracing::warn!(error = %e, "config not reloaded"),
        Err(e) => tracing::warn!(error = %e, "config not reloaded"),
    }
}

/// The start-up lines that say where the tree is mounted and where files are served.
pub(crate) fn mount_line(agent: &Agent) -> String {
    let mut out = match agent.mount_point() {
        Some(mp) => format!("virtual tree mounted at {}\n", mp.display()),
        None => match agent.mount_failure() {
            Some(why) => format!("virtual tree {why}; the agent runs without a mount\n"),
            None => "virtual tree not mounted (set [vfs] mount_point in the config to mount it)\n".into(),
        },
    };
    if let Some(t) = agent.transfer_endpoint() {
        out.push_str(&format!(
            "serving files to other nodes at {} (certificate SHA-256 {})\n",
            t.endpoint, t.cert_fingerprint
        ));
    }
    out
}
