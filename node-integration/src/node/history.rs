//! Committed history: state versions for `x-cosmos-block-height` queries, and a block store
//! (whole blocks, their txs indexed by hash) for GetTx and GetBlockByHeight, each bounded.

use crate::app::{Block, Committed};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Committed heights kept for `x-cosmos-block-height` queries (their state; their blocks are
/// kept within the bounds below).
pub const KEPT_VERSIONS: usize = 1_000;
/// Transactions whose blocks (bytes and results) are kept for GetTx and GetBlockByHeight.
pub const KEPT_TX_RESULTS: usize = 100_000;
/// Bytes of committed transactions kept for GetTx and GetBlockByHeight. The oldest blocks go
/// first, whole; the latest block is always kept. Together with `MAX_BLOCK_BYTES` this bounds
/// what committed transactions hold in memory to 64 MiB + one block.
pub const KEPT_TX_BYTES: usize = 64 << 20;

/// Committed history. State versions and blocks are kept apart, as a Cosmos node keeps its
/// state store and CometBFT's block store apart: `versions` holds states with their block
/// header only (no txs), `blocks` holds whole blocks within the tx bounds above, and `txs`
/// indexes the transactions of `blocks` by hash.
#[derive(Default)]
pub(super) struct History {
    pub(super) versions: VecDeque<Arc<Committed>>,
    /// Consecutive heights ending at the latest.
    pub(super) blocks: VecDeque<Arc<Block>>,
    /// Bytes of the txs in `blocks`.
    pub(super) block_bytes: usize,
    /// Number of txs in `blocks`.
    block_txs: usize,
    /// Hash to (height, index in block).
    pub(super) txs: HashMap<String, (i64, usize)>,
}

impl History {
    pub(super) fn push(&mut self, c: &Arc<Committed>) {
        let b = &c.block;
        self.versions.push_back(Arc::new(Committed {
            block: Arc::new(Block {
                height: b.height,
                time: b.time,
                hash: b.hash,
                app_hash: b.app_hash,
                txs: Vec::new(),
                results: Vec::new(),
            }),
            state: c.state.clone(),
        }));
        while self.versions.len() > KEPT_VERSIONS {
            self.versions.pop_front();
        }
        for (index, outcome) in b.results.iter().enumerate() {
            self.txs.insert(outcome.hash.clone(), (b.height, index));
        }
        self.block_bytes += b.txs.iter().map(Vec::len).sum::<usize>();
        self.block_txs += b.txs.len();
        self.blocks.push_back(b.clone());
        while self.blocks.len() > 1
            && (self.blocks.len() > KEPT_VERSIONS
                || self.block_bytes > KEPT_TX_BYTES
                || self.block_txs > KEPT_TX_RESULTS)
        {
            let Some(old) = self.blocks.pop_front() else {
                break;
            };
            self.block_bytes -= old.txs.iter().map(Vec::len).sum::<usize>();
            self.block_txs -= old.txs.len();
            for (index, outcome) in old.results.iter().enumerate() {
                // The same bytes may sit in a later block too (a tx that failed there).
                if self.txs.get(&outcome.hash) == Some(&(old.height, index)) {
                    self.txs.remove(&outcome.hash);
                }
            }
        }
    }

    pub(super) fn block(&self, height: i64) -> Option<&Arc<Block>> {
        let oldest = self.blocks.front()?.height;
        let i = usize::try_from(height.checked_sub(oldest)?).ok()?;
        self.blocks.get(i)
    }
}
