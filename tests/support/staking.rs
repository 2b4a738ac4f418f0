//! Staking views the tests assert on: a validator's (tokens, shares), a delegation's
//! (shares, balance), unbonding delegations, and the pool balances that must back them.

use cosmos_sdk_proto::cosmos::staking::v1beta1::UnbondingDelegation;

use super::accounts::{
    BOND_DENOM, BONDED_POOL, NOT_BONDED_POOL, address, int, module_address, valoper,
};
use super::queries::At;
use super::{TestNode, TestNodeOptions};

/// A node whose unbonding entries outlive the test, for tests that must act before maturity.
pub async fn slow_unbonding_node() -> TestNode {
    TestNode::start(TestNodeOptions::slow_unbonding()).await
}

/// Tokens and raw delegator shares of validator `name`.
pub async fn validator(node: &TestNode, name: &str, at: At) -> (u128, u128) {
    let v = node.validator(&valoper(name), at).await;
    assert_eq!(v.operator_address, valoper(name));
    (
        int("tokens", &v.tokens),
        int("delegator_shares", &v.delegator_shares),
    )
}

/// Raw shares and balance of `delegator`'s delegation to validator `name`; asserts its shape.
pub async fn delegation(node: &TestNode, delegator: &str, name: &str, at: At) -> (u128, u128) {
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
pub async fn assert_no_delegation(node: &TestNode, delegator: &str, name: &str, at: At) {
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
pub async fn assert_pools(node: &TestNode, at: At, bonded: u128, not_bonded: u128) {
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

/// The unbonding delegation of `delegator` from validator `name`; asserts its addresses.
pub async fn unbonding(
    node: &TestNode,
    delegator: &str,
    name: &str,
    at: At,
) -> UnbondingDelegation {
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

/// Asserts `delegator` has no unbonding delegation from validator `name` (gRPC NotFound).
pub async fn assert_no_unbonding(node: &TestNode, delegator: &str, name: &str, at: At) {
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
