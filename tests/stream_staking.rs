//! End-to-end: delegation and unbonding streams after delegate, undelegate, redelegate,
//! cancel-unbonding and slash: exactly one message per changed stream at the tx's height,
//! with the x/staking values to the last digit; `found=false` on removal.

mod stream_support;
mod support;

use std::time::Duration;

use cosmos_sdk_proto::cosmos::staking::v1beta1::{DelegationResponse, UnbondingDelegation};
use stream_support::values::{coin, delegation, entry, in_store_order, unbonding};
use stream_support::{Recorder, StreamKey, StreamValue, client_channel, expect_message};
use support::TestNode;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO, SELF_BOND};
use support::dec::{dec_raw, delegation_balance, shares_for_tokens, slashed};
use support::queries::At;
use support::staking::{slow_unbonding_node, unbonding as standard_unbonding};
use support::{stderr, stdout};

/// Unbonding time of `slow_unbonding_node`.
const UNBONDING: Duration = Duration::from_secs(60);

/// Opens `key` from 127.0.0.`client` and checks its snapshot is `value`.
async fn subscribe(node: &TestNode, client: u8, key: StreamKey, value: StreamValue) -> Recorder {
    let mut recorder = Recorder::start(client_channel(node.grpc_addr(), client), &key).await;
    let first = recorder.next().await;
    assert_eq!(first.value, value, "{} {key:?}: snapshot", key.rpc());
    stream_support::assert_committed(node, &key, &first).await;
    recorder
}

/// alice's delegation to `validator` of `amount` ujuno at the genesis exchange rate (1:1).
fn alice_delegation(validator: &str, amount: u128) -> DelegationResponse {
    delegation("alice", validator, dec_raw(amount), amount)
}

fn delegations(list: Vec<DelegationResponse>) -> StreamValue {
    StreamValue::Delegations(in_store_order(list))
}

/// Streams of alice's staking state, opened at genesis.
struct AliceStreams {
    delegations: Recorder,
    to_v1: Recorder,
    to_v2: Recorder,
    unbondings: Recorder,
    from_v1: Recorder,
    balance: Recorder,
}

impl AliceStreams {
    async fn open(node: &TestNode) -> AliceStreams {
        AliceStreams {
            delegations: subscribe(
                node,
                2,
                StreamKey::delegations("alice"),
                delegations(vec![]),
            )
            .await,
            to_v1: subscribe(
                node,
                2,
                StreamKey::delegation("alice", "validator1"),
                StreamValue::Delegation(None),
            )
            .await,
            to_v2: subscribe(
                node,
                2,
                StreamKey::delegation("alice", "validator2"),
                StreamValue::Delegation(None),
            )
            .await,
            unbondings: subscribe(
                node,
                3,
                StreamKey::unbonding_delegations("alice"),
                StreamValue::UnbondingDelegations(vec![]),
            )
            .await,
            from_v1: subscribe(
                node,
                3,
                StreamKey::unbonding_delegation("alice", "validator1"),
                StreamValue::UnbondingDelegation(None),
            )
            .await,
            balance: subscribe(
                node,
                3,
                StreamKey::balance("alice", BOND_DENOM),
                StreamValue::Balance(coin(BOND_DENOM, GENESIS_UJUNO)),
            )
            .await,
        }
    }

    /// Asserts no stream has a message it was not expected to have (all are dispatched by
    /// the time a few more blocks have been committed).
    async fn assert_quiet(&mut self, node: &TestNode, since: i64) {
        node.wait_for_height(since + 3).await;
        for r in [
            &mut self.delegations,
            &mut self.to_v1,
            &mut self.to_v2,
            &mut self.unbondings,
            &mut self.from_v1,
            &mut self.balance,
        ] {
            assert_eq!(
                r.pending(),
                None,
                "{} {:?}: unexpected message",
                r.key.rpc(),
                r.key
            );
        }
    }
}

