//! End-to-end: unbonding through the CLI: entries with exact heights, balances and
//! completion times, maturity in the right block, and cancelling an entry.

mod support;

use std::time::Duration;

use support::TestNode;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO, SELF_BOND, address, valoper};
use support::dec::dec_raw;
use support::queries::{At, time_of};
use support::staking::{
    assert_no_delegation, assert_no_unbonding, assert_pools, delegation, slow_unbonding_node,
    unbonding, validator,
};

/// Unbonding time of the default test node (`TestNodeOptions::default`).
const UNBONDING: Duration = Duration::from_secs(3);

#[tokio::test]
async fn unbond_creates_entries_that_mature_and_credit_the_delegator() {
    let node = TestNode::start_default().await;
    let alice = address("alice");
    let v1 = valoper("validator1");

    node.tx_ok(&[
        "staking",
        "delegate",
        "alice",
        "validator1",
        "10000000ujuno",
    ])
    .await;
    let h2 = node
        .tx_ok(&["staking", "unbond", "alice", &v1, "4000000ujuno"])
        .await
        .height;
    let t2 = node.block(h2).await.time;

    let ubd = unbonding(&node, "alice", "validator1", At::Height(h2)).await;
    assert_eq!(ubd.entries.len(), 1, "{ubd:?}");
    let first = &ubd.entries[0];
    assert_eq!(first.creation_height, h2);
    assert_eq!(time_of(&first.completion_time), t2.plus(UNBONDING));
    assert_eq!(
        (first.initial_balance.as_str(), first.balance.as_str()),
        ("4000000", "4000000")
    );
    assert_eq!(
        delegation(&node, "alice", "validator1", At::Height(h2)).await,
        (dec_raw(6_000_000), 6_000_000)
    );
    assert_eq!(
        validator(&node, "validator1", At::Height(h2)).await,
        (SELF_BOND + 6_000_000, dec_raw(SELF_BOND + 6_000_000))
    );
    assert_pools(&node, At::Height(h2), 2 * SELF_BOND + 6_000_000, 4_000_000).await;
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Height(h2)).await,
        GENESIS_UJUNO - 10_000_000,
        "unbonded coins are not the delegator's before maturity"
    );

    // Unbonding the rest deletes the delegation and appends a second entry.
    let h3 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "6000000ujuno"])
        .await
        .height;
    let t3 = node.block(h3).await.time;
    assert_no_delegation(&node, "alice", "validator1", At::Height(h3)).await;
    assert_eq!(
        delegation(&node, "alice", "validator1", At::Height(h3 - 1))
            .await
            .1,
        6_000_000
    );
    let ubd = unbonding(&node, "alice", "validator1", At::Height(h3)).await;
    let entries: Vec<_> = ubd
        .entries
        .iter()
        .map(|e| {
            (
                e.creation_height,
                time_of(&e.completion_time),
                e.initial_balance.as_str(),
                e.balance.as_str(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (h2, t2.plus(UNBONDING), "4000000", "4000000"),
            (h3, t3.plus(UNBONDING), "6000000", "6000000"),
        ]
    );
    assert!(
        ubd.entries[0].unbonding_id < ubd.entries[1].unbonding_id,
        "unbonding ids come from a global counter: {ubd:?}"
    );
    assert_eq!(
        node.delegator_unbondings(&alice, At::Height(h3)).await,
        std::slice::from_ref(&ubd)
    );
    assert_eq!(
        validator(&node, "validator1", At::Height(h3)).await,
        (SELF_BOND, dec_raw(SELF_BOND))
    );
    assert_pools(&node, At::Height(h3), 2 * SELF_BOND, 10_000_000).await;

    // Each entry matures in the first block whose time reaches its completion time: the
    // coins move from the not-bonded pool to alice and the entry goes.
    let last = node.wait_for_time(t3.plus(UNBONDING)).await;
    let schedule = [
        (t2.plus(UNBONDING), h2, 4_000_000u128),
        (t3.plus(UNBONDING), h3, 6_000_000),
    ];
    for k in h3..=last.height {
        let time = node.block(k).await.time;
        let pending: Vec<_> = schedule
            .iter()
            .filter(|(done, _, _)| *done > time)
            .collect();
        let matured: u128 = schedule
            .iter()
            .filter(|(done, _, _)| *done <= time)
            .map(|e| e.2)
            .sum();
        let at = At::Height(k);
        if pending.is_empty() {
            assert_no_unbonding(&node, "alice", "validator1", at).await;
        } else {
            let heights: Vec<i64> = unbonding(&node, "alice", "validator1", at)
                .await
                .entries
                .iter()
                .map(|e| e.creation_height)
                .collect();
            let expected: Vec<i64> = pending.iter().map(|e| e.1).collect();
            assert_eq!(
                heights, expected,
                "entries left at height {k} (block time {time:?})"
            );
        }
        assert_eq!(
            node.balance(&alice, BOND_DENOM, at).await,
            GENESIS_UJUNO - 10_000_000 + matured,
            "alice's balance at height {k}"
        );
        assert_pools(&node, at, 2 * SELF_BOND, 10_000_000 - matured).await;
    }
    assert_no_unbonding(&node, "alice", "validator1", At::Latest).await;
    assert_eq!(node.delegator_unbondings(&alice, At::Latest).await, []);
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Latest).await,
        GENESIS_UJUNO
    );
}

