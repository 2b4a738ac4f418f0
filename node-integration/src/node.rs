//! The running dev chain: the app behind a lock, the mempool, recent committed versions for
//! queries, and the block producer that drives FinalizeBlock/Commit every block time.

use crate::app::{App, BlockProposal, Committed, DevOp, SlashOutcome, TxOutcome};
use crate::state::{Ctx, Params, TxError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, watch};

/// Committed heights kept for `x-cosmos-block-height` queries.
pub const KEPT_VERSIONS: usize = 1_000;
/// Transactions waiting for a block; a full mempool refuses new ones (code 20).
pub const MEMPOOL_CAPACITY: usize = 10_000;
/// Transactions per block at most; the rest wait for the next block.
pub const MAX_BLOCK_TXS: usize = 5_000;
/// Transaction results kept for GetTx.
pub const KEPT_TX_RESULTS: usize = 100_000;

/// Where a committed transaction landed.
#[derive(Debug, Clone)]
pub struct TxRecord {
    /// Block height.
    pub height: i64,
    /// Index in the block.
    pub index: usize,
    /// The tx bytes.
    pub bytes: Vec<u8>,
    /// Its result.
    pub outcome: TxOutcome,
    /// Block time.
    pub time: SystemTime,
}

/// Who waits for a dev operation: told the height it was applied at and its outcome.
type DevOpWaiter = oneshot::Sender<(i64, SlashOutcome)>;

#[derive(Default)]
struct History {
    versions: VecDeque<Arc<Committed>>,
    txs: HashMap<String, TxRecord>,
    tx_order: VecDeque<String>,
}

struct Mempool {
    check: Ctx,
    txs: VecDeque<Vec<u8>>,
}

struct Shared {
    app: Mutex<App>,
    mempool: Mutex<Mempool>,
    history: RwLock<History>,
    dev_ops: Mutex<Vec<(DevOp, DevOpWaiter)>>,
    height: watch::Sender<i64>,
    metrics: Arc<crate::telemetry::NodeMetrics>,
    chain_id: String,
    params: Params,
}

/// A handle on the running chain (cheap to clone).
#[derive(Clone)]
pub struct Node {
    shared: Arc<Shared>,
}

/// Why a version could not be served.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// Asked for a height that is not committed yet.
    #[error("height {requested} is not committed yet (latest height: {latest})")]
    Future {
        /// Requested.
        requested: i64,
        /// Latest.
        latest: i64,
    },
    /// Asked for a height no longer kept.
    #[error(
        "height {requested} is no longer kept (oldest kept height: {oldest}, latest height: {latest})"
    )]
    Pruned {
        /// Requested.
        requested: i64,
        /// Oldest kept.
        oldest: i64,
        /// Latest.
        latest: i64,
    },
    /// Nothing committed yet.
    #[error("no block has been committed yet")]
    NoBlocks,
}

impl Node {
    /// Wraps an initialised app.
    pub fn new(app: App) -> Node {
        let check = app.check_context();
        let (height, _) = watch::channel(app.last().block.height);
        Node {
            shared: Arc::new(Shared {
                chain_id: app.chain_id().to_string(),
                params: app.params().clone(),
                mempool: Mutex::new(Mempool {
                    check,
                    txs: VecDeque::new(),
                }),
                app: Mutex::new(app),
                history: RwLock::new(History::default()),
                dev_ops: Mutex::new(Vec::new()),
                height,
                metrics: Arc::default(),
            }),
        }
    }

    /// Registers a listener for committed change sets (from the next commit on).
    pub fn add_listener(&self, listener: Arc<dyn stream_abci_listener::CommitListener>) {
        self.shared
            .app
            .lock()
            .expect("app lock")
            .add_listener(listener);
    }

    /// Chain id.
    pub fn chain_id(&self) -> &str {
        &self.shared.chain_id
    }

