//! Property test: for random transactions, slashes and unbonding maturities, the change sets
//! the app hands its `CommitListener`s, decoded by `stream-abci-listener` and applied to an
//! empty model, reproduce exactly what the node's standard queries return at every height.

use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use stream_abci_listener::{
    BlockCommit, CommitListener, Dec, Int, StateChange, UnbondingEntry, decode_block,
    tokens_from_shares,
};
use streamd::address::Addr;
use streamd::app::{App, BlockProposal, DevOp};
use streamd::genesis::Genesis;
use streamd::keys::DevKey;
use streamd::state::{auth, bank, from_timestamp, parse_uint, staking};
use streamd::store::MultiStore;
use streamd::tx::{sign, to_any};

use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    MsgBeginRedelegate, MsgCancelUnbondingDelegation, MsgDelegate, MsgUndelegate,
};

#[derive(Default)]
struct Collector(Mutex<Vec<Arc<BlockCommit>>>);

impl CommitListener for Collector {
    fn on_commit(&self, commit: Arc<BlockCommit>) {
        self.0.lock().unwrap().push(commit);
    }
}

/// The state as rebuilt from decoded changes only.
#[derive(Default)]
struct Model {
    balances: BTreeMap<(Vec<u8>, String), Int>,
    validators: BTreeMap<Vec<u8>, (Int, Dec)>,
    delegations: BTreeMap<(Vec<u8>, Vec<u8>), Dec>,
    unbondings: BTreeMap<(Vec<u8>, Vec<u8>), Vec<UnbondingEntry>>,
}

impl Model {
    fn apply(&mut self, change: StateChange) {
        match change {
            StateChange::Balance {
                address,
                denom,
                amount,
            } => {
                let k = (address.as_bytes().to_vec(), denom);
                if amount.is_zero() {
                    self.balances.remove(&k);
                } else {
                    self.balances.insert(k, amount);
                }
            }
            StateChange::Validator { operator, value } => {
                let k = operator.as_bytes().to_vec();
                match value {
                    Some(v) => self.validators.insert(k, (v.tokens, v.delegator_shares)),
                    None => self.validators.remove(&k),
                };
            }
            StateChange::Delegation {
                delegator,
                validator,
                shares,
            } => {
                let k = (delegator.as_bytes().to_vec(), validator.as_bytes().to_vec());
                match shares {
                    Some(s) => self.delegations.insert(k, s),
                    None => self.delegations.remove(&k),
                };
            }
            StateChange::UnbondingDelegation {
                delegator,
                validator,
                entries,
            } => {
                let k = (delegator.as_bytes().to_vec(), validator.as_bytes().to_vec());
                match entries {
                    Some(e) => self.unbondings.insert(k, e),
                    None => self.unbondings.remove(&k),
                };
            }
        }
    }