#[tokio::test]
async fn cancel_unbond_restores_the_delegation() {
    let node = slow_unbonding_node().await;
    let alice = address("alice");

    node.tx_ok(&[
        "staking",
        "delegate",
        "alice",
        "validator2",
        "10000000ujuno",
    ])
    .await;
    let h = node
        .tx_ok(&["staking", "unbond", "alice", "validator2", "6000000ujuno"])
        .await
        .height;
    let entry = unbonding(&node, "alice", "validator2", At::Height(h))
        .await
        .entries[0]
        .clone();
    assert_eq!(
        (entry.creation_height, entry.balance.as_str()),
        (h, "6000000")
    );

    let creation = h.to_string();
    let hc = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            "validator2",
            "2000000ujuno",
            &creation,
        ])
        .await
        .height;
    let ubd = unbonding(&node, "alice", "validator2", At::Height(hc)).await;
    assert_eq!(ubd.entries.len(), 1, "{ubd:?}");
    let reduced = &ubd.entries[0];
    assert_eq!(
        (
            reduced.creation_height,
            reduced.initial_balance.as_str(),
            reduced.balance.as_str()
        ),
        (h, "4000000", "4000000")
    );
    assert_eq!(reduced.completion_time, entry.completion_time);
    assert_eq!(reduced.unbonding_id, entry.unbonding_id);
    assert_eq!(
        delegation(&node, "alice", "validator2", At::Height(hc)).await,
        (dec_raw(6_000_000), 6_000_000)
    );
    assert_eq!(
        validator(&node, "validator2", At::Height(hc)).await,
        (SELF_BOND + 6_000_000, dec_raw(SELF_BOND + 6_000_000))
    );
    assert_pools(&node, At::Height(hc), 2 * SELF_BOND + 6_000_000, 4_000_000).await;
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Height(hc)).await,
        GENESIS_UJUNO - 10_000_000
    );

    // Cancelling the whole remaining balance removes the entry and the unbonding delegation.
    let hc2 = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            &valoper("validator2"),
            "4000000ujuno",
            &creation,
        ])
        .await
        .height;
    assert_no_unbonding(&node, "alice", "validator2", At::Height(hc2)).await;
    assert_eq!(
        delegation(&node, "alice", "validator2", At::Height(hc2)).await,
        (dec_raw(10_000_000), 10_000_000)
    );
    assert_pools(&node, At::Height(hc2), 2 * SELF_BOND + 10_000_000, 0).await;
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Height(hc2)).await,
        GENESIS_UJUNO - 10_000_000
    );
}
