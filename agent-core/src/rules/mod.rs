//! The rule engine (DESIGN "Virtual-directory semantics", ARCHITECTURE §13): pure and I/O-free,
//! so the hub's API and every agent's mount run the same code.
//!
//! - [`step`] — one step compiled once (glob, regex, age, size, mime, node, label, annotation),
//!   with `invert`; bad parameters are a [`RuleError`] naming the step.
//! - [`pipeline`] — a mount's steps after the steps its ancestors enforce, evaluated per file.
//!
//! A file is seen through [`Facts`]: whatever holds it (a file document and the label cache,
//! a test fixture) answers the questions the ops ask, so nothing is looked up that no step needs.

pub mod pipeline;
pub mod step;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

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
