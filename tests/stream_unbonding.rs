//! End-to-end: unbonding maturity on the streams: each entry leaves the unbonding streams in
//! the block that completes it (`found=false` once none is left) and credits the balance
//! streams in that same block.

mod stream_support;
mod support;

use std::time::Duration;

use stream_support::values::{coin, delegation, entry, unbonding};
use stream_support::{Recorder, StreamKey, StreamValue, client_channel, expect_message};
use support::TestNode;
use support::accounts::{ATOM_DENOM, BOND_DENOM, GENESIS_UATOM, GENESIS_UJUNO};
use support::dec::dec_raw;
use support::queries::At;
use support::staking::unbonding as standard_unbonding;

/// Unbonding time of the default test node.
const UNBONDING: Duration = Duration::from_secs(3);

async fn subscribe(node: &TestNode, client: u8, key: StreamKey) -> Recorder {
    let mut recorder = Recorder::start(client_channel(node.grpc_addr(), client), &key).await;
    let first = recorder.next().await;
    stream_support::assert_committed(node, &key, &first).await;
    recorder
}

#[tokio::test]
async fn maturity_removes_each_entry_and_credits_the_balance_in_its_block() {
    let node = TestNode::start_default().await;
    let mut balance = subscribe(&node, 2, StreamKey::balance("alice", BOND_DENOM)).await;
    let mut all_balances = subscribe(&node, 2, StreamKey::all_balances("alice")).await;
    let mut to_v1 = subscribe(&node, 2, StreamKey::delegation("alice", "validator1")).await;
    let mut unbondings = subscribe(&node, 3, StreamKey::unbonding_delegations("alice")).await;
    let mut from_v1 = subscribe(
        &node,
        3,
        StreamKey::unbonding_delegation("alice", "validator1"),
    )
    .await;

    let g = GENESIS_UJUNO;
    let balances = |ujuno| {
        StreamValue::AllBalances(vec![
            coin(ATOM_DENOM, GENESIS_UATOM),
            coin(BOND_DENOM, ujuno),
        ])
    };
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
        &mut balance,
        h1,
        StreamValue::Balance(coin(BOND_DENOM, g - 10_000_000)),
    )
    .await;
    expect_message(&node, &mut all_balances, h1, balances(g - 10_000_000)).await;
    let d = delegation("alice", "validator1", dec_raw(10_000_000), 10_000_000);
    expect_message(&node, &mut to_v1, h1, StreamValue::Delegation(Some(d))).await;

    // Two entries, in two blocks; the second undelegation removes the delegation.
    let h2 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "4000000ujuno"])
        .await
        .height;
    let h3 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "6000000ujuno"])
        .await
        .height;
    let ubd = standard_unbonding(&node, "alice", "validator1", At::Height(h3)).await;
    let (id2, id3) = (ubd.entries[0].unbonding_id, ubd.entries[1].unbonding_id);
    let done2 = node.block(h2).await.time.plus(UNBONDING);
    let done3 = node.block(h3).await.time.plus(UNBONDING);
    let e2 = entry(h2, done2, 4_000_000, 4_000_000, id2);
    let e3 = entry(h3, done3, 6_000_000, 6_000_000, id3);
    let ubd = |entries| unbonding("alice", "validator1", entries);
    let d = delegation("alice", "validator1", dec_raw(6_000_000), 6_000_000);
    expect_message(&node, &mut to_v1, h2, StreamValue::Delegation(Some(d))).await;
    expect_message(
        &node,
        &mut unbondings,
        h2,
        StreamValue::UnbondingDelegations(vec![ubd(vec![e2.clone()])]),
    )
    .await;
    expect_message(
        &node,
        &mut from_v1,
        h2,
        StreamValue::UnbondingDelegation(Some(ubd(vec![e2.clone()]))),
    )
    .await;
    expect_message(&node, &mut to_v1, h3, StreamValue::Delegation(None)).await;
    let both = ubd(vec![e2, e3.clone()]);
    expect_message(
        &node,
        &mut unbondings,
        h3,
        StreamValue::UnbondingDelegations(vec![both.clone()]),
    )
    .await;
    expect_message(
        &node,
        &mut from_v1,
        h3,
        StreamValue::UnbondingDelegation(Some(both)),
    )
    .await;

    // Each entry completes at the end of the first block whose time reaches its completion
    // time; find those blocks from the chain's own block times.
    let last = node.wait_for_time(done3).await;
    let mut matured_at = [None, None];
    for k in h3 + 1..=last.height {
        let time = node.block(k).await.time;
        for (slot, done) in matured_at.iter_mut().zip([done2, done3]) {
            if slot.is_none() && time >= done {
                *slot = Some(k);
            }
        }
    }
    let [Some(m2), Some(m3)] = matured_at else {
        panic!(
            "entries did not mature by height {}: {matured_at:?}",
            last.height
        );
    };
    if m2 < m3 {
        expect_message(
            &node,
            &mut balance,
            m2,
            StreamValue::Balance(coin(BOND_DENOM, g - 6_000_000)),
        )
        .await;
        expect_message(&node, &mut all_balances, m2, balances(g - 6_000_000)).await;
        let rest = ubd(vec![e3]);
        expect_message(
            &node,
            &mut unbondings,
            m2,
            StreamValue::UnbondingDelegations(vec![rest.clone()]),
        )
        .await;
        expect_message(
            &node,
            &mut from_v1,
            m2,
            StreamValue::UnbondingDelegation(Some(rest)),
        )
        .await;
    }
    // The last entry goes: found=false, an empty list, and the full balance is back.
    expect_message(
        &node,
        &mut balance,
        m3,
        StreamValue::Balance(coin(BOND_DENOM, g)),
    )
    .await;
    expect_message(&node, &mut all_balances, m3, balances(g)).await;
    expect_message(
        &node,
        &mut unbondings,
        m3,
        StreamValue::UnbondingDelegations(vec![]),
    )
    .await;
    expect_message(
        &node,
        &mut from_v1,
        m3,
        StreamValue::UnbondingDelegation(None),
    )
    .await;

    node.wait_for_height(m3 + 3).await;
    for r in [
        &mut balance,
        &mut all_balances,
        &mut to_v1,
        &mut unbondings,
        &mut from_v1,
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
