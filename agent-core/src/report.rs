//! What this agent reports about itself (plan §2.8): its `agent_status` document, rewritten every
//! `sync.status_interval`, and a `utilization_snapshot` every `sync.utilization_interval`. Both
//! are ordinary local writes of this node's own documents; the push loop replicates them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::doc::{
    self, AgentStatusDoc, Document, Health, StorageUsage, SubsystemStatus, UtilizationSnapshotDoc,
    WatchPathStatus,
};
use crate::ids::{AgentStatusId, NodeId, Rev, UtilizationId};
use crate::store::{Store, StoreError, Written};
use crate::sync::SharedState;
use crate::watcher::WorkerStatus;

/// Everything a report is made from.
#[derive(Clone)]
pub struct Sources {
    pub node_id: NodeId,
    pub watch_paths: Vec<PathBuf>,
    pub data_dir: PathBuf,
    pub worker: Arc<dyn Fn() -> WorkerStatus + Send + Sync>,
    pub sync: Option<SharedState>,
    /// The mount's state, when the tree is mounted.
    pub mount: Option<Arc<dyn Fn() -> crate::mount::MountState + Send + Sync>>,
    /// Why the default mount point could not be mounted (the agent runs without a mount).
    pub mount_failure: Option<String>,
    /// The transfer server, when this node serves its files.
    pub transfer: Option<Arc<dyn Fn() -> TransferState + Send + Sync>>,
    /// Reads of other nodes' files through the cache, when this node makes them.
    pub remote: Option<Arc<crate::remote::Remote>>,
}

/// What the `transfer` subsystem reports.
#[derive(Clone, Debug)]
pub struct TransferState {
    pub endpoint: String,
    /// Whether the hub's key is known (tokens can be checked).
    pub key_known: bool,
    /// What was sent.
    pub sent: crate::transfer::serve::SentCounts,
}

fn subsystem(health: Health, message: Option<String>) -> SubsystemStatus {
    SubsystemStatus { health, message, counters: Default::default() }
}

