//! The running chain: the app behind a lock, the mempool, recent committed versions for
//! queries, and what drives FinalizeBlock/Commit: the dev block producer every block time, or
//! CometBFT through the ABCI server (`crate::abci`), in which case transactions go to
//! CometBFT's mempool through its RPC.

use crate::app::{App, Block, BlockProposal, Committed, DevOp, SlashOutcome, TxOutcome};
use crate::config::{MAX_BLOCK_BYTES, MempoolSection};
use crate::state::{Ctx, Params, TxError};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{oneshot, watch};

mod comet;
mod history;
mod mempool;

pub use comet::Finalized;
use history::History;
pub use history::{KEPT_TX_BYTES, KEPT_TX_RESULTS, KEPT_VERSIONS};
use mempool::Mempool;

/// Transactions per block at most; the rest wait for the next block.
pub const MAX_BLOCK_TXS: usize = 5_000;

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

struct Shared {
    app: Mutex<App>,
    mempool: Mutex<Mempool>,
    limits: MempoolSection,
    history: RwLock<History>,
    dev_ops: Mutex<Vec<(DevOp, DevOpWaiter)>>,
    height: watch::Sender<i64>,
    metrics: Arc<crate::telemetry::NodeMetrics>,
    chain_id: String,
    params: Params,
    /// CometBFT's RPC when CometBFT drives the chain: transactions are broadcast there.
    comet: Option<tendermint_rpc::HttpClient>,
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
    /// Wraps an initialised app; the mempool applies `limits` (config.toml `[mempool]`).
    pub fn new(app: App, limits: MempoolSection) -> Node {
        Node::with_consensus(app, limits, None)
    }

    /// A node that CometBFT drives: transactions submitted to it (BroadcastTx, `--simulate`)
    /// go to CometBFT's mempool through `rpc`, and CometBFT's CheckTx calls land in
    /// [`Node::check_tx`].
    pub fn comet(app: App, limits: MempoolSection, rpc: tendermint_rpc::HttpClient) -> Node {
        Node::with_consensus(app, limits, Some(rpc))
    }

