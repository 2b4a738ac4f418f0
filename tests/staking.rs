//! End-to-end: delegate, unbond (and maturity), redelegate, cancel-unbond and slashing through
//! the CLI, checked digit for digit with the standard staking and bank queries.

mod support;

use support::accounts::{
    BOND_DENOM, BONDED_POOL, GENESIS_UJUNO, NOT_BONDED_POOL, SELF_BOND, VALIDATORS, address, int,
    module_address, valoper,
};
use support::dec::{dec, delegation_balance, shares_for_tokens, slashed, truncated_value};
use support::queries::{At, time_of};
use support::{TestNode, TestNodeOptions, parse_tx_output, stderr, stdout};

use cosmos_sdk_proto::cosmos::staking::v1beta1::{BondStatus, UnbondingDelegation};
use std::time::Duration;
use stream_proto::cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use stream_proto::streamd::dev::v1::SlashRequest;

/// Unbonding time of the default test node (`TestNodeOptions::default`).
const UNBONDING: Duration = Duration::from_secs(3);

/// A node whose unbonding entries outlive the test, for tests that must act before maturity.
async fn slow_unbonding_node() -> TestNode {
    TestNode::start(TestNodeOptions {
        unbonding_time: "60s",
        ..TestNodeOptions::default()
    })
    .await
}

/// Tokens and raw delegator shares of validator `name`.
async fn validator(node: &TestNode, name: &str, at: At) -> (u128, u128) {
    let v = node.validator(&valoper(name), at).await;
    assert_eq!(v.operator_address, valoper(name));
    (
        int("tokens", &v.tokens),
        int("delegator_shares", &v.delegator_shares),
    )
}

/// Raw shares and balance of `delegator`'s delegation to validator `name`; asserts its shape.
async fn delegation(node: &TestNode, delegator: &str, name: &str, at: At) -> (u128, u128) {
    let response = node
        .delegation(&address(delegator), &valoper(name), at)
        .await
        .unwrap_or_else(|s| panic!("delegation {delegator} -> {name} at {at:?}: {s}"));
    let d = response.delegation.expect("delegation set");
    assert_eq!(
        (d.delegator_address.as_str(), d.validator_address.as_str()),
        (address(delegator).as_str(), valoper(name).as_str())
    );
    let balance = response.balance.expect("balance set");
    assert_eq!(balance.denom, BOND_DENOM);
    (
        int("shares", &d.shares),
        int("balance.amount", &balance.amount),
    )
}

/// Asserts `delegator` has no delegation to validator `name` (gRPC NotFound).
async fn assert_no_delegation(node: &TestNode, delegator: &str, name: &str, at: At) {
    match node
        .delegation(&address(delegator), &valoper(name), at)
        .await
    {
        Err(s) if s.code() == tonic::Code::NotFound => {}
        other => panic!("expected NotFound for {delegator} -> {name} at {at:?}, got {other:?}"),
    }
}

/// Asserts the pools hold exactly `bonded` and `not_bonded` ujuno, and that the bonded pool
/// equals the sum of all validators' tokens.
async fn assert_pools(node: &TestNode, at: At, bonded: u128, not_bonded: u128) {
    let bonded_pool = node
        .balance(&module_address(BONDED_POOL), BOND_DENOM, at)
        .await;
    let not_bonded_pool = node
        .balance(&module_address(NOT_BONDED_POOL), BOND_DENOM, at)
        .await;
    assert_eq!(
        (bonded_pool, not_bonded_pool),
        (bonded, not_bonded),
        "(bonded, not bonded) pool balances at {at:?}"
    );
    let tokens: u128 = node
        .validators(at)
        .await
        .iter()
        .map(|v| int("tokens", &v.tokens))
        .sum();
    assert_eq!(
        bonded_pool, tokens,
        "bonded pool = sum of validator tokens at {at:?}"
    );
}

async fn unbonding(node: &TestNode, delegator: &str, name: &str, at: At) -> UnbondingDelegation {
    let ubd = node
        .unbonding(&address(delegator), &valoper(name), at)
        .await
        .unwrap_or_else(|s| panic!("unbonding {delegator} <- {name} at {at:?}: {s}"));
    assert_eq!(
        (
            ubd.delegator_address.as_str(),
            ubd.validator_address.as_str()
        ),
        (address(delegator).as_str(), valoper(name).as_str())
    );
    ubd
}

async fn assert_no_unbonding(node: &TestNode, delegator: &str, name: &str, at: At) {
    match node
        .unbonding(&address(delegator), &valoper(name), at)
        .await
    {
        Err(s) if s.code() == tonic::Code::NotFound => {}
        other => {
            panic!("expected NotFound for unbonding {delegator} <- {name} at {at:?}, got {other:?}")
        }
    }
}

