//! What subscribers receive: a wire-neutral value at a committed height. The gRPC and
//! WebSocket layers render it; the dispatcher computes it once per topic per block.

use std::sync::{Arc, OnceLock};
use std::time::Instant;
use stream_abci_listener::{Dec, Int, UnbondingEntry};

/// A coin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    /// Denom.
    pub denom: String,
    /// Amount.
    pub amount: Int,
}

/// A delegation and its value in bond tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelegationValue {
    /// Delegator, bech32.
    pub delegator: String,
    /// Validator operator, bech32.
    pub validator: String,
    /// Shares.
    pub shares: Dec,
    /// shares x validator tokens / validator delegator shares, as x/staking computes it.
    pub balance: Coin,
}

/// An unbonding delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbondingValue {
    /// Delegator, bech32.
    pub delegator: String,
    /// Validator operator, bech32.
    pub validator: String,
    /// Entries, oldest first.
    pub entries: Vec<UnbondingEntry>,
}

/// The current value of a subscription's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// One balance ("0" when absent).
    Balance(Coin),
    /// All balances, sorted by denom.
    Balances(Vec<Coin>),
    /// One delegation; `None` = not found.
    Delegation(Option<DelegationValue>),
    /// All delegations, by validator address bytes (the store order).
    Delegations(Vec<DelegationValue>),
    /// One unbonding delegation; `None` = not found.
    UnbondingDelegation(Option<UnbondingValue>),
    /// All unbonding delegations, by validator address bytes.
    UnbondingDelegations(Vec<UnbondingValue>),
}

/// A value at a committed height, as handed to subscribers.
#[derive(Debug)]
pub struct Update {
    /// Committed height the value is current at.
    pub height: i64,
    /// The value (shared by every subscriber of the key).
    pub value: Arc<Value>,
    /// When the dispatcher produced it (commit-to-send latency).
    pub produced: Instant,
    /// The WebSocket JSON, rendered once for all subscribers of the update.
    json: OnceLock<String>,
}

impl Update {
    /// An update of `value` at `height`.
    pub fn new(height: i64, value: Arc<Value>, produced: Instant) -> Update {
        Update {
            height,
            value,
            produced,
            json: OnceLock::new(),
        }
    }

    /// The WebSocket JSON text of this update (DESIGN.md 4.2), rendered on first use.
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| crate::json::render(self.height, &self.value))
    }
}
