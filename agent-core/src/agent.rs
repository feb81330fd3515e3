//! Running a node: start from a validated config, get a handle, `shutdown()` when done.
//! No global state and no `process::exit`: the host (CLI, desktop app) owns signals and exit.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{AgentConfig, ConfigError};
use crate::ids::NodeId;
use crate::label_cache::LabelCache;
use crate::mount::Mounted;
use crate::node::{self, Announce, NodeInfo};
use crate::remote::{Remote, RemoteOptions};
use crate::report;
use crate::store::{Store, StoreError};
use crate::sync::{HubClient, HubError, OnLongOutage, Replication, SyncState};
use crate::transfer::listen::TransferServer;
use crate::transfer::serve::Served;
use crate::vfs::{Vfs, WatchedFiles};
use crate::vtree::Listings;
use crate::watcher::{IndexWorker, WorkerError, WorkerStatus};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("control plane: {0}")]
    Hub(#[from] HubError),
    #[error("mount: {0}")]
    Mount(#[from] crate::mount::MountError),
    #[error(transparent)]
    Transfer(#[from] crate::transfer::listen::ListenError),
    #[error("cache: {0}")]
    Cache(#[from] crate::cache::store::CacheError),
}

/// A running agent.
pub struct Agent {
    node_id: NodeId,
    store: Store,
    worker: Option<IndexWorker>,
    info: NodeInfo,
    heartbeat: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    reporter: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    sync: Option<Replication>,
    labels: LabelCache,
    label_follower: Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    mounted: Option<Mounted>,
    /// Why the default mount point is not mounted (the agent runs without a mount).
    mount_failure: Option<String>,
    transfer: Option<TransferServer>,
    /// The cache of other nodes' files, marked clean at shutdown.
    cache: Option<Arc<crate::cache::store::Cache>>,
    /// Fetches the hub's transfer key when it was not known at start.
    key_fetch: Option<tokio::task::JoinHandle<()>>,
    commands: Option<crate::commands::CommandRunner>,
}

impl Agent {
    /// Opens the store, announces the node online, starts indexing and the heartbeat.
    /// Must be called inside a tokio runtime.
    pub async fn start(config: AgentConfig) -> Result<Agent, AgentError> {
        let (node_id, store) = tokio::task::spawn_blocking({
            let config = config.clone();
            move || -> Result<(NodeId, Store), AgentError> {
                make_data_dir_private(&config)?;
                let node_id = config.load_or_create_node_id()?;
                let store = Store::open(&config.store_path())?;
                store.ensure_node_id(&node_id)?;
                Ok((node_id, store))
            }
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        // One hub client for the agent's lifetime: the node's key (Argon2id over its secret) is
        // derived once, on first contact, for the bootstrap and replication alike.
        let hub = config.control_plane.as_ref().map(HubClient::new).transpose()?.map(Arc::new);
        if let Some(client) = &hub {
            restore_own_documents(&store, client).await?;
        }
        // Built before anything that evaluates directories (the mount) is offered.
        let labels = store.run(LabelCache::build).await?;
        let label_follower = labels.follow(store.clone(), Duration::from_millis(200));
        // The transfer server and tier 4 need the hub (it issues the tokens).
        let (transfer, key_fetch) = match &hub {
            Some(client) if config.transfer.enabled => {
                let (server, key_fetch) = start_transfer_server(&config, &store, &node_id, client).await?;
                (Some(server), key_fetch)
            }
            _ => (None, None),
        };
        let (mut cache, mut remote_reads) = (None, None);
        let mut mount_failure = None;
        let mounted = match &config.vfs.mount_point {
            Some(mp) => {
                let mut vfs = Vfs::new(
                    store.clone(),
                    node_id.clone(),
                    Arc::new(Listings::new(labels.clone(), config.vfs.readdir_ttl)),
                    Arc::new(WatchedFiles::new(&config.watch_paths)),
                );
                if let Some(client) = &hub {
                    let remote = open_remote(&config, &store, client).await?;
                    cache = Some(remote.cache().clone());
                    remote_reads = Some(remote.clone());
                    vfs = vfs.with_remote(remote);
                }
                let vfs = Arc::new(vfs);
                let (mp, options) = (mp.clone(), config.vfs.clone());
                let mp_shown = mp.clone();
                let mounted = tokio::task::spawn_blocking(move || crate::mount::mount(vfs, &mp, &options))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))?;
                match mounted {
                    Ok(m) => Some(m),
                    // A default mount point degrades: the agent runs, and says why (status, log).
                    Err(e) if config.vfs.mount_is_default => {
                        tracing::warn!(
                            operation = "mount",
                            mount_point = %mp_shown.display(),
                            error = %e,
                            "the virtual tree is not mounted at its default place; the agent runs without a mount"
                        );
                        mount_failure = Some(format!("not mounted at {}: {e}", mp_shown.display()));
                        None
                    }
                    Err(e) => {
                        let _ = label_follower.0.send(());
                        if let Some(t) = transfer {
                            t.stop().await;
                        }
                        return Err(e.into());
                    }
                }
            }
            None => None,
        };
        let mut info = NodeInfo::current(node_id.clone(), config.watch_paths.clone());
        info.transfer = transfer.as_ref().map(|t| t.endpoint().clone());
        let start_info = info.clone();
        store.run(move |s| node::announce(s, &start_info, Announce::Start)).await?;
        tracing::info!(
            operation = "agent.start",
            node_id = %node_id,
            store = %config.store_path().display(),
            watch_paths = ?config.watch_paths,
            "agent started"
        );
        if let Some(cp) = &config.control_plane {
            log_secret_store(cp).await;
        }
        let worker = IndexWorker::spawn(store.clone(), node_id.clone(), &config)?;
        let heartbeat = spawn_heartbeat(store.clone(), info.clone(), config.heartbeat_interval);
        let sync = hub.map(|client| {
            let crawl = worker.crawl_trigger();
            let on_long_outage: OnLongOutage = Arc::new(move |_outage| crawl());
            Replication::start(
                store.clone(),
                node_id.clone(),
                client,
                config.sync.clone(),
                Some(on_long_outage),
            )
        });
        // Commands from the hub (ARCHITECTURE §5.9) arrive through the pull.
        let commands = sync.as_ref().map(|_| {
            let executor = Arc::new(WorkerCommands {
                crawl: Box::new(worker.crawl_trigger()),
                status: Box::new(worker.status_source()),
            });
            crate::commands::CommandRunner::spawn(store.clone(), node_id.clone(), executor)
        });
        let sources = report::Sources {
            node_id: node_id.clone(),
            watch_paths: config.watch_paths.clone(),
            data_dir: config.data_dir.clone(),
            worker: Arc::new(worker.status_source()),
            sync: sync.as_ref().map(Replication::state),
            mount: mounted.as_ref().map(|m| {
                let probe: Arc<dyn Fn() -> crate::mount::MountState + Send + Sync> =
                    Arc::new(m.state_source());
                probe
            }),
            mount_failure: mount_failure.clone(),
            transfer: transfer.as_ref().map(TransferServer::state_source),
            remote: remote_reads,
        };
        let reporter = report::spawn(
            store.clone(),
            sources,
            config.sync.status_interval,
            config.sync.utilization_interval,
        );
        Ok(Agent {
            node_id,
            store,
            worker: Some(worker),
            info,
            heartbeat: Some(heartbeat),
            reporter: Some(reporter),
            sync,
            labels,
            label_follower: Some(label_follower),
            mounted,
            mount_failure,
            transfer,
            cache,
            key_fetch,
            commands,
        })
    }

    /// Where other agents fetch this node's files, if it serves them.
    pub fn transfer_endpoint(&self) -> Option<&crate::doc::TransferEndpoint> {
        self.transfer.as_ref().map(TransferServer::endpoint)
    }

    /// Why the default mount point could not be mounted, if that happened.
    pub fn mount_failure(&self) -> Option<&str> {
        self.mount_failure.as_deref()
    }

    /// Where the virtual tree is mounted, if it is.
    pub fn mount_point(&self) -> Option<&std::path::Path> {
        self.mounted.as_ref().map(Mounted::mount_point)
    }

    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The materialized label cache (kept current from this store's changes).
    pub fn labels(&self) -> &LabelCache {
        &self.labels
    }

    /// Replication, when this node has joined a control plane.
    pub fn sync_state(&self) -> Option<SyncState> {
        self.sync.as_ref().map(|s| s.state().snapshot())
    }

    pub fn worker_status(&self) -> WorkerStatus {
        self.worker.as_ref().map(IndexWorker::status).unwrap_or_default()
    }

    /// Unmounts the tree, stops indexing and the heartbeat, announces the node offline and closes the store.
    pub async fn shutdown(mut self) -> Result<(), AgentError> {
        if let Some(mounted) = self.mounted.take() {
            match tokio::task::spawn_blocking(move || mounted.unmount()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(operation = "unmount", error = %e, "unmount failed"),
                Err(e) => tracing::warn!(operation = "unmount", error = %e, "unmount failed"),
            }
        }
        if let Some(cache) = self.cache.take() {
            match tokio::task::spawn_blocking(move || cache.mark_clean()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(operation = "cache.close", error = %e, "cache not marked clean"),
                Err(e) => tracing::warn!(operation = "cache.close", error = %e, "cache not marked clean"),
            }
        }
        if let Some(task) = self.key_fetch.take() {
            task.abort();
        }
        if let Some(commands) = self.commands.take() {
            commands.stop().await;
        }
        if let Some(transfer) = self.transfer.take() {
            transfer.stop().await;
        }
        for (stop, task) in
            [self.heartbeat.take(), self.reporter.take(), self.label_follower.take()].into_iter().flatten()
        {
            let _ = stop.send(());
            let _ = task.await;
        }
        if let Some(worker) = self.worker.take() {
            let _ = tokio::task::spawn_blocking(move || worker.stop()).await;
        }
        let info = self.info.clone();
        self.store.run(move |s| node::announce(s, &info, Announce::Stop)).await?;
        if let Some(sync) = self.sync.take() {
            sync.drain_and_stop(std::time::Duration::from_secs(3)).await;
        }
        let store = self.store.clone();
        store.run(|s| s.clone().close()).await?;
        tracing::info!(operation = "agent.stop", node_id = %self.node_id, "agent stopped; node offline");
        Ok(())
    }
}

/// The commands the indexing worker carries out.
struct WorkerCommands {
    crawl: Box<dyn Fn() + Send + Sync>,
    status: Box<dyn Fn() -> crate::watcher::WorkerStatus + Send + Sync>,
}

impl crate::commands::Executor for WorkerCommands {
    fn run(&self, command: &crate::doc::Command, stop: &dyn Fn() -> bool) -> crate::commands::Outcome {
        use crate::commands::Outcome;
        use crate::doc::{Command, CommandStatus};
        match command {
            Command::Reindex => {
                let before = (self.status)().full_crawls;
                (self.crawl)();
                while (self.status)().full_crawls == before {
                    if stop() {
                        return Outcome {
                            status: CommandStatus::Failed,
                            message: "the agent stopped".into(),
                            crawl: None,
                        };
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let crawl = (self.status)().last_crawl;
                let message = match &crawl {
                    Some(c) => format!(
                        "crawled every watch path: {} files seen, {} added, {} changed, {} deleted",
                        c.seen, c.added, c.changed, c.deleted
                    ),
                    None => "crawled every watch path".into(),
                };
                Outcome { status: CommandStatus::Done, message, crawl }
            }
            Command::Unknown => {
                Outcome { status: CommandStatus::Failed, message: "unknown command".into(), crawl: None }
            }
        }
    }
}

fn spawn_heartbeat(
    store: Store,
    info: NodeInfo,
    every: Duration,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; the start already announced
        loop {
            tokio::select! {
                _ = &mut stop_rx => return,
                _ = tick.tick() => {
                    let info = info.clone();
                    let started = std::time::Instant::now();
                    match store.run(move |s| node::announce(s, &info, Announce::Heartbeat)).await {
                        Ok(_) => tracing::debug!(operation = "heartbeat", duration_ms = started.elapsed().as_millis() as u64),
                        Err(e) => tracing::warn!(operation = "heartbeat", error = %e, "heartbeat not written"),
                    }
                }
            }
        }
    });
    (stop_tx, task)
}

/// The cache of other nodes' files and the reads through it (tier 4).
async fn open_remote(
    config: &AgentConfig,
    store: &Store,
    hub: &Arc<HubClient>,
) -> Result<Arc<Remote>, AgentError> {
    let limits = crate::cache::index::Limits {
        max_bytes: config.cache.max_bytes,
        min_free_bytes: config.cache.min_free_bytes,
    };
    let root = config.data_dir.join("cache");
    let cache = tokio::task::spawn_blocking(move || crate::cache::store::Cache::open(&root, limits))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    let options = RemoteOptions {
        full_file_threshold: config.cache.full_file_threshold,
        cache_max_bytes: config.cache.max_bytes,
    };
    Ok(Arc::new(Remote::new(store.clone(), Arc::new(cache), hub.clone(), options)))
}

/// The data directory holds the store, keys and secrets: 0700 whatever the umask (§6.6).
fn make_data_dir_private(config: &AgentConfig) -> Result<(), AgentError> {
    let dir = &config.data_dir;
    match crate::private_files::make_private_dir(dir) {
        Ok(Some(was)) => {
            tracing::warn!(data_dir = %dir.display(), was = format!("{was:o}"), "the data directory was open to others; it is now 0700");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(AgentError::Config(crate::config::ConfigError {
            file: config.source.clone(),
            field: "data_dir".into(),
            message: format!("cannot make {} private (0700): {e}", dir.display()),
        })),
    }
}

/// Where the hub's transfer-token key is kept once known (written by `agent init`).
fn hub_key_path(config: &AgentConfig) -> std::path::PathBuf {
    config.data_dir.join("keys/hub_transfer.pub")
}

/// Starts serving this node's files. The hub's key is read from `keys/hub_transfer.pub`, or
/// asked of the hub (and kept); until it is known, requests are answered 503 and a task keeps
/// asking every 30 s.
async fn start_transfer_server(
    config: &AgentConfig,
    store: &Store,
    node_id: &NodeId,
    hub: &Arc<HubClient>,
) -> Result<(TransferServer, Option<tokio::task::JoinHandle<()>>), AgentError> {
    use crate::transfer_token::TransferVerifier;
    let served = Arc::new(Served {
        store: store.clone(),
        node_id: node_id.clone(),
        files: Arc::new(WatchedFiles::new(&config.watch_paths)),
        verifier: std::sync::OnceLock::new(),
        sent: Default::default(),
        flip_faults: Served::flip_faults_from_env().into(),
    });
    let path = hub_key_path(config);
    let kept = tokio::fs::read_to_string(&path).await.ok();
    if let Some(v) = kept.as_deref().and_then(|k| TransferVerifier::from_public_key(k).ok()) {
        let _ = served.verifier.set(v);
    }
    let key_fetch = if served.verifier.get().is_none() {
        let (served, hub) = (served.clone(), hub.clone());
        Some(tokio::spawn(async move {
            loop {
                match hub.transfer_key().await {
                    Ok(key) => match TransferVerifier::from_public_key(&key) {
                        Ok(v) => {
                            let _ = served.verifier.set(v);
                            let bytes = format!("{key}\n").into_bytes();
                            let _ = tokio::task::spawn_blocking(move || {
                                crate::tls::write_atomic(&path, &bytes, false)
                            })
                            .await;
                            tracing::info!(operation = "transfer.key", "hub transfer key received and kept");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(operation = "transfer.key", error = %e, "the hub's transfer key is unusable")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(operation = "transfer.key", error = %e, "cannot get the hub's transfer key yet")
                    }
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        }))
    } else {
        None
    };
    let server =
        TransferServer::start(&config.transfer, &config.data_dir, served, Some(hub.base_url())).await?;
    Ok((server, key_fetch))
}

/// A joined node whose store holds none of its own files (a fresh node, or a lost `agent.db`)
/// takes its documents back from the hub before the first crawl, so file ids survive. An
/// unreachable hub is waited for at most 10 s (a refused connection fails at once); then the crawl makes new ids (logged).
async fn restore_own_documents(store: &Store, client: &HubClient) -> Result<(), AgentError> {
    if store.run(|s| s.has_own_files()).await? {
        return Ok(());
    }
    match tokio::time::timeout(Duration::from_secs(10), crate::sync::bootstrap(store, client)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(
            operation = "sync.bootstrap",
            restored = n,
            "own documents taken back from the hub"
        ),
        Ok(Err(e)) => tracing::warn!(
            operation = "sync.bootstrap",
            error = %e,
            "could not ask the hub for this node's documents; files indexed now get new ids"
        ),
        Err(_) => tracing::warn!(
            operation = "sync.bootstrap",
            "the hub did not answer within 10 s; files indexed now get new ids"
        ),
    }
    Ok(())
}

/// Says at start where the node's secret lives and whether it can be read (the sync client
/// signs with it; an unreadable secret is reported now rather than at the first push).
async fn log_secret_store(cp: &crate::config::ControlPlane) {
    use crate::config::SecretRef;
    let (kind, place) = match &cp.secret {
        SecretRef::Keyring { service, account } => ("keychain", format!("{service}/{account}")),
        SecretRef::File(p) => ("file", p.display().to_string()),
        SecretRef::Env(v) => ("env", v.clone()),
    };
    let r = cp.secret.clone();
    match tokio::task::spawn_blocking(move || crate::secrets::read(&r)).await {
        Ok(Ok(_)) => {
            tracing::info!(secret_store = kind, place, control_plane = %cp.url, "node secret readable")
        }
        Ok(Err(e)) => tracing::warn!(secret_store = kind, place, error = %e, "node secret unreadable"),
        Err(e) => tracing::warn!(secret_store = kind, place, error = %e, "node secret check failed"),
    }
}
