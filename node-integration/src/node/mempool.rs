//! The mempool: transactions waiting for a block, their byte count, and CometBFT's
//! admission rule on sizes.

use crate::config::MempoolSection;
use crate::state::{Ctx, TxError};
use std::collections::VecDeque;

/// Transactions waiting for a block, and the state CheckTx runs against (the last committed
/// state plus the ante effects of every tx in `txs`).
pub(super) struct Mempool {
    pub(super) check: Ctx,
    pub(super) txs: VecDeque<Vec<u8>>,
    /// Sum of the lengths of `txs`.
    pub(super) bytes: u64,
}

impl Mempool {
    /// CometBFT's admission rule, on sizes only: refuses when the pool holds `size` txs or
    /// when `tx_len` more bytes would exceed `max_txs_bytes`.
    pub(super) fn full(&self, limits: &MempoolSection, tx_len: usize) -> Option<TxError> {
        let n = self.txs.len() as u64;
        if n >= limits.size || self.bytes + tx_len as u64 > limits.max_txs_bytes {
            return Some(TxError::sdk(
                20,
                format!(
                    "mempool is full: number of txs {n} (max: {}), total txs bytes {} (max: {})",
                    limits.size, self.bytes, limits.max_txs_bytes
                ),
            ));
        }
        None
    }

    pub(super) fn push(&mut self, bytes: Vec<u8>) {
        self.bytes += bytes.len() as u64;
        self.txs.push_back(bytes);
    }
}
