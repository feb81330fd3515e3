//! `mosaicfs`: the headless MosaicFS binary. Thin: parse, set up logging, hand over to
//! agent-core. Exit status: 0 ok, 1 runtime error, 2 configuration or usage error.

mod agent_cmd;
mod index;
mod init_cmd;
mod logging;
mod server_cmd;
mod sync_cmd;
mod up_cmd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agent_core::config::{AgentConfig, ConfigError};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mosaicfs", version, about = "MosaicFS: one tree of all your files, on every machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: index the watch paths, keep the index current, heartbeat.
    Agent(agent_cmd::AgentArgs),
    /// Inspect or fill the local index without a server.
    Index(index::IndexArgs),
    /// Run the control plane (HTTPS API, credentials, sessions).
    Server(server_cmd::ServerArgs),
    /// Run this machine's agent and the control plane together in one process.
    Up(up_cmd::UpArgs),
    /// Replication with the control plane.
    Sync(sync_cmd::SyncArgs),
}

/// What ends the program, and with which status.
#[derive(Debug)]
pub enum CliError {
    /// Configuration problem: one line naming the file and field, status 2.
    Config(ConfigError),
    /// Wrong invocation: status 2.
    Usage(String),
    /// Anything else: status 1.
    Runtime(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::Runtime(e.into())
    }
}

/// `$MOSAICFS_CONFIG`, else `/etc/mosaicfs/agent.toml` for root, else
/// `~/.config/mosaicfs/agent.toml`.
pub fn default_config_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MOSAICFS_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/etc/mosaicfs/agent.toml");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".config/mosaicfs/agent.toml")
}

/// Prints to stdout, ignoring a closed stdout: a daemon must not die because whoever started it
/// stopped reading (`println!` would panic on EPIPE).
pub fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

pub fn config_or_exit(path: &Path) -> Result<AgentConfig, CliError> {
    AgentConfig::load(path).map_err(CliError::Config)
}

/// Remote reads hold buffers of up to 16 MiB on many threads. glibc raises its mmap threshold
/// after the first such buffer is freed, and from then on serves them from per-thread heaps that
/// keep the memory: the agent's RSS would grow with its thread count. A fixed 1 MiB threshold
/// keeps every large buffer mapped on its own and returned when freed.
fn keep_large_buffers_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called first in main, before any thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    keep_large_buffers_out_of_the_heap();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(args) => agent_cmd::run(args),
        Command::Server(args) => server_cmd::run(args),
        Command::Up(args) => up_cmd::run(args),
        Command::Sync(args) => sync_cmd::run(args),
        Command::Index(args) => {
            // A short-lived command piped into `head` should end quietly like any Unix tool.
            // (Only here: the daemons keep Rust's ignored SIGPIPE so a closed socket is an error.)
            // SAFETY: setting a signal disposition to SIG_DFL has no preconditions.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            }
            match logging::init("warn,agent_core=info", None) {
                Ok((_handle, _guard)) => index::run(args),
                Err(e) => Err(CliError::Runtime(e)),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Config(e)) => {
            eprintln!("mosaicfs: configuration error: {e}");
            ExitCode::from(2)
        }
        Err(CliError::Usage(m)) => {
            eprintln!("mosaicfs: {m}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(e)) => {
            // The chain without repeats: error types that print their source inline would
            // otherwise show it twice.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("mosaicfs: error: {msg}");
            ExitCode::from(1)
        }
    }
}
