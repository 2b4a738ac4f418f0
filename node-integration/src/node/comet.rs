//! The node as CometBFT drives it: FinalizeBlock and Commit from the ABCI server, CheckTx
//! for CometBFT's mempool, and transactions submitted to CometBFT's RPC.

use super::Node;
use crate::app::{BlockProposal, Committed, TxOutcome};
use std::sync::Arc;
use std::time::SystemTime;

/// What FinalizeBlock returns to the consensus engine.
#[derive(Debug, Clone)]
pub struct Finalized {
    /// Per-transaction results, in block order.
    pub results: Vec<TxOutcome>,
    /// App hash after the block.
    pub app_hash: [u8; 32],
    /// Validator power changes (ed25519 consensus key, new power; 0 removes).
    pub validator_updates: Vec<(Vec<u8>, u64)>,
}

impl Node {
    /// FinalizeBlock as CometBFT asks for it: the block at `height` with the header's `time`
    /// and CometBFT's block `hash`. Nothing is committed until [`Node::commit`].
    pub fn finalize(
        &self,
        height: i64,
        time: SystemTime,
        hash: [u8; 32],
        txs: Vec<Vec<u8>>,
    ) -> Finalized {
        let mut app = self.shared.app.lock().expect("app lock");
        let (results, _) = app.finalize_block(BlockProposal {
            height,
            time,
            txs,
            dev_ops: Vec::new(),
            hash: Some(hash),
        });
        let validator_updates = app.validator_updates();
        let app_hash = app.pending_block().expect("just finalized").app_hash;
        Finalized {
            results,
            app_hash,
            validator_updates,
        }
    }

    /// Commit as CometBFT asks for it: the finalized block becomes queryable, listeners get
    /// its change set, and CheckTx starts again from the new state (CometBFT rechecks the
    /// transactions left in its mempool).
    pub fn commit(&self) -> Arc<Committed> {
        let mut app = self.shared.app.lock().expect("app lock");
        let last = app.last();
        let committed = app.commit_with(|c| self.record(c));
        let check = app.check_context();
        drop(app);
        self.after_commit(&last, &committed, check);
        self.shared.height.send_replace(committed.block.height);
        committed
    }

    /// CheckTx as CometBFT asks for it (new or recheck): decoding and the ante checks
    /// against the check state, which keeps the sequences of the txs that passed. CometBFT
    /// applies its own mempool limits first.
    pub fn check_tx(&self, bytes: &[u8]) -> TxOutcome {
        let hash = crate::tx::tx_hash(bytes);
        let decoded = match crate::tx::decode_tx(bytes, &self.shared.params.prefixes) {
            Ok(d) => d,
            Err(e) => return TxOutcome::new(hash, Err(e)),
        };
        let mut pool = self.mempool();
        let result = crate::app::check_ante(&mut pool.check, &decoded, &self.shared.chain_id);
        TxOutcome::new(hash, result)
    }

    /// Submits a transaction as BroadcastTx does: on the dev chain, CheckTx and the local
    /// mempool; under CometBFT, its RPC (`broadcast_tx_sync`, or `broadcast_tx_async` when
    /// `wait_for_check` is false), whose answer is CheckTx's. Errs when CometBFT's RPC cannot
    /// be reached.
    pub async fn submit(&self, bytes: Vec<u8>, wait_for_check: bool) -> Result<TxOutcome, String> {
        use tendermint_rpc::Client;
        let Some(rpc) = &self.shared.comet else {
            let node = self.clone();
            return tokio::task::spawn_blocking(move || node.broadcast(bytes))
                .await
                .map_err(|e| format!("broadcast failed: {e}"));
        };
        let hash = crate::tx::tx_hash(&bytes);
        let unreachable = |e: tendermint_rpc::Error| format!("CometBFT RPC: {e}");
        let (code, codespace, log) = if wait_for_check {
            let r = rpc.broadcast_tx_sync(bytes).await.map_err(unreachable)?;
            (r.code.value(), r.codespace, r.log)
        } else {
            let r = rpc.broadcast_tx_async(bytes).await.map_err(unreachable)?;
            (r.code.value(), r.codespace, r.log)
        };
        Ok(TxOutcome {
            hash,
            code,
            codespace: static_codespace(&codespace),
            log,
        })
    }

    /// [`Node::submit`] from a blocking thread of the runtime (the simulation signs there).
    pub fn submit_blocking(&self, bytes: Vec<u8>) -> TxOutcome {
        if self.shared.comet.is_none() {
            return self.broadcast(bytes);
        }
        let hash = crate::tx::tx_hash(&bytes);
        tokio::runtime::Handle::current()
            .block_on(self.submit(bytes, true))
            .unwrap_or_else(|log| TxOutcome {
                hash,
                code: 1,
                codespace: "",
                log,
            })
    }
}

/// The codespaces our state machine answers with, as `TxOutcome` holds them; CometBFT's own
/// refusals (a full mempool, a tx already in its cache) carry none.
fn static_codespace(s: &str) -> &'static str {
    match s {
        "sdk" => "sdk",
        "staking" => "staking",
        "bank" => "bank",
        "" => "",
        _ => "unknown",
    }
}
