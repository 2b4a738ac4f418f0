//! The application, shaped like an ABCI application: InitChain, CheckTx, FinalizeBlock and
//! Commit. The dev block producer or CometBFT (through `crate::abci`) drives it, and every
//! registered `CommitListener` receives each block's change set right after Commit.
//!
//! Everything here is deterministic: block time comes from the proposal (the header time
//! under CometBFT), stores iterate in key order, and the app hash is computed from the
//! stores alone, so every node that finalizes the same blocks reaches the same app hash.

use crate::address::Addr;
use crate::genesis::Genesis;
use crate::state::{Ctx, Params, TxError};
use crate::store::{MultiStore, WriteSet};
use crate::tx::{self, DecodedTx};
use num_bigint::BigUint;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;
use stream_abci_listener::{BlockCommit, CommitListener};

/// The result of one transaction in a block (or of CheckTx).
#[derive(Debug, Clone, PartialEq)]
pub struct TxOutcome {
    /// Tx hash.
    pub hash: String,
    /// 0 on success.
    pub code: u32,
    /// Codespace of a failure.
    pub codespace: &'static str,
    /// Log of a failure.
    pub log: String,
}

impl TxOutcome {
    /// Outcome of a result.
    pub fn new(hash: String, result: Result<(), TxError>) -> Self {
        match result {
            Ok(()) => TxOutcome {
                hash,
                code: 0,
                codespace: "",
                log: String::new(),
            },
            Err(e) => TxOutcome {
                hash,
                code: e.code,
                codespace: e.codespace,
                log: e.log,
            },
        }
    }
}

/// CheckTx's second half, on an already decoded tx: the ante checks against `check`, whose
/// writes (sequence, fees) stay only if they pass.
pub fn check_ante(check: &mut Ctx, decoded: &DecodedTx, chain_id: &str) -> Result<(), TxError> {
    let cp = check.ws.checkpoint();
    let result = tx::ante(check, decoded, chain_id);
    if result.is_err() {
        check.ws.rollback(cp);
    }
    result
}

/// An operation only the dev chain offers, applied at the start of a block.
#[derive(Debug, Clone, PartialEq)]
pub enum DevOp {
    /// Slash a validator by `fraction_raw` / 10^18 of its tokens.
    Slash {
        /// Validator operator.
        validator: Addr,
        /// LegacyDec raw fraction in (0, 10^18].
        fraction_raw: BigUint,
    },
}

/// Outcome of a `DevOp::Slash`: tokens burned and tokens left.
pub type SlashOutcome = Result<(BigUint, BigUint), TxError>;

/// A committed block.
#[derive(Debug, Clone)]
pub struct Block {
    /// Height.
    pub height: i64,
    /// Time.
    pub time: SystemTime,
    /// Block hash: CometBFT's block hash under CometBFT; on the dev chain, SHA-256 over the
    /// previous hash, height, time and txs.
    pub hash: [u8; 32],
    /// App hash after this block: the root of the state tree (`crate::chain::commitment`).
    pub app_hash: [u8; 32],
    /// Transactions, in order.
    pub txs: Vec<Vec<u8>>,
    /// Their results.
    pub results: Vec<TxOutcome>,
}

/// State as of a committed height.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The block.
    pub block: Arc<Block>,
    /// All stores after it.
    pub state: MultiStore,
}

/// FinalizeBlock's input.
pub struct BlockProposal {
    /// Height (last + 1).
    pub height: i64,
    /// Time (after the last block's).
    pub time: SystemTime,
    /// Transactions.
    pub txs: Vec<Vec<u8>>,
    /// Dev operations.
    pub dev_ops: Vec<DevOp>,
    /// The block hash when the consensus engine decided it (CometBFT's); `None` on the dev
    /// chain, which derives one.
    pub hash: Option<[u8; 32]>,
}

/// Consensus power of one validator: the ed25519 consensus public key and its power in
/// CometBFT's units (bonded tokens / [`POWER_REDUCTION`], as x/staking computes it).
pub type ValidatorPowers = BTreeMap<Vec<u8>, u64>;

/// x/staking's default power reduction: 10^6 tokens are one unit of consensus power.
pub const POWER_REDUCTION: u64 = 1_000_000;

/// A finalized block waiting for Commit.
struct Pending {
    ctx: Ctx,
    block: Block,
    tree: crate::chain::commitment::Prepared,
    powers: Option<ValidatorPowers>,
}

