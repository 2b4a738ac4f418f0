//! Store keys in the Cosmos SDK v0.50 layout (DESIGN.md section 8): what x/auth, x/bank and
//! x/staking write, byte for byte, so the listener decodes exactly what a real node emits.

use crate::address::Addr;

fn lp(out: &mut Vec<u8>, addr: &Addr) {
    out.push(addr.0.len() as u8);
    out.extend_from_slice(&addr.0);
}

/// x/auth `0x01 | addr` -> account (Any).
pub fn account(addr: &Addr) -> Vec<u8> {
    let mut k = vec![0x01];
    k.extend_from_slice(&addr.0);
    k
}
/// x/auth global account number sequence (u64 big-endian).
pub const GLOBAL_ACCOUNT_NUMBER: &[u8] = &[0x02];
/// x/auth account-number index prefix (`0x03 | number` -> address).
pub fn account_number(number: u64) -> Vec<u8> {
    let mut k = vec![0x03];
    k.extend_from_slice(&number.to_be_bytes());
    k
}

/// x/bank `0x00 | denom` -> supply.
pub fn supply(denom: &str) -> Vec<u8> {
    let mut k = vec![0x00];
    k.extend_from_slice(denom.as_bytes());
    k
}
/// x/bank `0x02 | len | addr` (all balances of an account).
pub fn balances(addr: &Addr) -> Vec<u8> {
    let mut k = vec![0x02];
    lp(&mut k, addr);
    k
}
/// x/bank `0x02 | len | addr | denom` -> ASCII amount.
pub fn balance(addr: &Addr, denom: &str) -> Vec<u8> {
    let mut k = balances(addr);
    k.extend_from_slice(denom.as_bytes());
    k
}
/// x/bank `0x03 | denom | 0x00 | len | addr` -> empty (address-by-denom index).
pub fn denom_index(denom: &str, addr: &Addr) -> Vec<u8> {
    let mut k = vec![0x03];
    k.extend_from_slice(denom.as_bytes());
    k.push(0);
    lp(&mut k, addr);
    k
}

/// x/staking `0x21 | len | val` -> Validator.
pub fn validator(val: &Addr) -> Vec<u8> {
    let mut k = vec![0x21];
    lp(&mut k, val);
    k
}
/// Prefix of all validators.
pub const VALIDATORS: &[u8] = &[0x21];
/// x/staking `0x31 | len | del` (all delegations of a delegator).
pub fn delegations(del: &Addr) -> Vec<u8> {
    let mut k = vec![0x31];
    lp(&mut k, del);
    k
}
/// x/staking `0x31 | len | del | len | val` -> Delegation.
pub fn delegation(del: &Addr, val: &Addr) -> Vec<u8> {
    let mut k = delegations(del);
    lp(&mut k, val);
    k
}
/// x/staking `0x71 | len | val | len | del` -> empty (delegations-by-validator index).
pub fn delegation_by_val(val: &Addr, del: &Addr) -> Vec<u8> {
    let mut k = vec![0x71];
    lp(&mut k, val);
    lp(&mut k, del);
    k
}
/// x/staking `0x32 | len | del` (all unbonding delegations of a delegator).
pub fn unbondings(del: &Addr) -> Vec<u8> {
    let mut k = vec![0x32];
    lp(&mut k, del);
    k
}
/// Prefix of all unbonding delegations.
pub const UNBONDINGS: &[u8] = &[0x32];
/// x/staking `0x32 | len | del | len | val` -> UnbondingDelegation.
pub fn unbonding(del: &Addr, val: &Addr) -> Vec<u8> {
    let mut k = unbondings(del);
    lp(&mut k, val);
    k
}
/// x/staking `0x33 | len | val | len | del` -> empty (unbonding-by-validator index).
pub fn unbonding_by_val(val: &Addr, del: &Addr) -> Vec<u8> {
    let mut k = vec![0x33];
    lp(&mut k, val);
    lp(&mut k, del);
    k
}
/// Prefix of all redelegations.
pub const REDELEGATIONS: &[u8] = &[0x34];
/// x/staking `0x34 | len | del | len | src | len | dst` -> Redelegation.
pub fn redelegation(del: &Addr, src: &Addr, dst: &Addr) -> Vec<u8> {
    let mut k = vec![0x34];
    lp(&mut k, del);
    lp(&mut k, src);
    lp(&mut k, dst);
    k
}
/// x/staking `0x35 | len | src | len | del | len | dst` -> empty.
pub fn redelegation_by_src(src: &Addr, del: &Addr, dst: &Addr) -> Vec<u8> {
    let mut k = vec![0x35];
    lp(&mut k, src);
    lp(&mut k, del);
    lp(&mut k, dst);
    k
}
/// x/staking `0x36 | len | dst | len | del | len | src` -> empty.
pub fn redelegation_by_dst(dst: &Addr, del: &Addr, src: &Addr) -> Vec<u8> {
    let mut k = vec![0x36];
    lp(&mut k, dst);
    lp(&mut k, del);
    lp(&mut k, src);
    k
}
/// x/staking prefix of redelegations into `dst` by `del` (transitive-redelegation check).
pub fn redelegations_by_dst_del(dst: &Addr, del: &Addr) -> Vec<u8> {
    let mut k = vec![0x36];
    lp(&mut k, dst);
    lp(&mut k, del);
    k
}
/// x/staking unbonding id sequence (u64 big-endian).
pub const UNBONDING_ID: &[u8] = &[0x37];
/// x/staking `0x38 | id` -> key of the unbonding delegation or redelegation holding it.
pub fn unbonding_index(id: u64) -> Vec<u8> {
    let mut k = vec![0x38];
    k.extend_from_slice(&id.to_be_bytes());
    k
}
/// x/staking `0x39 | id` -> unbonding type (u64 big-endian: 1 delegation, 2 redelegation).
pub fn unbonding_type(id: u64) -> Vec<u8> {
    let mut k = vec![0x39];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Splits a `len | addr | ...` suffix into the address and the rest.
pub fn split_addr(bytes: &[u8]) -> Option<(Addr, &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    let len = len as usize;
    (rest.len() >= len).then(|| (Addr(rest[..len].to_vec()), &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_design_byte_vectors() {
        let a = Addr(hex::decode("63d771218209d8bd03c482f69dfba57310f08609").unwrap());
        let b = Addr(hex::decode("5ef3b5f25c54946d4a89fc0d09d2f126614540f2").unwrap());
        assert_eq!(
            hex::encode(balance(&a, "stake")),
            "021463d771218209d8bd03c482f69dfba57310f086097374616b65"
        );
        assert_eq!(
            hex::encode(delegation(&a, &b)),
            "311463d771218209d8bd03c482f69dfba57310f08609145ef3b5f25c54946d4a89fc0d09d2f126614540f2"
        );
        let key = delegation(&a, &b);
        let (x, rest) = split_addr(&key[1..]).unwrap();
        assert_eq!(x, a);
        assert_eq!(split_addr(rest).unwrap().0, b);
    }
}