    fn with_consensus(
        app: App,
        limits: MempoolSection,
        comet: Option<tendermint_rpc::HttpClient>,
    ) -> Node {
        let check = app.check_context();
        let (height, _) = watch::channel(app.last().block.height);
        Node {
            shared: Arc::new(Shared {
                chain_id: app.chain_id().to_string(),
                params: app.params().clone(),
                mempool: Mutex::new(Mempool {
                    check,
                    txs: VecDeque::new(),
                    bytes: 0,
                }),
                limits,
                app: Mutex::new(app),
                history: RwLock::new(History::default()),
                dev_ops: Mutex::new(Vec::new()),
                height,
                metrics: Arc::default(),
                comet,
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

    /// Whether CometBFT drives this node (no dev producer, no dev operations).
    pub fn is_comet(&self) -> bool {
        self.shared.comet.is_some()
    }

    /// CometBFT's RPC, when CometBFT drives the node.
    pub fn comet_rpc(&self) -> Option<&tendermint_rpc::HttpClient> {
        self.shared.comet.as_ref()
    }

    /// The last committed height and its app hash (ABCI Info).
    pub fn last_committed(&self) -> (i64, [u8; 32]) {
        let last = self.shared.app.lock().expect("app lock").last();
        (last.block.height, last.block.app_hash)
    }

    /// The validator set at genesis (ABCI InitChain).
    pub fn genesis_validators(&self) -> crate::app::ValidatorPowers {
        self.shared
            .app
            .lock()
            .expect("app lock")
            .genesis_validators()
            .clone()
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

    /// The committed block at `height`, or the latest when `None`. Blocks are kept within
    /// [`KEPT_TX_BYTES`] and [`KEPT_TX_RESULTS`]; older ones are `Pruned`.
    pub fn block(&self, height: Option<i64>) -> Result<Arc<Block>, VersionError> {
        let h = self.shared.history.read().expect("history lock");
        let latest = h.blocks.back().ok_or(VersionError::NoBlocks)?;
        let latest_h = latest.height;
        let Some(requested) = height.filter(|r| *r != 0) else {
            return Ok(latest.clone());
        };
        if requested > latest_h {
            return Err(VersionError::Future {
                requested,
                latest: latest_h,
            });
        }
        h.block(requested)
            .cloned()
            .ok_or_else(|| VersionError::Pruned {
                requested,
                oldest: h.blocks.front().map(|b| b.height).unwrap_or(latest_h),
                latest: latest_h,
            })
    }

    /// The oldest height whose block (and so whose tx records) is still kept.
    pub fn oldest_kept_block(&self) -> Option<i64> {
        let h = self.shared.history.read().expect("history lock");
        h.blocks.front().map(|b| b.height)
    }

    /// A committed transaction by hash (upper or lower hex), while its block is kept.
    pub fn tx(&self, hash: &str) -> Option<TxRecord> {
        let h = self.shared.history.read().expect("history lock");
        let (height, index) = *h.txs.get(&hash.to_ascii_uppercase())?;
        let block = h.block(height)?;
        Some(TxRecord {
            height,
            index,
            bytes: block.txs.get(index)?.clone(),
            outcome: block.results.get(index)?.clone(),
            time: block.time,
        })
    }

    /// CheckTx and, if it passes, adds the tx to the mempool. Returns the CheckTx outcome.
    ///
    /// In CometBFT's order: a full mempool and a tx over `max_tx_bytes` are refused on the
    /// raw bytes' length before anything else. Decoding (linear and bounded by
    /// `max_tx_bytes`) then runs without any lock; the mempool lock is held only for one tx's
    /// ante checks (its account, one signature over at most `max_tx_bytes`). Block
    /// production's app lock is never taken here.
    pub fn broadcast(&self, bytes: Vec<u8>) -> TxOutcome {
        let hash = crate::tx::tx_hash(&bytes);
        let limits = &self.shared.limits;
        let full = self.mempool().full(limits, bytes.len());
        if let Some(e) = full {
            return TxOutcome::new(hash, Err(e));
        }
        if bytes.len() as u64 > limits.max_tx_bytes {
            let e = TxError::sdk(
                21,
                format!(
                    "Tx too large. Max size is {}, but got {}",
                    limits.max_tx_bytes,
                    bytes.len()
                ),
            );
            return TxOutcome::new(hash, Err(e));
        }
        let decoded = match crate::tx::decode_tx(&bytes, &self.shared.params.prefixes) {
            Ok(d) => d,
            Err(e) => return TxOutcome::new(hash, Err(e)),
        };
        let mut pool = self.mempool();
        if let Some(e) = pool.full(limits, bytes.len()) {
            return TxOutcome::new(hash, Err(e));
        }
        let result = crate::app::check_ante(&mut pool.check, &decoded, &self.shared.chain_id);
        if result.is_ok() {
            pool.push(bytes);
            // The gauges follow the pool as it fills, not only at the next block.
            let m = &self.shared.metrics;
            m.mempool.set(pool.txs.len() as i64);
            m.mempool_bytes.set(pool.bytes as i64);
        }
        TxOutcome::new(hash, result)
    }

    fn mempool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        self.shared.mempool.lock().expect("mempool lock")
    }

    /// Queues a dev operation for the next block and waits until it is committed. `None`
    /// when the node shuts down first, or at once under CometBFT (no dev operations there:
    /// they would not be part of the blocks every node executes).
    pub async fn dev_op(&self, op: DevOp) -> Option<(i64, SlashOutcome)> {
        if self.is_comet() {
            return None;
        }
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
        f(&self.mempool().check)
    }

    /// Produces one block at `time`: FinalizeBlock + Commit, then bookkeeping and the
    /// recheck of the remaining mempool (after the app lock is released).
    pub fn produce_block(&self, time: SystemTime) -> Arc<Committed> {
        let mut app = self.shared.app.lock().expect("app lock");
        let last = app.last();
        let height = last.block.height + 1;
        // Block times strictly increase even if the wall clock steps back.
        let time = time.max(last.block.time + Duration::from_millis(1));
        let txs = self.reap();
        let ops: Vec<_> = std::mem::take(&mut *self.shared.dev_ops.lock().expect("dev ops lock"));
        let (dev_ops, waiters): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
        let (_, dev_results) = app.finalize_block(BlockProposal {
            height,
            time,
            txs,
            dev_ops,
            hash: None,
        });
        let committed = app.commit_with(|c| self.record(c));
        let check = app.check_context();
        drop(app);
        self.after_commit(&last, &committed, check);
        for (w, r) in waiters.into_iter().zip(dev_results) {
            let _ = w.send((height, r));
        }
        self.shared.height.send_replace(height);
        committed
    }

    /// After a commit: the mempool's recheck against the new state, and the metrics.
    fn after_commit(&self, last: &Committed, committed: &Committed, check: Ctx) {
        let (mempool, mempool_bytes) = self.recheck(check);
        let kept_tx_bytes = self
            .shared
            .history
            .read()
            .expect("history lock")
            .block_bytes;
        let m = &self.shared.metrics;
        m.height.set(committed.block.height);
        m.mempool.set(mempool as i64);
        m.mempool_bytes.set(mempool_bytes as i64);
        m.kept_tx_bytes.set(kept_tx_bytes as i64);
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
    }

    /// Takes the next block's txs from the mempool: in arrival order, at most
    /// [`MAX_BLOCK_TXS`] and `MAX_BLOCK_BYTES` (CometBFT's default block size).
    fn reap(&self) -> Vec<Vec<u8>> {
        let mut pool = self.mempool();
        let mut bytes = 0u64;
        let mut n = 0;
        for tx in &pool.txs {
            if n == MAX_BLOCK_TXS || bytes + tx.len() as u64 > MAX_BLOCK_BYTES {
                break;
            }
            bytes += tx.len() as u64;
            n += 1;
        }
        pool.bytes -= bytes;
        pool.txs.drain(..n).collect()
    }

    /// Recheck: the mempool's remaining txs against the new state (as CometBFT does after
    /// each commit); those that no longer pass are dropped. Returns the pool's size.
    fn recheck(&self, check: Ctx) -> (usize, u64) {
        let mut pool = self.mempool();
        pool.check = check;
        pool.bytes = 0;
        let pending: Vec<_> = pool.txs.drain(..).collect();
        for bytes in pending {
            let passes = crate::tx::decode_tx(&bytes, &self.shared.params.prefixes)
                .and_then(|d| crate::app::check_ante(&mut pool.check, &d, &self.shared.chain_id))
                .is_ok();
            if passes {
                pool.push(bytes);
            }
        }
        (pool.txs.len(), pool.bytes)
    }

    fn record(&self, c: &Arc<Committed>) {
        self.shared.history.write().expect("history lock").push(c);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genesis::Genesis;
    use crate::keys::DevKey;
    use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
    use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;

    fn node(limits: MempoolSection) -> Node {
        let genesis = Genesis::dev("unit-1", Duration::from_secs(60), SystemTime::UNIX_EPOCH);
        Node::new(App::init_chain(&genesis).unwrap(), limits)
    }

    /// A signed send of 1ujuno from alice with `memo`, at `sequence`.
    fn send(n: &Node, sequence: u64, memo: &str) -> Vec<u8> {
        let alice = DevKey::get("alice").unwrap();
        let bob = DevKey::get("bob").unwrap();
        let p = &n.params().prefixes;
        let msg = crate::tx::to_any(&MsgSend {
            from_address: p.acc(&alice.address),
            to_address: p.acc(&bob.address),
            amount: vec![Coin {
                denom: "ujuno".into(),
                amount: "1".into(),
            }],
        });
        let number = n.with_check_state(|c| {
            crate::state::auth::account(c.state(), &alice.address)
                .unwrap()
                .base
                .account_number
        });
        crate::tx::sign(&alice, n.chain_id(), number, sequence, vec![msg], memo).unwrap()
    }

    #[test]
    fn a_full_mempool_refuses_by_count_and_by_bytes() {
        let n = node(MempoolSection {
            size: 2,
            ..MempoolSection::default()
        });
        n.produce_block(SystemTime::now());
        assert_eq!(n.broadcast(send(&n, 0, "")).code, 0);
        assert_eq!(n.broadcast(send(&n, 1, "")).code, 0);
        let full = n.broadcast(send(&n, 2, ""));
        assert_eq!((full.code, full.codespace), (20, "sdk"));
        assert!(
            full.log
                .starts_with("mempool is full: number of txs 2 (max: 2), total txs bytes"),
            "{}",
            full.log
        );
        // A block makes room.
        n.produce_block(SystemTime::now());
        assert_eq!(n.broadcast(send(&n, 2, "")).code, 0);

        let one = send(&n, 3, "").len() as u64;
        let n = node(MempoolSection {
            max_tx_bytes: one + 10,
            max_txs_bytes: 2 * one + 10,
            ..MempoolSection::default()
        });
        n.produce_block(SystemTime::now());
        assert_eq!(n.broadcast(send(&n, 0, "")).code, 0);
        assert_eq!(n.broadcast(send(&n, 1, "")).code, 0);
        let full = n.broadcast(send(&n, 2, ""));
        assert_eq!(full.code, 20, "{}", full.log);
        assert!(full.log.contains(&format!("(max: {})", 2 * one + 10)));
    }

    #[test]
    fn a_tx_over_max_tx_bytes_is_refused_on_its_length() {
        let n = node(MempoolSection {
            max_tx_bytes: 300,
            ..MempoolSection::default()
        });
        n.produce_block(SystemTime::now());
        // Not even a tx: refused on its length, before decoding.
        let junk = vec![0xff; 301];
        let r = n.broadcast(junk);
        assert_eq!(
            (r.code, r.codespace, r.log.as_str()),
            (
                21,
                "sdk",
                "Tx too large. Max size is 300, but got 301: tx too large"
            )
        );
        let r = n.broadcast(vec![0xff; 300]);
        assert_eq!(r.code, 2, "300 bytes are decoded: {}", r.log);
    }

    #[test]
    fn committed_txs_are_kept_within_the_byte_bound_oldest_first() {
        let n = node(MempoolSection::default());
        n.produce_block(SystemTime::now());
        // Blocks of one 1 MiB junk tx each, put straight into the mempool (CheckTx would
        // refuse them; the block keeps them with code 2, as a block keeps any tx).
        let mut hashes = Vec::new();
        let pad = vec![7u8; 1 << 20];
        for i in 0..(KEPT_TX_BYTES / pad.len() + 8) {
            let mut tx = pad.clone();
            tx.extend((i as u64).to_be_bytes());
            hashes.push(crate::tx::tx_hash(&tx));
            n.mempool().push(tx);
            n.produce_block(SystemTime::now());
        }
        let kept = n.shared.history.read().unwrap().block_bytes;
        assert!(kept <= KEPT_TX_BYTES, "{kept}");
        assert!(n.tx(&hashes[0]).is_none(), "the oldest is evicted");
        let last = n.tx(hashes.last().unwrap()).expect("the latest is kept");
        assert_eq!(last.outcome.code, 2, "junk fails decoding in the block");
        assert!(n.oldest_kept_block().unwrap() > 2);
        assert!(matches!(n.block(Some(2)), Err(VersionError::Pruned { .. })));
        // States are kept by count regardless.
        assert!(n.version(Some(2)).is_ok());
    }
}
