//! Bech32 account and validator addresses with the chain's configured prefixes.

use cosmrs::AccountId;
use std::fmt;

/// Why a bech32 string was refused; the message tells the user what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The field was empty.
    #[error("{field} is empty; expected a {prefix}1... address")]
    Empty {
        /// Which request field.
        field: &'static str,
        /// Expected human-readable part.
        prefix: String,
    },
    /// Not valid bech32 at all.
    #[error("{field} {value:?} is not a valid bech32 address: {reason}")]
    Invalid {
        /// Which request field.
        field: &'static str,
        /// What was sent.
        value: String,
        /// Decoder's reason.
        reason: String,
    },
    /// Valid bech32 with another prefix (for example a validator address where an account is expected).
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

/// The two bech32 human-readable parts of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bech32Prefixes {
    /// Accounts, e.g. `juno`.
    pub account: String,
    /// Validator operators, e.g. `junovaloper`.
    pub validator: String,
}

impl Default for Bech32Prefixes {
    fn default() -> Self {
        Self {
            account: "juno".into(),
            validator: "junovaloper".into(),
        }
    }
}

/// Raw address bytes (20 for keys, 32 for module/contract accounts), as stored in keys.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr(pub Vec<u8>);

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr({})", hex::encode(&self.0))
    }
}

impl Addr {
    /// Bech32 form with the given prefix.
    pub fn to_bech32(&self, prefix: &str) -> String {
        AccountId::new(prefix, &self.0)
            .map(|id| id.to_string())
            .unwrap_or_else(|_| hex::encode(&self.0))
    }

    /// Module account address: the first 20 bytes of SHA-256(module name), as x/auth derives it.
    pub fn module(name: &str) -> Addr {
        use sha2::Digest;
        Addr(sha2::Sha256::digest(name.as_bytes())[..20].to_vec())
    }
}

impl Bech32Prefixes {
    /// Parses an account address (`juno1...`).
    pub fn account(&self, field: &'static str, value: &str) -> Result<Addr, AddressError> {
        parse(field, value, &self.account)
    }

    /// Parses a validator operator address (`junovaloper1...`).
    pub fn validator(&self, field: &'static str, value: &str) -> Result<Addr, AddressError> {
        parse(field, value, &self.validator)
    }

    /// Bech32 of an account address.
    pub fn acc(&self, addr: &Addr) -> String {
        addr.to_bech32(&self.account)
    }

    /// Bech32 of a validator operator address.
    pub fn val(&self, addr: &Addr) -> String {
        addr.to_bech32(&self.validator)
    }
}

fn parse(field: &'static str, value: &str, prefix: &str) -> Result<Addr, AddressError> {
    if value.is_empty() {
        return Err(AddressError::Empty {
            field,
            prefix: prefix.into(),
        });
    }
    let id: AccountId = value
        .parse()
        .map_err(|e: cosmrs::ErrorReport| AddressError::Invalid {
            field,
            value: value.into(),
            reason: e.root_cause().to_string(),
        })?;
    if id.prefix() != prefix {
        return Err(AddressError::WrongPrefix {
            field,
            value: value.into(),
            got: id.prefix().into(),
            expected: prefix.into(),
        });
    }
    Ok(Addr(id.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_prefix_errors() {
        let p = Bech32Prefixes::default();
        let a = Addr(vec![7; 20]);
        let s = p.acc(&a);
        assert!(s.starts_with("juno1"));
        assert_eq!(p.account("address", &s).unwrap(), a);
        let v = p.val(&a);
        assert!(matches!(
            p.account("address", &v),
            Err(AddressError::WrongPrefix { .. })
        ));
        assert!(matches!(
            p.account("address", "juno1notanaddress"),
            Err(AddressError::Invalid { .. })
        ));
        assert!(matches!(
            p.account("address", ""),
            Err(AddressError::Empty { .. })
        ));
    }

    #[test]
    fn module_accounts_match_the_sdk() {
        // x/auth: address = sha256("bonded_tokens_pool")[:20]; the SDK's well-known
        // cosmos1fl48vsnmsdzcv85q5d2q4z5ajdha8yu34mf0eh.
        assert_eq!(
            Addr::module("bonded_tokens_pool").to_bech32("cosmos"),
            "cosmos1fl48vsnmsdzcv85q5d2q4z5ajdha8yu34mf0eh"
        );
    }
}
