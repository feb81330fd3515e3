//! `mosaicfs sync status [--json]`: what replication with the control plane is doing, read from
//! the agent's store (works while the agent runs, and after it stopped).

use std::path::PathBuf;

use agent_core::store::Store;
use agent_core::sync::state::{self, SyncState};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{config_or_exit, CliError};

#[derive(Args)]
pub struct SyncArgs {
    #[command(subcommand)]
    command: SyncCommand,
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Checkpoints, outbox depth, lag and the last error.
    Status {
        /// The agent configuration file [default: as for `mosaicfs agent`].
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: SyncArgs) -> Result<(), CliError> {
    let SyncCommand::Status { config, json } = args.command;
    let path = config.unwrap_or_else(crate::default_config_path);
    let config = config_or_exit(&path)?;
    let store_path = config.store_path();
    if !store_path.exists() {
        return Err(CliError::Usage(format!(
            "{} does not exist: the agent has not run yet",
            store_path.display()
        )));
    }
    let store = Store::open(&store_path).map_err(|e| anyhow::anyhow!("{}: {e}", store_path.display()))?;
    // `mosaicfs up` joins its agent to its own hub without a [control_plane] in the file; the
    // saved state says so.
    let saved = state::load(&store)?;
    let url = match (&config.control_plane, &saved) {
        (Some(cp), _) => cp.url.clone(),
        (None, Some(s)) => s.hub_url.clone(),
        (None, None) => {
            return Err(CliError::Usage(format!(
                "{} has no [control_plane]: this node has not joined a hub (`mosaicfs agent init`)",
                path.display()
            )))
        }
    };
    let report = Report::read(&store, saved, &url)?;
    if json {
        crate::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&report.to_json())?));
    } else {
        crate::print_stdout(&report.to_text());
    }
    Ok(())
}

struct Report {
    state: SyncState,
    push_checkpoint: u64,
    local_seq: u64,
    outbox_depth: u64,
    pull_checkpoint: u64,
}

impl Report {
    fn read(store: &Store, saved: Option<SyncState>, url: &str) -> anyhow::Result<Report> {
        let push_checkpoint = store.push_checkpoint()?;
        let state = saved.unwrap_or_else(|| SyncState { hub_url: url.to_owned(), ..Default::default() });
        Ok(Report {
            state,
            push_checkpoint: push_checkpoint.0,
            local_seq: store.last_seq().0,
            outbox_depth: store.outbox_depth(push_checkpoint)?,
            pull_checkpoint: store.pull_checkpoint()?.0,
        })
    }

    /// Hub changes not yet applied here, as of the last answer.
    fn pull_lag(&self) -> u64 {
        self.state.hub_seq.saturating_sub(self.pull_checkpoint)
    }

    fn connection(&self) -> String {
        let s = &self.state;
        match (&s.stopped, s.connected, &s.outage_since) {
            (Some(reason), _, _) => format!("stopped: {reason}"),
            (None, true, _) => "connected".into(),
            (None, false, Some(since)) => {
                format!("unreachable since {}", since.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            (None, false, None) => "not connected yet".into(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        let s = &self.state;
        json!({
            "hub_url": s.hub_url,
            "connection": self.connection(),
            "connected": s.connected,
            "outage_since": s.outage_since,
            "stopped": s.stopped,
            "push": {
                "checkpoint": self.push_checkpoint,
                "local_seq": self.local_seq,
                "outbox_depth": self.outbox_depth,
                "last_push_at": s.last_push_at,
                "pushed": s.pushed,
                "rejected": s.rejected,
            },
            "pull": {
                "checkpoint": self.pull_checkpoint,
                "hub_seq": s.hub_seq,
                "lag": self.pull_lag(),
                "last_pull_at": s.last_pull_at,
                "pulled": s.pulled,
            },
            "clock_skew_secs": s.clock_skew_secs,
            "last_error": s.last_error,
        })
    }

    fn to_text(&self) -> String {
        let s = &self.state;
        let when = |t: &Option<chrono::DateTime<chrono::Utc>>| match t {
            Some(t) => {
                let ago = (chrono::Utc::now() - *t).num_seconds().max(0);
                format!("{} ({ago} s ago)", t.format("%Y-%m-%d %H:%M:%S UTC"))
            }
            None => "never".into(),
        };
        let mut out = format!(
            "control plane  {} ({})\n\
             push           {} waiting; checkpoint {} of local seq {}; last {}\n\
             pull           checkpoint {} of hub seq {} (lag {}); last {}\n\
             since start    {} pushed, {} refused, {} pulled\n",
            s.hub_url,
            self.connection(),
            self.outbox_depth,
            self.push_checkpoint,
            self.local_seq,
            when(&s.last_push_at),
            self.pull_checkpoint,
            s.hub_seq,
            self.pull_lag(),
            when(&s.last_pull_at),
            s.pushed,
            s.rejected,
            s.pulled,
        );
        if let Some(skew) = s.clock_skew_secs {
            out.push_str(&format!("clock skew     {skew:+} s (hub minus this machine)\n"));
        }
        match &s.last_error {
            Some(e) => out.push_str(&format!(
                "last error     {} during {}{}: {}\n",
                e.at.format("%Y-%m-%d %H:%M:%S UTC"),
                e.during,
                if e.permanent { " (not retried)" } else { "" },
                e.message
            )),
            None => out.push_str("last error     none\n"),
        }
        out
    }
}
