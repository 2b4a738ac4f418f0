//! The app hash: the root of a Jellyfish Merkle tree (the `jmt` crate, SHA-256, as Penumbra
//! uses) over every store entry, keyed by `<store key>/<key>`. Each block is one version of
//! the tree, written from the block's net changes; the tree keeps only its latest version's
//! nodes (queries read the multi-store's versions, not the tree).
//!
//! Deterministic: the root depends only on the stores' contents, never on write order,
//! clocks or map iteration, so every node that executes the same blocks agrees on it. The
//! values themselves stay in the multi-store: proofs of single values (ICS-23) are a later
//! step that would add a value lookup to the reader below.

use crate::store::StoreKey;
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{KeyHash, OwnedValue, Sha256Jmt, Version};
use std::collections::HashMap;

/// One block's net change of one entry: its new value, or `None` when it was deleted.
pub type Change = (StoreKey, Vec<u8>, Option<Vec<u8>>);

/// A block's tree update, prepared by FinalizeBlock and written by Commit.
pub struct Prepared {
    version: Version,
    batch: TreeUpdateBatch,
}

/// The tree's nodes at its latest version.
#[derive(Default)]
pub struct StateTree {
    nodes: HashMap<NodeKey, Node>,
    /// The root's key at the latest version (`None` before the first).
    root: Option<NodeKey>,
    /// The version the next block writes (block height - 1).
    next: Version,
}

impl TreeReader for StateTree {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(key).cloned())
    }

    fn get_value_option(&self, _: Version, _: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        anyhow::bail!("the state tree keeps no values: read them from the multi-store")
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        anyhow::bail!("the state tree is never restored from a snapshot")
    }
}

impl StateTree {
    /// The root hash the tree would have with one block's changes as its next version, and
    /// the update that makes it so ([`StateTree::commit`]). Does not change the tree, so a
    /// block finalized again (CometBFT replaying a block it had sent before a crash) gets
    /// the same root.
    pub fn prepare(&self, changes: Vec<Change>) -> ([u8; 32], Prepared) {
        let version = self.next;
        let set = changes.into_iter().map(|(store, key, value)| {
            let mut full = Vec::with_capacity(store.name().len() + 1 + key.len());
            full.extend_from_slice(store.name().as_bytes());
            full.push(b'/');
            full.extend_from_slice(&key);
            (KeyHash::with::<sha2::Sha256>(&full), value)
        });
        let (root, batch) = Sha256Jmt::new(self)
            .put_value_set(set, version)
            .expect("the tree holds every node of its latest version");
        (root.0, Prepared { version, batch })
    }

    /// Makes a prepared update the tree's latest version, dropping the nodes it replaced.
    pub fn commit(&mut self, prepared: Prepared) {
        let Prepared { version, batch } = prepared;
        assert_eq!(version, self.next, "tree versions are committed in order");
        for stale in &batch.stale_node_index_batch {
            self.nodes.remove(&stale.node_key);
        }
        let mut new_root = None;
        for (key, node) in batch.node_batch.nodes() {
            if key.nibble_path().num_nibbles() == 0 {
                new_root = Some(key.clone());
            }
            self.nodes.insert(key.clone(), node.clone());
        }
        // An unchanged root is copied to the new version without being marked stale.
        if let (Some(old), Some(new)) = (&self.root, &new_root)
            && old != new
        {
            self.nodes.remove(old);
        }
        if new_root.is_some() {
            self.root = new_root;
        }
        self.next += 1;
    }

    /// [`StateTree::prepare`] then [`StateTree::commit`]; returns the new root hash.
    pub fn apply(&mut self, changes: Vec<Change>) -> [u8; 32] {
        let (root, prepared) = self.prepare(changes);
        self.commit(prepared);
        root
    }

    /// Nodes held (the latest version's).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no version was written yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: u8, v: Option<u8>) -> Change {
        (StoreKey::Bank, vec![k], v.map(|v| vec![v]))
    }

    #[test]
    fn the_root_depends_on_contents_only_and_old_nodes_are_dropped() {
        let mut a = StateTree::default();
        let mut b = StateTree::default();
        // Same contents reached in different steps.
        a.apply(vec![set(1, Some(1)), set(2, Some(2))]);
        let ra = a.apply(vec![set(3, Some(3)), set(2, None)]);
        b.apply(vec![set(3, Some(3))]);
        let rb = b.apply(vec![set(1, Some(1))]);
        assert_eq!(ra, rb);
        // An empty block keeps the root and does not grow the tree.
        let before = a.len();
        assert_eq!(a.apply(Vec::new()), ra);
        assert_eq!(a.apply(Vec::new()), ra);
        assert_eq!(a.len(), before);
        // Many updates of the same keys keep the tree at its live size.
        for i in 0..200u8 {
            a.apply(vec![set(1, Some(i)), set(3, Some(i))]);
        }
        assert!(a.len() <= before + 2, "{} nodes, was {before}", a.len());
        assert_ne!(a.apply(vec![set(9, Some(9))]), ra);
        // Preparing twice (a block finalized again) gives the same root, and only a commit
        // moves the tree.
        let (r1, p1) = a.prepare(vec![set(7, Some(7))]);
        let (r2, p2) = a.prepare(vec![set(7, Some(7))]);
        assert_eq!(r1, r2);
        drop(p1);
        a.commit(p2);
        assert_eq!(a.apply(Vec::new()), r1);
    }
}