#[tokio::test]
async fn delegate_unbond_redelegate_and_cancel_each_give_one_exact_message() {
    let node = slow_unbonding_node().await;
    let mut s = AliceStreams::open(&node).await;
    let g = GENESIS_UJUNO;

    // Delegate: the delegation appears, coins leave the balance.
    let h1 = node
        .tx_ok(&[
            "staking",
            "delegate",
            "alice",
            "validator1",
            "10000000ujuno",
        ])
        .await
        .height;
    expect_message(
        &node,
        &mut s.delegations,
        h1,
        delegations(vec![alice_delegation("validator1", 10_000_000)]),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v1,
        h1,
        StreamValue::Delegation(Some(alice_delegation("validator1", 10_000_000))),
    )
    .await;
    expect_message(
        &node,
        &mut s.balance,
        h1,
        StreamValue::Balance(coin(BOND_DENOM, g - 10_000_000)),
    )
    .await;

    // Undelegate: shares go down, an unbonding entry appears; the balance does not move yet.
    let h2 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "4000000ujuno"])
        .await
        .height;
    let t2 = node.block(h2).await.time.plus(UNBONDING);
    let id2 = standard_unbonding(&node, "alice", "validator1", At::Height(h2))
        .await
        .entries[0]
        .unbonding_id;
    let ubd = |entries| unbonding("alice", "validator1", entries);
    expect_message(
        &node,
        &mut s.delegations,
        h2,
        delegations(vec![alice_delegation("validator1", 6_000_000)]),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v1,
        h2,
        StreamValue::Delegation(Some(alice_delegation("validator1", 6_000_000))),
    )
    .await;
    let one_entry: UnbondingDelegation = ubd(vec![entry(h2, t2, 4_000_000, 4_000_000, id2)]);
    expect_message(
        &node,
        &mut s.unbondings,
        h2,
        StreamValue::UnbondingDelegations(vec![one_entry.clone()]),
    )
    .await;
    expect_message(
        &node,
        &mut s.from_v1,
        h2,
        StreamValue::UnbondingDelegation(Some(one_entry)),
    )
    .await;

    // Redelegate: both delegations change in one block, one message each.
    let h3 = node
        .tx_ok(&[
            "staking",
            "redelegate",
            "alice",
            "validator1",
            "validator2",
            "2000000ujuno",
        ])
        .await
        .height;
    expect_message(
        &node,
        &mut s.delegations,
        h3,
        delegations(vec![
            alice_delegation("validator1", 4_000_000),
            alice_delegation("validator2", 2_000_000),
        ]),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v1,
        h3,
        StreamValue::Delegation(Some(alice_delegation("validator1", 4_000_000))),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v2,
        h3,
        StreamValue::Delegation(Some(alice_delegation("validator2", 2_000_000))),
    )
    .await;

    // Cancel part of the unbonding entry: back into the delegation, the entry shrinks.
    let created = h2.to_string();
    let h4 = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            "validator1",
            "1000000ujuno",
            &created,
        ])
        .await
        .height;
    expect_message(
        &node,
        &mut s.delegations,
        h4,
        delegations(vec![
            alice_delegation("validator1", 5_000_000),
            alice_delegation("validator2", 2_000_000),
        ]),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v1,
        h4,
        StreamValue::Delegation(Some(alice_delegation("validator1", 5_000_000))),
    )
    .await;
    let reduced = entry(h2, t2, 3_000_000, 3_000_000, id2);
    expect_message(
        &node,
        &mut s.unbondings,
        h4,
        StreamValue::UnbondingDelegations(vec![ubd(vec![reduced.clone()])]),
    )
    .await;
    expect_message(
        &node,
        &mut s.from_v1,
        h4,
        StreamValue::UnbondingDelegation(Some(ubd(vec![reduced.clone()]))),
    )
    .await;

    // Undelegate everything from validator1: found=false, a second entry.
    let h5 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "5000000ujuno"])
        .await
        .height;
    let t5 = node.block(h5).await.time.plus(UNBONDING);
    let id5 = standard_unbonding(&node, "alice", "validator1", At::Height(h5))
        .await
        .entries[1]
        .unbonding_id;
    assert_ne!(id5, id2);
    expect_message(
        &node,
        &mut s.delegations,
        h5,
        delegations(vec![alice_delegation("validator2", 2_000_000)]),
    )
    .await;
    expect_message(&node, &mut s.to_v1, h5, StreamValue::Delegation(None)).await;
    let two = ubd(vec![reduced, entry(h5, t5, 5_000_000, 5_000_000, id5)]);
    expect_message(
        &node,
        &mut s.unbondings,
        h5,
        StreamValue::UnbondingDelegations(vec![two.clone()]),
    )
    .await;
    expect_message(
        &node,
        &mut s.from_v1,
        h5,
        StreamValue::UnbondingDelegation(Some(two)),
    )
    .await;

    // Cancel both entries completely: the unbonding delegation is removed (found=false).
    let h6 = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            "validator1",
            "3000000ujuno",
            &created,
        ])
        .await
        .height;
    let last = ubd(vec![entry(h5, t5, 5_000_000, 5_000_000, id5)]);
    expect_message(
        &node,
        &mut s.delegations,
        h6,
        delegations(vec![
            alice_delegation("validator1", 3_000_000),
            alice_delegation("validator2", 2_000_000),
        ]),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v1,
        h6,
        StreamValue::Delegation(Some(alice_delegation("validator1", 3_000_000))),
    )
    .await;
    expect_message(
        &node,
        &mut s.unbondings,
        h6,
        StreamValue::UnbondingDelegations(vec![last.clone()]),
    )
    .await;
    expect_message(
        &node,
        &mut s.from_v1,
        h6,
        StreamValue::UnbondingDelegation(Some(last)),
    )
    .await;
    let h7 = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            "validator1",
            "5000000ujuno",
            &h5.to_string(),
        ])
        .await
        .height;
    expect_message(
        &node,
        &mut s.delegations,
        h7,
        delegations(vec![
            alice_delegation("validator1", 8_000_000),
            alice_delegation("validator2", 2_000_000),
        ]),
    )
    .await;
    expect_message(
        &node,
        &mut s.to_v1,
        h7,
        StreamValue::Delegation(Some(alice_delegation("validator1", 8_000_000))),
    )
    .await;
    expect_message(
        &node,
        &mut s.unbondings,
        h7,
        StreamValue::UnbondingDelegations(vec![]),
    )
    .await;
    expect_message(
        &node,
        &mut s.from_v1,
        h7,
        StreamValue::UnbondingDelegation(None),
    )
    .await;

    // Only delegate moved the balance; nothing else is pending anywhere.
    s.assert_quiet(&node, h7).await;
}

