//! End-to-end smoke test of `streamd start --simulate`: blocks keep coming, state moves, and
//! ujuno is conserved across accounts and pools at every sampled height.

mod support;

use std::time::{Duration, Instant};

use support::accounts::{
    BOND_DENOM, BONDED_POOL, DEV_KEYS, GENESIS_UJUNO_TOTAL, NOT_BONDED_POOL, address, int,
    module_address,
};
use support::queries::At;
use support::{TestNode, TestNodeOptions};

/// ujuno held at height `h` by each dev account, the bonded pool and the not-bonded pool.
async fn holdings(node: &TestNode, h: i64) -> Vec<u128> {
    let mut holders: Vec<String> = DEV_KEYS.iter().map(|n| address(n)).collect();
    holders.push(module_address(BONDED_POOL));
    holders.push(module_address(NOT_BONDED_POOL));
    let mut amounts = Vec::with_capacity(holders.len());
    for holder in &holders {
        amounts.push(node.balance(holder, BOND_DENOM, At::Height(h)).await);
    }
    amounts
}

/// Asserts at height `h` that the pools match staking state: bonded pool = sum of validator
/// tokens, not-bonded pool = sum of unbonding entry balances.
async fn assert_pools_match_staking(node: &TestNode, h: i64, bonded: u128, not_bonded: u128) {
    let tokens: u128 = node
        .validators(At::Height(h))
        .await
        .iter()
        .map(|v| int("tokens", &v.tokens))
        .sum();
    assert_eq!(
        bonded, tokens,
        "bonded pool vs validator tokens at height {h}"
    );
    let mut unbonding = 0;
    for name in DEV_KEYS {
        for ubd in node
            .delegator_unbondings(&address(name), At::Height(h))
            .await
        {
            for entry in ubd.entries {
                unbonding += int("entry.balance", &entry.balance);
            }
        }
    }
    assert_eq!(
        not_bonded, unbonding,
        "not-bonded pool vs unbonding entries at height {h}"
    );
}

#[tokio::test]
async fn simulation_moves_state_and_conserves_ujuno() {
    let node = TestNode::start(TestNodeOptions {
        simulate: Some(20),
        ..TestNodeOptions::default()
    })
    .await;

    let genesis = holdings(&node, 1).await;
    assert_eq!(
        genesis.iter().sum::<u128>(),
        GENESIS_UJUNO_TOTAL,
        "height 1: {genesis:?}"
    );

    let start = node.height().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sampled = Vec::new();
    let mut last = start;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let h = node.height().await;
        if h == last {
            continue;
        }
        last = h;
        let amounts = holdings(&node, h).await;
        assert_eq!(
            amounts.iter().sum::<u128>(),
            GENESIS_UJUNO_TOTAL,
            "ujuno total at height {h}: {amounts:?}"
        );
        let n = amounts.len();
        assert_pools_match_staking(&node, h, amounts[n - 2], amounts[n - 1]).await;
        sampled.push((h, amounts));
    }

    assert!(
        last >= start + 5,
        "200 ms blocks for 3 s: height went only from {start} to {last}"
    );
    assert!(sampled.len() >= 3, "sampled only {} heights", sampled.len());
    let (h, final_amounts) = sampled.last().expect("samples");
    assert_ne!(
        final_amounts, &genesis,
        "20 simulated txs per block must change some ujuno balance by height {h}"
    );
}
