//! One step, compiled once per directory and evaluated per file.
//!
//! Bounds (a directory definition comes from a user, so it must not be able to stall the
//! evaluator): a glob or regex pattern is at most [`MAX_PATTERN_LEN`] characters; a regex
//! compiles to at most 1 MiB (program and lazy DFA each) and, with the `regex` crate, matches in
//! time linear in the path (no backtracking), and paths are at most 4,096 bytes; lists (mime
//! types, nodes, labels) hold at most [`MAX_LIST_LEN`] entries.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Facts, RuleError};
use crate::doc::{LabelMatch, OnMatch, Step, StepOp};
use crate::ids::{Label, NodeId, PluginName};

pub const MAX_PATTERN_LEN: usize = 1024;
pub const MAX_LIST_LEN: usize = 1000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A step ready to run: the test, `invert` and `on_match`.
#[derive(Clone, Debug)]
pub struct CompiledStep {
    test: Test,
    invert: bool,
    pub on_match: OnMatch,
}

#[derive(Clone, Debug)]
enum Test {
    Glob(globset::GlobMatcher),
    Regex(regex::Regex),
    Age {
        older_than_secs: Option<u64>,
        newer_than_secs: Option<u64>,
    },
    Size {
        min: Option<u64>,
        max: Option<u64>,
    },
    /// Exact `type/subtype`s and `type/` prefixes (from `type/*`), lowercase.
    Mime {
        exact: BTreeSet<String>,
        prefixes: Vec<String>,
    },
    Node(BTreeSet<NodeId>),
    Label {
        labels: Vec<Label>,
        mode: LabelMatch,
    },
    Annotation {
        plugin: PluginName,
        field: Option<String>,
        value: Option<serde_json::Value>,
    },
}

fn pattern_len(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("pattern is empty".into());
    }
    if pattern.chars().count() > MAX_PATTERN_LEN {
        return Err(format!("pattern is longer than {MAX_PATTERN_LEN} characters"));
    }
    Ok(())
}

fn list_len<T>(what: &str, list: &[T]) -> Result<(), String> {
    match list.len() {
        0 => Err(format!("{what} is empty")),
        n if n > MAX_LIST_LEN => Err(format!("{what} has {n} entries; at most {MAX_LIST_LEN}")),
        _ => Ok(()),
    }
}

fn compile_test(op: &StepOp) -> Result<Test, String> {
    Ok(match op {
        StepOp::Glob { pattern } => {
            pattern_len(pattern)?;
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("invalid glob {pattern:?}: {}", e.kind()))?;
            Test::Glob(glob.compile_matcher())
        }
        StepOp::Regex { pattern, case_insensitive } => {
            pattern_len(pattern)?;
            let re = regex::RegexBuilder::new(pattern)
                .case_insensitive(*case_insensitive)
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("invalid regex {pattern:?}: {e}"))?;
            Test::Regex(re)
        }
        StepOp::Age { older_than_secs, newer_than_secs } => {
            if older_than_secs.is_none() && newer_than_secs.is_none() {
                return Err("age needs older_than_secs or newer_than_secs".into());
            }
            if let (Some(o), Some(n)) = (older_than_secs, newer_than_secs) {
                if o >= n {
                    return Err(format!("no file is older than {o} s and newer than {n} s"));
                }
            }
            Test::Age { older_than_secs: *older_than_secs, newer_than_secs: *newer_than_secs }
        }
        StepOp::Size { min_bytes, max_bytes } => {
            if min_bytes.is_none() && max_bytes.is_none() {
                return Err("size needs min_bytes or max_bytes".into());
            }
            if let (Some(lo), Some(hi)) = (min_bytes, max_bytes) {
                if lo > hi {
                    return Err(format!("min_bytes {lo} is above max_bytes {hi}"));
                }
            }
            Test::Size { min: *min_bytes, max: *max_bytes }
        }
        StepOp::Mime { types } => {
            list_len("types", types)?;
            let (mut exact, mut prefixes) = (BTreeSet::new(), Vec::new());
            for t in types {
                let t = t.trim().to_ascii_lowercase();
                let valid = |s: &str| !s.is_empty() && !s.contains('/') && !s.contains('*');
                match t.split_once('/') {
                    Some((ty, "*")) if valid(ty) => prefixes.push(format!("{ty}/")),
                    Some((ty, sub)) if valid(ty) && valid(sub) => {
                        exact.insert(t.clone());
                    }
                    _ => return Err(format!("{t:?} is not `type/subtype` or `type/*`")),
                }
            }
            Test::Mime { exact, prefixes }
        }
        StepOp::Node { node_ids } => {
            list_len("node_ids", node_ids)?;
            Test::Node(node_ids.iter().cloned().collect())
        }
        StepOp::Label { labels, match_mode } => {
            list_len("labels", labels)?;
            Test::Label { labels: labels.clone(), mode: *match_mode }
        }
        StepOp::Annotation { plugin, field, value } => {
            if value.is_some() && field.is_none() {
                return Err("annotation: a value needs a field".into());
            }
            if field.as_deref().is_some_and(str::is_empty) {
                return Err("annotation: field is empty".into());
            }
            Test::Annotation { plugin: plugin.clone(), field: field.clone(), value: value.clone() }
        }
    })
}

