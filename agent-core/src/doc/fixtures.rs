//! One sample document of every type, for round-trip tests and store tests.

use std::collections::BTreeMap;

use super::*;
use crate::ids::*;

pub fn ts(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).expect("fixture timestamp").with_timezone(&chrono::Utc)
}

pub fn node() -> NodeId {
    "node-laptop".parse().unwrap()
}

pub fn file(path: &str) -> FileDoc {
    let source = FileSource::new(node(), path).expect("fixture path");
    FileDoc {
        id: FileId::generate(),
        rev: Rev(1),
        name: source.name().to_owned(),
        source,
        size: 1234,
        mtime: ts("2024-05-01T10:20:30.123456789Z"),
        mime: Some("application/pdf".into()),
        inode: Inode(123_456),
        status: FileStatus::Active,
        first_seen: ts("2024-05-02T00:00:00Z"),
        deleted_at: None,
        received_at: None,
    }
}

pub fn all() -> Vec<Document> {
    let n = node();
    let f = file("/home/me/Documents/report.pdf");
    let plugin: PluginName = "summarizer".parse().unwrap();
    let t = ts("2025-01-01T00:00:00Z");
    let source = NotificationSource::Plugin { node_id: n.clone(), plugin_name: plugin.clone() };
    vec![
        Document::File(f.clone()),
        Document::VirtualDirectory(VirtualDirectoryDoc {
            id: DirId::generate(),
            rev: Rev(3),
            virtual_path: "/documents/work".into(),
            name: "work".into(),
            inode: Inode(5000),
            system: false,
            enforce_steps_on_children: true,
            mounts: vec![MountEntry {
                mount_id: "m1".into(),
                source: MountSource { node_id: n.clone(), export_path: "/home/me/Documents".into() },
                steps: vec![
                    Step {
                        op: StepOp::Glob { pattern: "**/*.pdf".into() },
                        invert: false,
                        on_match: OnMatch::Continue,
                    },
                    Step {
                        op: StepOp::Regex { pattern: "^tax".into(), case_insensitive: true },
                        invert: true,
                        on_match: OnMatch::Exclude,
                    },
                    Step {
                        op: StepOp::Age { older_than_secs: None, newer_than_secs: Some(86400 * 365) },
                        invert: false,
                        on_match: OnMatch::Continue,
                    },
                    Step {
                        op: StepOp::Size { min_bytes: Some(1), max_bytes: None },
                        invert: false,
                        on_match: OnMatch::Continue,
                    },
                    Step {
                        op: StepOp::Mime { types: vec!["application/pdf".into(), "image/*".into()] },
                        invert: false,
                        on_match: OnMatch::Continue,
                    },
                    Step {
                        op: StepOp::Node { node_ids: vec![n.clone()] },
                        invert: false,
                        on_match: OnMatch::Continue,
                    },
                    Step {
                        op: StepOp::Label {
                            labels: vec!["work".parse().unwrap()],
                            match_mode: LabelMatch::Any,
                        },
                        invert: false,
                        on_match: OnMatch::Include,
                    },
                    Step {
                        op: StepOp::Annotation {
                            plugin: plugin.clone(),
                            field: Some("lang".into()),
                            value: Some("en".into()),
                        },
                        invert: false,
                        on_match: OnMatch::Include,
                    },
                ],
                default_result: StepResult::Exclude,
                strategy: Strategy::PrefixReplace,
                conflict_policy: ConflictPolicy::SuffixNodeId,
            }],
            created_at: t,
            updated_at: t,
        }),
        Document::Node(NodeDoc {
            id: NodeDocId::for_node(&n),
            rev: Rev(7),
            node_id: n.clone(),
            friendly_name: "laptop".into(),
            enabled: true,
            network_mounts: vec![NetworkMount {
                mount_id: "nas".into(),
                mount_type: NetworkMountType::Nfs,
                remote_node_id: "node-nas".parse().unwrap(),
                remote_base_export_path: "/srv".into(),
                local_mount_path: "/mnt/nas".into(),
                priority: 10,
            }],
            platform: Platform::current(),
            hostname: "laptop".into(),
            agent_version: "0.1.0".into(),
            role: None,
            transfer: Some(TransferEndpoint {
                endpoint: "https://10.0.0.2:7443".into(),
                cert_fingerprint: "ab".repeat(32),
            }),
            capabilities: vec!["fulltext_search".into()],
            watch_paths: vec!["/home/me".into()],
            status: NodeStatus::Online,
            started_at: t,
            last_heartbeat: t,
            observed_status: Some(NodeStatus::Online),
            last_seen: Some(t),
        }),
        {
            let key = AccessKeyId::generate();
            Document::Credential(CredentialDoc {
                id: CredentialId::for_key(&key),
                rev: Rev(1),
                access_key_id: key,
                name: "laptop agent".into(),
                kdf: KdfParams {
                    algorithm: "argon2id".into(),
                    salt: "00".repeat(16),
                    m_cost: 19456,
                    t_cost: 2,
                    p_cost: 1,
                },
                verifier: "11".repeat(32),
                enabled: true,
                role: CredentialRole::Node,
                node_id: Some(n.clone()),
                created_at: t,
                last_used_at: None,
            })
        },
        Document::AgentStatus(AgentStatusDoc {
            id: AgentStatusId::for_node(&n),
            rev: Rev(2),
            node_id: n.clone(),
            updated_at: t,
            overall: Health::Degraded,
            subsystems: BTreeMap::from([(
                "watcher".into(),
                SubsystemStatus {
                    health: Health::Degraded,
                    message: Some("12 dirs unwatched".into()),
                    counters: Default::default(),
                },
            )]),
            watch_paths: vec![WatchPathStatus {
                path: "/home/me".into(),
                health: Health::Healthy,
                files: 10,
                unwatched_dirs: 12,
            }],
            last_crawl: Some(CrawlSummary { seen: 10, added: 10, duration_ms: 5, ..Default::default() }),
            recent_errors: vec![ErrorEntry {
                at: t,
                subsystem: "crawler".into(),
                message: "permission denied".into(),
            }],
            available_plugins: vec![plugin.clone()],
        }),
        Document::UtilizationSnapshot(UtilizationSnapshotDoc {
            id: UtilizationId::for_snapshot(&n, t.timestamp()),
            rev: Rev(1),
            node_id: n.clone(),
            captured_at: t,
            storage: vec![StorageUsage {
                path: "/home/me".into(),
                total_bytes: 100,
                used_bytes: 60,
                available_bytes: 40,
            }],
            cache: Some(CacheUsage { bytes: 5, cap_bytes: 10, entries: 1 }),
            indexed_files: 10,
            indexed_bytes: 12340,
        }),
        Document::LabelAssignment(LabelAssignmentDoc {
            id: LabelAssignmentId::for_file(&f.id),
            rev: Rev(1),
            file_id: f.id.clone(),
            labels: vec!["work".parse().unwrap(), "tax 2024".parse().unwrap()],
            updated_at: t,
            updated_by: Some("MFSAAAAAAAAAAAAAAAAA".into()),
        }),
        Document::LabelRule(LabelRuleDoc {
            id: LabelRuleId::generate(),
            rev: Rev(1),
            name: "work files".into(),
            node_id: NodeSelector::Any,
            path_prefix: "/home/me/Work/".into(),
            labels: vec!["work".parse().unwrap()],
            enabled: true,
            created_at: t,
            updated_at: t,
        }),
        Document::Plugin(PluginDoc {
            id: PluginId::for_plugin(&n, &plugin),
            rev: Rev(1),
            node_id: n.clone(),
            plugin_name: plugin.clone(),
            plugin_type: PluginType::Executable,
            enabled: true,
            subscribed_events: vec!["file.added".into()],
            mime_globs: vec!["application/pdf".into()],
            settings: serde_json::Map::from_iter([("model".to_string(), serde_json::json!("small"))]),
            settings_schema: None,
            workers: 2,
            timeout_s: 60,
            max_attempts: 3,
            query_endpoints: vec![],
            provides_filesystem: false,
            file_path_prefix: None,
            created_at: t,
            updated_at: t,
        }),
        Document::Annotation(AnnotationDoc {
            id: AnnotationId::for_file(&f.id, &plugin),
            rev: Rev(1),
            file_id: f.id.clone(),
            plugin_name: plugin.clone(),
            node_id: n.clone(),
            status: AnnotationStatus::Ok,
            data: serde_json::json!({"summary": "a report", "lang": "en"}),
            error: None,
            annotated_at: t,
        }),
        Document::Notification(NotificationDoc {
            id: NotificationId::for_condition(&source.id_part(), "plugin_queue_full"),
            rev: Rev(4),
            source,
            condition_key: "plugin_queue_full".into(),
            severity: Severity::Warning,
            status: NotificationStatus::Active,
            title: "Plugin queue full".into(),
            message: "summarizer has 100000 jobs queued".into(),
            actions: vec![NotificationAction {
                label: "Open plugins".into(),
                target: "#/settings/plugins".into(),
            }],
            first_seen: t,
            last_seen: t,
            occurrence_count: 3,
            resolved_at: None,
            acknowledged_at: None,
        }),
    ]
}

/// An unsaved, active file document of `node` at `path`, with a fresh id and inode (as the
/// indexer makes one; tests set size and mtime as they need).
pub fn new_file(node: &NodeId, path: &str) -> FileDoc {
    let mut f = file(path);
    f.source = FileSource::new(node.clone(), path).expect("fixture path");
    f.name = f.source.name().to_owned();
    f.rev = Rev::NONE;
    f.inode = Inode::generate();
    f.status = FileStatus::Active;
    f
}

/// An unsaved virtual directory at `path` with `mounts` (the root gets its fixed id and inode).
pub fn new_dir(path: &str, mounts: Vec<MountEntry>) -> VirtualDirectoryDoc {
    let now = ts("2026-11-25T12:00:00Z");
    VirtualDirectoryDoc {
        id: if path == "/" { DirId::root() } else { DirId::generate() },
        rev: Rev::NONE,
        virtual_path: path.into(),
        name: path.rsplit('/').next().unwrap_or("").into(),
        inode: if path == "/" { Inode::ROOT } else { Inode::generate() },
        system: path == "/",
        enforce_steps_on_children: false,
        mounts,
        created_at: now,
        updated_at: now,
    }
}
