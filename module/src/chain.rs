//! The chain facts the module needs (bech32 prefixes, bond denom) and request parsing into
//! typed, checked values.

use cosmrs::AccountId;
use stream_abci_listener::Address;

/// Why a request was refused; rendered as `INVALID_ARGUMENT` (gRPC) or HTTP 400 (WebSocket).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A required field is empty.
    #[error("{field} is empty; expected {expected}")]
    Empty {
        /// Request field.
        field: &'static str,
        /// What it should hold.
        expected: String,
    },
    /// Not bech32.
    #[error("{field} {value:?} is not a valid bech32 address: {reason}")]
    Bech32 {
        /// Request field.
        field: &'static str,
        /// What was sent.
        value: String,
        /// Decoder's reason.
        reason: String,
    },
    /// Bech32 with the wrong human-readable part.
    #[error("{field} {value:?} has prefix {got:?}; expected a {expected}1... address")]
    WrongPrefix {
        /// Request field.
        field: &'static str,
        /// What was sent.
        value: String,
        /// Prefix found.
        got: String,
        /// Prefix expected.
        expected: String,
    },
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
    #[error(
        "unknown stream {0:?}; streams: bank/balance, bank/balances, staking/delegations, staking/delegation, staking/unbonding-delegations, staking/unbonding-delegation"
    )]
    UnknownStream(String),
    /// A feature of the wire contract this build does not serve yet.
    #[error("{0}")]
    Unsupported(&'static str),
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
        parse(field, value, &self.account_prefix)
    }

    /// Parses a validator operator address.
    pub fn validator(&self, field: &'static str, value: &str) -> Result<Address, RequestError> {
        parse(field, value, &self.validator_prefix)
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
        bech32(&self.account_prefix, a)
    }

    /// Bech32 of a validator address.
    pub fn validator_string(&self, a: &Address) -> String {
        bech32(&self.validator_prefix, a)
    }
}

fn bech32(prefix: &str, a: &Address) -> String {
    AccountId::new(prefix, a.as_bytes())
        .map(|id| id.to_string())
        .unwrap_or_else(|_| a.to_hex())
}

fn parse(field: &'static str, value: &str, prefix: &str) -> Result<Address, RequestError> {
    if value.is_empty() {
        return Err(RequestError::Empty {
            field,
            expected: format!("a {prefix}1... address"),
        });
    }
    let id: AccountId = value
        .parse()
        .map_err(|e: cosmrs::ErrorReport| RequestError::Bech32 {
            field,
            value: value.into(),
            reason: e.root_cause().to_string(),
        })?;
    if id.prefix() != prefix {
        return Err(RequestError::WrongPrefix {
            field,
            value: value.into(),
            got: id.prefix().into(),
            expected: prefix.into(),
        });
    }
    Address::new(id.to_bytes()).map_err(|e| RequestError::Bech32 {
        field,
        value: value.into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn juno() -> Chain {
        Chain {
            account_prefix: "juno".into(),
            validator_prefix: "junovaloper".into(),
            bond_denom: "ujuno".into(),
        }
    }

    #[test]
    fn addresses_round_trip_and_prefixes_are_enforced() {
        let c = juno();
        let a = Address::new(vec![9; 20]).unwrap();
        let s = c.account_string(&a);
        assert_eq!(c.account("address", &s).unwrap(), a);
        let v = c.validator_string(&a);
        assert!(matches!(
            c.account("delegator_address", &v),
            Err(RequestError::WrongPrefix { .. })
        ));
        assert!(matches!(
            c.validator("validator_address", &s),
            Err(RequestError::WrongPrefix { .. })
        ));
        assert!(matches!(
            c.account("address", "juno1xyz"),
            Err(RequestError::Bech32 { .. })
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
