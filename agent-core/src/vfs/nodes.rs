//! What each inode the kernel holds names, with the kernel's reference count (lookups minus
//! forgets). The root is always known.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::ids::{FileId, Inode};

#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A directory by virtual path, with the directory it was looked up in.
    Dir {
        path: String,
        parent: Inode,
    },
    File {
        file_id: FileId,
    },
}

struct Slot {
    node: Node,
    lookups: u64,
}

/// Guarded: the slots and, for files, the inode each file id is held under.
pub struct Nodes {
    slots: RwLock<(HashMap<Inode, Slot>, HashMap<FileId, Inode>)>,
}

impl Nodes {
    pub fn new() -> Nodes {
        let root = Slot { node: Node::Dir { path: "/".into(), parent: super::ROOT }, lookups: 1 };
        Nodes { slots: RwLock::new((HashMap::from([(super::ROOT, root)]), HashMap::new())) }
    }

    pub fn get(&self, ino: Inode) -> Option<Node> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).0.get(&ino).map(|s| s.node.clone())
    }

    /// The inode the kernel holds for `file`, if it holds one.
    pub fn inode_of(&self, file: &FileId) -> Option<Inode> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).1.get(file).copied()
    }

    /// Records one lookup of `ino`, which names `node` (the latest name wins for directories:
    /// a directory has one path).
    pub fn remember(&self, ino: Inode, node: Node) {
        let mut guard = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, files) = &mut *guard;
        if let Node::File { file_id } = &node {
            files.insert(file_id.clone(), ino);
        }
        let slot = slots.entry(ino).or_insert(Slot { node: node.clone(), lookups: 0 });
        slot.node = node;
        slot.lookups += 1;
    }

    pub fn forget(&self, ino: Inode, count: u64) {
        if ino == super::ROOT {
            return;
        }
        let mut guard = self.slots.write().unwrap_or_else(|p| p.into_inner());
        let (slots, files) = &mut *guard;
        if let Some(slot) = slots.get_mut(&ino) {
            slot.lookups = slot.lookups.saturating_sub(count);
            if slot.lookups == 0 {
                if let Some(Slot { node: Node::File { file_id }, .. }) = slots.remove(&ino) {
                    if files.get(&file_id) == Some(&ino) {
                        files.remove(&file_id);
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_counted_and_forgotten_and_the_root_stays() {
        let nodes = Nodes::new();
        let f = Node::File { file_id: FileId::generate() };
        let (ino, Node::File { file_id }) = (Inode(5000), f.clone()) else { unreachable!() };
        nodes.remember(ino, f.clone());
        nodes.remember(ino, f.clone());
        nodes.forget(ino, 1);
        assert_eq!(nodes.get(ino), Some(f));
        assert_eq!(nodes.inode_of(&file_id), Some(ino));
        nodes.forget(ino, 1);
        assert_eq!(nodes.get(ino), None);
        assert_eq!(nodes.inode_of(&file_id), None);
        nodes.forget(super::super::ROOT, 10);
        assert!(matches!(nodes.get(super::super::ROOT), Some(Node::Dir { .. })));
        assert_eq!(nodes.len(), 1);
    }
}
