//! The dev chain's fixed identities and genesis amounts, derived the way `streamd` derives them.
//!
//! Tests compute addresses themselves (rather than asking the node) so that a node that
//! derived them differently fails the tests instead of silently agreeing with itself.

use cosmrs::AccountId;
use cosmrs::crypto::secp256k1::SigningKey;
use sha2::{Digest, Sha256};

/// Chain id `streamd init` writes when none is given.
pub const CHAIN_ID: &str = "streamd-dev-1";
/// Staking (bond) denom of the dev chain.
pub const BOND_DENOM: &str = "ujuno";
/// Second denom every user account holds at genesis.
pub const ATOM_DENOM: &str = "uatom";
/// Bech32 prefix of account addresses.
pub const ACCOUNT_PREFIX: &str = "juno";
/// Bech32 prefix of validator operator addresses.
pub const VALOPER_PREFIX: &str = "junovaloper";

/// Every dev key, in the order `streamd keys list` prints them.
pub const DEV_KEYS: [&str; 5] = ["alice", "bob", "carol", "validator1", "validator2"];
/// The two genesis validators (their keys are also dev keys).
pub const VALIDATORS: [&str; 2] = ["validator1", "validator2"];

/// `ujuno` every dev account holds at genesis (validators: after their self-delegation).
pub const GENESIS_UJUNO: u128 = 100_000_000_000;
/// `uatom` alice, bob and carol hold at genesis.
pub const GENESIS_UATOM: u128 = 1_000_000_000;
/// Each validator's self-delegation at genesis, which is also its genesis tokens.
pub const SELF_BOND: u128 = 10_000_000_000;

/// Module name whose SHA-256 prefix is the bonded pool's address.
pub const BONDED_POOL: &str = "bonded_tokens_pool";
/// Module name whose SHA-256 prefix is the not-bonded pool's address.
pub const NOT_BONDED_POOL: &str = "not_bonded_tokens_pool";

/// All `ujuno` in existence at genesis: five funded accounts plus the two self-bonds in
/// the bonded pool.
pub const GENESIS_UJUNO_TOTAL: u128 = 5 * GENESIS_UJUNO + 2 * SELF_BOND;

/// The secret key of dev key `name`: SHA-256("streamd-dev-key/" + name), as the node does.
pub fn signing_key(name: &str) -> SigningKey {
    let secret = Sha256::digest(format!("streamd-dev-key/{name}").as_bytes());
    SigningKey::from_slice(&secret).expect("a SHA-256 digest is a valid secp256k1 secret")
}

/// The `juno1...` account address of dev key `name`.
pub fn address(name: &str) -> String {
    account_id(name, ACCOUNT_PREFIX)
}

/// The `junovaloper1...` operator address of dev key `name` (same 20 bytes as its account).
pub fn valoper(name: &str) -> String {
    account_id(name, VALOPER_PREFIX)
}

fn account_id(name: &str, prefix: &str) -> String {
    signing_key(name)
        .public_key()
        .account_id(prefix)
        .expect("secp256k1 keys have account ids")
        .to_string()
}

/// The address of module account `module`: the first 20 bytes of SHA-256(module name).
pub fn module_address(module: &str) -> String {
    let digest = Sha256::digest(module.as_bytes());
    bech32(ACCOUNT_PREFIX, &digest[..20])
}

/// Bech32 of `bytes` with `prefix`.
pub fn bech32(prefix: &str, bytes: &[u8]) -> String {
    AccountId::new(prefix, bytes)
        .expect("valid prefix and length")
        .to_string()
}

/// Parses an Int/Dec wire string (ASCII decimal), failing the test with the field's name.
pub fn int(field: &str, value: &str) -> u128 {
    value
        .parse()
        .unwrap_or_else(|e| panic!("{field} = {value:?} is not an ASCII integer: {e}"))
}
