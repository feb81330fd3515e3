//! Per-file costs of the rule engine and the label cache's build time (criterion):
//! `cargo bench -p mosaicfs-bench --bench rules` (or `bench/run_rules.sh`).
//!
//! - `labels/has_label`: one label lookup for a file, 100,000 assignments and 1,000 rules loaded;
//! - `labels/labels_of`: the file's whole effective label set, same index;
//! - `pipeline/evaluate_*`: one file through a mount's pipeline (inherited exclusions, glob,
//!   regex, size, age, label steps);
//! - `label_cache/build_100k_assignments_1k_rules`: `LabelCache::build` from a store holding
//!   100,000 label assignments and 1,000 rules.

use std::collections::BTreeMap;

use agent_core::doc::{
    ConflictPolicy, FileDoc, LabelAssignmentDoc, LabelMatch, LabelRuleDoc, MountEntry, MountSource,
    NodeSelector, OnMatch, Step, StepOp, StepResult, Strategy, VirtualDirectoryDoc,
};
use agent_core::ids::{DirId, Inode, Label, LabelAssignmentId, LabelRuleId, NodeId, PluginName, Rev};
use agent_core::label_cache::LabelCache;
use agent_core::labels::LabelIndex;
use agent_core::rules::{Facts, Inherited, Pipeline};
use agent_core::store::Store;
use chrono::{DateTime, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mosaicfs_bench::{DocGen, GenOptions};

fn label(i: usize) -> Label {
    format!("label-{}", i % 200).parse().unwrap()
}

fn files(n: usize) -> Vec<FileDoc> {
    let mut g = DocGen::new(3, GenOptions::default());
    (0..n as u64).map(|i| g.file_doc(i)).collect()
}

fn assignments(files: &[FileDoc]) -> Vec<LabelAssignmentDoc> {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| LabelAssignmentDoc {
            id: LabelAssignmentId::for_file(&f.id),
            rev: Rev::NONE,
            file_id: f.id.clone(),
            labels: vec![label(i), label(i + 7)],
            updated_at: agent_core::doc::now(),
            updated_by: None,
        })
        .collect()
}

/// 1,000 rules over the generator's directory shapes, a third of them node-specific.
fn rules(nodes: &[NodeId]) -> Vec<LabelRuleDoc> {
    let tops = ["Photos", "Documents", "Music", "Videos"];
    (0..1000)
        .map(|i| LabelRuleDoc {
            id: LabelRuleId::generate(),
            rev: Rev::NONE,
            name: format!("rule {i}"),
            node_id: if i % 3 == 0 {
                NodeSelector::Node(nodes[i % nodes.len()].clone())
            } else {
                NodeSelector::Any
            },
            path_prefix: format!(
                "/home/user/{}/{}/{:02}/",
                tops[i % 4],
                2010 + (i / 4) % 15,
                1 + (i / 60) % 12
            ),
            labels: vec![label(i)],
            enabled: true,
            created_at: agent_core::doc::now(),
            updated_at: agent_core::doc::now(),
        })
        .collect()
}

struct Candidate<'a> {
    file: &'a FileDoc,
    labels: &'a LabelIndex,
    annotations: &'a BTreeMap<PluginName, serde_json::Value>,
}

impl Facts for Candidate<'_> {
    fn rel_path(&self) -> &str {
        &self.file.source.export_path[1..]
    }
    fn node_id(&self) -> &NodeId {
        &self.file.source.node_id
    }
    fn size(&self) -> u64 {
        self.file.size
    }
    fn mtime(&self) -> DateTime<Utc> {
        self.file.mtime
    }
    fn mime(&self) -> Option<&str> {
        self.file.mime.as_deref()
    }
    fn has_label(&self, l: &Label) -> bool {
        let f = self.file;
        self.labels.has_label(&f.id, &f.source.node_id, &f.source.export_path, l)
    }
    fn annotation(&self, plugin: &PluginName) -> Option<serde_json::Value> {
        self.annotations.get(plugin).cloned()
    }
}

