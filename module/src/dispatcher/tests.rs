//! Dispatcher semantics against an in-memory chain: snapshot then changes, one message per
//! block, absent values, validator-driven delegation balances, gaps, shutdown, and a commit
//! hook that never waits.

use crate::handle::{self, Subscription};
use crate::key::{SubscriptionKey, SubscriptionKind};
use crate::metrics::Transport;
use crate::outbox::{CloseReason, Next};
use crate::value::{self, Value};
use crate::*;
use async_trait::async_trait;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, UnbondingDelegation, UnbondingDelegationEntry, Validator,
};
use prost::Message;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use stream_abci_listener::{Address, Dec, Int, StoreKVPair};

type Kv = BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// Committed states by height (index 0 = height 0, empty).
#[derive(Default)]
struct MemoryChain {
    states: Mutex<Vec<Kv>>,
}

impl MemoryChain {
    fn new() -> Arc<Self> {
        Arc::new(MemoryChain {
            states: Mutex::new(vec![Kv::new()]),
        })
    }

    /// Commits a block with `pairs`; returns it as the node would hand it over.
    fn commit(&self, pairs: Vec<StoreKVPair>) -> Arc<BlockCommit> {
        let mut states = self.states.lock().unwrap();
        let mut next = states.last().unwrap().clone();
        for p in &pairs {
            let k = (p.store_key.clone(), p.key.clone());
            if p.delete {
                next.remove(&k);
            } else {
                next.insert(k, p.value.clone());
            }
        }
        states.push(next);
        Arc::new(BlockCommit {
            height: states.len() as i64 - 1,
            time: UNIX_EPOCH,
            changes: pairs,
        })
    }
}

/// Raw reads of the in-memory chain; the module's `DecodingReader` does the rest, as it
/// does for the node. Each read takes `delay` (a plugin's reads are gRPC queries).
struct Reader(Arc<MemoryChain>, Duration);

