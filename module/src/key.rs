//! What a client subscribes to: a typed, checked key. Clients asking for the same key share
//! one topic in the dispatcher, so a value is computed once per block whoever listens.

use stream_abci_listener::Address;

/// The six subscription types (the `type` label of the metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionKind {
    /// One balance.
    Balance,
    /// All balances of an account.
    Balances,
    /// One delegation.
    Delegation,
    /// All delegations of a delegator.
    Delegations,
    /// One unbonding delegation.
    UnbondingDelegation,
    /// All unbonding delegations of a delegator.
    UnbondingDelegations,
}

impl SubscriptionKind {
    /// Every kind.
    pub const ALL: [SubscriptionKind; 6] = [
        SubscriptionKind::Balance,
        SubscriptionKind::Balances,
        SubscriptionKind::Delegation,
        SubscriptionKind::Delegations,
        SubscriptionKind::UnbondingDelegation,
        SubscriptionKind::UnbondingDelegations,
    ];

    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            SubscriptionKind::Balance => "balance",
            SubscriptionKind::Balances => "balances",
            SubscriptionKind::Delegation => "delegation",
            SubscriptionKind::Delegations => "delegations",
            SubscriptionKind::UnbondingDelegation => "unbonding_delegation",
            SubscriptionKind::UnbondingDelegations => "unbonding_delegations",
        }
    }
}

/// A subscription's key: which state it follows. Addresses are checked raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionKey {
    /// Balance of `denom` held by `address`.
    Balance {
        /// Account.
        address: Address,
        /// Denom.
        denom: String,
    },
    /// All balances of `address`.
    Balances {
        /// Account.
        address: Address,
    },
    /// The delegation of `delegator` to `validator`.
    Delegation {
        /// Delegator account.
        delegator: Address,
        /// Validator operator.
        validator: Address,
    },
    /// All delegations of `delegator`.
    Delegations {
        /// Delegator account.
        delegator: Address,
    },
    /// The unbonding delegation of `delegator` from `validator`.
    UnbondingDelegation {
        /// Delegator account.
        delegator: Address,
        /// Validator operator.
        validator: Address,
    },
    /// All unbonding delegations of `delegator`.
    UnbondingDelegations {
        /// Delegator account.
        delegator: Address,
    },
}

impl SubscriptionKey {
    /// Its kind.
    pub fn kind(&self) -> SubscriptionKind {
        match self {
            SubscriptionKey::Balance { .. } => SubscriptionKind::Balance,
            SubscriptionKey::Balances { .. } => SubscriptionKind::Balances,
            SubscriptionKey::Delegation { .. } => SubscriptionKind::Delegation,
            SubscriptionKey::Delegations { .. } => SubscriptionKind::Delegations,
            SubscriptionKey::UnbondingDelegation { .. } => SubscriptionKind::UnbondingDelegation,
            SubscriptionKey::UnbondingDelegations { .. } => SubscriptionKind::UnbondingDelegations,
        }
    }

    /// The account the key is about (holder or delegator): the dispatcher's primary index.
    pub fn account(&self) -> &Address {
        match self {
            SubscriptionKey::Balance { address, .. } | SubscriptionKey::Balances { address } => {
                address
            }
            SubscriptionKey::Delegation { delegator, .. }
            | SubscriptionKey::Delegations { delegator }
            | SubscriptionKey::UnbondingDelegation { delegator, .. }
            | SubscriptionKey::UnbondingDelegations { delegator } => delegator,
        }
    }
}
