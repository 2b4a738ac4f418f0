//! Byte vectors from DESIGN.md section 8 and helpers the decoder tests share.

use cosmrs::AccountId;

use crate::address::Address;
use crate::commit::StoreKVPair;

/// The account of the DESIGN.md vectors.
pub(crate) const ACCOUNT_HEX: &str = "63d771218209d8bd03c482f69dfba57310f08609";
/// The validator operator of the DESIGN.md vectors.
pub(crate) const VALIDATOR_HEX: &str = "5ef3b5f25c54946d4a89fc0d09d2f126614540f2";
/// [`ACCOUNT_HEX`] in bech32, as the delegation value spells it.
pub(crate) const ACCOUNT_BECH32: &str = "cosmos1v0thzgvzp8vt6q7ystmfm7a9wvg0ppsfulgka7";
/// [`VALIDATOR_HEX`] in bech32, as the delegation value spells it.
pub(crate) const VALIDATOR_BECH32: &str = "cosmosvaloper1tmemtuju2j2x6j5flsxsn5h3yes52s8jqsxehx";

/// bank balance of (account, "stake").
pub(crate) const BALANCE_KEY_HEX: &str = "021463d771218209d8bd03c482f69dfba57310f086097374616b65";
/// "1000000".
pub(crate) const BALANCE_VALUE_HEX: &str = "31303030303030";
/// staking delegation of the account to the validator.
pub(crate) const DELEGATION_KEY_HEX: &str = "311463d771218209d8bd03c482f69dfba57310f08609\
                                             145ef3b5f25c54946d4a89fc0d09d2f126614540f2";
/// One `UnbondingDelegationEntry`: height 100, completion 1704164645 s, initial balance and
/// balance 500, unbonding id 7.
pub(crate) const UNBONDING_ENTRY_HEX: &str = "0864120608a5facdac061a033530302203353030 2807";

/// Decodes hex, ignoring spaces (used to group fields in the constants above).
pub(crate) fn bytes(hex_text: &str) -> Vec<u8> {
    let compact: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(compact).expect("test vector is valid hex")
}

pub(crate) fn account() -> Address {
    Address::new(bytes(ACCOUNT_HEX)).unwrap()
}

pub(crate) fn validator() -> Address {
    Address::new(bytes(VALIDATOR_HEX)).unwrap()
}

/// A 32-byte module or contract address.
pub(crate) fn long_address() -> Address {
    Address::new(
        (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(5))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

/// `len | bytes`, as addresses appear in keys.
pub(crate) fn length_prefixed(address: &Address) -> Vec<u8> {
    let mut out = vec![u8::try_from(address.as_bytes().len()).unwrap()];
    out.extend_from_slice(address.as_bytes());
    out
}

pub(crate) fn set(store: &str, key: Vec<u8>, value: Vec<u8>) -> StoreKVPair {
    StoreKVPair {
        store_key: store.into(),
        delete: false,
        key,
        value,
    }
}

pub(crate) fn delete(store: &str, key: Vec<u8>) -> StoreKVPair {
    StoreKVPair {
        store_key: store.into(),
        delete: true,
        key,
        value: Vec::new(),
    }
}

#[test]
fn bech32_strings_name_the_same_addresses_as_the_keys() {
    let account_id: AccountId = ACCOUNT_BECH32.parse().unwrap();
    assert_eq!(account_id.prefix(), "cosmos");
    assert_eq!(account_id.to_bytes(), bytes(ACCOUNT_HEX));

    let validator_id: AccountId = VALIDATOR_BECH32.parse().unwrap();
    assert_eq!(validator_id.prefix(), "cosmosvaloper");
    assert_eq!(validator_id.to_bytes(), bytes(VALIDATOR_HEX));

    let key = bytes(DELEGATION_KEY_HEX);
    assert_eq!(&key[2..22], account().as_bytes());
    assert_eq!(&key[23..], validator().as_bytes());
}