#[async_trait]
impl KvReader for Reader {
    async fn scan(
        &self,
        height: i64,
        store: &'static str,
        prefix: Vec<u8>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ReadError> {
        if !self.1.is_zero() {
            tokio::time::sleep(self.1).await;
        }
        let states = self.0.states.lock().unwrap();
        let state = states.get(height as usize).ok_or(ReadError {
            height,
            reason: "no such height".into(),
        })?;
        Ok(state
            .iter()
            .filter(|((s, k), _)| s == store && k.starts_with(&prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

fn lp(prefix: u8, addrs: &[&Address]) -> Vec<u8> {
    let mut k = vec![prefix];
    for a in addrs {
        k.push(a.as_bytes().len() as u8);
        k.extend_from_slice(a.as_bytes());
    }
    k
}

fn addr(b: u8) -> Address {
    Address::new(vec![b; 20]).unwrap()
}

fn balance(a: &Address, denom: &str, amount: u64) -> StoreKVPair {
    let mut key = lp(0x02, &[a]);
    key.extend_from_slice(denom.as_bytes());
    if amount == 0 {
        StoreKVPair {
            store_key: "bank".into(),
            delete: true,
            key,
            value: vec![],
        }
    } else {
        StoreKVPair {
            store_key: "bank".into(),
            delete: false,
            key,
            value: amount.to_string().into_bytes(),
        }
    }
}

fn validator(v: &Address, tokens: u64, shares_whole: u64) -> StoreKVPair {
    let val = Validator {
        operator_address: "x".into(),
        tokens: tokens.to_string(),
        delegator_shares: Dec::from_int(&Int::from(shares_whole)).to_wire(),
        ..Default::default()
    };
    StoreKVPair {
        store_key: "staking".into(),
        delete: false,
        key: lp(0x21, &[v]),
        value: val.encode_to_vec(),
    }
}

fn delegation(d: &Address, v: &Address, shares_whole: Option<u64>) -> StoreKVPair {
    let key = lp(0x31, &[d, v]);
    match shares_whole {
        None => StoreKVPair {
            store_key: "staking".into(),
            delete: true,
            key,
            value: vec![],
        },
        Some(s) => StoreKVPair {
            store_key: "staking".into(),
            delete: false,
            key,
            value: Delegation {
                delegator_address: "d".into(),
                validator_address: "v".into(),
                shares: Dec::from_int(&Int::from(s)).to_wire(),
            }
            .encode_to_vec(),
        },
    }
}

fn unbonding(d: &Address, v: &Address, balances: &[u64]) -> StoreKVPair {
    let key = lp(0x32, &[d, v]);
    if balances.is_empty() {
        return StoreKVPair {
            store_key: "staking".into(),
            delete: true,
            key,
            value: vec![],
        };
    }
    let ubd = UnbondingDelegation {
        delegator_address: "d".into(),
        validator_address: "v".into(),
        entries: balances
            .iter()
            .enumerate()
            .map(|(i, b)| UnbondingDelegationEntry {
                creation_height: i as i64 + 1,
                completion_time: Some(cosmos_sdk_proto::Timestamp {
                    seconds: 100,
                    nanos: 0,
                }),
                initial_balance: b.to_string(),
                balance: b.to_string(),
                unbonding_id: i as u64 + 1,
                unbonding_on_hold_ref_count: 0,
            })
            .collect(),
    };
    StoreKVPair {
        store_key: "staking".into(),
        delete: false,
        key,
        value: ubd.encode_to_vec(),
    }
}

use crate::fuzzing::chain;

fn module(mem: &Arc<MemoryChain>, block_queue: usize) -> StreamModule {
    let config = StreamConfig {
        block_queue,
        ..StreamConfig::default()
    };
    module_with(mem, &config, Duration::ZERO)
}

fn module_with(
    mem: &Arc<MemoryChain>,
    config: &StreamConfig,
    read_delay: Duration,
) -> StreamModule {
    let limits = LimitsConfig {
        max_open_connections: 0,
        max_subscriptions_per_client: 0,
    };
    StreamModule::start(
        config,
        limits,
        chain(),
        Arc::new(DecodingReader(Reader(mem.clone(), read_delay))),
    )
}

async fn subscribe(m: &StreamModule, key: SubscriptionKey) -> Subscription {
    let h = m.handle();
    let permit = h
        .limits
        .subscribe(IpAddr::from([127, 0, 0, 1]), Transport::Grpc)
        .unwrap();
    h.subscribe(key, handle::Start::Snapshot, permit)
        .await
        .unwrap()
}

/// The next update, or panics after a while.
async fn next(s: &Subscription) -> (i64, Value) {
    match tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an update within 5 s")
    {
        Next::Update(u) => (u.height, (*u.value).clone()),
        Next::Closed(r) => panic!("closed: {r:?}"),
    }
}

/// Asserts nothing arrives within a short while.
async fn quiet(s: &Subscription) {
    if let Ok(n) = tokio::time::timeout(Duration::from_millis(150), s.next()).await {
        panic!("unexpected {n:?}");
    }
}

fn coins(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Balances(c) => c
            .iter()
            .map(|c| (c.denom.clone(), c.amount.to_string()))
            .collect(),
        Value::Balance(c) => vec![(c.denom.clone(), c.amount.to_string())],
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn snapshot_first_then_one_message_per_changed_block() {
    let mem = MemoryChain::new();
    let m = module(&mem, 16);
    let (alice, bob) = (addr(1), addr(2));
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![
        balance(&alice, "ujuno", 100),
        balance(&bob, "ujuno", 5),
    ]));
    let all = subscribe(
        &m,
        SubscriptionKey::Balances {
            address: alice.clone(),
        },
    )
    .await;
    let one = subscribe(
        &m,
        SubscriptionKey::Balance {
            address: alice.clone(),
            denom: "uatom".into(),
        },
    )
    .await;
    assert_eq!(
        next(&all).await,
        (
            1,
            Value::Balances(vec![value::Coin {
                denom: "ujuno".into(),
                amount: Int::from(100u64)
            }])
        )
    );
    assert_eq!(
        coins(&next(&one).await.1),
        vec![("uatom".into(), "0".into())]
    );

    // Unrelated address: nothing.
    hook.on_commit(mem.commit(vec![balance(&bob, "ujuno", 6)]));
    quiet(&all).await;
    quiet(&one).await;

    // Several writes to one key in a block: one message, final value.
    hook.on_commit(mem.commit(vec![
        balance(&alice, "ujuno", 90),
        balance(&alice, "uatom", 7),
        balance(&alice, "ujuno", 80),
    ]));
    let (h, v) = next(&all).await;
    assert_eq!(h, 3);
    assert_eq!(
        coins(&v),
        vec![("uatom".into(), "7".into()), ("ujuno".into(), "80".into())]
    );
    quiet(&all).await;
    assert_eq!(next(&one).await.0, 3);

    // Deletion = zero; the ujuno-only change does not wake the uatom subscription.
    hook.on_commit(mem.commit(vec![balance(&alice, "ujuno", 0)]));
    assert_eq!(
        (
            next(&all).await.0,
            coins(&next_value(&mem, &m, &alice).await)
        ),
        (4, vec![("uatom".into(), "7".into())])
    );
    quiet(&one).await;
    m.shutdown(Duration::from_secs(1)).await;
}

/// A fresh subscriber's snapshot of `alice`'s balances.
async fn next_value(_mem: &Arc<MemoryChain>, m: &StreamModule, a: &Address) -> Value {
    let s = subscribe(m, SubscriptionKey::Balances { address: a.clone() }).await;
    next(&s).await.1
}

#[tokio::test]
async fn delegation_balance_follows_the_validator_and_removal_is_found_false() {
    let mem = MemoryChain::new();
    let m = module(&mem, 16);
    let (alice, val) = (addr(1), addr(9));
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![
        validator(&val, 1000, 1000),
        delegation(&alice, &val, Some(300)),
    ]));
    let one = subscribe(
        &m,
        SubscriptionKey::Delegation {
            delegator: alice.clone(),
            validator: val.clone(),
        },
    )
    .await;
    let all = subscribe(
        &m,
        SubscriptionKey::Delegations {
            delegator: alice.clone(),
        },
    )
    .await;
    let bal = |v: &Value| match v {
        Value::Delegation(Some(d)) => d.balance.amount.to_string(),
        Value::Delegations(d) => d[0].balance.amount.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(bal(&next(&one).await.1), "300");
    assert_eq!(bal(&next(&all).await.1), "300");

    // A slash: only the validator changes; both delegation streams move.
    hook.on_commit(mem.commit(vec![validator(&val, 900, 1000)]));
    let (h, v) = next(&one).await;
    assert_eq!((h, bal(&v)), (2, "270".into()));
    assert_eq!(bal(&next(&all).await.1), "270");

    // Removal.
    hook.on_commit(mem.commit(vec![
        delegation(&alice, &val, None),
        validator(&val, 630, 700),
    ]));
    assert_eq!(next(&one).await, (3, Value::Delegation(None)));
    assert_eq!(next(&all).await, (3, Value::Delegations(vec![])));
    // With no delegation left, a validator change wakes neither stream.
    hook.on_commit(mem.commit(vec![validator(&val, 600, 700)]));
    quiet(&one).await;
    quiet(&all).await;
    m.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unbonding_entries_and_completion() {
    let mem = MemoryChain::new();
    let m = module(&mem, 16);
    let (alice, val) = (addr(1), addr(9));
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![]));
    let one = subscribe(
        &m,
        SubscriptionKey::UnbondingDelegation {
            delegator: alice.clone(),
            validator: val.clone(),
        },
    )
    .await;
    let all = subscribe(
        &m,
        SubscriptionKey::UnbondingDelegations {
            delegator: alice.clone(),
        },
    )
    .await;
    assert_eq!(next(&one).await, (1, Value::UnbondingDelegation(None)));
    assert_eq!(next(&all).await, (1, Value::UnbondingDelegations(vec![])));
    hook.on_commit(mem.commit(vec![unbonding(&alice, &val, &[50, 20])]));
    let (h, v) = next(&one).await;
    let Value::UnbondingDelegation(Some(u)) = v else {
        panic!()
    };
    assert_eq!(
        (h, u.entries.len(), u.entries[1].balance.to_string()),
        (2, 2, "20".into())
    );
    assert!(u.delegator.starts_with("juno1") && u.validator.starts_with("junovaloper1"));
    assert_eq!(next(&all).await.0, 2);
    hook.on_commit(mem.commit(vec![unbonding(&alice, &val, &[])]));
    assert_eq!(next(&one).await, (3, Value::UnbondingDelegation(None)));
    assert_eq!(next(&all).await, (3, Value::UnbondingDelegations(vec![])));
    m.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn subscribing_before_the_first_block_waits_for_it() {
    let mem = MemoryChain::new();
    let m = module(&mem, 16);
    let alice = addr(1);
    let pending = {
        let h = m.handle().clone();
        let a = alice.clone();
        tokio::spawn(async move {
            let permit = h
                .limits
                .subscribe(IpAddr::from([127, 0, 0, 1]), Transport::Grpc)
                .unwrap();
            h.subscribe(
                SubscriptionKey::Balances { address: a },
                handle::Start::Snapshot,
                permit,
            )
            .await
            .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    m.commit_listener()
        .on_commit(mem.commit(vec![balance(&alice, "ujuno", 1)]));
    let s = pending.await.unwrap();
    assert_eq!(next(&s).await.0, 1);
    m.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_full_block_queue_never_blocks_the_commit_hook_and_gaps_are_resynchronised() {
    let mem = MemoryChain::new();
    let m = module(&mem, 1);
    let alice = addr(1);
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![balance(&alice, "ujuno", 1)]));
    let s = subscribe(
        &m,
        SubscriptionKey::Balances {
            address: alice.clone(),
        },
    )
    .await;
    assert_eq!(next(&s).await.0, 1);
    // 200 commits in a burst from a thread that is not the runtime's: each returns at once.
    let started = std::time::Instant::now();
    let blocks: Vec<_> = (2..=201u64)
        .map(|i| mem.commit(vec![balance(&alice, "ujuno", i)]))
        .collect();
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for b in blocks {
                hook.on_commit(b);
            }
        });
    });
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        m.metrics().blocks_dropped.get() > 0,
        "the tiny queue overflowed"
    );
    // The subscriber converges on the last committed value, heights increasing.
    let mut last = 1;
    loop {
        let (h, v) = next(&s).await;
        assert!(h > last, "heights increase: {h} after {last}");
        last = h;
        if h == 201 {
            assert_eq!(coins(&v), vec![("ujuno".into(), "201".into())]);
            break;
        }
    }
    m.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_closes_every_subscription() {
    let mem = MemoryChain::new();
    let m = module(&mem, 16);
    m.commit_listener().on_commit(mem.commit(vec![]));
    let s = subscribe(&m, SubscriptionKey::Balances { address: addr(1) }).await;
    next(&s).await;
    m.shutdown(Duration::from_secs(1)).await;
    assert!(matches!(
        s.next().await,
        Next::Closed(CloseReason::Shutdown)
    ));
    let permit = m
        .handle()
        .limits
        .subscribe(IpAddr::from([127, 0, 0, 1]), Transport::Grpc)
        .unwrap();
    assert!(
        m.handle()
            .subscribe(
                SubscriptionKey::Balances { address: addr(1) },
                handle::Start::Snapshot,
                permit
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn dropped_subscriptions_leave_the_index() {
    let mem = MemoryChain::new();
    let m = module(&mem, 16);
    let hook = m.commit_listener();
    hook.on_commit(mem.commit(vec![]));
    let s = subscribe(&m, SubscriptionKey::Balances { address: addr(1) }).await;
    next(&s).await;
    assert_eq!(
        m.metrics().subscriptions(SubscriptionKind::Balances).get(),
        1
    );
    drop(s);
    assert_eq!(
        m.metrics().subscriptions(SubscriptionKind::Balances).get(),
        0
    );
    // The dispatcher keeps working and a new subscriber gets a fresh snapshot.
    hook.on_commit(mem.commit(vec![balance(&addr(1), "ujuno", 3)]));
    // The hook returns once the block is queued; the dispatcher takes it a moment later.
    tokio::time::timeout(Duration::from_secs(5), async {
        while m.metrics().blocks_dispatched.get() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("block 2 dispatched within 5 s");
    let s = subscribe(&m, SubscriptionKey::Balances { address: addr(1) }).await;
    assert_eq!(next(&s).await.0, 2);
    m.shutdown(Duration::from_secs(1)).await;
}

mod ops;
mod resume;
