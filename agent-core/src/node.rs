//! The node document: written at start (status online), refreshed by the heartbeat, and set
//! offline on a clean shutdown. This agent writes only its runtime fields; `friendly_name`
//! (default: the hostname) is proposed when the document is created and is the hub's after that.

use std::path::PathBuf;

pub use crate::host::hostname;

use crate::doc::{self, Document, NodeDoc, NodeStatus, Platform};
use crate::ids::{NodeDocId, NodeId, Rev};
use crate::store::{Store, StoreError};

/// What this agent says about itself.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub hostname: String,
    pub watch_paths: Vec<PathBuf>,
    /// The transfer server, when this node runs one.
    pub transfer: Option<crate::doc::TransferEndpoint>,
}

impl NodeInfo {
    pub fn current(node_id: NodeId, watch_paths: Vec<PathBuf>) -> NodeInfo {
        NodeInfo { node_id, hostname: hostname(), watch_paths, transfer: None }
    }
}

/// What changes in the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    /// The agent started.
    Start,
    /// A heartbeat.
    Heartbeat,
    /// A clean shutdown.
    Stop,
}

/// Writes this node's document (read-modify-write; retried once on a revision conflict).
pub fn announce(store: &Store, info: &NodeInfo, what: Announce) -> Result<Rev, StoreError> {
    let mut attempt = 0;
    loop {
        let doc = build(store, info, what)?;
        match store.put(doc.into()) {
            Ok(w) => return Ok(w.rev),
            Err(e) if e.as_conflict().is_some() && attempt == 0 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

fn build(store: &Store, info: &NodeInfo, what: Announce) -> Result<NodeDoc, StoreError> {
    let id = NodeDocId::for_node(&info.node_id);
    let now = doc::now();
    let mut node = match store.get(&id.clone().into())? {
        Some(Document::Node(n)) => n,
        _ => NodeDoc {
            id,
            rev: Rev::NONE,
            node_id: info.node_id.clone(),
            friendly_name: info.hostname.clone(),
            enabled: true,
            network_mounts: vec![],
            platform: Platform::current(),
            hostname: info.hostname.clone(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            role: None,
            transfer: None,
            capabilities: vec![],
            watch_paths: vec![],
            status: NodeStatus::Online,
            started_at: now,
            last_heartbeat: now,
            observed_status: None,
            last_seen: None,
        },
    };
    node.platform = Platform::current();
    node.hostname = info.hostname.clone();
    node.agent_version = env!("CARGO_PKG_VERSION").into();
    node.watch_paths = info.watch_paths.iter().map(|p| p.display().to_string()).collect();
    node.transfer = info.transfer.clone();
    node.last_heartbeat = now;
    match what {
        Announce::Start => {
            node.started_at = now;
            node.status = NodeStatus::Online;
        }
        Announce::Heartbeat => node.status = NodeStatus::Online,
        Announce::Stop => node.status = NodeStatus::Offline,
    }
    Ok(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_heartbeat_stop() {
        let store = Store::open_in_memory().unwrap();
        let info = NodeInfo::current("node-n1".parse().unwrap(), vec!["/data".into()]);
        assert_eq!(announce(&store, &info, Announce::Start).unwrap(), Rev(1));
        let get = || match store.get(&NodeDocId::for_node(&info.node_id).into()).unwrap() {
            Some(Document::Node(n)) => n,
            other => panic!("{other:?}"),
        };
        let first = get();
        assert_eq!((first.status, first.friendly_name.clone()), (NodeStatus::Online, hostname()));
        assert_eq!(first.watch_paths, vec!["/data"]);
        assert_eq!(first.platform.os, std::env::consts::OS);
        std::thread::sleep(std::time::Duration::from_millis(2));
        announce(&store, &info, Announce::Heartbeat).unwrap();
        let beat = get();
        assert!(beat.last_heartbeat > first.last_heartbeat);
        assert_eq!(beat.started_at, first.started_at);
        announce(&store, &info, Announce::Stop).unwrap();
        assert_eq!(get().status, NodeStatus::Offline);
        assert_eq!(get().rev, Rev(3));
    }

    #[test]
    fn a_friendly_name_set_by_the_hub_is_kept() {
        let store = Store::open_in_memory().unwrap();
        let info = NodeInfo::current("node-n2".parse().unwrap(), vec![]);
        announce(&store, &info, Announce::Start).unwrap();
        let Some(Document::Node(mut n)) = store.get(&NodeDocId::for_node(&info.node_id).into()).unwrap()
        else {
            panic!()
        };
        n.friendly_name = "Study PC".into();
        store.put(n.into()).unwrap();
        announce(&store, &info, Announce::Heartbeat).unwrap();
        let Some(Document::Node(n)) = store.get(&NodeDocId::for_node(&info.node_id).into()).unwrap() else {
            panic!()
        };
        assert_eq!(n.friendly_name, "Study PC");
    }
}
