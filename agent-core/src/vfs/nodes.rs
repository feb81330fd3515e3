//! What each inode the kernel holds names, with the kernel's reference count (lookups minus
//! forgets). The root is always known.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::ids::FileId;

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A directory by virtual path, with the directory it was looked up in.
    Dir {
        path: String,
        parent: u64,
    },
    File {
        file_id: FileId,
    },
}

struct Slot {
    node: Node,
    lookups: u64,
}

pub struct Nodes {
    slots: RwLock<HashMap<u64, Slot>>,
}

impl Nodes {
    pub fn new() -> Nodes {
        let root = Slot { node: Node::Dir { path: "/".into(), parent: super::ROOT }, lookups: 1 };
        Nodes { slots: RwLock::new(HashMap::from([(super::ROOT, root)])) }
    }

    pub fn get(&self, ino: u64) -> Option<Node> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).get(&ino).map(|s| s.node.clone())
    }

    /// Records one lookup of `ino`, which names `node` (the latest name wins for directories:
    /// a directory has one path).
    pub fn remember(&self, ino: u64, node: Node) {
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let slot = slots.entry(ino).or_insert(Slot { node: node.clone(), lookups: 0 });
        slot.node = node;
        slot.lookups += 1;
    }

    pub fn forget(&self, ino: u64, count: u64) {
        if ino == super::ROOT {
            return;
        }
        let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = slots.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(count);
            if slot.lookups == 0 {
                slots.remove(&ino);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_counted_and_forgotten_and_the_root_stays() {
        let nodes = Nodes::new();
        let f = Node::File { file_id: FileId::generate() };
        nodes.remember(5000, f.clone());
        nodes.remember(5000, f.clone());
        nodes.forget(5000, 1);
        assert_eq!(nodes.get(5000), Some(f));
        nodes.forget(5000, 1);
        assert_eq!(nodes.get(5000), None);
        nodes.forget(super::super::ROOT, 10);
        assert!(matches!(nodes.get(super::super::ROOT), Some(Node::Dir { .. })));
        assert_eq!(nodes.len(), 1);
    }
}