/// The application.
pub struct App {
    chain_id: String,
    params: Params,
    last: Arc<Committed>,
    /// Genesis writes waiting for block 1 (InitChain state is committed with the first block,
    /// as in the SDK, so block 1's change set carries the genesis state).
    genesis_writes: Option<WriteSet>,
    /// The finalized block waiting for Commit: its writes, the block, its state tree update
    /// and (once FinalizeBlock computed them) the validator powers after it. Finalizing the
    /// same height again replaces it: nothing else changes before Commit.
    pending: Option<Pending>,
    listeners: Vec<Arc<dyn CommitListener>>,
    /// The validator powers last reported to the consensus engine (at InitChain, then after
    /// every block whose FinalizeBlock returned updates).
    powers: ValidatorPowers,
    /// The Merkle tree whose root is the app hash: FinalizeBlock prepares each block's
    /// update, Commit writes it.
    tree: crate::chain::commitment::StateTree,
}

impl App {
    /// InitChain.
    pub fn init_chain(genesis: &Genesis) -> Result<App, String> {
        let params = genesis.params()?;
        let time = genesis.time()?;
        let mut ctx = Ctx {
            ws: WriteSet::new(MultiStore::default()),
            height: 0,
            time,
            params: params.clone(),
        };
        genesis.apply(&mut ctx)?;
        let last = Arc::new(Committed {
            block: Arc::new(Block {
                height: 0,
                time,
                hash: [0; 32],
                app_hash: [0; 32],
                txs: Vec::new(),
                results: Vec::new(),
            }),
            state: MultiStore::default(),
        });
        let powers = validator_powers(ctx.ws.state());
        Ok(App {
            chain_id: genesis.chain_id.clone(),
            params,
            last,
            genesis_writes: Some(ctx.ws),
            pending: None,
            listeners: Vec::new(),
            powers,
            tree: Default::default(),
        })
    }

    /// The validator set at genesis (InitChain's answer), in consensus key order.
    pub fn genesis_validators(&self) -> &ValidatorPowers {
        &self.powers
    }

    /// Registers a listener for committed change sets.
    pub fn add_listener(&mut self, listener: Arc<dyn CommitListener>) {
        self.listeners.push(listener);
    }

    /// Chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Chain parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The last committed block and state.
    pub fn last(&self) -> Arc<Committed> {
        self.last.clone()
    }

    /// A fresh CheckTx context on top of the last committed state.
    pub fn check_context(&self) -> Ctx {
        Ctx {
            ws: WriteSet::new(self.last.state.clone()),
            height: self.last.block.height + 1,
            time: self.last.block.time,
            params: self.params.clone(),
        }
    }

    /// CheckTx: decoding and the ante checks against `check` (which accumulates the
    /// sequences of transactions already in the mempool). Messages are not executed, as in
    /// the SDK; their failures show in the block result.
    pub fn check_tx(&self, check: &mut Ctx, bytes: &[u8]) -> Result<DecodedTx, (String, TxError)> {
        let hash = tx::tx_hash(bytes);
        let decoded = tx::decode_tx(bytes, &self.params.prefixes).map_err(|e| (hash.clone(), e))?;
        check_ante(check, &decoded, &self.chain_id).map_err(|e| (hash, e))?;
        Ok(decoded)
    }

    /// FinalizeBlock: dev operations, every transaction (ante, then messages; a failed
    /// message rolls back its own writes only), then end-block maturity of unbondings.
    /// Returns the transaction results and the dev operations' outcomes; the block's app
    /// hash and validator updates are in [`App::pending_block`] until Commit.
    pub fn finalize_block(&mut self, p: BlockProposal) -> (Vec<TxOutcome>, Vec<SlashOutcome>) {
        assert_eq!(
            p.height,
            self.last.block.height + 1,
            "blocks are finalized in order"
        );
        // Cloned (cheap: persistent maps), not taken: block 1 may be finalized again.
        let ws = self
            .genesis_writes
            .clone()
            .unwrap_or_else(|| WriteSet::new(self.last.state.clone()));
        let mut ctx = Ctx {
            ws,
            height: p.height,
            time: p.time,
            params: self.params.clone(),
        };
        let mut dev_results = Vec::new();
        for op in &p.dev_ops {
            match op {
                DevOp::Slash {
                    validator,
                    fraction_raw,
                } => {
                    let cp = ctx.ws.checkpoint();
                    let r = ctx.slash(validator, fraction_raw);
                    if r.is_err() {
                        ctx.ws.rollback(cp);
                    }
                    dev_results.push(r);
                }
            }
        }
        let mut results = Vec::with_capacity(p.txs.len());
        for bytes in &p.txs {
            let hash = tx::tx_hash(bytes);
            let outcome = match tx::decode_tx(bytes, &self.params.prefixes) {
                Err(e) => Err(e),
                Ok(decoded) => {
                    let cp = ctx.ws.checkpoint();
                    match tx::ante(&mut ctx, &decoded, &self.chain_id) {
                        Err(e) => {
                            ctx.ws.rollback(cp);
                            Err(e)
                        }
                        Ok(()) => {
                            let cp = ctx.ws.checkpoint();
                            let r = tx::execute(&mut ctx, &decoded.msgs);
                            if r.is_err() {
                                ctx.ws.rollback(cp);
                            }
                            r
                        }
                    }
                }
            };
            results.push(TxOutcome::new(hash, outcome));
        }
        if let Err(e) = ctx.complete_matured() {
            // Pools always cover matured entries; reaching this is a state-machine bug.
            tracing::error!(height = p.height, error = %e, "completing matured unbondings failed");
        }
        let hash = p.hash.unwrap_or_else(|| {
            let mut h = Sha256::new();
            h.update(self.last.block.hash);
            h.update(p.height.to_be_bytes());
            h.update(prost::Message::encode_to_vec(&crate::state::timestamp(
                p.time,
            )));
            for t in &p.txs {
                h.update(Sha256::digest(t));
            }
            h.finalize().into()
        });
        let (app_hash, tree) = self.tree.prepare(ctx.ws.changed_since(&self.last.state));
        let block = Block {
            height: p.height,
            time: p.time,
            hash,
            app_hash,
            txs: p.txs,
            results: results.clone(),
        };
        self.pending = Some(Pending {
            ctx,
            block,
            tree,
            powers: None,
        });
        (results, dev_results)
    }

