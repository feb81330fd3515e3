//! Logging: human-readable lines on stderr, JSON lines in `{log dir}/mosaicfs.log` (rotated at
//! 50 MB, 5 files kept), one filter for both that can be changed while running.

use std::path::Path;

use anyhow::Context;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

pub const ROTATE_BYTES: usize = 50 * 1024 * 1024;
pub const ROTATE_KEEP: usize = 5;

/// Changes the level of the running process.
/// The rotated JSON log: 0600 whatever the umask (logs name files and paths, ARCHITECTURE §6.6),
/// in a directory created 0700 when missing. Files left by an older build are made 0600 too.
fn private_log_file(dir: &Path) -> anyhow::Result<file_rotate::FileRotate<file_rotate::suffix::AppendCount>> {
    use agent_core::private_files;
    use std::os::unix::fs::OpenOptionsExt;
    private_files::create_dirs(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
    let path = dir.join("mosaicfs.log");
    for n in 0..=ROTATE_KEEP {
        let file = if n == 0 { path.clone() } else { dir.join(format!("mosaicfs.log.{n}")) };
        private_files::restrict(&file).with_context(|| format!("making {} private", file.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).create(true).append(true).mode(private_files::FILE_MODE);
    Ok(file_rotate::FileRotate::new(
        path,
        file_rotate::suffix::AppendCount::new(ROTATE_KEEP),
        file_rotate::ContentLimit::BytesSurpassed(ROTATE_BYTES),
        file_rotate::compression::Compression::None,
        Some(options),
    ))
}

#[derive(Clone)]
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

impl LevelHandle {
    pub fn set(&self, filter: &str) -> anyhow::Result<()> {
        let f = parse_filter(filter)?;
        self.0.reload(f).context("reloading the log filter")
    }
}

/// Keeps the background log writer alive; dropping it flushes the file.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

fn parse_filter(filter: &str) -> anyhow::Result<EnvFilter> {
    EnvFilter::try_new(filter).with_context(|| format!("invalid log level {filter:?}"))
}

/// Installs the global subscriber. `MOSAICFS_LOG` overrides `level`. With `file_dir`, JSON lines
/// also go to `file_dir/mosaicfs.log`.
pub fn init(level: &str, file_dir: Option<&Path>) -> anyhow::Result<(LevelHandle, Guard)> {
    let level =
        std::env::var("MOSAICFS_LOG").ok().filter(|l| !l.is_empty()).unwrap_or_else(|| level.to_owned());
    let (filter, handle) = reload::Layer::new(parse_filter(&level)?);
    let stderr = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_target(false).boxed();
    let (file_layer, guard) = match file_dir {
        Some(dir) => {
            let rotate = private_log_file(dir)?;
            let (writer, guard) = tracing_appender::non_blocking(rotate);
            let layer =
                tracing_subscriber::fmt::layer().json().with_writer(writer).with_current_span(true).boxed();
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init()
        .context("installing the logger")?;
    Ok((LevelHandle(handle), Guard(guard)))
}
