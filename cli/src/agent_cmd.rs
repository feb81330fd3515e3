//! `mosaicfs agent --config FILE`.

use std::path::PathBuf;

use clap::Args;

use crate::CliError;

#[derive(Args)]
pub struct AgentArgs {
    /// The agent configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

pub fn run(_args: AgentArgs) -> Result<(), CliError> {
    Err(CliError::Usage("not yet".into()))
}