#[tokio::test]
async fn other_delegators_and_validators_do_not_reach_alices_streams() {
    let node = slow_unbonding_node().await;
    let h0 = node
        .tx_ok(&[
            "staking",
            "delegate",
            "alice",
            "validator1",
            "10000000ujuno",
        ])
        .await
        .height;
    node.wait_for_height(h0 + 2).await;
    let d = alice_delegation("validator1", 10_000_000);
    let mut s = AliceStreams {
        delegations: subscribe(
            &node,
            2,
            StreamKey::delegations("alice"),
            delegations(vec![d.clone()]),
        )
        .await,
        to_v1: subscribe(
            &node,
            2,
            StreamKey::delegation("alice", "validator1"),
            StreamValue::Delegation(Some(d)),
        )
        .await,
        to_v2: subscribe(
            &node,
            2,
            StreamKey::delegation("alice", "validator2"),
            StreamValue::Delegation(None),
        )
        .await,
        unbondings: subscribe(
            &node,
            3,
            StreamKey::unbonding_delegations("alice"),
            StreamValue::UnbondingDelegations(vec![]),
        )
        .await,
        from_v1: subscribe(
            &node,
            3,
            StreamKey::unbonding_delegation("alice", "validator1"),
            StreamValue::UnbondingDelegation(None),
        )
        .await,
        balance: subscribe(
            &node,
            3,
            StreamKey::balance("alice", BOND_DENOM),
            StreamValue::Balance(coin(BOND_DENOM, GENESIS_UJUNO - 10_000_000)),
        )
        .await,
    };

    // bob's staking changes validator1's and validator2's tokens and shares, at 1:1, so
    // alice's delegation is worth exactly the same: no message for any of these blocks.
    node.tx_ok(&["staking", "delegate", "bob", "validator1", "7000000ujuno"])
        .await;
    node.tx_ok(&["staking", "unbond", "bob", "validator1", "3000000ujuno"])
        .await;
    let last = node
        .tx_ok(&[
            "staking",
            "redelegate",
            "bob",
            "validator1",
            "validator2",
            "1000000ujuno",
        ])
        .await
        .height;
    s.assert_quiet(&node, last).await;
}