    /// Compares with the node's query functions at this state.
    fn check(&self, state: &MultiStore, accounts: &BTreeSet<Vec<u8>>, validators: &[Addr]) {
        for a in accounts {
            let addr = Addr(a.clone());
            let queried: Vec<(String, String)> = bank::all_balances(state, &addr)
                .into_iter()
                .map(|c| (c.denom, c.amount))
                .collect();
            let modelled: Vec<(String, String)> = self
                .balances
                .range((a.clone(), String::new())..)
                .take_while(|((x, _), _)| x == a)
                .map(|((_, d), amt)| (d.clone(), amt.to_string()))
                .collect();
            assert_eq!(queried, modelled, "balances of {}", hex::encode(a));
            for v in validators {
                let d = staking::delegation(state, &addr, v);
                let m = self.delegations.get(&(a.clone(), v.0.clone()));
                assert_eq!(
                    d.as_ref().map(|d| d.shares.clone()),
                    m.map(|s| s.to_wire()),
                    "delegation shares"
                );
                if let (Some(d), Some(m)) = (d, m) {
                    let val = staking::validator(state, v).unwrap();
                    // The node's own LegacyDec against the listener's: two implementations.
                    let queried =
                        staking::delegation_balance(&val, &parse_uint(&d.shares).unwrap())
                            .expect("balance in range");
                    let (tokens, shares) = &self.validators[&v.0];
                    assert_eq!(
                        queried.to_string(),
                        tokens_from_shares(m, tokens, shares).to_string(),
                        "delegation balance"
                    );
                }
                let u = staking::unbonding(state, &addr, v);
                let m = self.unbondings.get(&(a.clone(), v.0.clone()));
                let queried = u.map(|u| {
                    u.entries
                        .iter()
                        .map(|e| {
                            (
                                e.creation_height,
                                from_timestamp(e.completion_time.as_ref().unwrap()),
                                e.initial_balance.clone(),
                                e.balance.clone(),
                                e.unbonding_id,
                            )
                        })
                        .collect::<Vec<_>>()
                });
                let modelled = m.map(|m| {
                    m.iter()
                        .map(|e| {
                            (
                                e.creation_height,
                                e.completion_time,
                                e.initial_balance.to_string(),
                                e.balance.to_string(),
                                e.unbonding_id,
                            )
                        })
                        .collect::<Vec<_>>()
                });
                assert_eq!(queried, modelled, "unbonding delegation");
            }
        }
        for v in validators {
            let val = staking::validator(state, v).unwrap();
            let (tokens, shares) = &self.validators[&v.0];
            assert_eq!(
                (val.tokens.clone(), val.delegator_shares.clone()),
                (tokens.to_string(), shares.to_wire())
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Send { from: usize, to: usize, amount: u64 },
    Delegate { who: usize, val: usize, amount: u64 },
    Undelegate { who: usize, val: usize, pct: u64 },
    Redelegate { who: usize, val: usize, pct: u64 },
    Cancel { who: usize, val: usize, pct: u64 },
    Slash { val: usize, pct: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..6usize, 1..2_000_000u64).prop_map(|(from, to, amount)| Op::Send {
            from,
            to,
            amount
        }),
        (0..5usize, 0..2usize, 1..5_000_000u64).prop_map(|(who, val, amount)| Op::Delegate {
            who,
            val,
            amount
        }),
        (0..5usize, 0..2usize, 1..=100u64).prop_map(|(who, val, pct)| Op::Undelegate {
            who,
            val,
            pct
        }),
        (0..5usize, 0..2usize, 1..=100u64).prop_map(|(who, val, pct)| Op::Redelegate {
            who,
            val,
            pct
        }),
        (0..5usize, 0..2usize, 1..=100u64).prop_map(|(who, val, pct)| Op::Cancel { who, val, pct }),
        (0..2usize, 1..30u64).prop_map(|(val, pct)| Op::Slash { val, pct }),
    ]
}

const FRESH: usize = 3;

/// Runs the blocks, checking the model after each; returns every tx's result code.
fn run(blocks: Vec<Vec<Op>>) -> Vec<u32> {
    let genesis_time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let genesis = Genesis::dev("model-1", Duration::from_secs(4), genesis_time);
    let mut app = App::init_chain(&genesis).unwrap();
    let collector = Arc::new(Collector::default());
    app.add_listener(collector.clone());
    let keys = DevKey::all();
    let p = app.params().prefixes.clone();
    let vals: Vec<Addr> = keys[3..].iter().map(|k| k.address.clone()).collect();
    let fresh: Vec<Addr> = (0..FRESH)
        .map(|i| Addr(Sha256::digest(format!("fresh{i}").as_bytes())[..20].to_vec()))
        .collect();
    let mut accounts: BTreeSet<Vec<u8>> = keys.iter().map(|k| k.address.0.clone()).collect();
    accounts.extend(fresh.iter().map(|a| a.0.clone()));
    for m in [
        auth::BONDED_POOL,
        auth::NOT_BONDED_POOL,
        auth::FEE_COLLECTOR,
    ] {
        accounts.insert(Addr::module(m).0);
    }
    let mut model = Model::default();
    let mut codes = Vec::new();
    let coin = |n: u64| Coin {
        denom: "ujuno".into(),
        amount: n.max(1).to_string(),
    };
    // Empty blocks at the end let unbondings mature.
    // Block 1 commits the genesis state; transactions start at block 2.
    let n_blocks = blocks.len() + 7;
    let mut blocks = blocks.into_iter();
    for height in 1..=n_blocks as i64 {
        let ops = if height == 1 {
            Vec::new()
        } else {
            blocks.next().unwrap_or_default()
        };
        let last = app.last();
        let state = &last.state;
        let mut seqs: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        let mut txs = Vec::new();
        let mut dev_ops = Vec::new();
        for op in ops {
            let (who, msg) = match op {
                Op::Send { from, to, amount } => {
                    let to = if to < 3 {
                        keys[to].address.clone()
                    } else {
                        fresh[to - 3].clone()
                    };
                    (
                        from,
                        to_any(&MsgSend {
                            from_address: p.acc(&keys[from].address),
                            to_address: p.acc(&to),
                            amount: vec![coin(amount)],
                        }),
                    )
                }
                Op::Delegate { who, val, amount } => (
                    who,
                    to_any(&MsgDelegate {
                        delegator_address: p.acc(&keys[who].address),
                        validator_address: p.val(&vals[val]),
                        amount: Some(coin(amount)),
                    }),
                ),
                Op::Undelegate { who, val, pct } | Op::Redelegate { who, val, pct } => {
                    let worth = staking::delegation(state, &keys[who].address, &vals[val])
                        .map(|d| {
                            staking::delegation_balance(
                                &staking::validator(state, &vals[val]).unwrap(),
                                &parse_uint(&d.shares).unwrap(),
                            )
                            .expect("balance in range")
                        })
                        .unwrap_or_default();
                    let amount = (worth * pct / 100u32)
                        .to_string()
                        .parse::<u64>()
                        .unwrap_or(1);
                    let msg = if matches!(op, Op::Undelegate { .. }) {
                        to_any(&MsgUndelegate {
                            delegator_address: p.acc(&keys[who].address),
                            validator_address: p.val(&vals[val]),
                            amount: Some(coin(amount)),
                        })
                    } else {
                        to_any(&MsgBeginRedelegate {
                            delegator_address: p.acc(&keys[who].address),
                            validator_src_address: p.val(&vals[val]),
                            validator_dst_address: p.val(&vals[1 - val]),
                            amount: Some(coin(amount)),
                        })
                    };
                    (who, msg)
                }
                Op::Cancel { who, val, pct } => {
                    let Some(e) = staking::unbonding(state, &keys[who].address, &vals[val])
                        .and_then(|u| u.entries.first().cloned())
                    else {
                        continue;
                    };
                    let amount = parse_uint(&e.balance).unwrap() * pct / 100u32;
                    (
                        who,
                        to_any(&MsgCancelUnbondingDelegation {
                            delegator_address: p.acc(&keys[who].address),
                            validator_address: p.val(&vals[val]),
                            amount: Some(coin(amount.to_string().parse().unwrap_or(1))),
                            creation_height: e.creation_height,
                        }),
                    )
                }
                Op::Slash { val, pct } => {
                    dev_ops.push(DevOp::Slash {
                        validator: vals[val].clone(),
                        fraction_raw: streamd::state::dec_one() * pct / 100u32,
                    });
                    continue;
                }
            };
            let (number, seq) = seqs.entry(who).or_insert_with(|| {
                let a = auth::account(state, &keys[who].address).unwrap().base;
                (a.account_number, a.sequence)
            });
            txs.push(sign(&keys[who], "model-1", *number, *seq, vec![msg], "").unwrap());
            *seq += 1;
        }
        let (results, _) = app.finalize_block(BlockProposal {
            height,
            time: genesis_time + Duration::from_secs(height as u64),
            txs,
            dev_ops,
            hash: None,
        });
        // Every tx passes the ante handler (valid signatures and sequences); message failures
        // (insufficient funds, too many entries, ...) are allowed and must leave no trace.
        assert!(
            results
                .iter()
                .all(|r| r.code == 0 || r.codespace != "sdk" || ![2, 4, 32].contains(&r.code)),
            "{results:?}"
        );
        codes.extend(results.iter().map(|r| r.code));
        let committed = app.commit();
        let commit = collector.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!(commit.height, height);
        let decoded = decode_block(&commit);
        assert!(
            decoded.errors.is_empty(),
            "decode errors: {:?}",
            decoded.errors
        );
        for c in decoded.changes {
            model.apply(c);
        }
        model.check(&committed.state, &accounts, &vals);
    }
    // The trailing empty blocks outlast the unbonding time: every entry matured and the
    // not-bonded pool paid everything out.
    assert!(
        model.unbondings.is_empty(),
        "unmatured entries: {:?}",
        model.unbondings
    );
    let pool = Addr::module(auth::NOT_BONDED_POOL);
    assert!(bank::balance(&app.last().state, &pool, "ujuno").to_string() == "0");
    codes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn decoded_change_sets_rebuild_the_queried_state(blocks in prop::collection::vec(prop::collection::vec(op(), 0..6), 1..14)) {
        run(blocks);
    }
}

#[test]
fn genesis_alone_rebuilds_the_queried_state() {
    assert!(run(vec![]).is_empty());
}

#[test]
fn scripted_history_of_every_operation_rebuilds_the_queried_state() {
    let codes = run(vec![
        vec![
            Op::Delegate {
                who: 0,
                val: 0,
                amount: 3_000_000,
            },
            Op::Send {
                from: 0,
                to: 4,
                amount: 10,
            },
        ],
        vec![
            Op::Undelegate {
                who: 0,
                val: 0,
                pct: 50,
            },
            Op::Send {
                from: 1,
                to: 0,
                amount: 7,
            },
        ],
        vec![
            Op::Cancel {
                who: 0,
                val: 0,
                pct: 40,
            },
            Op::Slash { val: 0, pct: 10 },
        ],
        vec![
            Op::Redelegate {
                who: 0,
                val: 0,
                pct: 30,
            },
            Op::Undelegate {
                who: 3,
                val: 0,
                pct: 100,
            },
        ],
        vec![Op::Undelegate {
            who: 0,
            val: 1,
            pct: 100,
        }],
    ]);
    assert_eq!(codes, vec![0; 8], "every scripted tx succeeds");
}
