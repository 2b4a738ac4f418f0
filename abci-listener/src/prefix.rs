//! Key prefixes of the streamed entries, for readers that scan committed state (snapshots)
//! and decode what they find with [`crate::decode_pair`]: the same layout, from the same
//! crate, as the change-set decoder.

use crate::address::Address;

/// Store key of x/bank.
pub const BANK_STORE: &str = "bank";
/// Store key of x/staking.
pub const STAKING_STORE: &str = "staking";
/// `0x21`: every validator (staking store).
pub const VALIDATORS_PREFIX: &[u8] = &[0x21];

fn with_address(prefix: u8, address: &Address) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + address.as_bytes().len());
    key.push(prefix);
    key.push(address.as_bytes().len() as u8);
    key.extend_from_slice(address.as_bytes());
    key
}

/// `0x02 | len | address`: every balance of an account (bank store).
pub fn balances_prefix(address: &Address) -> Vec<u8> {
    with_address(0x02, address)
}

/// `0x31 | len | delegator`: every delegation of a delegator (staking store).
pub fn delegations_prefix(delegator: &Address) -> Vec<u8> {
    with_address(0x31, delegator)
}

/// `0x32 | len | delegator`: every unbonding delegation of a delegator (staking store).
pub fn unbonding_delegations_prefix(delegator: &Address) -> Vec<u8> {
    with_address(0x32, delegator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_the_design_keys() {
        let a = Address::new(::hex::decode("63d771218209d8bd03c482f69dfba57310f08609").unwrap())
            .unwrap();
        // DESIGN.md section 8: balance key 021463d7...f08609 || "stake".
        assert_eq!(
            ::hex::encode(balances_prefix(&a)),
            "021463d771218209d8bd03c482f69dfba57310f08609"
        );
        assert_eq!(&delegations_prefix(&a)[..2], &[0x31, 20]);
        assert_eq!(&unbonding_delegations_prefix(&a)[..2], &[0x32, 20]);
    }
}
