//! What the node hands over after each commit: the block's change set and the listener seam.

use std::sync::Arc;
use std::time::SystemTime;

/// One store write from a committed block, as streamed by ADR-038
/// (`cosmos.store.v1beta1.StoreKVPair`).
///
/// Declared here rather than re-exported from `cosmos-sdk-proto`: version 0.27 generates
/// this message but does not export the `cosmos.store` module. The field numbers are the
/// wire contract (`store_key=1, delete=2, key=3, value=4`), so bytes encoded by a Go node
/// decode into this type unchanged.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct StoreKVPair {
    /// The module store the write went to (`"bank"`, `"staking"`, ...).
    #[prost(string, tag = "1")]
    pub store_key: String,
    /// `true` for a deletion, which carries no value.
    #[prost(bool, tag = "2")]
    pub delete: bool,
    /// The raw store key.
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    /// The raw value written; empty for deletions and for index entries.
    #[prost(bytes = "vec", tag = "4")]
    pub value: Vec<u8>,
}

impl prost::Name for StoreKVPair {
    const NAME: &'static str = "StoreKVPair";
    const PACKAGE: &'static str = "cosmos.store.v1beta1";
}

/// One committed block's change set, mirroring ADR-038 `ListenCommitRequest`
/// (`block_height`, `change_set`) plus the block time.
///
/// The block time travels with the changes because consumers stamp updates with it and
/// unbonding entries mature against it; the plugin learns it from `ListenFinalizeBlock`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockCommit {
    /// Height of the committed block.
    pub height: i64,
    /// Block time from the block header.
    pub time: SystemTime,
    /// Every store write of the block, in the order the node committed them.
    pub changes: Vec<StoreKVPair>,
}

/// Called by the node after each commit, on the commit path.
///
/// Implementations must be O(1) and must never block or fail the node: hand the block to a
/// bounded queue and return. The block arrives in an [`Arc`] so it can be queued and shared
/// without copying a possibly large change set (genesis) on the node's critical path.
pub trait CommitListener: Send + Sync + 'static {
    /// Receives one committed block. Must return promptly whatever happens downstream.
    fn on_commit(&self, commit: Arc<BlockCommit>);
}
