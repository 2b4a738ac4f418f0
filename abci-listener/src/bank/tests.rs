//! Byte-vector tests for the bank decoder.

use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use proptest::prelude::*;
use prost::Message;

use crate::test_vectors::*;
use crate::{Address, DecodeError, Int, ParseNumberError, StateChange, decode_pair};

fn balance_key(address: &Address, denom: &[u8]) -> Vec<u8> {
    let mut key = vec![0x02];
    key.extend(length_prefixed(address));
    key.extend_from_slice(denom);
    key
}

fn balance(address: Address, denom: &str, amount: u64) -> StateChange {
    StateChange::Balance {
        address,
        denom: denom.into(),
        amount: Int::from(amount),
    }
}

fn decode_set(key: Vec<u8>, value: &[u8]) -> Result<Option<StateChange>, DecodeError> {
    decode_pair(&set("bank", key, value.to_vec()))
}

#[test]
fn design_vector_decodes_to_one_million_stake() {
    let pair = set("bank", bytes(BALANCE_KEY_HEX), bytes(BALANCE_VALUE_HEX));
    assert_eq!(
        decode_pair(&pair),
        Ok(Some(balance(account(), "stake", 1_000_000)))
    );
}

#[test]
fn deleted_balance_is_zero() {
    let pair = delete("bank", bytes(BALANCE_KEY_HEX));
    assert_eq!(decode_pair(&pair), Ok(Some(balance(account(), "stake", 0))));
}

#[test]
fn store_kv_pair_delete_encoding_from_design() {
    let encoded = bytes(&format!("0a0462616e6b 1001 1a1b {BALANCE_KEY_HEX}"));
    let pair = crate::StoreKVPair::decode(encoded.as_slice()).unwrap();
    assert_eq!(pair.store_key, "bank");
    assert!(pair.delete);
    assert!(pair.value.is_empty());
    assert_eq!(pair.encode_to_vec(), encoded);
    assert_eq!(decode_pair(&pair), Ok(Some(balance(account(), "stake", 0))));
}

#[test]
fn module_account_address_of_32_bytes() {
    let key = balance_key(
        &long_address(),
        b"ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
    );
    assert_eq!(
        decode_set(key, b"42"),
        Ok(Some(balance(
            long_address(),
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
            42
        )))
    );
}

#[test]
fn legacy_coin_value_decodes() {
    let coin = Coin {
        denom: "stake".into(),
        amount: "123456789012345678901234567890".into(),
    };
    let change = decode_set(bytes(BALANCE_KEY_HEX), &coin.encode_to_vec()).unwrap();
    assert_eq!(
        change,
        Some(StateChange::Balance {
            address: account(),
            denom: "stake".into(),
            amount: "123456789012345678901234567890".parse().unwrap(),
        })
    );
}

#[test]
fn legacy_coin_with_bad_amount_is_rejected() {
    let coin = Coin {
        denom: "stake".into(),
        amount: String::new(),
    };
    assert_eq!(
        decode_set(bytes(BALANCE_KEY_HEX), &coin.encode_to_vec()),
        Err(DecodeError::BadNumber {
            store: "bank",
            key: BALANCE_KEY_HEX.into(),
            field: "amount",
            value: String::new(),
            reason: ParseNumberError::Empty,
        })
    );
}

#[test]
fn invalid_amounts_are_bad_numbers() {
    for (value, reason) in [
        (
            "12a",
            ParseNumberError::NotADigit {
                position: 2,
                byte: b'a',
            },
        ),
        (
            "-5",
            ParseNumberError::NotADigit {
                position: 0,
                byte: b'-',
            },
        ),
        (
            " 5",
            ParseNumberError::NotADigit {
                position: 0,
                byte: b' ',
            },
        ),
    ] {
        assert_eq!(
            decode_set(bytes(BALANCE_KEY_HEX), value.as_bytes()),
            Err(DecodeError::BadNumber {
                store: "bank",
                key: BALANCE_KEY_HEX.into(),
                field: "amount",
                value: value.into(),
                reason,
            }),
            "{value:?}"
        );
    }
}

#[test]
fn empty_value_on_a_set_is_missing() {
    assert_eq!(
        decode_set(bytes(BALANCE_KEY_HEX), b""),
        Err(DecodeError::MissingValue {
            store: "bank",
            key: BALANCE_KEY_HEX.into(),
        })
    );
}

#[test]
fn garbage_binary_value_is_a_protobuf_error() {
    let result = decode_set(bytes(BALANCE_KEY_HEX), &[0xff, 0xff, 0xff]);
    assert!(
        matches!(
            &result,
            Err(DecodeError::Protobuf {
                store: "bank",
                message: "cosmos.base.v1beta1.Coin",
                ..
            })
        ),
        "{result:?}"
    );
}

