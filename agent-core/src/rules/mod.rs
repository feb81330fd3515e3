//! The rule engine (DESIGN "Virtual-directory semantics", ARCHITECTURE §13): pure and I/O-free,
//! so the hub's API and every agent's mount run the same code.
//!
//! - [`step`] — one step compiled once (glob, regex, age, size, mime, node, label, annotation),
//!   with `invert`; bad parameters are a [`RuleError`] naming the step.
//! - [`pipeline`] — a mount's steps after the steps its ancestors enforce, evaluated per file.
//! - [`check_mounts`] — a directory's mounts as the hub accepts them: ids, sources, sizes, and
//!   every step compiled.
//!
//! A file is seen through [`Facts`]: whatever holds it (a file document and the label cache,
//! a test fixture) answers the questions the ops ask, so nothing is looked up that no step needs.

pub mod pipeline;
pub mod step;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

use crate::doc::MountEntry;
use crate::ids::{Label, NodeId, PluginName};

pub use pipeline::{Inherited, Pipeline};
pub use step::CompiledStep;

/// What the steps may ask about one candidate file.
pub trait Facts {
    /// The path below the mount's source prefix, without a leading `/` (`2024/report.pdf`).
    fn rel_path(&self) -> &str;
    fn node_id(&self) -> &NodeId;
    fn size(&self) -> u64;
    fn mtime(&self) -> DateTime<Utc>;
    fn mime(&self) -> Option<&str>;
    /// Whether the file's effective labels (assignments and rules) contain `label`.
    fn has_label(&self, label: &Label) -> bool;
    /// The data of the plugin's (successful) annotation of this file, if there is one.
    fn annotation(&self, plugin: &PluginName) -> Option<serde_json::Value>;
}

/// A step that cannot be compiled, and where it is (`mounts[0].steps[2]`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct RuleError {
    pub location: String,
    pub message: String,
}

/// Mounts per directory at most.
pub const MAX_MOUNTS: usize = 64;
/// Steps per mount at most.
pub const MAX_STEPS: usize = 256;

/// Checks a directory's mounts: at most [`MAX_MOUNTS`], unique `mount_id`s of 1–64 bytes,
/// normalized absolute source paths, at most [`MAX_STEPS`] steps each, and every step compiled
/// (a bad one is named: `mounts[0].steps[2]: invalid regex …`).
pub fn check_mounts(mounts: &[MountEntry]) -> Result<(), RuleError> {
    let err = |location: String, message: String| RuleError { location, message };
    if mounts.len() > MAX_MOUNTS {
        return Err(err("mounts".into(), format!("at most {MAX_MOUNTS} mounts")));
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let at = format!("mounts[{i}]");
        if m.mount_id.is_empty() || m.mount_id.len() > 64 || !ids.insert(m.mount_id.as_str()) {
            return Err(err(format!("{at}.mount_id"), "must be 1-64 bytes and unique".into()));
        }
        if !crate::doc::is_normalized_abs(&m.source.export_path) {
            return Err(err(
                format!("{at}.source.export_path"),
                format!("{:?} is not a normalized absolute path", m.source.export_path),
            ));
        }
        if m.steps.len() > MAX_STEPS {
            return Err(err(at, format!("at most {MAX_STEPS} steps")));
        }
        Pipeline::compile(&Inherited::default(), m, i)?;
    }
    Ok(())
}
