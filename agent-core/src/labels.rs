//! Effective labels: the one evaluator of which labels a file carries.
//!
//! A file's effective labels are the union of its direct assignment (`label_file::{file}`, keyed
//! on the file id, so labels survive renames and re-crawls) and the labels of every enabled rule
//! whose node selector matches the file's node and whose `path_prefix` the file's export path
//! starts with. The hub's API uses it per request; the rule engine keeps one instance up to date
//! from the changes feed (`set_*`/`remove_*` are incremental) and asks it per file.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::doc::{FileDoc, LabelAssignmentDoc, LabelRuleDoc, NodeSelector};
use crate::ids::{FileId, Label, LabelRuleId, NodeId};

/// Assignments and enabled rules, indexed for lookups by file: a file's labels cost one hash
/// lookup for its assignment and two per directory level of its path for the rules (rule
/// prefixes are directories ending in `/`), however many rules there are.
#[derive(Clone, Debug, Default)]
pub struct LabelIndex {
    direct: HashMap<FileId, BTreeSet<Label>>,
    /// Enabled rules only.
    rules: BTreeMap<LabelRuleId, Rule>,
    /// Path prefix → the enabled rules with that prefix, for any node and per node (looked up
    /// by `&str` and `&NodeId`: no allocation per file).
    by_prefix: HashMap<String, Scope>,
}

#[derive(Clone, Debug, Default)]
struct Scope {
    any: BTreeSet<LabelRuleId>,
    nodes: HashMap<NodeId, BTreeSet<LabelRuleId>>,
}

impl Scope {
    fn ids(&mut self, node: &NodeSelector) -> &mut BTreeSet<LabelRuleId> {
        match node {
            NodeSelector::Any => &mut self.any,
            NodeSelector::Node(n) => self.nodes.entry(n.clone()).or_default(),
        }
    }

    fn is_empty(&self) -> bool {
        self.any.is_empty() && self.nodes.values().all(BTreeSet::is_empty)
    }
}

/// The directory prefixes of an export path, each ending in `/`: `/a/b/c.txt` → `/`, `/a/`,
/// `/a/b/`.
fn dir_prefixes(export_path: &str) -> impl Iterator<Item = &str> {
    export_path.match_indices('/').map(move |(i, _)| &export_path[..=i])
}

#[derive(Clone, Debug)]
struct Rule {
    name: String,
    node: NodeSelector,
    path_prefix: String,
    labels: BTreeSet<Label>,
}

impl Rule {
    fn applies(&self, node: &NodeId, export_path: &str) -> bool {
        let node_ok = match &self.node {
            NodeSelector::Any => true,
            NodeSelector::Node(n) => n == node,
        };
        node_ok && export_path.starts_with(&self.path_prefix)
    }
}

/// Where a file's labels come from (for `GET /api/labels/effective`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct Effective {
    /// Every label the file carries, sorted.
    pub labels: BTreeSet<Label>,
    /// Labels assigned to the file itself.
    pub direct: BTreeSet<Label>,
    /// Rules that apply to the file.
    pub rules: Vec<RuleMatch>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct RuleMatch {
    pub rule_id: LabelRuleId,
    pub name: String,
    pub labels: BTreeSet<Label>,
}

impl LabelIndex {
    pub fn new(assignments: &[LabelAssignmentDoc], rules: &[LabelRuleDoc]) -> LabelIndex {
        let mut index = LabelIndex::default();
        assignments.iter().for_each(|a| index.set_assignment(a));
        rules.iter().for_each(|r| index.set_rule(r));
        index
    }

    /// Adds or replaces a file's direct labels (an empty list removes them).
    pub fn set_assignment(&mut self, a: &LabelAssignmentDoc) {
        if a.labels.is_empty() {
            self.direct.remove(&a.file_id);
        } else {
            self.direct.insert(a.file_id.clone(), a.labels.iter().cloned().collect());
        }
    }

    pub fn remove_assignment(&mut self, file: &FileId) {
        self.direct.remove(file);
    }

    /// Adds or replaces a rule (a disabled rule is removed).
    pub fn set_rule(&mut self, r: &LabelRuleDoc) {
        self.remove_rule(&r.id);
        if !r.enabled {
            return;
        }
        let rule = Rule {
            name: r.name.clone(),
            node: r.node_id.clone(),
            path_prefix: r.path_prefix.clone(),
            labels: r.labels.iter().cloned().collect(),
        };
        self.by_prefix.entry(rule.path_prefix.clone()).or_default().ids(&rule.node).insert(r.id.clone());
        self.rules.insert(r.id.clone(), rule);
    }

