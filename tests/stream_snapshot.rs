//! End-to-end: the first message of each of the six `juno.stream.v1` streams is the state
//! at a committed height, exactly as the standard queries answer it at that height, for
//! present and for absent objects.

mod stream_support;
mod support;

use std::time::Duration;

use stream_support::values::{coin, delegation, entry, unbonding};
use stream_support::{Recorder, StreamKey, StreamValue, assert_committed, client_channel};
use support::accounts::{
    ACCOUNT_PREFIX, ATOM_DENOM, BOND_DENOM, GENESIS_UATOM, GENESIS_UJUNO, bech32,
};
use support::dec::dec_raw;
use support::queries::At;
use support::staking::{slow_unbonding_node, unbonding as standard_unbonding};

#[tokio::test]
async fn first_message_of_every_stream_is_the_state_at_a_committed_height() {
    let node = slow_unbonding_node().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "alice",
        "validator1",
        "10000000ujuno",
    ])
    .await;
    let h2 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "4000000ujuno"])
        .await
        .height;
    // Let the stream module see that block before subscribing (the snapshot height must be
    // at or after it for the values below).
    node.wait_for_height(h2 + 2).await;
    let t2 = node.block(h2).await.time;
    let id = standard_unbonding(&node, "alice", "validator1", At::Height(h2))
        .await
        .entries[0]
        .unbonding_id;

    let alice_ujuno = GENESIS_UJUNO - 10_000_000;
    let alice_delegation = delegation("alice", "validator1", dec_raw(6_000_000), 6_000_000);
    let alice_unbonding = unbonding(
        "alice",
        "validator1",
        vec![entry(
            h2,
            t2.plus(Duration::from_secs(60)),
            4_000_000,
            4_000_000,
            id,
        )],
    );
    let cases: Vec<(StreamKey, StreamValue)> = vec![
        (
            StreamKey::balance("alice", BOND_DENOM),
            StreamValue::Balance(coin(BOND_DENOM, alice_ujuno)),
        ),
        (
            StreamKey::all_balances("alice"),
            StreamValue::AllBalances(vec![
                coin(ATOM_DENOM, GENESIS_UATOM),
                coin(BOND_DENOM, alice_ujuno),
            ]),
        ),
        (
            StreamKey::delegations("alice"),
            StreamValue::Delegations(vec![alice_delegation.clone()]),
        ),
        (
            StreamKey::delegation("alice", "validator1"),
            StreamValue::Delegation(Some(alice_delegation)),
        ),
        (
            StreamKey::unbonding_delegations("alice"),
            StreamValue::UnbondingDelegations(vec![alice_unbonding.clone()]),
        ),
        (
            StreamKey::unbonding_delegation("alice", "validator1"),
            StreamValue::UnbondingDelegation(Some(alice_unbonding)),
        ),
        // Absent objects are values too.
        (
            StreamKey::balance("alice", "ufoo"),
            StreamValue::Balance(coin("ufoo", 0)),
        ),
        (
            StreamKey::AllBalances {
                address: bech32(ACCOUNT_PREFIX, &[7; 20]),
            },
            StreamValue::AllBalances(vec![]),
        ),
        (
            StreamKey::delegations("carol"),
            StreamValue::Delegations(vec![]),
        ),
        (
            StreamKey::delegation("alice", "validator2"),
            StreamValue::Delegation(None),
        ),
        (
            StreamKey::unbonding_delegations("carol"),
            StreamValue::UnbondingDelegations(vec![]),
        ),
        (
            StreamKey::unbonding_delegation("alice", "validator2"),
            StreamValue::UnbondingDelegation(None),
        ),
    ];

    // All open at once, four streams per client address (the default limit is five).
    let mut recorders = Vec::new();
    for (i, (key, _)) in cases.iter().enumerate() {
        let channel = client_channel(node.grpc_addr(), 2 + (i / 4) as u8);
        recorders.push(Recorder::start(channel, key).await);
    }
    for ((key, expected), recorder) in cases.into_iter().zip(&mut recorders) {
        let first = recorder.next().await;
        assert!(
            first.height >= h2,
            "{} {key:?}: snapshot at height {} although block {h2} was committed before \
             subscribing",
            key.rpc(),
            first.height
        );
        assert_eq!(first.value, expected, "{} {key:?}: snapshot", key.rpc());
        assert_committed(&node, &key, &first).await;
    }
}