fn counters<const N: usize>(pairs: [(&str, u64); N]) -> std::collections::BTreeMap<String, u64> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn worst(a: Health, b: Health) -> Health {
    let rank = |h: Health| match h {
        Health::Healthy => 0,
        Health::Degraded => 1,
        Health::Unhealthy => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Builds the status document (blocking: counts files in the store).
pub fn build_status(store: &Store, src: &Sources, base: Rev) -> Result<AgentStatusDoc, StoreError> {
    let worker = (src.worker)();
    let mut subsystems = std::collections::BTreeMap::new();
    subsystems.insert("store".to_owned(), subsystem(Health::Healthy, None));
    let crawler = match (&worker.first_crawl, &worker.last_crawl) {
        (None, _) => subsystem(Health::Degraded, Some("first crawl in progress".into())),
        (_, Some(c)) if c.errors > 0 => {
            subsystem(Health::Degraded, Some(format!("last crawl: {} entries could not be read", c.errors)))
        }
        _ => subsystem(Health::Healthy, None),
    };
    subsystems.insert("crawler".to_owned(), crawler);
    let watcher = if worker.unwatched_dirs > 0 {
        subsystem(
            Health::Degraded,
            Some(format!(
                "{} directories cannot be watched and are crawled periodically",
                worker.unwatched_dirs
            )),
        )
    } else {
        subsystem(Health::Healthy, None)
    };
    subsystems.insert("watcher".to_owned(), watcher);
    let mut recent_errors = Vec::new();
    if let Some(sync) = &src.sync {
        let s = sync.snapshot();
        let status = match (&s.stopped, s.connected, &s.outage_since) {
            (Some(reason), _, _) => subsystem(Health::Unhealthy, Some(format!("stopped: {reason}"))),
            (None, true, _) => subsystem(Health::Healthy, None),
            (None, false, Some(since)) => {
                subsystem(Health::Degraded, Some(format!("control plane unreachable since {since}")))
            }
            (None, false, None) => subsystem(Health::Degraded, Some("not connected yet".into())),
        };
        subsystems.insert("sync".to_owned(), status);
        recent_errors = s.recent_errors;
    }
    if let Some(mount) = &src.mount {
        let m = mount();
        let status = if m.serving {
            let reads = match m.passthrough {
                crate::mount::Passthrough::InUse => "local reads by FUSE passthrough",
                crate::mount::Passthrough::Off => "local reads through the agent",
                crate::mount::Passthrough::NotYetKnown => "no file opened yet",
            };
            subsystem(Health::Healthy, Some(format!("mounted at {} ({reads})", m.mount_point.display())))
        } else {
            subsystem(
                Health::Degraded,
                Some(format!(
                    "{} was unmounted from outside the agent; restart the agent to mount it again",
                    m.mount_point.display()
                )),
            )
        };
        subsystems.insert("mount".to_owned(), status);
    } else if let Some(why) = &src.mount_failure {
        subsystems.insert("mount".to_owned(), subsystem(Health::Unhealthy, Some(why.clone())));
    }
    if let Some(transfer) = &src.transfer {
        let t = transfer();
        let mut status = if t.key_known {
            subsystem(Health::Healthy, Some(format!("serving files at {}", t.endpoint)))
        } else {
            subsystem(
                Health::Degraded,
                Some(format!("listening at {}, waiting for the hub's transfer key", t.endpoint)),
            )
        };
        status.counters = counters([
            ("sent_responses", t.sent.responses),
            ("sent_bytes", t.sent.bytes),
            ("broken_responses", t.sent.broken),
            ("abandoned_responses", t.sent.abandoned),
        ]);
        subsystems.insert("transfer".to_owned(), status);
    }
    if let Some(remote) = &src.remote {
        let cache = remote.cache();
        let mut status = match cache.index().usage() {
            Ok((files, bytes)) => subsystem(
                Health::Healthy,
                Some(format!(
                    "{files} files, {} MiB of {} MiB",
                    bytes.div_ceil(1 << 20),
                    cache.limits().max_bytes >> 20
                )),
            ),
            Err(e) => subsystem(Health::Degraded, Some(format!("cache index unreadable: {e}"))),
        };
        let f = remote.fetched();
        status.counters = counters([
            ("fetched_ranges", f.ranges),
            ("fetched_range_bytes", f.range_bytes),
            ("fetched_whole_files", f.whole_files),
            ("fetched_whole_bytes", f.whole_bytes),
            ("failed_attempts", f.failed_attempts),
        ]);
        subsystems.insert("cache".to_owned(), status);
    }
    let overall = subsystems.values().fold(Health::Healthy, |acc, s| worst(acc, s.health));
    let mut watch_paths = Vec::new();
    for p in &src.watch_paths {
        let (files, _) = store.count_files_under(&src.node_id, &p.display().to_string())?;
        let health = if p.is_dir() { Health::Healthy } else { Health::Unhealthy };
        watch_paths.push(WatchPathStatus { path: p.display().to_string(), health, files, unwatched_dirs: 0 });
    }
    Ok(AgentStatusDoc {
        id: AgentStatusId::for_node(&src.node_id),
        rev: base,
        node_id: src.node_id.clone(),
        updated_at: doc::now(),
        overall,
        subsystems,
        watch_paths,
        last_crawl: worker.last_crawl,
        recent_errors,
        available_plugins: vec![],
    })
}

/// Rewrites this node's `agent_status` document (retried once on a revision conflict).
pub fn write_status(store: &Store, src: &Sources) -> Result<Written, StoreError> {
    let id = AgentStatusId::for_node(&src.node_id);
    let mut attempt = 0;
    loop {
        let base = match store.get(&id.clone().into())? {
            Some(Document::AgentStatus(s)) => s.rev,
            _ => Rev::NONE,
        };
        let status = build_status(store, src, base)?;
        match store.put(status.into()) {
            Err(e) if e.as_conflict().is_some() && attempt == 0 => attempt += 1,
            other => return other,
        }
    }
}

/// Space on the file system holding `path` (`None` if it cannot be read).
fn storage(path: &std::path::Path) -> Option<StorageUsage> {
    let space = crate::host::disk_space(path)?;
    Some(StorageUsage {
        path: path.display().to_string(),
        total_bytes: space.total_bytes,
        used_bytes: space.used_bytes,
        available_bytes: space.available_bytes,
    })
}

/// Writes a new utilization snapshot.
pub fn write_utilization(store: &Store, src: &Sources) -> Result<Written, StoreError> {
    let now = doc::now();
    let (mut files, mut bytes) = (0, 0);
    for p in &src.watch_paths {
        let (n, b) = store.count_files_under(&src.node_id, &p.display().to_string())?;
        files += n;
        bytes += b;
    }
    let mut paths = src.watch_paths.clone();
    paths.push(src.data_dir.clone());
    let id = UtilizationId::for_snapshot(&src.node_id, now.timestamp());
    // Two snapshots in one second (a restart) share an id: the later one replaces the earlier.
    let rev = store.get(&id.clone().into())?.map(|d| d.rev()).unwrap_or(Rev::NONE);
    let snapshot = UtilizationSnapshotDoc {
        id,
        rev,
        node_id: src.node_id.clone(),
        captured_at: now,
        storage: paths.iter().filter_map(|p| storage(p)).collect(),
        cache: src.remote.as_ref().and_then(|r| {
            let (entries, bytes) = r.cache().index().usage().ok()?;
            Some(crate::doc::CacheUsage { bytes, cap_bytes: r.cache().limits().max_bytes, entries })
        }),
        indexed_files: files,
        indexed_bytes: bytes,
    };
    store.put(snapshot.into())
}

/// Writes the status and snapshots on their schedules until stopped.
pub fn spawn(
    store: Store,
    src: Sources,
    status_every: Duration,
    utilization_every: Duration,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut status_tick = tokio::time::interval(status_every);
        let mut util_tick = tokio::time::interval(utilization_every);
        for t in [&mut status_tick, &mut util_tick] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            let write_util = tokio::select! {
                _ = &mut stop_rx => return,
                _ = status_tick.tick() => false,
                _ = util_tick.tick() => true,
            };
            let src = src.clone();
            let result = store
                .run(move |s| if write_util { write_utilization(s, &src) } else { write_status(s, &src) })
                .await;
            if let Err(e) = result {
                let what = if write_util { "utilization snapshot" } else { "agent status" };
                tracing::warn!(operation = "report", error = %e, "{what} not written");
            }
        }
    });
    (stop_tx, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(worker: WorkerStatus) -> Sources {
        Sources {
            node_id: "node-r1".parse().unwrap(),
            watch_paths: vec![std::env::temp_dir()],
            data_dir: std::env::temp_dir(),
            worker: Arc::new(move || worker.clone()),
            sync: None,
            mount: None,
            mount_failure: None,
            transfer: None,
            remote: None,
        }
    }

    #[test]
    fn a_default_mount_that_failed_is_an_unhealthy_subsystem_with_its_reason() {
        let store = Store::open_in_memory().unwrap();
        let mut src = sources(WorkerStatus::default());
        src.mount_failure = Some("not mounted at /home/me/MosaicFS: FUSE is not available".into());
        let w = write_status(&store, &src).unwrap();
        let Some(Document::AgentStatus(s)) = store.get(&w.id).unwrap() else { panic!() };
        assert_eq!(s.subsystems["mount"].health, Health::Unhealthy);
        assert!(s.subsystems["mount"].message.as_deref().unwrap_or("").contains("FUSE is not available"));
    }

    #[test]
    fn status_is_rewritten_in_place_and_reflects_the_worker() {
        let store = Store::open_in_memory().unwrap();
        let src = sources(WorkerStatus::default());
        let first = write_status(&store, &src).unwrap();
        let second = write_status(&store, &src).unwrap();
        assert_eq!((first.rev, second.rev), (Rev(1), Rev(2)));
        let Some(Document::AgentStatus(s)) = store.get(&first.id).unwrap() else { panic!() };
        assert_eq!(s.overall, Health::Degraded, "first crawl not finished yet");
        assert_eq!(s.subsystems["crawler"].message.as_deref(), Some("first crawl in progress"));
        assert_eq!(s.watch_paths.len(), 1);

        let done = WorkerStatus { first_crawl: Some(Default::default()), ..Default::default() };
        let w = write_status(&store, &sources(done)).unwrap();
        let Some(Document::AgentStatus(s)) = store.get(&w.id).unwrap() else { panic!() };
        assert_eq!(s.overall, Health::Healthy);
    }

    #[test]
    fn transfer_and_cache_subsystems_say_what_they_serve_and_hold() {
        let store = Store::open_in_memory().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let limits = crate::cache::index::Limits { max_bytes: 64 << 20, min_free_bytes: 0 };
        let cache = Arc::new(crate::cache::store::Cache::open(dir.path(), limits).unwrap());
        let bytes = vec![1u8; 3 << 20];
        let src = crate::cache::store::Source {
            key: crate::cache::cache_key(&"node-r2".parse().unwrap(), "/f"),
            file_id: crate::ids::FileId::generate(),
            size: bytes.len() as u64,
            mtime_ns: 1,
        };
        let mut staged = cache.stage().unwrap();
        std::io::Write::write_all(&mut staged, &bytes).unwrap();
        use sha2::Digest;
        cache.commit_full(staged, &src, &sha2::Sha256::digest(&bytes).into()).unwrap();
        let key_known = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let known = key_known.clone();
        let mut sources =
            sources(WorkerStatus { first_crawl: Some(Default::default()), ..Default::default() });
        struct NoTokens;
        impl crate::remote::Tokens for NoTokens {
            fn issue<'a>(&'a self, _file: &'a crate::ids::FileId) -> crate::remote::Issued<'a> {
                Box::pin(async { Err(crate::sync::HubError::Refused { message: "no hub here".into() }) })
            }
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let _in_rt = rt.enter();
        let options =
            crate::remote::RemoteOptions { full_file_threshold: 1 << 20, cache_max_bytes: 64 << 20 };
        sources.remote =
            Some(Arc::new(crate::remote::Remote::new(store.clone(), cache, Arc::new(NoTokens), options)));
        sources.transfer = Some(Arc::new(move || TransferState {
            endpoint: "https://10.0.0.2:7443".into(),
            key_known: known.load(std::sync::atomic::Ordering::Relaxed),
            sent: crate::transfer::serve::SentCounts { responses: 3, bytes: 300, ..Default::default() },
        }));
        let status = |store: &Store| {
            let w = write_status(store, &sources).unwrap();
            let Some(Document::AgentStatus(s)) = store.get(&w.id).unwrap() else { panic!() };
            s
        };
        let s = status(&store);
        assert_eq!(s.subsystems["cache"].message.as_deref(), Some("1 files, 3 MiB of 64 MiB"));
        assert_eq!(s.subsystems["cache"].counters["fetched_ranges"], 0);
        assert_eq!(s.subsystems["transfer"].counters["sent_bytes"], 300);
        assert_eq!(s.subsystems["transfer"].health, Health::Degraded);
        key_known.store(true, std::sync::atomic::Ordering::Relaxed);
        let s = status(&store);
        assert_eq!(
            s.subsystems["transfer"].message.as_deref(),
            Some("serving files at https://10.0.0.2:7443")
        );
        assert_eq!(s.overall, Health::Healthy);
    }

    #[test]
    fn utilization_reads_the_file_system() {
        let store = Store::open_in_memory().unwrap();
        let w = write_utilization(&store, &sources(WorkerStatus::default())).unwrap();
        let Some(Document::UtilizationSnapshot(u)) = store.get(&w.id).unwrap() else { panic!() };
        assert_eq!(u.storage.len(), 2);
        assert!(u.storage[0].total_bytes > 0 && u.storage[0].available_bytes <= u.storage[0].total_bytes);
    }
}
