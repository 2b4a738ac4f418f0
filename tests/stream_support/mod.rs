//! End-to-end helpers for `juno.stream.v1.Query`: subscription keys, the values a stream
//! carries, a `Recorder` that collects one stream's messages, and the standard Cosmos
//! query answer for the same key at a height.
//!
//! Builds on the shared harness (`support`), which starts every node: the stream tests open
//! streams against a `TestNode` and cross-check every message with the standard queries at
//! the message's height (`x-cosmos-block-height`).

#![allow(dead_code)] // each test binary uses a different part of these helpers

pub mod raw;
pub mod recorder;
pub mod standard;
pub mod values;
pub mod watch;

#[allow(unused_imports)]
pub use crate::support::client_channel;
#[allow(unused_imports)] // each test binary uses a different part of these helpers
pub use recorder::{Recorder, open_error};
#[allow(unused_imports)]
pub use standard::{assert_committed, expect_message, standard_value};

use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{DelegationResponse, UnbondingDelegation};

use std::time::Duration;

use crate::support::accounts::{BOND_DENOM, address, valoper};

/// Upper bound for any wait on a stream (a message, an end); generous for a loaded machine.
pub const STREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// What a stream follows: one of the six RPCs with its request fields (bech32 as sent).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKey {
    /// `StreamBalance{address, denom}`.
    Balance { address: String, denom: String },
    /// `StreamAllBalances{address}`.
    AllBalances { address: String },
    /// `StreamDelegations{delegator_address}`.
    Delegations { delegator: String },
    /// `StreamDelegation{delegator_address, validator_address}`.
    Delegation {
        delegator: String,
        validator: String,
    },
    /// `StreamUnbondingDelegations{delegator_address}`.
    UnbondingDelegations { delegator: String },
    /// `StreamUnbondingDelegation{delegator_address, validator_address}`.
    UnbondingDelegation {
        delegator: String,
        validator: String,
    },
}

impl StreamKey {
    /// Balance of `denom` held by dev key `name`.
    pub fn balance(name: &str, denom: &str) -> StreamKey {
        StreamKey::Balance {
            address: address(name),
            denom: denom.to_owned(),
        }
    }

    /// All balances of dev key `name`.
    pub fn all_balances(name: &str) -> StreamKey {
        StreamKey::AllBalances {
            address: address(name),
        }
    }

    /// All delegations of dev key `name`.
    pub fn delegations(name: &str) -> StreamKey {
        StreamKey::Delegations {
            delegator: address(name),
        }
    }

    /// The delegation of dev key `name` to validator `validator` (a dev key name).
    pub fn delegation(name: &str, validator: &str) -> StreamKey {
        StreamKey::Delegation {
            delegator: address(name),
            validator: valoper(validator),
        }
    }

    /// All unbonding delegations of dev key `name`.
    pub fn unbonding_delegations(name: &str) -> StreamKey {
        StreamKey::UnbondingDelegations {
            delegator: address(name),
        }
    }

    /// The unbonding delegation of dev key `name` from validator `validator`.
    pub fn unbonding_delegation(name: &str, validator: &str) -> StreamKey {
        StreamKey::UnbondingDelegation {
            delegator: address(name),
            validator: valoper(validator),
        }
    }

    /// The six keys of dev key `name`: ujuno balance, all balances, delegations, the
    /// delegation to and unbonding from `validator`, unbonding delegations.
    pub fn all_six(name: &str, validator: &str) -> [StreamKey; 6] {
        [
            StreamKey::balance(name, BOND_DENOM),
            StreamKey::all_balances(name),
            StreamKey::delegations(name),
            StreamKey::delegation(name, validator),
            StreamKey::unbonding_delegations(name),
            StreamKey::unbonding_delegation(name, validator),
        ]
    }

    /// The RPC's name, for messages.
    pub fn rpc(&self) -> &'static str {
        match self {
            StreamKey::Balance { .. } => "StreamBalance",
            StreamKey::AllBalances { .. } => "StreamAllBalances",
            StreamKey::Delegations { .. } => "StreamDelegations",
            StreamKey::Delegation { .. } => "StreamDelegation",
            StreamKey::UnbondingDelegations { .. } => "StreamUnbondingDelegations",
            StreamKey::UnbondingDelegation { .. } => "StreamUnbondingDelegation",
        }
    }
}

/// The value one stream message carries, in the same shape as the standard query's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamValue {
    /// A balance (amount "0" when absent).
    Balance(Coin),
    /// All balances, as `AllBalances` lists them.
    AllBalances(Vec<Coin>),
    /// All delegations, as `DelegatorDelegations` lists them.
    Delegations(Vec<DelegationResponse>),
    /// One delegation; `None` = `found=false` (the standard query answers NOT_FOUND).
    Delegation(Option<DelegationResponse>),
    /// All unbonding delegations, as `DelegatorUnbondingDelegations` lists them.
    UnbondingDelegations(Vec<UnbondingDelegation>),
    /// One unbonding delegation; `None` = `found=false`.
    UnbondingDelegation(Option<UnbondingDelegation>),
}

/// One message of a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamMessage {
    /// The committed height the value is current at (field 10).
    pub height: i64,
    /// The value.
    pub value: StreamValue,
}