/// A field of an annotation: a JSON pointer (`/summary/lang`) or a top-level key.
fn field<'a>(data: &'a serde_json::Value, field: &str) -> Option<&'a serde_json::Value> {
    if field.starts_with('/') {
        data.pointer(field)
    } else {
        data.get(field)
    }
}

impl Test {
    fn matches(&self, f: &dyn Facts, now: DateTime<Utc>) -> bool {
        match self {
            Test::Glob(g) => g.is_match(f.rel_path()),
            Test::Regex(r) => r.is_match(f.rel_path()),
            Test::Age { older_than_secs, newer_than_secs } => {
                let age = now.signed_duration_since(f.mtime()).num_seconds();
                older_than_secs.is_none_or(|o| age > o as i64)
                    && newer_than_secs.is_none_or(|n| age < n as i64)
            }
            Test::Size { min, max } => min.is_none_or(|m| f.size() >= m) && max.is_none_or(|m| f.size() <= m),
            Test::Mime { exact, prefixes } => f.mime().is_some_and(|m| {
                let m = m.to_ascii_lowercase();
                exact.contains(&m) || prefixes.iter().any(|p| m.starts_with(p.as_str()))
            }),
            Test::Node(nodes) => nodes.contains(f.node_id()),
            Test::Label { labels, mode: LabelMatch::All } => labels.iter().all(|l| f.has_label(l)),
            Test::Label { labels, mode: LabelMatch::Any } => labels.iter().any(|l| f.has_label(l)),
            Test::Annotation { plugin, field: name, value } => match (f.annotation(plugin), name, value) {
                (None, _, _) => false,
                (Some(_), None, _) => true,
                (Some(data), Some(name), None) => field(&data, name).is_some(),
                (Some(data), Some(name), Some(want)) => field(&data, name) == Some(want),
            },
        }
    }
}

impl CompiledStep {
    /// Compiles `step`; `location` names it in the error (`mounts[0].steps[2]`).
    pub fn compile(step: &Step, location: &str) -> Result<CompiledStep, RuleError> {
        let test =
            compile_test(&step.op).map_err(|message| RuleError { location: location.to_owned(), message })?;
        Ok(CompiledStep { test, invert: step.invert, on_match: step.on_match })
    }

    /// Whether the step matches the file: its test, flipped by `invert`.
    pub fn matches(&self, f: &dyn Facts, now: DateTime<Utc>) -> bool {
        self.test.matches(f, now) != self.invert
    }
}