    /// The finalized block waiting for Commit, if any.
    pub fn pending_block(&self) -> Option<&Block> {
        self.pending.as_ref().map(|p| &p.block)
    }

    /// FinalizeBlock's validator updates: every consensus key whose power after the pending
    /// block differs from what was last reported (power 0 removes a validator), in key order.
    /// They count as reported once the block is committed.
    pub fn validator_updates(&mut self) -> Vec<(Vec<u8>, u64)> {
        let Some(pending) = &mut self.pending else {
            return Vec::new();
        };
        let now = validator_powers(pending.ctx.ws.state());
        let mut updates: Vec<(Vec<u8>, u64)> = now
            .iter()
            .filter(|(k, p)| self.powers.get(*k) != Some(p))
            .map(|(k, p)| (k.clone(), *p))
            .collect();
        updates.extend(
            self.powers
                .keys()
                .filter(|k| !now.contains_key(*k))
                .map(|k| (k.clone(), 0)),
        );
        updates.sort();
        pending.powers = Some(now);
        updates
    }

    /// Commit: the finalized block becomes the last committed state, then every listener
    /// receives its change set.
    pub fn commit(&mut self) -> Arc<Committed> {
        self.commit_with(|_| {})
    }

    /// Commit, running `before_listeners` on the new state first (the node uses it to make
    /// the height queryable before any listener can ask for it).
    pub fn commit_with(
        &mut self,
        before_listeners: impl FnOnce(&Arc<Committed>),
    ) -> Arc<Committed> {
        let Pending {
            ctx,
            block,
            tree,
            powers,
        } = self.pending.take().expect("commit follows finalize_block");
        self.genesis_writes = None;
        self.tree.commit(tree);
        if let Some(powers) = powers {
            self.powers = powers;
        }
        let (state, changes) = ctx.ws.finish();
        let committed = Arc::new(Committed {
            block: Arc::new(block),
            state,
        });
        self.last = committed.clone();
        before_listeners(&committed);
        let commit = Arc::new(BlockCommit {
            height: committed.block.height,
            time: committed.block.time,
            changes,
        });
        for l in &self.listeners {
            l.on_commit(commit.clone());
        }
        committed
    }
}