#[tokio::test]
async fn slash_changes_delegation_balances_but_not_shares() {
    let node = TestNode::start_default().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "alice",
        "validator1",
        "10000000ujuno",
    ])
    .await;
    let h0 = node
        .tx_ok(&[
            "staking",
            "delegate",
            "bob",
            "validator1",
            "1000000000ujuno",
        ])
        .await
        .height;
    node.wait_for_height(h0 + 2).await;
    let alice_d = alice_delegation("validator1", 10_000_000);
    let bob_d = delegation("bob", "validator1", dec_raw(1_000_000_000), 1_000_000_000);
    let mut alice_all = subscribe(
        &node,
        2,
        StreamKey::delegations("alice"),
        delegations(vec![alice_d.clone()]),
    )
    .await;
    let mut alice_v1 = subscribe(
        &node,
        2,
        StreamKey::delegation("alice", "validator1"),
        StreamValue::Delegation(Some(alice_d)),
    )
    .await;
    let mut alice_v2 = subscribe(
        &node,
        2,
        StreamKey::delegation("alice", "validator2"),
        StreamValue::Delegation(None),
    )
    .await;
    let mut bob_v1 = subscribe(
        &node,
        3,
        StreamKey::delegation("bob", "validator1"),
        StreamValue::Delegation(Some(bob_d)),
    )
    .await;
    let mut alice_balance = subscribe(
        &node,
        3,
        StreamKey::balance("alice", BOND_DENOM),
        StreamValue::Balance(coin(BOND_DENOM, GENESIS_UJUNO - 10_000_000)),
    )
    .await;

    let output = node.cli(&["dev", "slash", "validator1", "0.1"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let json: serde_json::Value =
        serde_json::from_str(stdout(&output).trim_end()).expect("dev slash prints JSON");
    let hs = json["height"].as_i64().expect("height");

    // validator1: tokens 11010000000 - 10%, delegator shares unchanged.
    let shares_total = dec_raw(SELF_BOND + 10_000_000 + 1_000_000_000);
    let tokens = SELF_BOND + 10_000_000 + 1_000_000_000;
    let tokens = tokens - slashed(tokens, 1, 10);
    assert_eq!(tokens, 9_909_000_000);
    let alice_value = delegation_balance(dec_raw(10_000_000), tokens, shares_total);
    let bob_value = delegation_balance(dec_raw(1_000_000_000), tokens, shares_total);
    assert_eq!((alice_value, bob_value), (9_000_000, 900_000_000));
    let alice_d = delegation("alice", "validator1", dec_raw(10_000_000), alice_value);
    expect_message(
        &node,
        &mut alice_v1,
        hs,
        StreamValue::Delegation(Some(alice_d.clone())),
    )
    .await;
    expect_message(&node, &mut alice_all, hs, delegations(vec![alice_d])).await;
    expect_message(
        &node,
        &mut bob_v1,
        hs,
        StreamValue::Delegation(Some(delegation(
            "bob",
            "validator1",
            dec_raw(1_000_000_000),
            bob_value,
        ))),
    )
    .await;

    // After the slash new shares follow the SDK arithmetic (truncated), and the balance of
    // every delegation is recomputed from the validator's new tokens and shares.
    let h = node
        .tx_ok(&["staking", "delegate", "alice", "validator1", "3333333ujuno"])
        .await
        .height;
    let new_shares = shares_for_tokens(3_333_333, tokens, shares_total);
    let (tokens, shares_total) = (tokens + 3_333_333, shares_total + new_shares);
    let alice_shares = dec_raw(10_000_000) + new_shares;
    let alice_d = delegation(
        "alice",
        "validator1",
        alice_shares,
        delegation_balance(alice_shares, tokens, shares_total),
    );
    expect_message(
        &node,
        &mut alice_v1,
        h,
        StreamValue::Delegation(Some(alice_d.clone())),
    )
    .await;
    expect_message(&node, &mut alice_all, h, delegations(vec![alice_d])).await;
    expect_message(
        &node,
        &mut alice_balance,
        h,
        StreamValue::Balance(coin(BOND_DENOM, GENESIS_UJUNO - 13_333_333)),
    )
    .await;
    let bob_after = delegation_balance(dec_raw(1_000_000_000), tokens, shares_total);
    if bob_after != bob_value {
        let d = delegation("bob", "validator1", dec_raw(1_000_000_000), bob_after);
        expect_message(&node, &mut bob_v1, h, StreamValue::Delegation(Some(d))).await;
    }

    // Slashing validator2 reaches none of these streams.
    let output = node.cli(&["dev", "slash", "validator2", "0.5"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let hs2 = serde_json::from_str::<serde_json::Value>(stdout(&output).trim_end()).expect("JSON")
        ["height"]
        .as_i64()
        .expect("height");
    node.wait_for_height(hs2 + 3).await;
    for r in [
        &mut alice_v1,
        &mut alice_v2,
        &mut alice_all,
        &mut bob_v1,
        &mut alice_balance,
    ] {
        assert_eq!(
            r.pending(),
            None,
            "{} {:?}: unexpected message",
            r.key.rpc(),
            r.key
        );
    }
}
