//! Byte-vector tests for the staking decoder.

use std::time::{Duration, UNIX_EPOCH};

use cosmos_sdk_proto::Timestamp;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, UnbondingDelegation, UnbondingDelegationEntry, Validator,
};
use prost::Message;

use crate::test_vectors::*;
use crate::{
    Address, Dec, DecodeError, Int, ParseNumberError, StateChange, UnbondingEntry, ValidatorTokens,
    decode_pair,
};

fn key(prefix: u8, addresses: &[&Address]) -> Vec<u8> {
    let mut key = vec![prefix];
    for address in addresses {
        key.extend(length_prefixed(address));
    }
    key
}

fn decode_set(key: Vec<u8>, value: Vec<u8>) -> Result<Option<StateChange>, DecodeError> {
    decode_pair(&set("staking", key, value))
}

fn delegation_value(shares: &str) -> Vec<u8> {
    Delegation {
        delegator_address: ACCOUNT_BECH32.into(),
        validator_address: VALIDATOR_BECH32.into(),
        shares: shares.into(),
    }
    .encode_to_vec()
}

fn design_entry() -> UnbondingEntry {
    UnbondingEntry {
        creation_height: 100,
        completion_time: UNIX_EPOCH + Duration::from_secs(1_704_164_645),
        initial_balance: Int::from(500u64),
        balance: Int::from(500u64),
        unbonding_id: 7,
        unbonding_on_hold_ref_count: 0,
    }
}

#[test]
fn design_delegation_vector_decodes_to_one_million_shares() {
    let change = decode_set(
        bytes(DELEGATION_KEY_HEX),
        delegation_value("1000000000000000000000000"),
    )
    .unwrap()
    .unwrap();
    let StateChange::Delegation {
        delegator,
        validator: operator,
        shares: Some(shares),
    } = change
    else {
        panic!("expected a delegation, got {change:?}");
    };
    assert_eq!(delegator, account());
    assert_eq!(operator, validator());
    assert_eq!(shares.to_string(), "1000000.000000000000000000");
}

#[test]
fn delegation_of_a_32_byte_contract_account() {
    let key = key(0x31, &[&long_address(), &validator()]);
    assert_eq!(
        decode_set(key, delegation_value("1500000000000000000")),
        Ok(Some(StateChange::Delegation {
            delegator: long_address(),
            validator: validator(),
            shares: Some(Dec::from_decimal_str("1.5").unwrap()),
        }))
    );
}

#[test]
fn deleted_delegation_has_no_shares() {
    assert_eq!(
        decode_pair(&delete("staking", bytes(DELEGATION_KEY_HEX))),
        Ok(Some(StateChange::Delegation {
            delegator: account(),
            validator: validator(),
            shares: None,
        }))
    );
}

#[test]
fn delegation_with_bad_shares_is_rejected() {
    assert_eq!(
        decode_set(bytes(DELEGATION_KEY_HEX), delegation_value("1.5")),
        Err(DecodeError::BadNumber {
            store: "staking",
            key: DELEGATION_KEY_HEX.into(),
            field: "shares",
            value: "1.5".into(),
            reason: ParseNumberError::NotADigit {
                position: 1,
                byte: b'.'
            },
        })
    );
}

#[test]
fn design_unbonding_entry_bytes_decode() {
    let entry = bytes(UNBONDING_ENTRY_HEX);
    // The vector is the canonical encoding of the entry it describes.
    let expected_proto = UnbondingDelegationEntry {
        creation_height: 100,
        completion_time: Some(Timestamp {
            seconds: 1_704_164_645,
            nanos: 0,
        }),
        initial_balance: "500".into(),
        balance: "500".into(),
        unbonding_id: 7,
        unbonding_on_hold_ref_count: 0,
    };
    assert_eq!(expected_proto.encode_to_vec(), entry);

    let mut value = UnbondingDelegation {
        delegator_address: ACCOUNT_BECH32.into(),
        validator_address: VALIDATOR_BECH32.into(),
        entries: Vec::new(),
    }
    .encode_to_vec();
    // entries = 3, length-delimited, carrying the vector's exact bytes.
    value.extend([0x1a, u8::try_from(entry.len()).unwrap()]);
    value.extend(&entry);

    assert_eq!(
        decode_set(key(0x32, &[&account(), &validator()]), value),
        Ok(Some(StateChange::UnbondingDelegation {
            delegator: account(),
            validator: validator(),
            entries: Some(vec![design_entry()]),
        }))
    );
}