#[tokio::test]
async fn genesis_has_two_bonded_validators_with_self_delegations() {
    let node = TestNode::start_default().await;
    let mut validators = node.validators(At::Latest).await;
    validators.sort_by(|a, b| a.operator_address.cmp(&b.operator_address));
    let mut expected: Vec<String> = VALIDATORS.iter().map(|n| valoper(n)).collect();
    expected.sort();
    let operators: Vec<String> = validators
        .iter()
        .map(|v| v.operator_address.clone())
        .collect();
    assert_eq!(operators, expected);
    for v in &validators {
        assert_eq!(v.tokens, SELF_BOND.to_string());
        assert_eq!(v.delegator_shares, "10000000000000000000000000000");
        assert_eq!(
            v.status,
            BondStatus::Bonded as i32,
            "{}",
            v.operator_address
        );
        assert!(!v.jailed);
    }
    for name in VALIDATORS {
        assert_eq!(
            delegation(&node, name, name, At::Latest).await,
            (10_000_000_000 * 10u128.pow(18), SELF_BOND)
        );
        assert_eq!(
            node.balance(&address(name), BOND_DENOM, At::Latest).await,
            GENESIS_UJUNO
        );
    }
    assert_pools(&node, At::Latest, 2 * SELF_BOND, 0).await;
}

