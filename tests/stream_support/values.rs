//! Expected stream values built from first principles (dev names, amounts, raw shares,
//! heights), so tests state the exact messages a user would see.

use cosmos_sdk_proto::Timestamp;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, DelegationResponse, UnbondingDelegation, UnbondingDelegationEntry,
};
use cosmrs::AccountId;

use crate::support::accounts::{BOND_DENOM, address, valoper};
use crate::support::queries::Time;

/// `Coin{denom, amount}` with the amount as the wire's decimal string.
pub fn coin(denom: &str, amount: u128) -> Coin {
    Coin {
        denom: denom.to_owned(),
        amount: amount.to_string(),
    }
}

/// The delegation of dev key `delegator` to validator `validator` (dev key name) with raw
/// `shares` (x 10^18) worth `balance` ujuno.
pub fn delegation(
    delegator: &str,
    validator: &str,
    shares: u128,
    balance: u128,
) -> DelegationResponse {
    DelegationResponse {
        delegation: Some(Delegation {
            delegator_address: address(delegator),
            validator_address: valoper(validator),
            shares: shares.to_string(),
        }),
        balance: Some(coin(BOND_DENOM, balance)),
    }
}

/// `delegations` in the store's order: by validator address bytes (as the list queries and
/// list streams return them).
pub fn in_store_order(mut delegations: Vec<DelegationResponse>) -> Vec<DelegationResponse> {
    delegations.sort_by_key(|d| {
        validator_bytes(
            &d.delegation
                .as_ref()
                .expect("delegation set")
                .validator_address,
        )
    });
    delegations
}

/// `unbondings` in the store's order (by validator address bytes).
pub fn unbondings_in_store_order(
    mut unbondings: Vec<UnbondingDelegation>,
) -> Vec<UnbondingDelegation> {
    unbondings.sort_by_key(|u| validator_bytes(&u.validator_address));
    unbondings
}

fn validator_bytes(bech32: &str) -> Vec<u8> {
    bech32
        .parse::<AccountId>()
        .unwrap_or_else(|e| panic!("{bech32} is not bech32: {e}"))
        .to_bytes()
}

/// An unbonding entry created at `creation_height`, completing at `completion`.
pub fn entry(
    creation_height: i64,
    completion: Time,
    initial_balance: u128,
    balance: u128,
    unbonding_id: u64,
) -> UnbondingDelegationEntry {
    UnbondingDelegationEntry {
        creation_height,
        completion_time: Some(Timestamp {
            seconds: completion.seconds,
            nanos: completion.nanos,
        }),
        initial_balance: initial_balance.to_string(),
        balance: balance.to_string(),
        unbonding_id,
        unbonding_on_hold_ref_count: 0,
    }
}

/// The unbonding delegation of dev key `delegator` from validator `validator`.
pub fn unbonding(
    delegator: &str,
    validator: &str,
    entries: Vec<UnbondingDelegationEntry>,
) -> UnbondingDelegation {
    UnbondingDelegation {
        delegator_address: address(delegator),
        validator_address: valoper(validator),
        entries,
    }
}