#[test]
fn unbonding_with_several_entries_and_nanos() {
    let entry = |height: i64, seconds: i64, nanos: i32, balance: &str| UnbondingDelegationEntry {
        creation_height: height,
        completion_time: Some(Timestamp { seconds, nanos }),
        initial_balance: "1000".into(),
        balance: balance.into(),
        unbonding_id: 9,
        unbonding_on_hold_ref_count: 2,
    };
    let value = UnbondingDelegation {
        delegator_address: String::new(),
        validator_address: String::new(),
        entries: vec![entry(5, 10, 999_999_999, "1000"), entry(6, -1, 0, "900")],
    }
    .encode_to_vec();
    let change = decode_set(key(0x32, &[&long_address(), &validator()]), value).unwrap();
    let Some(StateChange::UnbondingDelegation {
        entries: Some(entries),
        ..
    }) = change
    else {
        panic!("expected unbonding entries, got {change:?}");
    };
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].completion_time,
        UNIX_EPOCH + Duration::new(10, 999_999_999)
    );
    assert_eq!(entries[0].unbonding_on_hold_ref_count, 2);
    assert_eq!(
        entries[1].completion_time,
        UNIX_EPOCH - Duration::from_secs(1)
    );
    assert_eq!(entries[1].balance, Int::from(900u64));
}

#[test]
fn deleted_unbonding_delegation_has_no_entries() {
    assert_eq!(
        decode_pair(&delete("staking", key(0x32, &[&account(), &validator()]))),
        Ok(Some(StateChange::UnbondingDelegation {
            delegator: account(),
            validator: validator(),
            entries: None,
        }))
    );
}

#[test]
fn unbonding_entry_without_completion_time_or_with_bad_time_is_rejected() {
    let record = |completion_time| UnbondingDelegation {
        delegator_address: String::new(),
        validator_address: String::new(),
        entries: vec![UnbondingDelegationEntry {
            completion_time,
            initial_balance: "1".into(),
            balance: "1".into(),
            ..Default::default()
        }],
    };
    let key = key(0x32, &[&account(), &validator()]);
    assert!(matches!(
        decode_set(key.clone(), record(None).encode_to_vec()),
        Err(DecodeError::MissingField {
            field: "completion_time",
            ..
        })
    ));
    for (seconds, nanos) in [(0, -1), (0, 1_000_000_000), (i64::MAX, 0), (i64::MIN, 0)] {
        let value = record(Some(Timestamp { seconds, nanos })).encode_to_vec();
        assert_eq!(
            decode_set(key.clone(), value),
            Err(DecodeError::BadTimestamp {
                store: "staking",
                key: hex::encode(&key),
                field: "completion_time",
                seconds,
                nanos,
            })
        );
    }
}

#[test]
fn unbonding_entry_with_bad_balance_is_rejected() {
    let value = UnbondingDelegation {
        delegator_address: String::new(),
        validator_address: String::new(),
        entries: vec![UnbondingDelegationEntry {
            completion_time: Some(Timestamp::default()),
            initial_balance: "500".into(),
            balance: "-5".into(),
            ..Default::default()
        }],
    }
    .encode_to_vec();
    assert!(matches!(
        decode_set(key(0x32, &[&account(), &validator()]), value),
        Err(DecodeError::BadNumber {
            field: "balance",
            ..
        })
    ));
}

#[test]
fn validator_record_yields_tokens_and_shares() {
    let value = Validator {
        operator_address: VALIDATOR_BECH32.into(),
        jailed: true,
        status: 3,
        tokens: "900000".into(),
        delegator_shares: "1000000000000000000000000".into(),
        min_self_delegation: "1".into(),
        ..Default::default()
    }
    .encode_to_vec();
    assert_eq!(
        decode_set(key(0x21, &[&validator()]), value),
        Ok(Some(StateChange::Validator {
            operator: validator(),
            value: Some(ValidatorTokens {
                tokens: Int::from(900_000u64),
                delegator_shares: Dec::from_int(&Int::from(1_000_000u64)),
            }),
        }))
    );
}

