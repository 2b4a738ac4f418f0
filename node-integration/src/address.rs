//! Bech32 account and validator addresses with the chain's configured prefixes.

use std::fmt;
use stream_abci_listener::Address;

/// Why a bech32 string was refused (the same words the stream module uses).
pub use stream_abci_listener::Bech32Error as AddressError;

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
        match Address::new(self.0.clone()) {
            Ok(a) => a.to_bech32(prefix),
            Err(_) => hex::encode(&self.0),
        }
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
    Address::from_bech32(field, value, prefix).map(|a| Addr(a.into_bytes()))
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