/// Consensus power of every bonded, unjailed validator with at least one unit of power, keyed
/// by its ed25519 consensus public key.
pub fn validator_powers(state: &MultiStore) -> ValidatorPowers {
    let mut powers = ValidatorPowers::new();
    for v in crate::state::staking::validators(state) {
        const BONDED: i32 = 3;
        if v.jailed || v.status != BONDED {
            continue;
        }
        let Some(key) = v.consensus_pubkey.as_ref().and_then(|any| {
            <cosmos_sdk_proto::cosmos::crypto::ed25519::PubKey as prost::Message>::decode(
                any.value.as_slice(),
            )
            .ok()
        }) else {
            continue;
        };
        let tokens = crate::state::parse_uint(&v.tokens).unwrap_or_default();
        let power = num_traits::ToPrimitive::to_u64(&(tokens / BigUint::from(POWER_REDUCTION)))
            .unwrap_or(i64::MAX as u64);
        if power > 0 {
            powers.insert(key.key, power);
        }
    }
    powers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::DevKey;
    use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
    use cosmos_sdk_proto::cosmos::staking::v1beta1::MsgDelegate;
    use std::time::{Duration, UNIX_EPOCH};

    /// Two ed25519 consensus keys (any 32 bytes), base64.
    const KEYS: [&str; 2] = [
        "z71xsnCK4odjXR1+EWHks3I0BLcnQF9nag5SLsVZfQw=",
        "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
    ];

    fn app() -> App {
        let keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
        let genesis = Genesis::testnet(
            "unit-1",
            Duration::from_secs(60),
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            &keys,
        );
        App::init_chain(&genesis).unwrap()
    }

    fn delegate(app: &App, amount: u64) -> Vec<u8> {
        let alice = DevKey::get("alice").unwrap();
        let p = &app.params().prefixes;
        let acc = crate::state::auth::account(app.check_context().state(), &alice.address);
        let acc = acc.unwrap().base;
        let msg = crate::tx::to_any(&MsgDelegate {
            delegator_address: p.acc(&alice.address),
            validator_address: p.val(&DevKey::get("validator2").unwrap().address),
            amount: Some(Coin {
                denom: "ujuno".into(),
                amount: amount.to_string(),
            }),
        });
        crate::tx::sign(
            &alice,
            "unit-1",
            acc.account_number,
            acc.sequence,
            vec![msg],
            "",
        )
        .unwrap()
    }

    fn block(app: &mut App, height: i64, txs: Vec<Vec<u8>>) -> ([u8; 32], Vec<(Vec<u8>, u64)>) {
        let (results, _) = app.finalize_block(BlockProposal {
            height,
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_000 + height as u64),
            txs,
            dev_ops: Vec::new(),
            hash: Some([height as u8; 32]),
        });
        assert!(results.iter().all(|r| r.code == 0), "{results:?}");
        let updates = app.validator_updates();
        let hash = app.pending_block().unwrap().app_hash;
        let committed = app.commit();
        assert_eq!(
            committed.block.hash, [height as u8; 32],
            "the engine's block hash"
        );
        (hash, updates)
    }

    #[test]
    fn the_same_blocks_give_the_same_app_hash_and_power_updates_on_every_node() {
        let (mut a, mut b) = (app(), app());
        let key = |i: usize| crate::genesis::decode_ed25519(KEYS[i]).unwrap();
        let genesis: Vec<_> = a.genesis_validators().clone().into_iter().collect();
        assert_eq!(genesis, {
            let mut v = vec![(key(0), 10_000), (key(1), 10_000)];
            v.sort();
            v
        });
        let (h1a, u1a) = block(&mut a, 1, Vec::new());
        let (h1b, u1b) = block(&mut b, 1, Vec::new());
        assert_eq!((h1a, &u1a), (h1b, &u1b));
        assert!(u1a.is_empty(), "genesis powers are already known: {u1a:?}");
        // 2.5 more power units to validator2: power is truncated to whole units.
        let tx = delegate(&a, 2_500_000);
        let (h2a, u2a) = block(&mut a, 2, vec![tx.clone()]);
        let (h2b, u2b) = block(&mut b, 2, vec![tx]);
        assert_eq!(h2a, h2b);
        assert_ne!(h2a, h1a, "the state changed");
        assert_eq!(u2a, vec![(key(1), 10_002)]);
        assert_eq!(u2a, u2b);
        let (_, u3) = block(&mut a, 3, Vec::new());
        assert!(u3.is_empty(), "unchanged powers are not repeated: {u3:?}");
    }

    #[test]
    fn a_block_finalized_again_before_commit_gives_the_same_answers() {
        // CometBFT restarted between FinalizeBlock and Commit replays the block.
        let (mut a, mut b) = (app(), app());
        for app in [&mut a, &mut b] {
            app.finalize_block(BlockProposal {
                height: 1,
                time: UNIX_EPOCH + Duration::from_secs(1_700_000_001),
                txs: Vec::new(),
                dev_ops: Vec::new(),
                hash: Some([1; 32]),
            });
        }
        let _ = a.validator_updates();
        let (ha, _) = block(&mut a, 1, Vec::new());
        let (hb, _) = block(&mut b, 1, Vec::new());
        assert_eq!(ha, hb, "block 1 (the genesis state) again");
        let tx = delegate(&a, 2_000_000);
        a.finalize_block(BlockProposal {
            height: 2,
            time: UNIX_EPOCH + Duration::from_secs(1_700_000_002),
            txs: vec![tx.clone()],
            dev_ops: Vec::new(),
            hash: Some([2; 32]),
        });
        assert_eq!(a.validator_updates().len(), 1);
        let (h2a, u2a) = block(&mut a, 2, vec![tx.clone()]);
        let (h2b, u2b) = block(&mut b, 2, vec![tx]);
        assert_eq!((h2a, u2a), (h2b, u2b));
    }
}
