//! Bech32 forms of addresses (`juno1...`, `junovaloper1...`): parsing with the prefix
//! checked, and rendering. Shared by the node and the stream module so both refuse a bad
//! address with the same words.

use crate::address::Address;
use cosmrs::AccountId;

/// Why a bech32 string was refused; the message tells the user what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bech32Error {
    /// The field was empty.
    #[error("{field} is empty; expected a {prefix}1... address")]
    Empty {
        /// Which request field.
        field: &'static str,
        /// Expected human-readable part.
        prefix: String,
    },
    /// Not valid bech32 at all (or an address length out of range).
    #[error("{field} {value:?} is not a valid bech32 address: {reason}")]
    Invalid {
        /// Which request field.
        field: &'static str,
        /// What was sent.
        value: String,
        /// Decoder's reason.
        reason: String,
    },
    /// Valid bech32 with another prefix (for example a validator address where an account
    /// is expected).
    #[error("{field} {value:?} has prefix {got:?}; expected a {expected}1... address")]
    WrongPrefix {
        /// Which request field.
        field: &'static str,
        /// What was sent.
        value: String,
        /// Prefix found.
        got: String,
        /// Prefix expected.
        expected: String,
    },
}

impl Address {
    /// Parses `value` (the request field `field`) as a bech32 address with `prefix`.
    pub fn from_bech32(
        field: &'static str,
        value: &str,
        prefix: &str,
    ) -> Result<Address, Bech32Error> {
        if value.is_empty() {
            return Err(Bech32Error::Empty {
                field,
                prefix: prefix.into(),
            });
        }
        let invalid = |reason: String| Bech32Error::Invalid {
            field,
            value: value.into(),
            reason,
        };
        let id: AccountId = value
            .parse()
            .map_err(|e: cosmrs::ErrorReport| invalid(e.root_cause().to_string()))?;
        if id.prefix() != prefix {
            return Err(Bech32Error::WrongPrefix {
                field,
                value: value.into(),
                got: id.prefix().into(),
                expected: prefix.into(),
            });
        }
        Address::new(id.to_bytes()).map_err(|e| invalid(e.to_string()))
    }

    /// The bech32 form with `prefix` (hex if the prefix itself is unusable).
    pub fn to_bech32(&self, prefix: &str) -> String {
        AccountId::new(prefix, self.as_bytes())
            .map(|id| id.to_string())
            .unwrap_or_else(|_| self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let a = Address::new(vec![9; 20]).unwrap();
        let s = a.to_bech32("juno");
        assert!(s.starts_with("juno1"));
        assert_eq!(Address::from_bech32("address", &s, "juno").unwrap(), a);
        let v = a.to_bech32("junovaloper");
        assert!(matches!(
            Address::from_bech32("delegator", &v, "juno"),
            Err(Bech32Error::WrongPrefix { .. })
        ));
        assert!(matches!(
            Address::from_bech32("address", "juno1xyz", "juno"),
            Err(Bech32Error::Invalid { .. })
        ));
        assert_eq!(
            Address::from_bech32("address", "", "juno")
                .unwrap_err()
                .to_string(),
            "address is empty; expected a juno1... address"
        );
        let long = Address::new(vec![7; 32]).unwrap();
        assert_eq!(
            Address::from_bech32("a", &long.to_bech32("juno"), "juno").unwrap(),
            long
        );
    }
}
