//! End-to-end: genesis validators, delegations and redelegations through the CLI, checked
//! digit for digit with the standard staking and bank queries.

mod support;

use cosmos_sdk_proto::cosmos::staking::v1beta1::BondStatus;
use stream_proto::cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO, SELF_BOND, VALIDATORS, address, valoper};
use support::dec::dec_raw;
use support::queries::At;
use support::staking::{
    assert_no_delegation, assert_pools, delegation, slow_unbonding_node, validator,
};
use support::{TestNode, parse_tx_output};

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