#[test]
fn deleted_validator_has_no_value() {
    assert_eq!(
        decode_pair(&delete("staking", key(0x21, &[&long_address()]))),
        Ok(Some(StateChange::Validator {
            operator: long_address(),
            value: None,
        }))
    );
}

#[test]
fn validator_with_empty_tokens_is_rejected() {
    let value = Validator {
        delegator_shares: "1".into(),
        ..Default::default()
    }
    .encode_to_vec();
    assert!(matches!(
        decode_set(key(0x21, &[&validator()]), value),
        Err(DecodeError::BadNumber {
            field: "tokens",
            reason: ParseNumberError::Empty,
            ..
        })
    ));
}

#[test]
fn garbage_values_are_protobuf_errors() {
    for (prefix, addresses, message) in [
        (0x21, vec![&validator()], "cosmos.staking.v1beta1.Validator"),
        (
            0x31,
            vec![&account(), &validator()],
            "cosmos.staking.v1beta1.Delegation",
        ),
        (
            0x32,
            vec![&account(), &validator()],
            "cosmos.staking.v1beta1.UnbondingDelegation",
        ),
    ] {
        let result = decode_set(key(prefix, &addresses), vec![0x0a, 0x05, 0xff]);
        assert!(
            matches!(&result, Err(DecodeError::Protobuf { store: "staking", message: m, .. }) if *m == message),
            "{result:?}"
        );
    }
}

#[test]
fn empty_values_on_sets_are_missing() {
    for prefix in [0x21, 0x31, 0x32] {
        let key = key(
            prefix,
            &[&account(), &validator()][..if prefix == 0x21 { 1 } else { 2 }],
        );
        assert_eq!(
            decode_set(key.clone(), Vec::new()),
            Err(DecodeError::MissingValue {
                store: "staking",
                key: hex::encode(&key),
            })
        );
    }
}

#[test]
fn malformed_keys_are_rejected() {
    let value = delegation_value("1");
    // Only the delegator: the validator's length prefix is missing.
    assert!(matches!(
        decode_set(key(0x31, &[&account()]), value.clone()),
        Err(DecodeError::TruncatedKey {
            part: "validator address",
            ..
        })
    ));
    // Validator length prefix claims 20 bytes, 3 follow.
    let mut short = key(0x31, &[&account()]);
    short.extend([20, 1, 2, 3]);
    assert!(matches!(
        decode_set(short, value.clone()),
        Err(DecodeError::BadLengthPrefix {
            part: "validator address",
            declared: 20,
            available: 3,
            ..
        })
    ));
    // Zero-length delegator.
    let mut empty = vec![0x31, 0];
    empty.extend(length_prefixed(&validator()));
    assert!(matches!(
        decode_set(empty, value.clone()),
        Err(DecodeError::EmptyAddress {
            part: "delegator address",
            ..
        })
    ));
    // Trailing bytes after the last address, for each streamed prefix, sets and deletes.
    for (prefix, addresses) in [
        (0x21, vec![&validator()]),
        (0x31, vec![&account(), &validator()]),
        (0x32, vec![&account(), &validator()]),
    ] {
        let mut long = key(prefix, &addresses);
        long.push(0xee);
        let result = decode_pair(&delete("staking", long));
        assert!(
            matches!(&result, Err(DecodeError::TrailingBytes { count: 1, .. })),
            "{prefix:#x}: {result:?}"
        );
    }
    // A bare prefix.
    assert!(matches!(
        decode_pair(&delete("staking", vec![0x21])),
        Err(DecodeError::TruncatedKey {
            part: "operator address",
            ..
        })
    ));
}

#[test]
fn indexes_redelegations_and_queues_are_not_streamed() {
    let pair_key = key(0x33, &[&account(), &validator()]);
    for prefix in [
        0x33, 0x71, 0x34, 0x35, 0x36, 0x41, 0x42, 0x37, 0x38, 0x39, 0x11, 0x50, 0xff,
    ] {
        let mut key = pair_key.clone();
        key[0] = prefix;
        assert_eq!(
            decode_set(key.clone(), vec![0xff, 0x00]),
            Ok(None),
            "{prefix:#x}"
        );
        assert_eq!(
            decode_pair(&delete("staking", key)),
            Ok(None),
            "{prefix:#x}"
        );
    }
    assert_eq!(decode_set(Vec::new(), Vec::new()), Ok(None));
}
