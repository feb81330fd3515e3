//! Every op with and without `invert`, `on_match` order, defaults, inheritance, and property
//! tests of the pipeline's invariants.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::doc::{
    ConflictPolicy, LabelMatch, MountEntry, MountSource, OnMatch, Step, StepOp, StepResult,
    Strategy as MapStrategy, VirtualDirectoryDoc,
};
use crate::ids::{DirId, Inode, Rev};

#[derive(Clone, Debug)]
struct File {
    rel_path: String,
    node: NodeId,
    size: u64,
    mtime: DateTime<Utc>,
    mime: Option<String>,
    labels: BTreeSet<Label>,
    annotations: BTreeMap<PluginName, serde_json::Value>,
}

impl Facts for File {
    fn rel_path(&self) -> &str {
        &self.rel_path
    }
    fn node_id(&self) -> &NodeId {
        &self.node
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn mtime(&self) -> DateTime<Utc> {
        self.mtime
    }
    fn mime(&self) -> Option<&str> {
        self.mime.as_deref()
    }
    fn has_label(&self, label: &Label) -> bool {
        self.labels.contains(label)
    }
    fn annotation(&self, plugin: &PluginName) -> Option<serde_json::Value> {
        self.annotations.get(plugin).cloned()
    }
}

fn now() -> DateTime<Utc> {
    crate::doc::fixtures::ts("2026-11-25T12:00:00Z")
}

fn label(s: &str) -> Label {
    s.parse().unwrap()
}

fn report() -> File {
    File {
        rel_path: "work/2024/report.pdf".into(),
        node: "node-laptop".parse().unwrap(),
        size: 2_000_000,
        mtime: now() - Duration::days(10),
        mime: Some("application/pdf".into()),
        labels: [label("work"), label("tax")].into_iter().collect(),
        annotations: [("summarizer".parse().unwrap(), json!({"lang": "en", "meta": {"pages": 12}}))]
            .into_iter()
            .collect(),
    }
}

fn step(op: StepOp, invert: bool, on_match: OnMatch) -> Step {
    Step { op, invert, on_match }
}

fn ops_matching_report() -> Vec<(StepOp, bool)> {
    let plugin: PluginName = "summarizer".parse().unwrap();
    vec![
        (StepOp::Glob { pattern: "**/*.pdf".into() }, true),
        (StepOp::Glob { pattern: "*.pdf".into() }, false), // `*` does not cross `/`
        (StepOp::Glob { pattern: "work/*/report.pdf".into() }, true),
        (StepOp::Regex { pattern: r"^work/\d{4}/".into(), case_insensitive: false }, true),
        (StepOp::Regex { pattern: "REPORT".into(), case_insensitive: false }, false),
        (StepOp::Regex { pattern: "REPORT".into(), case_insensitive: true }, true),
        (StepOp::Age { older_than_secs: Some(86_400), newer_than_secs: None }, true),
        (StepOp::Age { older_than_secs: None, newer_than_secs: Some(86_400) }, false),
        (StepOp::Age { older_than_secs: Some(86_400), newer_than_secs: Some(30 * 86_400) }, true),
        (StepOp::Size { min_bytes: Some(1_000_000), max_bytes: None }, true),
        (StepOp::Size { min_bytes: None, max_bytes: Some(1_000_000) }, false),
        (StepOp::Size { min_bytes: Some(2_000_000), max_bytes: Some(2_000_000) }, true),
        (StepOp::Mime { types: vec!["application/pdf".into()] }, true),
        (StepOp::Mime { types: vec!["Application/*".into()] }, true),
        (StepOp::Mime { types: vec!["image/*".into(), "text/plain".into()] }, false),
        (StepOp::Node { node_ids: vec!["node-laptop".parse().unwrap()] }, true),
        (StepOp::Node { node_ids: vec!["node-nas".parse().unwrap()] }, false),
        (StepOp::Label { labels: vec![label("work"), label("tax")], match_mode: LabelMatch::All }, true),
        (StepOp::Label { labels: vec![label("work"), label("home")], match_mode: LabelMatch::All }, false),
        (StepOp::Label { labels: vec![label("work"), label("home")], match_mode: LabelMatch::Any }, true),
        (StepOp::Label { labels: vec![label("home")], match_mode: LabelMatch::Any }, false),
        (StepOp::Annotation { plugin: plugin.clone(), field: None, value: None }, true),
        (StepOp::Annotation { plugin: "ocr".parse().unwrap(), field: None, value: None }, false),
        (StepOp::Annotation { plugin: plugin.clone(), field: Some("lang".into()), value: None }, true),
        (StepOp::Annotation { plugin: plugin.clone(), field: Some("title".into()), value: None }, false),
        (
            StepOp::Annotation {
                plugin: plugin.clone(),
                field: Some("lang".into()),
                value: Some(json!("en")),
            },
            true,
        ),
        (
            StepOp::Annotation {
                plugin: plugin.clone(),
                field: Some("lang".into()),
                value: Some(json!("de")),
            },
            false,
        ),
        (StepOp::Annotation { plugin, field: Some("/meta/pages".into()), value: Some(json!(12)) }, true),
    ]
}

#[test]
fn every_op_with_and_without_invert() {
    let file = report();
    for (op, expected) in ops_matching_report() {
        for invert in [false, true] {
            let s = CompiledStep::compile(&step(op.clone(), invert, OnMatch::Include), "t").unwrap();
            assert_eq!(s.matches(&file, now()), expected != invert, "{op:?} invert={invert}");
        }
    }
}

#[test]
fn a_file_without_a_mime_type_matches_no_mime_step() {
    let file = File { mime: None, ..report() };
    let any_app = StepOp::Mime { types: vec!["application/*".into()] };
    let s = CompiledStep::compile(&step(any_app, false, OnMatch::Include), "t").unwrap();
    assert!(!s.matches(&file, now()));
}

#[test]
fn bad_parameters_name_the_step() {
    let bad = [
        (StepOp::Glob { pattern: "a[".into() }, "invalid glob"),
        (StepOp::Glob { pattern: String::new() }, "pattern is empty"),
        (StepOp::Regex { pattern: "(".into(), case_insensitive: false }, "invalid regex"),
        (StepOp::Regex { pattern: "a".repeat(2000), case_insensitive: false }, "longer than 1024"),
        (StepOp::Regex { pattern: r"\w{1000}\w{1000}".into(), case_insensitive: false }, "invalid regex"),
        (StepOp::Age { older_than_secs: None, newer_than_secs: None }, "needs"),
        (StepOp::Age { older_than_secs: Some(10), newer_than_secs: Some(5) }, "no file is older"),
        (StepOp::Size { min_bytes: Some(10), max_bytes: Some(5) }, "above max_bytes"),
        (StepOp::Size { min_bytes: None, max_bytes: None }, "needs"),
        (StepOp::Mime { types: vec!["pdf".into()] }, "not `type/subtype`"),
        (StepOp::Mime { types: vec![] }, "types is empty"),
        (StepOp::Node { node_ids: vec![] }, "node_ids is empty"),
        (StepOp::Label { labels: vec![], match_mode: LabelMatch::All }, "labels is empty"),
        (
            StepOp::Annotation { plugin: "p".parse().unwrap(), field: None, value: Some(json!(1)) },
            "a value needs a field",
        ),
    ];
    for (op, why) in bad {
        let e = CompiledStep::compile(&step(op.clone(), false, OnMatch::Include), "mounts[1].steps[3]")
            .expect_err(&format!("{op:?} is refused"));
        assert_eq!(e.location, "mounts[1].steps[3]");
        assert!(e.message.contains(why), "{op:?}: {e}");
    }
}

fn mount(steps: Vec<Step>, default_result: StepResult) -> MountEntry {
    MountEntry {
        mount_id: "m1".into(),
        source: MountSource { node_id: "node-laptop".parse().unwrap(), export_path: "/home/me".into() },
        steps,
        default_result,
        strategy: MapStrategy::PrefixReplace,
        conflict_policy: ConflictPolicy::LastWriteWins,
    }
}

fn dir(path: &str, enforce: bool, mounts: Vec<MountEntry>) -> VirtualDirectoryDoc {
    let t = now();
    VirtualDirectoryDoc {
        id: if path == "/" { DirId::root() } else { DirId::generate() },
        rev: Rev(1),
        virtual_path: path.into(),
        name: path.rsplit('/').next().unwrap_or("").into(),
        inode: if path == "/" { Inode::ROOT } else { Inode(5000) },
        system: path == "/",
        enforce_steps_on_children: enforce,
        mounts,
        created_at: t,
        updated_at: t,
    }
}

fn evaluate(ancestors: &[&VirtualDirectoryDoc], m: &MountEntry, file: &File) -> StepResult {
    let inherited = Inherited::compile(ancestors).unwrap();
    Pipeline::compile(&inherited, m, 0).unwrap().evaluate(file, now())
}

fn pdf() -> StepOp {
    StepOp::Glob { pattern: "**/*.pdf".into() }
}

#[test]
fn empty_steps_give_the_default() {
    for d in [StepResult::Include, StepResult::Exclude] {
        assert_eq!(evaluate(&[], &mount(vec![], d), &report()), d);
    }
}

#[test]
fn the_first_deciding_step_wins_and_continue_goes_on() {
    let big = StepOp::Size { min_bytes: Some(1_000_000), max_bytes: None };
    let m = mount(
        vec![
            step(big.clone(), false, OnMatch::Continue),
            step(pdf(), false, OnMatch::Exclude),
            step(big, false, OnMatch::Include),
        ],
        StepResult::Include,
    );
    assert_eq!(evaluate(&[], &m, &report()), StepResult::Exclude, "the exclude comes first");
    let txt = File { rel_path: "notes.txt".into(), ..report() };
    assert_eq!(evaluate(&[], &m, &txt), StepResult::Include, "the size include decides");
    let small = File { size: 10, rel_path: "notes.txt".into(), ..report() };
    assert_eq!(evaluate(&[], &m, &small), StepResult::Include, "nothing decided: the default");
    let m = mount(vec![step(pdf(), false, OnMatch::Include)], StepResult::Exclude);
    assert_eq!(evaluate(&[], &m, &small), StepResult::Exclude);
    assert_eq!(evaluate(&[], &m, &report()), StepResult::Include);
}

#[test]
fn an_enforced_ancestor_exclude_beats_a_child_include() {
    // The root enforces "no PDFs"; the child includes everything large.
    let root = dir("/", true, vec![mount(vec![step(pdf(), false, OnMatch::Exclude)], StepResult::Include)]);
    let child = mount(
        vec![step(StepOp::Size { min_bytes: Some(1), max_bytes: None }, false, OnMatch::Include)],
        StepResult::Include,
    );
    assert_eq!(evaluate(&[&root], &child, &report()), StepResult::Exclude);
    let txt = File { rel_path: "a.txt".into(), ..report() };
    assert_eq!(evaluate(&[&root], &child, &txt), StepResult::Include);
    // Without enforce_steps_on_children the ancestor's steps do not apply.
    let lax = dir("/", false, root.mounts.clone());
    assert_eq!(evaluate(&[&lax], &child, &report()), StepResult::Include);
}

#[test]
fn an_enforced_ancestor_include_does_not_widen_a_child() {
    let root = dir("/", true, vec![mount(vec![step(pdf(), false, OnMatch::Include)], StepResult::Include)]);
    let child = mount(vec![step(pdf(), false, OnMatch::Exclude)], StepResult::Include);
    assert_eq!(evaluate(&[&root], &child, &report()), StepResult::Exclude);
}

#[test]
fn inherited_errors_name_the_ancestor() {
    let root = dir(
        "/a",
        true,
        vec![mount(
            vec![step(StepOp::Glob { pattern: "[".into() }, false, OnMatch::Exclude)],
            StepResult::Include,
        )],
    );
    let e = Inherited::compile(&[&root]).unwrap_err();
    assert_eq!(e.location, "/a: mounts[0].steps[0]");
}

// ---- properties ------------------------------------------------------------------------------

fn arb_op() -> impl Strategy<Value = StepOp> {
    prop_oneof![
        prop::sample::select(vec!["**/*.pdf", "*.txt", "work/**", "**/2024/**", "*"])
            .prop_map(|p| StepOp::Glob { pattern: p.into() }),
        (prop::sample::select(vec!["^work/", "report", r"\d{4}", "txt$"]), any::<bool>())
            .prop_map(|(p, ci)| StepOp::Regex { pattern: p.into(), case_insensitive: ci }),
        (0u64..100, 100u64..1000).prop_map(|(o, n)| StepOp::Age {
            older_than_secs: Some(o * 86_400),
            newer_than_secs: Some(n * 86_400)
        }),
        (0u64..5_000_000).prop_map(|m| StepOp::Size { min_bytes: Some(m), max_bytes: None }),
        prop::sample::select(vec!["application/pdf", "image/*", "text/plain"])
            .prop_map(|t| StepOp::Mime { types: vec![t.into()] }),
        prop::sample::select(vec!["node-laptop", "node-nas"])
            .prop_map(|n| StepOp::Node { node_ids: vec![n.parse().unwrap()] }),
        (prop::sample::select(vec!["work", "tax", "home"]), any::<bool>()).prop_map(|(l, any)| {
            StepOp::Label {
                labels: vec![label(l)],
                match_mode: if any { LabelMatch::Any } else { LabelMatch::All },
            }
        }),
    ]
}

fn arb_step() -> impl Strategy<Value = Step> {
    (
        arb_op(),
        any::<bool>(),
        prop::sample::select(vec![OnMatch::Include, OnMatch::Exclude, OnMatch::Continue]),
    )
        .prop_map(|(op, invert, on_match)| Step { op, invert, on_match })
}

fn arb_result() -> impl Strategy<Value = StepResult> {
    prop::sample::select(vec![StepResult::Include, StepResult::Exclude])
}

fn arb_file() -> impl Strategy<Value = File> {
    (
        prop::sample::select(vec!["work/2024/report.pdf", "notes.txt", "photos/2024/a.jpg", "work/todo.txt"]),
        prop::sample::select(vec!["node-laptop", "node-nas"]),
        0u64..5_000_000,
        0i64..2000,
        prop::sample::select(vec![Some("application/pdf"), Some("image/jpeg"), Some("text/plain"), None]),
        prop::sample::subsequence(vec!["work", "tax", "home"], 0..3),
    )
        .prop_map(|(path, node, size, days, mime, labels)| File {
            rel_path: path.into(),
            node: node.parse().unwrap(),
            size,
            mtime: now() - Duration::days(days),
            mime: mime.map(Into::into),
            labels: labels.into_iter().map(label).collect(),
            annotations: BTreeMap::new(),
        })
}

proptest! {
    #[test]
    fn inverting_a_step_flips_its_match(s in arb_step(), f in arb_file()) {
        let a = CompiledStep::compile(&s, "t").unwrap();
        let b = CompiledStep::compile(&Step { invert: !s.invert, ..s.clone() }, "t").unwrap();
        prop_assert_ne!(a.matches(&f, now()), b.matches(&f, now()));
    }

    #[test]
    fn an_ancestor_step_never_adds_a_file(
        own in prop::collection::vec(arb_step(), 0..6),
        default in arb_result(),
        ancestor in prop::collection::vec(arb_step(), 1..4),
        f in arb_file(),
    ) {
        let m = mount(own, default);
        let root = dir("/", true, vec![mount(ancestor, StepResult::Include)]);
        let without = evaluate(&[], &m, &f);
        let with = evaluate(&[&root], &m, &f);
        prop_assert!(!(without == StepResult::Exclude && with == StepResult::Include));
    }

    #[test]
    fn continue_steps_never_change_the_result(
        steps in prop::collection::vec(arb_step(), 0..8),
        default in arb_result(),
        f in arb_file(),
    ) {
        let all = evaluate(&[], &mount(steps.clone(), default), &f);
        let deciding: Vec<Step> = steps.into_iter().filter(|s| s.on_match != OnMatch::Continue).collect();
        prop_assert_eq!(all, evaluate(&[], &mount(deciding, default), &f));
    }

    #[test]
    fn the_result_is_the_first_matching_decision(
        steps in prop::collection::vec(arb_step(), 0..8),
        default in arb_result(),
        f in arb_file(),
    ) {
        let reference = steps
            .iter()
            .find(|s| s.on_match != OnMatch::Continue && CompiledStep::compile(s, "t").unwrap().matches(&f, now()))
            .map(|s| if s.on_match == OnMatch::Include { StepResult::Include } else { StepResult::Exclude })
            .unwrap_or(default);
        prop_assert_eq!(evaluate(&[], &mount(steps, default), &f), reference);
    }
}
