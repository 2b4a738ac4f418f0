//! The dev keyring: deterministic secp256k1 keys for the dev accounts, identical on every
//! machine so that docs and tests can name fixed addresses.

use crate::address::Addr;
use cosmrs::crypto::secp256k1::SigningKey;
use sha2::{Digest, Sha256};

/// Dev account names, in the order `keys list` prints them. The two validators' operator
/// accounts are the last two.
pub const DEV_KEYS: &[&str] = &["alice", "bob", "carol", "validator1", "validator2"];

/// Validator key names.
pub const VALIDATOR_KEYS: &[&str] = &["validator1", "validator2"];

/// Validator operators of a `streamd testnet` network, one per node (the first two are the
/// dev validators); derived like the dev keys and usable by name in `streamd tx`.
pub const TESTNET_VALIDATOR_KEYS: &[&str] = &[
    "validator1",
    "validator2",
    "validator3",
    "validator4",
    "validator5",
    "validator6",
    "validator7",
    "validator8",
];

/// A dev key: never use these keys on a real chain, their secrets are public.
pub struct DevKey {
    /// Name in the keyring.
    pub name: &'static str,
    /// Signing key; secret = SHA-256("streamd-dev-key/" + name).
    pub signing_key: SigningKey,
    /// Account address (RIPEMD-160(SHA-256(compressed public key))).
    pub address: Addr,
}

impl DevKey {
    /// Derives the dev key `name`, or `None` if it is not a dev key.
    pub fn get(name: &str) -> Option<DevKey> {
        let name = *DEV_KEYS
            .iter()
            .chain(TESTNET_VALIDATOR_KEYS)
            .find(|k| **k == name)?;
        let secret = Sha256::digest(format!("streamd-dev-key/{name}").as_bytes());
        let signing_key =
            SigningKey::from_slice(&secret).expect("sha256 output is a valid secp256k1 scalar");
        let address = Addr(
            signing_key
                .public_key()
                .account_id("juno")
                .expect("secp256k1 keys have 20-byte addresses")
                .to_bytes(),
        );
        Some(DevKey {
            name,
            signing_key,
            address,
        })
    }

    /// All dev keys in `DEV_KEYS` order.
    pub fn all() -> Vec<DevKey> {
        DEV_KEYS.iter().filter_map(|n| DevKey::get(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_deterministic_and_distinct() {
        let a = DevKey::all();
        let b = DevKey::all();
        assert_eq!(a.len(), DEV_KEYS.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.address, y.address);
        }
        let mut addrs: Vec<_> = a.iter().map(|k| k.address.clone()).collect();
        addrs.sort();
        addrs.dedup();
        assert_eq!(addrs.len(), DEV_KEYS.len());
        assert!(DevKey::get("mallory").is_none());
    }
}
