//! The seam between a Cosmos-style node and the stream module: committed change sets in,
//! typed state changes out.
//!
//! After every commit the node hands the block's change set to a [`CommitListener`] as a
//! [`BlockCommit`]: the block height, the block time and the raw store writes
//! ([`StoreKVPair`]s, as in ADR-038 `ListenCommitRequest`). The same type carries blocks
//! from the in-process hook of the reference node and from the ADR-038 plugin of a Go
//! node, so everything downstream is fed by one pipeline.
//!
//! [`decode_block`] and [`decode_pair`] turn those raw writes into [`StateChange`]s, byte
//! for byte against the Cosmos SDK v0.50 store layout (DESIGN.md section 8): bank balances,
//! validator tokens and shares, delegations and unbonding delegations. Writes to keys we do
//! not stream (indexes, supply, queues, other stores) are skipped silently; writes we
//! should understand but cannot are reported as [`DecodeError`]s and never stop the block.
//!
//! The numbers are the chain's own: [`Int`] (Cosmos `math.Int`) and [`Dec`] (Cosmos
//! `LegacyDec`), with [`tokens_from_shares`] giving a delegation's balance exactly as
//! `x/staking` computes it.
//!
//! ```
//! use std::time::UNIX_EPOCH;
//! use stream_abci_listener::{BlockCommit, Int, StateChange, StoreKVPair, decode_block};
//!
//! // bank balance key: 0x02 | len | address | denom, value "1000000".
//! let mut key = vec![0x02, 20];
//! key.extend([0x63; 20]);
//! key.extend(b"stake");
//! let commit = BlockCommit {
//!     height: 7,
//!     time: UNIX_EPOCH,
//!     changes: vec![StoreKVPair {
//!         store_key: "bank".into(),
//!         delete: false,
//!         key,
//!         value: b"1000000".to_vec(),
//!     }],
//! };
//! let block = decode_block(&commit);
//! assert!(block.errors.is_empty());
//! let [StateChange::Balance { denom, amount, .. }] = block.changes.as_slice() else {
//!     panic!("one balance change expected");
//! };
//! assert_eq!((denom.as_str(), amount), ("stake", &Int::from(1_000_000u64)));
//! ```

#![warn(missing_docs)]

mod address;
mod bank;
mod bech32;
mod change;
mod commit;
mod decode;
mod error;
mod hex;
mod key;
mod math;
mod prefix;
mod staking;
#[cfg(test)]
mod test_vectors;

pub use address::{Address, AddressLengthError};
pub use bank::validate_denom;
pub use bech32::Bech32Error;
pub use change::{StateChange, UnbondingEntry, ValidatorTokens};
pub use commit::{BlockCommit, CommitListener, StoreKVPair};
pub use decode::{DecodedBlock, decode_block, decode_pair};
pub use error::DecodeError;
pub use math::{Dec, Int, ParseNumberError, tokens_from_shares};
pub use prefix::{
    BANK_STORE, STAKING_STORE, VALIDATORS_PREFIX, balances_prefix, delegations_prefix,
    unbonding_delegations_prefix,
};
