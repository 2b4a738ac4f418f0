//! What subscribers receive: a wire-neutral value at a committed height. The gRPC and
//! WebSocket layers render it; the dispatcher computes it once per topic per block.

use axum::extract::ws::Utf8Bytes;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
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
    /// The WebSocket JSON, rendered once for all subscribers of the update; each
    /// connection's frame shares its bytes (a reference count, no copy).
    json: OnceLock<Utf8Bytes>,
    /// The protobuf `Stream*Response` (`?encoding=proto`), encoded once when first asked for.
    proto: OnceLock<bytes::Bytes>,
}

impl Update {
    /// An update of `value` at `height`.
    pub fn new(height: i64, value: Arc<Value>, produced: Instant) -> Update {
        Update {
            height,
            value,
            produced,
            json: OnceLock::new(),
            proto: OnceLock::new(),
        }
    }

    /// The WebSocket JSON text of this update (DESIGN.md 4.2), rendered on first use.
    pub fn json(&self) -> &str {
        self.frame().as_str()
    }

    /// The same text as a WebSocket text frame's payload, shared with every other
    /// subscriber's frame of this update.
    pub fn frame(&self) -> &Utf8Bytes {
        self.json
            .get_or_init(|| crate::json::render(self.height, &self.value).into())
    }

    /// The protobuf `Stream*Response` of this update's kind, encoded on first use and shared
    /// (a clone is a reference count).
    pub fn proto(&self) -> bytes::Bytes {
        self.proto
            .get_or_init(|| crate::grpc::protobuf(self).into())
            .clone()
    }
}

/// `t` as protobuf `Timestamp` parts: whole seconds since the Unix epoch (negative before
/// it) and the non-negative nanoseconds that follow them. The decoder admits the protobuf
/// range, years 1 to 9999, so times before 1970 must not collapse onto the epoch.
pub fn unix_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs() as i64, after.subsec_nanos()),
        Err(e) => {
            let before = e.duration();
            let seconds = -(before.as_secs() as i64);
            match before.subsec_nanos() {
                0 => (seconds, 0),
                n => (seconds - 1, 1_000_000_000 - n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unix_time_keeps_times_before_the_epoch() {
        assert_eq!(unix_time(UNIX_EPOCH + Duration::new(5, 7)), (5, 7));
        assert_eq!(unix_time(UNIX_EPOCH - Duration::new(1, 0)), (-1, 0));
        // protobuf: nanos count forward from the (earlier) whole second.
        assert_eq!(
            unix_time(UNIX_EPOCH - Duration::new(1, 500_000_000)),
            (-2, 500_000_000)
        );
        assert_eq!(
            unix_time(UNIX_EPOCH - Duration::new(62_135_596_800, 0)),
            (-62_135_596_800, 0)
        );
    }
}