    /// Chain parameters.
    pub fn params(&self) -> &Params {
        &self.shared.params
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<crate::telemetry::NodeMetrics> {
        &self.shared.metrics
    }

    /// Watches the latest committed height.
    pub fn heights(&self) -> watch::Receiver<i64> {
        self.shared.height.subscribe()
    }

    /// The oldest height whose state is still kept (`None` before the first block).
    pub fn oldest_kept(&self) -> Option<i64> {
        let h = self.shared.history.read().expect("history lock");
        h.versions.front().map(|v| v.block.height)
    }

    /// The state at `height`, or the latest when `None`.
    pub fn version(&self, height: Option<i64>) -> Result<Arc<Committed>, VersionError> {
        let h = self.shared.history.read().expect("history lock");
        let latest = h.versions.back().ok_or(VersionError::NoBlocks)?;
        let latest_h = latest.block.height;
        let Some(requested) = height.filter(|r| *r != 0) else {
            return Ok(latest.clone());
        };
        let oldest = h
            .versions
            .front()
            .map(|v| v.block.height)
            .unwrap_or(latest_h);
        if requested > latest_h {
            return Err(VersionError::Future {
                requested,
                latest: latest_h,
            });
        }
        if requested < oldest {
            return Err(VersionError::Pruned {
                requested,
                oldest,
                latest: latest_h,
            });
        }
        Ok(h.versions[(requested - oldest) as usize].clone())
    }

    /// A committed transaction by hash (upper or lower hex).
    pub fn tx(&self, hash: &str) -> Option<TxRecord> {
        self.shared
            .history
            .read()
            .expect("history lock")
            .txs
            .get(&hash.to_ascii_uppercase())
            .cloned()
    }

    /// CheckTx and, if it passes, adds the tx to the mempool. Returns the CheckTx outcome.
    pub fn broadcast(&self, bytes: Vec<u8>) -> TxOutcome {
        let hash = crate::tx::tx_hash(&bytes);
        let app = self.shared.app.lock().expect("app lock");
        let mut pool = self.shared.mempool.lock().expect("mempool lock");
        if pool.txs.len() >= MEMPOOL_CAPACITY {
            return TxOutcome::new(
                hash,
                Err(TxError::sdk(
                    20,
                    format!("mempool is full ({MEMPOOL_CAPACITY} txs)"),
                )),
            );
        }
        match app.check_tx(&mut pool.check, &bytes) {
            Ok(_) => {
                pool.txs.push_back(bytes);
                TxOutcome::new(hash, Ok(()))
            }
            Err((hash, e)) => TxOutcome::new(hash, Err(e)),
        }
    }

    /// Queues a dev operation for the next block and waits until it is committed.
    pub async fn dev_op(&self, op: DevOp) -> Option<(i64, SlashOutcome)> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .dev_ops
            .lock()
            .expect("dev ops lock")
            .push((op, tx));
        rx.await.ok()
    }

    /// Reads the check state (pending sequences included), e.g. to sign the next tx.
    pub fn with_check_state<T>(&self, f: impl FnOnce(&Ctx) -> T) -> T {
        f(&self.shared.mempool.lock().expect("mempool lock").check)
    }

    /// Produces one block at `time`: FinalizeBlock + Commit, then bookkeeping.
    pub fn produce_block(&self, time: SystemTime) -> Arc<Committed> {
        let mut app = self.shared.app.lock().expect("app lock");
        let last = app.last();
        let height = last.block.height + 1;
        // Block times strictly increase even if the wall clock steps back.
        let time = time.max(last.block.time + Duration::from_millis(1));
        let txs: Vec<Vec<u8>> = {
            let mut pool = self.shared.mempool.lock().expect("mempool lock");
            let n = pool.txs.len().min(MAX_BLOCK_TXS);
            pool.txs.drain(..n).collect()
        };
        let ops: Vec<_> = std::mem::take(&mut *self.shared.dev_ops.lock().expect("dev ops lock"));
        let (dev_ops, waiters): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
        let (_, dev_results) = app.finalize_block(BlockProposal {
            height,
            time,
            txs,
            dev_ops,
        });
        let committed = app.commit_with(|c| self.record(c));
        // Recheck: the mempool's remaining txs against the new state.
        {
            let mut pool = self.shared.mempool.lock().expect("mempool lock");
            pool.check = app.check_context();
            let pending: Vec<_> = pool.txs.drain(..).collect();
            for bytes in pending {
                if app.check_tx(&mut pool.check, &bytes).is_ok() {
                    pool.txs.push_back(bytes);
                }
            }
        }
        let mempool = self.shared.mempool.lock().expect("mempool lock").txs.len();
        drop(app);
        let m = &self.shared.metrics;
        m.height.set(height);
        m.mempool.set(mempool as i64);
        m.txs.inc_by(committed.block.results.len() as u64);
        m.failed_txs.inc_by(
            committed
                .block
                .results
                .iter()
                .filter(|r| r.code != 0)
                .count() as u64,
        );
        if let Ok(d) = committed.block.time.duration_since(last.block.time)
            && last.block.height > 0
        {
            m.block_interval.observe(d.as_secs_f64());
        }
        for (w, r) in waiters.into_iter().zip(dev_results) {
            let _ = w.send((height, r));
        }
        self.shared.height.send_replace(height);
        committed
    }

    fn record(&self, c: &Arc<Committed>) {
        let mut h = self.shared.history.write().expect("history lock");
        h.versions.push_back(c.clone());
        while h.versions.len() > KEPT_VERSIONS {
            h.versions.pop_front();
        }
        for (index, (bytes, outcome)) in c.block.txs.iter().zip(&c.block.results).enumerate() {
            h.tx_order.push_back(outcome.hash.clone());
            h.txs.insert(
                outcome.hash.clone(),
                TxRecord {
                    height: c.block.height,
                    index,
                    bytes: bytes.clone(),
                    outcome: outcome.clone(),
                    time: c.block.time,
                },
            );
        }
        while h.tx_order.len() > KEPT_TX_RESULTS {
            if let Some(old) = h.tx_order.pop_front() {
                h.txs.remove(&old);
            }
        }
    }

    /// Runs the block producer until `shutdown` resolves.
    pub async fn run_producer(
        &self,
        block_time: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(block_time);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {
                    let node = self.clone();
                    let c = tokio::task::spawn_blocking(move || node.produce_block(SystemTime::now()))
                        .await
                        .expect("block production panicked");
                    tracing::info!(
                        height = c.block.height,
                        txs = c.block.txs.len(),
                        "committed block"
                    );
                }
            }
        }
    }
}