#[test]
fn non_utf8_denom_is_rejected() {
    let key = balance_key(&account(), &[0x73, 0xff, 0x61]);
    assert!(matches!(
        decode_set(key, b"1"),
        Err(DecodeError::NonUtf8Denom { store: "bank", .. })
    ));
}

#[test]
fn empty_denom_is_rejected_even_on_delete() {
    let key = balance_key(&account(), b"");
    let expected = Err(DecodeError::EmptyDenom {
        store: "bank",
        key: format!("0214{ACCOUNT_HEX}"),
    });
    assert_eq!(decode_set(key.clone(), b"1"), expected);
    assert_eq!(decode_pair(&delete("bank", key)), expected);
}

#[test]
fn denoms_breaking_the_cosmos_rule_are_rejected() {
    let too_long = format!("a{}", "b".repeat(128));
    for (denom, reason) in [
        ("ab", "must be 3 to 128 characters long"),
        (too_long.as_str(), "must be 3 to 128 characters long"),
        ("1abc", "must start with a letter"),
        ("/abc", "must start with a letter"),
        ("ab c", "may only contain letters, digits and / : . _ -"),
        ("stäke", "may only contain letters, digits and / : . _ -"),
    ] {
        let key = balance_key(&account(), denom.as_bytes());
        let result = decode_set(key, b"1");
        assert!(
            matches!(&result, Err(DecodeError::InvalidDenom { denom: d, reason: r, .. }) if d == denom && *r == reason),
            "{denom:?}: {result:?}"
        );
    }
    let longest = format!("a{}", "b".repeat(127));
    let key = balance_key(&account(), longest.as_bytes());
    assert!(decode_set(key, b"1").is_ok());
    let key = balance_key(&account(), b"factory/juno1abc/my-token_v2.0:x");
    assert!(decode_set(key, b"1").is_ok());
}

#[test]
fn truncated_and_zero_length_addresses_are_rejected() {
    assert!(matches!(
        decode_set(vec![0x02], b"1"),
        Err(DecodeError::TruncatedKey {
            store: "bank",
            part: "address",
            ..
        })
    ));
    assert_eq!(
        decode_set(vec![0x02, 20, 1, 2, 3], b"1"),
        Err(DecodeError::BadLengthPrefix {
            store: "bank",
            key: "0214010203".into(),
            part: "address",
            declared: 20,
            available: 3,
        })
    );
    assert!(matches!(
        decode_set(vec![0x02, 0, b's', b't', b'a', b'k', b'e'], b"1"),
        Err(DecodeError::EmptyAddress {
            store: "bank",
            part: "address",
            ..
        })
    ));
}

#[test]
fn supply_index_and_other_prefixes_are_not_streamed() {
    // 0x00 | denom: supply.
    assert_eq!(decode_set(b"\x00stake".to_vec(), b"1000000"), Ok(None));
    // 0x03 | denom | 0x00 | len | address: denom index, empty value.
    let mut index = b"\x03stake\x00".to_vec();
    index.extend(length_prefixed(&account()));
    assert_eq!(decode_set(index.clone(), b""), Ok(None));
    assert_eq!(decode_pair(&delete("bank", index)), Ok(None));
    // Denom metadata, send-enabled flags, params, and an empty key.
    for key in [vec![0x01, 1, 2], vec![0x04, 9], vec![0x05], vec![]] {
        assert_eq!(decode_set(key, b"\x0a\x01x"), Ok(None));
    }
}

#[test]
fn error_message_names_store_key_and_reason() {
    let error = decode_set(bytes(BALANCE_KEY_HEX), b"12a").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "bank key {BALANCE_KEY_HEX}: bad amount \"12a\": \
             byte 0x61 at position 2 is not a decimal digit"
        )
    );
    assert_eq!(error.store(), "bank");
    assert_eq!(error.key_hex(), BALANCE_KEY_HEX);
}

fn any_address() -> impl Strategy<Value = Address> {
    prop::collection::vec(any::<u8>(), 1..=255).prop_map(|bytes| Address::new(bytes).unwrap())
}

fn any_amount() -> impl Strategy<Value = Int> {
    prop_oneof![
        any::<u128>().prop_map(Int::from),
        "[0-9]{1,80}".prop_map(|digits| digits.parse().unwrap()),
    ]
}

proptest! {
    #[test]
    fn valid_balances_round_trip(
        address in any_address(),
        denom in "[a-zA-Z][a-zA-Z0-9/:._-]{2,127}",
        amount in any_amount(),
        legacy_coin in any::<bool>(),
    ) {
        let value = if legacy_coin {
            Coin { denom: denom.clone(), amount: amount.to_string() }.encode_to_vec()
        } else {
            amount.to_string().into_bytes()
        };
        let pair = set("bank", balance_key(&address, denom.as_bytes()), value);
        prop_assert_eq!(
            decode_pair(&pair),
            Ok(Some(StateChange::Balance { address, denom, amount }))
        );
    }
}
