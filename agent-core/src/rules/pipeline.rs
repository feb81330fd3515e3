//! A mount's step pipeline (DESIGN "Virtual-directory semantics", ARCHITECTURE §13.1).
//!
//! Order: first the steps that ancestors with `enforce_steps_on_children` impose (root first,
//! each ancestor's mounts in order, each mount's steps in order), then the mount's own steps,
//! then its `default_result`.
//!
//! - An inherited step that matches with `on_match: exclude` excludes the file, finally: no
//!   step below can include it again. Inherited `include` and `continue` matches decide nothing
//!   (the child still filters), so an ancestor restricts its descendants and never widens them.
//! - The mount's own steps: the first matching step whose `on_match` is `include` or `exclude`
//!   decides; `continue` goes on; if none decides, `default_result` does. No steps: the default.

use chrono::{DateTime, Utc};

use super::step::CompiledStep;
use super::{Facts, RuleError};
use crate::doc::{MountEntry, OnMatch, StepResult, VirtualDirectoryDoc};

/// The steps a directory's ancestors enforce on it, compiled once per directory.
#[derive(Clone, Debug, Default)]
pub struct Inherited {
    steps: Vec<CompiledStep>,
}

impl Inherited {
    /// `ancestors`: the directories above the one being evaluated, root first. Only those with
    /// `enforce_steps_on_children` contribute.
    pub fn compile(ancestors: &[&VirtualDirectoryDoc]) -> Result<Inherited, RuleError> {
        let mut steps = Vec::new();
        for dir in ancestors.iter().filter(|d| d.enforce_steps_on_children) {
            for (m, mount) in dir.mounts.iter().enumerate() {
                for (s, step) in mount.steps.iter().enumerate() {
                    let location = format!("{}: mounts[{m}].steps[{s}]", dir.virtual_path);
                    steps.push(CompiledStep::compile(step, &location)?);
                }
            }
        }
        Ok(Inherited { steps })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Inherited steps, a mount's own steps and its default, ready to evaluate files.
#[derive(Clone, Debug)]
pub struct Pipeline {
    inherited: Vec<CompiledStep>,
    own: Vec<CompiledStep>,
    default_result: StepResult,
}

impl Pipeline {
    /// Compiles mount number `index` of a directory under `inherited`.
    pub fn compile(inherited: &Inherited, mount: &MountEntry, index: usize) -> Result<Pipeline, RuleError> {
        let own = mount
            .steps
            .iter()
            .enumerate()
            .map(|(s, step)| CompiledStep::compile(step, &format!("mounts[{index}].steps[{s}]")))
            .collect::<Result<_, _>>()?;
        Ok(Pipeline { inherited: inherited.steps.clone(), own, default_result: mount.default_result })
    }

    /// Include or exclude one file. `now` is the reference time of `age` steps.
    pub fn evaluate(&self, file: &dyn Facts, now: DateTime<Utc>) -> StepResult {
        for step in &self.inherited {
            if step.on_match == OnMatch::Exclude && step.matches(file, now) {
                return StepResult::Exclude;
            }
        }
        for step in &self.own {
            if step.matches(file, now) {
                match step.on_match {
                    OnMatch::Include => return StepResult::Include,
                    OnMatch::Exclude => return StepResult::Exclude,
                    OnMatch::Continue => {}
                }
            }
        }
        self.default_result
    }
}
