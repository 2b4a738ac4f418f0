//! The chain's state machine: x/auth, x/bank and x/staking semantics of Cosmos SDK v0.50,
//! written into the SDK store layout through a block's `WriteSet`.

pub mod auth;
pub mod bank;
pub mod keys;
pub mod legacy_dec;
pub mod staking;

use crate::address::Bech32Prefixes;
use crate::store::{MultiStore, StoreKey, WriteSet};
use num_bigint::BigUint;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tendermint_proto::google::protobuf::Timestamp;

/// Chain parameters fixed at genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Staking bond denom (`ujuno`).
    pub bond_denom: String,
    /// x/staking unbonding time.
    pub unbonding_time: Duration,
    /// x/staking max entries per unbonding delegation / redelegation (SDK default 7).
    pub max_entries: usize,
    /// Bech32 prefixes.
    pub prefixes: Bech32Prefixes,
}

/// A failed transaction or message, as the SDK reports it in a `TxResponse`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{log}")]
pub struct TxError {
    /// Module codespace (`sdk`, `staking`, ...).
    pub codespace: &'static str,
    /// ABCI code within the codespace.
    pub code: u32,
    /// Human-readable log, worded as the SDK words it.
    pub log: String,
}

impl TxError {
    /// An `sdk` codespace error.
    pub fn sdk(code: u32, log: impl Into<String>) -> Self {
        let suffix = match code {
            2 => "tx parse error",
            3 => "invalid sequence",
            4 => "unauthorized",
            5 => "insufficient funds",
            6 => "unknown request",
            7 => "invalid address",
            8 => "invalid pubkey",
            9 => "unknown address",
            10 => "invalid coins",
            13 => "insufficient fee",
            15 => "no signatures supplied",
            18 => "invalid request",
            20 => "mempool is full",
            21 => "tx too large",
            32 => "incorrect account sequence",
            38 => "not found",
            _ => "error",
        };
        TxError {
            codespace: "sdk",
            code,
            log: format!("{}: {suffix}", log.into()),
        }
    }

    /// A `staking` codespace error.
    pub fn staking(code: u32, log: impl Into<String>) -> Self {
        TxError {
            codespace: "staking",
            code,
            log: log.into(),
        }
    }
}

impl From<legacy_dec::DecError> for TxError {
    /// The SDK panics on a decimal overflow or a division by zero; `BaseApp` recovers the
    /// panic and fails the tx with `ErrPanic` (codespace `undefined`, code 111222).
    fn from(e: legacy_dec::DecError) -> Self {
        TxError {
            codespace: "undefined",
            code: 111222,
            log: format!("panic: {e}"),
        }
    }
}

/// Result type of state transitions.
pub type TxResult<T> = Result<T, TxError>;

/// The context a block executes in: its writes, height and time.
pub struct Ctx {
    /// Writes of this block so far.
    pub ws: WriteSet,
    /// Height of the block being built.
    pub height: i64,
    /// Its time.
    pub time: SystemTime,
    /// Chain parameters.
    pub params: Params,
}

impl Ctx {
    /// Current state (this block's writes included).
    pub fn state(&self) -> &MultiStore {
        self.ws.state()
    }

    fn get(&self, store: StoreKey, key: &[u8]) -> Option<&Vec<u8>> {
        self.ws.state().get(store, key)
    }

    fn next_sequence(&mut self, store: StoreKey, key: &[u8]) -> u64 {
        let n = read_u64(self.get(store, key));
        self.ws
            .set(store, key.to_vec(), (n + 1).to_be_bytes().to_vec());
        n
    }
}

/// Decodes a big-endian u64 sequence value (absent = 0).
pub fn read_u64(v: Option<&Vec<u8>>) -> u64 {
    v.and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Parses an ASCII decimal integer as stored by the SDK (Int, and LegacyDec in wire form).
pub fn parse_uint(s: &str) -> Option<BigUint> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    BigUint::parse_bytes(s.as_bytes(), 10)
}

/// 10^18, the LegacyDec scale.
pub fn dec_one() -> BigUint {
    BigUint::from(10u64).pow(18)
}

/// protobuf Timestamp of a time.
pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Time of a protobuf Timestamp.
pub fn from_timestamp(ts: &Timestamp) -> SystemTime {
    UNIX_EPOCH
        + Duration::new(
            ts.seconds.max(0) as u64,
            ts.nanos.clamp(0, 999_999_999) as u32,
        )
}