#[tokio::test]
async fn delegate_issues_shares_and_moves_coins_to_the_bonded_pool() {
    let node = TestNode::start_default().await;
    let alice = address("alice");

    let h = node
        .tx_ok(&["staking", "delegate", "alice", "validator1", "5000000ujuno"])
        .await
        .height;
    assert_eq!(
        validator(&node, "validator1", At::Height(h)).await,
        (10_005_000_000, dec_raw(10_005_000_000))
    );
    assert_eq!(
        node.validator(&valoper("validator1"), At::Height(h))
            .await
            .delegator_shares,
        "10005000000000000000000000000"
    );
    assert_eq!(
        validator(&node, "validator1", At::Height(h - 1)).await,
        (SELF_BOND, SELF_BOND * 10u128.pow(18))
    );
    let response = node
        .delegation(&alice, &valoper("validator1"), At::Height(h))
        .await
        .expect("alice's delegation");
    assert_eq!(
        response.delegation.expect("delegation").shares,
        "5000000000000000000000000"
    );
    assert_eq!(
        response.balance,
        Some(Coin {
            denom: BOND_DENOM.into(),
            amount: "5000000".into()
        })
    );
    assert_no_delegation(&node, "alice", "validator1", At::Height(h - 1)).await;
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Height(h)).await,
        GENESIS_UJUNO - 5_000_000
    );
    assert_pools(&node, At::Height(h), 2 * SELF_BOND + 5_000_000, 0).await;
    assert_pools(&node, At::Height(h - 1), 2 * SELF_BOND, 0).await;

    // By operator address, a tiny amount, and a second delegation that adds to the first.
    let v2 = valoper("validator2");
    node.tx_ok(&["staking", "delegate", "bob", &v2, "7ujuno"])
        .await;
    let h2 = node
        .tx_ok(&["staking", "delegate", "bob", "validator2", "3ujuno"])
        .await
        .height;
    assert_eq!(
        delegation(&node, "bob", "validator2", At::Height(h2)).await,
        (dec_raw(10), 10)
    );
    assert_eq!(
        validator(&node, "validator2", At::Height(h2)).await,
        (SELF_BOND + 10, dec_raw(SELF_BOND + 10))
    );
    assert_eq!(
        node.balance(&address("bob"), BOND_DENOM, At::Height(h2))
            .await,
        GENESIS_UJUNO - 10
    );
    assert_pools(&node, At::Height(h2), 2 * SELF_BOND + 5_000_010, 0).await;
}

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
async fn redelegate_moves_shares_between_validators() {
    let node = slow_unbonding_node().await;
    let alice = address("alice");

    node.tx_ok(&["staking", "delegate", "alice", "validator1", "8000000ujuno"])
        .await;
    let h = node
        .tx_ok(&[
            "staking",
            "redelegate",
            "alice",
            "validator1",
            &valoper("validator2"),
            "3000000ujuno",
        ])
        .await
        .height;
    assert_eq!(
        delegation(&node, "alice", "validator1", At::Height(h)).await,
        (dec_raw(5_000_000), 5_000_000)
    );
    assert_eq!(
        delegation(&node, "alice", "validator2", At::Height(h)).await,
        (dec_raw(3_000_000), 3_000_000)
    );
    assert_no_delegation(&node, "alice", "validator2", At::Height(h - 1)).await;
    assert_eq!(
        validator(&node, "validator1", At::Height(h)).await,
        (SELF_BOND + 5_000_000, dec_raw(SELF_BOND + 5_000_000))
    );
    assert_eq!(
        validator(&node, "validator2", At::Height(h)).await,
        (SELF_BOND + 3_000_000, dec_raw(SELF_BOND + 3_000_000))
    );
    // No coins pass through the delegator or the not-bonded pool.
    for at in [At::Height(h - 1), At::Height(h)] {
        assert_eq!(
            node.balance(&alice, BOND_DENOM, at).await,
            GENESIS_UJUNO - 8_000_000
        );
        assert_pools(&node, at, 2 * SELF_BOND + 8_000_000, 0).await;
    }
    assert_eq!(node.delegator_unbondings(&alice, At::Height(h)).await, []);

    // Redelegating the rest removes the source delegation.
    let h2 = node
        .tx_ok(&[
            "staking",
            "redelegate",
            "alice",
            &valoper("validator1"),
            "validator2",
            "5000000ujuno",
        ])
        .await
        .height;
    assert_no_delegation(&node, "alice", "validator1", At::Height(h2)).await;
    assert_eq!(
        delegation(&node, "alice", "validator2", At::Height(h2)).await,
        (dec_raw(8_000_000), 8_000_000)
    );
    assert_eq!(
        validator(&node, "validator1", At::Height(h2)).await,
        (SELF_BOND, dec_raw(SELF_BOND))
    );
    assert_pools(&node, At::Height(h2), 2 * SELF_BOND + 8_000_000, 0).await;
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

#[tokio::test]
async fn slash_lowers_tokens_and_every_delegation_balance_but_no_shares() {
    let node = TestNode::start_default().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "bob",
        "validator1",
        "1000000000ujuno",
    ])
    .await;
    let before = validator(&node, "validator1", At::Latest).await;
    assert_eq!(before, (11_000_000_000, dec_raw(11_000_000_000)));

    let output = node.cli(&["dev", "slash", "validator1", "0.1"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let text = stdout(&output);
    let json: serde_json::Value = serde_json::from_str(text.trim_end())
        .unwrap_or_else(|e| panic!("dev slash printed {text:?}: {e}"));
    assert_eq!(text.lines().count(), 1, "one JSON line: {text:?}");
    let n = json["height"].as_i64().expect("height");
    assert_eq!(
        json,
        serde_json::json!({"height": n, "burned": "1100000000", "tokens": "9900000000"})
    );
    assert_eq!(slashed(11_000_000_000, 1, 10), 1_100_000_000);

    let at = At::Height(n);
    assert_eq!(
        validator(&node, "validator1", At::Height(n - 1)).await,
        before
    );
    assert_eq!(
        validator(&node, "validator1", at).await,
        (9_900_000_000, dec_raw(11_000_000_000))
    );
    // Shares stay; balances follow tokens: shares x tokens / delegator_shares.
    assert_eq!(
        delegation(&node, "bob", "validator1", at).await,
        (dec_raw(1_000_000_000), 900_000_000)
    );
    assert_eq!(
        delegation(&node, "validator1", "validator1", at).await,
        (dec_raw(SELF_BOND), 9_000_000_000)
    );
    assert_eq!(
        delegation_balance(
            dec_raw(1_000_000_000),
            9_900_000_000,
            dec_raw(11_000_000_000)
        ),
        900_000_000
    );
    assert_eq!(
        node.balance(&address("bob"), BOND_DENOM, at).await,
        GENESIS_UJUNO - 1_000_000_000
    );
    assert_pools(&node, at, 9_900_000_000 + SELF_BOND, 0).await;

    // The same through gRPC `streamd.dev.v1.Dev/Slash`.
    let response = node
        .dev()
        .slash(SlashRequest {
            validator_address: valoper("validator2"),
            fraction: "0.5".into(),
        })
        .await
        .expect("Dev/Slash")
        .into_inner();
    assert!(response.height > n);
    assert_eq!(
        (response.burned.as_str(), response.tokens.as_str()),
        ("5000000000", "5000000000")
    );
    let at = At::Height(response.height);
    assert_eq!(
        validator(&node, "validator2", at).await,
        (5_000_000_000, dec_raw(SELF_BOND))
    );
    assert_eq!(
        delegation(&node, "validator2", "validator2", at).await,
        (dec_raw(SELF_BOND), 5_000_000_000)
    );
    assert_pools(&node, at, 9_900_000_000 + 5_000_000_000, 0).await;
}

#[tokio::test]
async fn delegations_after_a_slash_use_the_sdk_share_arithmetic() {
    let node = TestNode::start_default().await;
    let output = node.cli(&["dev", "slash", "validator1", "0.01"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    // 10000000000 tokens - 1% = 9900000000 tokens for 10^28 raw shares.
    let (tokens, shares) = validator(&node, "validator1", At::Latest).await;
    assert_eq!((tokens, shares), (9_900_000_000, dec_raw(SELF_BOND)));

    // Issued shares: delegator_shares x amount / tokens, truncated (QuoInt on the raw Dec).
    let h = node
        .tx_ok(&["staking", "delegate", "carol", "validator1", "2500000ujuno"])
        .await
        .height;
    let issued = shares_for_tokens(2_500_000, tokens, shares);
    assert_eq!(issued, 2_525_252_525_252_525_252_525_252);
    let (carol_shares, carol_balance) =
        delegation(&node, "carol", "validator1", At::Height(h)).await;
    assert_eq!(carol_shares, issued);
    let (tokens, shares) = validator(&node, "validator1", At::Height(h)).await;
    assert_eq!(
        (tokens, shares),
        (9_902_500_000, dec_raw(SELF_BOND) + issued)
    );
    // The delegation is worth a hair under 2500000 tokens, which both the SDK's rounding
    // (see the next test) and plain truncation report as 2499999.
    assert_eq!(
        (
            delegation_balance(issued, tokens, shares),
            truncated_value(issued, tokens, shares)
        ),
        (2_499_999, 2_499_999)
    );
    assert_eq!(carol_balance, 2_499_999);
}

#[tokio::test]
async fn delegation_balance_rounds_at_18_decimals_like_legacy_dec_quo() {
    // A case where the SDK's 18-decimal rounding and plain truncation disagree: after a 10%
    // slash of 11000000000 tokens, 1000000ujuno buys 1111111111111111111111111 raw shares
    // worth 999999.99999999999999999990...: the SDK reports 1000000, truncation 999999.
    let node = TestNode::start_default().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "bob",
        "validator1",
        "1000000000ujuno",
    ])
    .await;
    let output = node.cli(&["dev", "slash", "validator1", "0.1"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let h = node
        .tx_ok(&["staking", "delegate", "carol", "validator1", "1000000ujuno"])
        .await
        .height;
    let (tokens, shares) = validator(&node, "validator1", At::Height(h)).await;
    let issued = 1_111_111_111_111_111_111_111_111;
    assert_eq!(
        shares_for_tokens(1_000_000, 9_900_000_000, dec_raw(11_000_000_000)),
        issued
    );
    assert_eq!(
        (tokens, shares),
        (9_901_000_000, dec_raw(11_000_000_000) + issued)
    );
    assert_eq!(
        (
            delegation_balance(issued, tokens, shares),
            truncated_value(issued, tokens, shares)
        ),
        (1_000_000, 999_999)
    );
    assert_eq!(
        delegation(&node, "carol", "validator1", At::Height(h)).await,
        (issued, 1_000_000),
        "x/staking: TokensFromShares = shares.MulInt(tokens).Quo(delegator_shares) rounds to 18 \
         decimals, then TruncateInt"
    );
}

#[tokio::test]
async fn delegate_to_an_unknown_validator_fails_with_staking_code_3() {
    let node = TestNode::start_default().await;
    let nobody = valoper("carol");
    let missing = node
        .try_validator(&nobody, At::Latest)
        .await
        .expect_err("carol is not a validator");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing}");

    let failed = node
        .tx(&["staking", "delegate", "alice", &nobody, "1000ujuno"])
        .await;
    assert_eq!(
        (failed.code, failed.codespace.as_str()),
        (3, "staking"),
        "{failed:?}"
    );
    let h = failed.height;
    assert_eq!(
        node.balance(&address("alice"), BOND_DENOM, At::Height(h))
            .await,
        GENESIS_UJUNO
    );
    assert_no_delegation(&node, "alice", "carol", At::Height(h)).await;
    assert_pools(&node, At::Height(h), 2 * SELF_BOND, 0).await;
    let result = node.get_tx(&failed.txhash).await.expect("committed");
    assert_eq!(
        (result.code, result.codespace.as_str(), result.height),
        (3, "staking", h)
    );
}

#[tokio::test]
async fn tx_output_without_wait_has_height_zero() {
    let node = TestNode::start_default().await;
    let args = ["tx", "staking", "delegate", "alice", "validator1", "1ujuno"];
    let output = node.cli(&args).await;
    let outcome = parse_tx_output(&args, &output);
    assert_eq!(
        (outcome.code, outcome.height, outcome.codespace.as_str()),
        (0, 0, "")
    );
    let committed = node.wait_tx(&outcome.txhash).await;
    assert_eq!(committed.code, 0);
    assert_eq!(
        delegation(&node, "alice", "validator1", At::Height(committed.height)).await,
        (dec_raw(1), 1)
    );
}

/// Raw `LegacyDec` of a whole number.
fn dec_raw(whole: u128) -> u128 {
    int("dec", &dec(whole))
}