fn mount(steps: Vec<Step>) -> MountEntry {
    MountEntry {
        mount_id: "m".into(),
        source: MountSource { node_id: "node-x".parse().unwrap(), export_path: "/".into() },
        steps,
        default_result: StepResult::Exclude,
        strategy: Strategy::Flatten,
        conflict_policy: ConflictPolicy::LastWriteWins,
    }
}

fn bench(c: &mut Criterion) {
    let files = files(100_000);
    let nodes: Vec<NodeId> = DocGen::new(3, GenOptions::default()).nodes().to_vec();
    let rules = rules(&nodes);
    let index = LabelIndex::new(&assignments(&files), &rules);
    let probe = &files[12_345];
    let wanted = label(999);

    let mut g = c.benchmark_group("labels");
    g.bench_function("has_label", |b| {
        b.iter(|| {
            index.has_label(black_box(&probe.id), &probe.source.node_id, &probe.source.export_path, &wanted)
        })
    });
    g.bench_function("labels_of", |b| b.iter(|| index.labels_of(black_box(probe))));
    g.finish();

    let step = |op, invert, on_match| Step { op, invert, on_match };
    let now = agent_core::doc::now();
    let root = VirtualDirectoryDoc {
        id: DirId::root(),
        rev: Rev(1),
        virtual_path: "/".into(),
        name: String::new(),
        inode: Inode::ROOT,
        system: true,
        enforce_steps_on_children: true,
        mounts: vec![mount(vec![step(
            StepOp::Age { older_than_secs: Some(30 * 365 * 86_400), newer_than_secs: None },
            false,
            OnMatch::Exclude,
        )])],
        created_at: now,
        updated_at: now,
    };
    let inherited = Inherited::compile(&[&root]).unwrap();
    let pipelines = [
        ("evaluate_glob", vec![step(StepOp::Glob { pattern: "**/*.pdf".into() }, false, OnMatch::Include)]),
        (
            "evaluate_regex",
            vec![step(
                StepOp::Regex { pattern: r"/20(1[5-9]|2\d)/\d{2}/".into(), case_insensitive: false },
                false,
                OnMatch::Include,
            )],
        ),
        (
            "evaluate_six_steps",
            vec![
                step(StepOp::Glob { pattern: "**/*.tmp".into() }, false, OnMatch::Exclude),
                step(StepOp::Size { min_bytes: Some(1), max_bytes: None }, true, OnMatch::Exclude),
                step(StepOp::Mime { types: vec!["image/*".into()] }, false, OnMatch::Continue),
                step(
                    StepOp::Label { labels: vec![label(5), label(17)], match_mode: LabelMatch::Any },
                    false,
                    OnMatch::Exclude,
                ),
                step(
                    StepOp::Age { older_than_secs: None, newer_than_secs: Some(20 * 365 * 86_400) },
                    false,
                    OnMatch::Continue,
                ),
                step(StepOp::Glob { pattern: "**/Documents/**".into() }, false, OnMatch::Include),
            ],
        ),
    ];
    let annotations = BTreeMap::new();
    let mut g = c.benchmark_group("pipeline");
    for (name, steps) in pipelines {
        let p = Pipeline::compile(&inherited, &mount(steps), 0).unwrap();
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % files.len();
                let f = Candidate { file: &files[i], labels: &index, annotations: &annotations };
                p.evaluate(black_box(&f), now)
            })
        });
    }
    g.finish();

    // The label cache from a store with 100,000 assignments and 1,000 rules.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("labels.db")).unwrap();
    let mut docs: Vec<agent_core::doc::Document> = assignments(&files).into_iter().map(Into::into).collect();
    docs.extend(rules.into_iter().map(Into::into));
    for chunk in docs.chunks(20_000) {
        store.put_many(chunk.to_vec()).unwrap();
    }
    let mut g = c.benchmark_group("label_cache");
    g.sample_size(10);
    g.bench_function("build_100k_assignments_1k_rules", |b| {
        b.iter(|| LabelCache::build(black_box(&store)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
