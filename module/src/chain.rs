//! The chain facts the module needs (bech32 prefixes, bond denom) and request parsing into
//! typed, checked values.

use crate::handle::Start;
use stream_abci_listener::{Address, Bech32Error};

/// Why a request was refused; rendered as `INVALID_ARGUMENT` (gRPC) or HTTP 400 (WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A required non-address field is empty.
    #[error("{field} is empty; expected {expected}")]
    Empty {
        /// Request field.
        field: &'static str,
        /// What it should hold.
        expected: String,
    },
    /// A bad bech32 address (malformed, wrong prefix, empty).
    #[error(transparent)]
    Address(#[from] Bech32Error),
    /// A denom outside the Cosmos rule.
    #[error(
        "denom {denom:?} is invalid: {reason} (Cosmos denoms match [a-zA-Z][a-zA-Z0-9/:._-]{{2,127}})"
    )]
    Denom {
        /// What was sent.
        denom: String,
        /// Which part of the rule it breaks.
        reason: &'static str,
    },
    /// A stream name that does not exist.
    #[error("unknown stream {0:?}; streams: {names}", names = crate::edge::StreamType::names())]
    UnknownStream(String),
    /// A negative `since_height`.
    #[error(
        "since_height must be 0 (no resume: snapshot first) or a height to resume after, got {0}"
    )]
    NegativeSinceHeight(i64),
    /// `since_height` that is not a height (WebSocket query or `/ws` params).
    #[error("since_height {0:?} is not a height; expected an integer from 0 to {max}", max = i64::MAX)]
    SinceHeight(String),
    /// An `encoding` that does not exist.
    #[error(
        "encoding {0:?} is unknown; use json (text frames, the default) or proto (binary frames carrying the gRPC Stream*Response)"
    )]
    UnknownEncoding(String),
    /// `encoding=proto` where only JSON text can be carried.
    #[error(
        "encoding=proto is for WebSocket path routes (binary frames); Server-Sent Events carry JSON text only"
    )]
    ProtoOverSse,
    /// A `Last-Event-ID` header (SSE) that is not a height.
    #[error(
        "Last-Event-ID {0:?} is not a height; it carries the id (the height) of the last event received, an integer from 0 to {max}",
        max = i64::MAX
    )]
    LastEventId(String),
    /// A query parameter given more than once (`?since_height=1&since_height=2`).
    #[error("{0} is given more than once; give it once")]
    Repeated(&'static str),
    /// A WebSocket path parameter that is not UTF-8 once percent-decoded (`%FF`).
    #[error(
        "the {0} in the path is not valid UTF-8 once percent-decoded; send it as text, e.g. a bech32 address or a denom"
    )]
    PathNotUtf8(String),
    /// A path under `/ws/` or `/sse/` that names no stream (the message says what exists).
    #[error("{0}")]
    UnknownPath(String),
    /// A WebSocket path or query string the router could not read otherwise.
    #[error("unreadable request {part}: {reason}")]
    Unreadable {
        /// `path` or `query string`.
        part: &'static str,
        /// What the router said.
        reason: String,
    },
}

/// Where a request's `since_height` starts its subscription: 0 = snapshot, N > 0 = every
/// change after N.
pub(crate) fn start_from(since_height: i64) -> Result<Start, RequestError> {
    match since_height {
        0 => Ok(Start::Snapshot),
        n if n > 0 => Ok(Start::Since(n)),
        n => Err(RequestError::NegativeSinceHeight(n)),
    }
}

/// Bech32 prefixes and bond denom of the chain the module runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Account prefix (`juno`).
    pub account_prefix: String,
    /// Validator operator prefix (`junovaloper`).
    pub validator_prefix: String,
    /// Staking bond denom (`ujuno`): the denom of delegation balances.
    pub bond_denom: String,
}

impl Chain {
    /// Parses an account address.
    pub fn account(&self, field: &'static str, value: &str) -> Result<Address, RequestError> {
        Ok(Address::from_bech32(field, value, &self.account_prefix)?)
    }

    /// Parses a validator operator address.
    pub fn validator(&self, field: &'static str, value: &str) -> Result<Address, RequestError> {
        Ok(Address::from_bech32(field, value, &self.validator_prefix)?)
    }

    /// Checks a denom.
    pub fn denom(&self, value: &str) -> Result<String, RequestError> {
        if value.is_empty() {
            return Err(RequestError::Empty {
                field: "denom",
                expected: format!("a denom such as {}", self.bond_denom),
            });
        }
        stream_abci_listener::validate_denom(value).map_err(|reason| RequestError::Denom {
            denom: value.into(),
            reason,
        })?;
        Ok(value.into())
    }

    /// Bech32 of an account address.
    pub fn account_string(&self, a: &Address) -> String {
        a.to_bech32(&self.account_prefix)
    }

    /// Bech32 of a validator address.
    pub fn validator_string(&self, a: &Address) -> String {
        a.to_bech32(&self.validator_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fuzzing::chain as juno;

    #[test]
    fn addresses_round_trip_and_prefixes_are_enforced() {
        let c = juno();
        let a = Address::new(vec![9; 20]).unwrap();
        let s = c.account_string(&a);
        assert_eq!(c.account("address", &s).unwrap(), a);
        let v = c.validator_string(&a);
        assert!(matches!(
            c.account("delegator_address", &v),
            Err(RequestError::Address(Bech32Error::WrongPrefix { .. }))
        ));
        assert!(matches!(
            c.validator("validator_address", &s),
            Err(RequestError::Address(Bech32Error::WrongPrefix { .. }))
        ));
        assert!(matches!(
            c.account("address", "juno1xyz"),
            Err(RequestError::Address(Bech32Error::Invalid { .. }))
        ));
        let e = c.account("address", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "address is empty; expected a juno1... address"
        );
    }

    #[test]
    fn denoms_follow_the_cosmos_rule() {
        let c = juno();
        assert_eq!(c.denom("ujuno").unwrap(), "ujuno");
        assert!(c.denom("ibc/ABC123").is_ok());
        assert!(c.denom("").is_err());
        assert!(
            c.denom("1abc")
                .unwrap_err()
                .to_string()
                .contains("must start with a letter")
        );
        assert!(c.denom("ab").is_err());
    }
}
