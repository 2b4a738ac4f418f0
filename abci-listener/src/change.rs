//! [`StateChange`]: one decoded store write, in the terms clients subscribe to.

use std::time::SystemTime;

use crate::address::Address;
use crate::math::{Dec, Int};

/// One committed store write we stream, decoded.
///
/// Deletions are explicit (`None`, or a zero balance) because a subscriber must learn that
/// a delegation or an unbonding is gone, not just stop hearing about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateChange {
    /// bank `0x02`: balance of (address, denom). A deleted key means zero.
    Balance {
        /// Account holding the balance.
        address: Address,
        /// Coin denomination.
        denom: String,
        /// New amount; zero when the key was deleted.
        amount: Int,
    },
    /// staking `0x21`: validator tokens and delegator shares (other `Validator` fields
    /// ignored). `None` = validator record deleted.
    Validator {
        /// Validator operator address.
        operator: Address,
        /// New tokens and shares, or `None` when the record was deleted.
        value: Option<ValidatorTokens>,
    },
    /// staking `0x31`. `None` = delegation deleted.
    Delegation {
        /// Delegating account.
        delegator: Address,
        /// Validator operator address.
        validator: Address,
        /// New shares, or `None` when the delegation was deleted.
        shares: Option<Dec>,
    },
    /// staking `0x32`. `None` = unbonding delegation deleted.
    UnbondingDelegation {
        /// Undelegating account.
        delegator: Address,
        /// Validator operator address.
        validator: Address,
        /// All entries now pending, or `None` when the record was deleted.
        entries: Option<Vec<UnbondingEntry>>,
    },
}

/// The part of a validator record that prices its delegations: a delegation's balance is
/// `shares x tokens / delegator_shares` (see [`crate::tokens_from_shares`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorTokens {
    /// Tokens bonded to the validator, after any slashing.
    pub tokens: Int,
    /// Total shares issued to its delegators.
    pub delegator_shares: Dec,
}

/// One pending unbonding (`cosmos.staking.v1beta1.UnbondingDelegationEntry`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnbondingEntry {
    /// Height at which the unbonding began.
    pub creation_height: i64,
    /// When the tokens become liquid. A [`SystemTime`] rather than raw seconds and nanos,
    /// because consumers compare it with block times and render it as RFC 3339.
    pub completion_time: SystemTime,
    /// Tokens when the unbonding began.
    pub initial_balance: Int,
    /// Tokens still to be paid out (lower than `initial_balance` after a slash or a partial
    /// cancellation).
    pub balance: Int,
    /// Chain-wide unbonding id.
    pub unbonding_id: u64,
    /// Number of holds other modules keep on this unbonding.
    pub unbonding_on_hold_ref_count: i64,
}
