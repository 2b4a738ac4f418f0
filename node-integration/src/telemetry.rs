//! The node's own metrics (height, block interval, transactions, mempool), served with the
//! stream module's on the API port's `/metrics` when `[telemetry] enabled = true`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Node metrics; updated by the block producer.
pub struct NodeMetrics {
    /// Last committed height.
    pub height: Gauge,
    /// Seconds between consecutive block times.
    pub block_interval: Histogram,
    /// Transactions committed (any result).
    pub txs: Counter,
    /// Transactions committed with a non-zero code.
    pub failed_txs: Counter,
    /// Transactions waiting in the mempool.
    pub mempool: Gauge,
    /// Bytes of the transactions waiting in the mempool (bounded by `max_txs_bytes`).
    pub mempool_bytes: Gauge,
    /// Bytes of committed transactions kept for GetTx and GetBlockByHeight.
    pub kept_tx_bytes: Gauge,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            height: Gauge::default(),
            block_interval: Histogram::new(exponential_buckets(0.05, 2.0, 10)),
            txs: Counter::default(),
            failed_txs: Counter::default(),
            mempool: Gauge::default(),
            mempool_bytes: Gauge::default(),
            kept_tx_bytes: Gauge::default(),
        }
    }
}

impl NodeMetrics {
    /// Registers the node metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "streamd_block_height",
            "Last committed block height",
            self.height.clone(),
        );
        registry.register(
            "streamd_block_interval_seconds",
            "Time between consecutive committed blocks",
            self.block_interval.clone(),
        );
        registry.register(
            "streamd_txs",
            "Transactions committed in blocks",
            self.txs.clone(),
        );
        registry.register(
            "streamd_failed_txs",
            "Committed transactions with a non-zero result code",
            self.failed_txs.clone(),
        );
        registry.register(
            "streamd_mempool_txs",
            "Transactions waiting in the mempool",
            self.mempool.clone(),
        );
        registry.register(
            "streamd_mempool_bytes",
            "Bytes of the transactions waiting in the mempool",
            self.mempool_bytes.clone(),
        );
        registry.register(
            "streamd_kept_tx_bytes",
            "Bytes of committed transactions kept for GetTx and GetBlockByHeight",
            self.kept_tx_bytes.clone(),
        );
    }
}