    pub fn remove_rule(&mut self, id: &LabelRuleId) {
        if let Some(old) = self.rules.remove(id) {
            if let Some(scope) = self.by_prefix.get_mut(&old.path_prefix) {
                scope.ids(&old.node).remove(id);
                if let NodeSelector::Node(n) = &old.node {
                    if scope.nodes.get(n).is_some_and(BTreeSet::is_empty) {
                        scope.nodes.remove(n);
                    }
                }
                if scope.is_empty() {
                    self.by_prefix.remove(&old.path_prefix);
                }
            }
        }
    }

    /// The enabled rules that apply to a file of `node` at `export_path`, by scope lookups.
    fn matching_rules<'a>(
        &'a self,
        node: &'a NodeId,
        export_path: &'a str,
    ) -> impl Iterator<Item = &'a LabelRuleId> + 'a {
        dir_prefixes(export_path)
            .filter_map(|prefix| self.by_prefix.get(prefix))
            .flat_map(move |scope| scope.any.iter().chain(scope.nodes.get(node).into_iter().flatten()))
    }

    /// The labels `file` carries.
    pub fn labels_of(&self, file: &FileDoc) -> BTreeSet<Label> {
        let mut out = self.direct.get(&file.id).cloned().unwrap_or_default();
        for id in self.matching_rules(&file.source.node_id, &file.source.export_path) {
            if let Some(rule) = self.rules.get(id) {
                out.extend(rule.labels.iter().cloned());
            }
        }
        out
    }

    /// Whether a file carries `label`, without building its label set.
    pub fn has_label(&self, file: &FileId, node: &NodeId, export_path: &str, label: &Label) -> bool {
        self.direct.get(file).is_some_and(|d| d.contains(label))
            || self
                .matching_rules(node, export_path)
                .any(|id| self.rules.get(id).is_some_and(|r| r.labels.contains(label)))
    }

    /// The labels `file` carries and where each comes from.
    pub fn effective(&self, file: &FileDoc) -> Effective {
        let direct = self.direct.get(&file.id).cloned().unwrap_or_default();
        let rules: Vec<RuleMatch> = self
            .rules
            .iter()
            .filter(|(_, r)| r.applies(&file.source.node_id, &file.source.export_path))
            .map(|(id, r)| RuleMatch { rule_id: id.clone(), name: r.name.clone(), labels: r.labels.clone() })
            .collect();
        let mut labels = direct.clone();
        rules.iter().for_each(|m| labels.extend(m.labels.iter().cloned()));
        Effective { labels, direct, rules }
    }

    /// Whether `file` carries every label in `wanted`.
    pub fn has_all(&self, file: &FileDoc, wanted: &[Label]) -> bool {
        if wanted.is_empty() {
            return true;
        }
        let have = self.labels_of(file);
        wanted.iter().all(|l| have.contains(l))
    }

    /// Every label in use, with how many direct assignments and enabled rules carry it.
    pub fn all_labels(&self) -> BTreeMap<Label, LabelUse> {
        let mut out: BTreeMap<Label, LabelUse> = BTreeMap::new();
        for labels in self.direct.values() {
            labels.iter().for_each(|l| out.entry(l.clone()).or_default().files += 1);
        }
        for rule in self.rules.values() {
            rule.labels.iter().for_each(|l| out.entry(l.clone()).or_default().rules += 1);
        }
        out
    }

    /// Files with a direct assignment that includes `label`.
    pub fn files_with_direct(&self, label: &Label) -> Vec<FileId> {
        self.direct.iter().filter(|(_, ls)| ls.contains(label)).map(|(f, _)| f.clone()).collect()
    }

    /// `(node selector, path prefix)` of the enabled rules that give `label`.
    pub fn rule_scopes(&self, label: &Label) -> Vec<(NodeSelector, String)> {
        self.rules
            .values()
            .filter(|r| r.labels.contains(label))
            .map(|r| (r.node.clone(), r.path_prefix.clone()))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LabelUse {
    /// Direct assignments carrying the label.
    pub files: u64,
    /// Enabled rules giving the label.
    pub rules: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::fixtures;
    use crate::ids::{LabelAssignmentId, Rev};

    fn label(s: &str) -> Label {
        s.parse().unwrap()
    }

    fn rule(name: &str, node: NodeSelector, prefix: &str, labels: &[&str], enabled: bool) -> LabelRuleDoc {
        LabelRuleDoc {
            id: LabelRuleId::generate(),
            rev: Rev(1),
            name: name.into(),
            node_id: node,
            path_prefix: prefix.into(),
            labels: labels.iter().map(|l| label(l)).collect(),
            enabled,
            created_at: crate::doc::now(),
            updated_at: crate::doc::now(),
        }
    }

    #[test]
    fn direct_and_rule_labels_combine() {
        let work = fixtures::file("/home/me/Work/plan.pdf");
        let other = fixtures::file("/home/me/Other/x.pdf");
        let assign = LabelAssignmentDoc {
            id: LabelAssignmentId::for_file(&work.id),
            rev: Rev(1),
            file_id: work.id.clone(),
            labels: vec![label("urgent")],
            updated_at: crate::doc::now(),
            updated_by: None,
        };
        let node = work.source.node_id.clone();
        let r1 = rule("work", NodeSelector::Node(node), "/home/me/Work/", &["work"], true);
        let r2 = rule("all", NodeSelector::Any, "/home/", &["home"], true);
        let off = rule("off", NodeSelector::Any, "/", &["never"], false);
        let elsewhere =
            rule("other node", NodeSelector::Node("node-x-1".parse().unwrap()), "/", &["x"], true);
        let mut idx = LabelIndex::new(&[assign], &[r1.clone(), r2, off, elsewhere]);

        let names = |s: BTreeSet<Label>| s.into_iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(names(idx.labels_of(&work)), ["home", "urgent", "work"]);
        assert_eq!(names(idx.labels_of(&other)), ["home"]);
        let eff = idx.effective(&work);
        assert_eq!(names(eff.direct), ["urgent"]);
        assert_eq!(eff.rules.len(), 2);
        assert!(idx.has_all(&work, &[label("work"), label("urgent")]));
        assert!(!idx.has_all(&other, &[label("work")]));

        // A prefix matches whole directories only: "/home/me/Work/" does not cover "/home/me/Workshop/".
        let shop = fixtures::file("/home/me/Workshop/a.txt");
        assert!(!idx.labels_of(&shop).contains(&label("work")));

        // Incremental changes.
        idx.remove_rule(&r1.id);
        assert_eq!(names(idx.labels_of(&work)), ["home", "urgent"]);
        idx.remove_assignment(&work.id);
        assert_eq!(names(idx.labels_of(&work)), ["home"]);
        assert_eq!(idx.all_labels().get(&label("home")).unwrap().rules, 1);
    }

    proptest::proptest! {
        /// The scope index answers exactly what scanning every rule answers.
        #[test]
        fn indexed_rule_lookup_equals_a_scan(
            specs in proptest::collection::vec(
                (0usize..3, 0usize..5, 0usize..4, proptest::bool::weighted(0.8)),
                0..30,
            ),
            removals in proptest::collection::vec(0usize..30, 0..5),
            paths in proptest::collection::vec(0usize..6, 1..10),
        ) {
            let nodes = ["*", "node-laptop", "node-nas"];
            let prefixes = ["/", "/home/", "/home/me/", "/home/me/Work/", "/srv/"];
            let labels = ["a", "b", "c", "d"];
            let files = ["/home/me/Work/x.pdf", "/home/me/y.txt", "/srv/z", "/home/other/w", "/x", "/home/me/Workshop/q"];
            let mut idx = LabelIndex::default();
            let mut docs = Vec::new();
            for (n, p, l, enabled) in specs {
                let node = if n == 0 { NodeSelector::Any } else { NodeSelector::Node(nodes[n].parse().unwrap()) };
                let r = rule("r", node, prefixes[p], &[labels[l]], enabled);
                idx.set_rule(&r);
                docs.push(r);
            }
            for i in removals {
                if let Some(r) = docs.get(i) {
                    idx.remove_rule(&r.id);
                }
            }
            for p in paths {
                let file = fixtures::file(files[p]);
                let scanned: BTreeSet<Label> = idx
                    .rules
                    .values()
                    .filter(|r| r.applies(&file.source.node_id, &file.source.export_path))
                    .flat_map(|r| r.labels.iter().cloned())
                    .collect();
                proptest::prop_assert_eq!(idx.labels_of(&file), scanned.clone());
                for l in labels {
                    let l = label(l);
                    let has = idx.has_label(&file.id, &file.source.node_id, &file.source.export_path, &l);
                    proptest::prop_assert_eq!(has, scanned.contains(&l));
                }
            }
        }
    }
}
