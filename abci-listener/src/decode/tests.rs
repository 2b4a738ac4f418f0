//! Tests for store routing and whole-block decoding.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use crate::test_vectors::*;
use crate::{BlockCommit, DecodeError, Int, StateChange, decode_block, decode_pair};

#[test]
fn unknown_stores_are_not_streamed() {
    for store in ["acc", "distribution", "wasm", "", "Bank", "staking "] {
        let pair = set(store, bytes(BALANCE_KEY_HEX), bytes(BALANCE_VALUE_HEX));
        assert_eq!(decode_pair(&pair), Ok(None), "{store:?}");
    }
}

#[test]
fn block_keeps_order_and_collects_errors() {
    let time = UNIX_EPOCH + Duration::from_secs(1_704_164_645);
    let commit = BlockCommit {
        height: 42,
        time,
        changes: vec![
            set("bank", bytes(BALANCE_KEY_HEX), b"5".to_vec()),
            set("acc", vec![0x01], vec![0x02]),
            set("bank", bytes(BALANCE_KEY_HEX), b"12a".to_vec()),
            delete("staking", bytes(DELEGATION_KEY_HEX)),
            set("staking", vec![0x21, 20, 1], vec![0x0a]),
            delete("bank", bytes(BALANCE_KEY_HEX)),
        ],
    };
    let block = decode_block(&commit);
    assert_eq!(block.height, 42);
    assert_eq!(block.time, time);
    let balance = |amount: u64| StateChange::Balance {
        address: account(),
        denom: "stake".into(),
        amount: Int::from(amount),
    };
    assert_eq!(
        block.changes,
        vec![
            balance(5),
            StateChange::Delegation {
                delegator: account(),
                validator: validator(),
                shares: None,
            },
            balance(0),
        ]
    );
    assert_eq!(block.errors.len(), 2);
    assert!(matches!(
        block.errors[0],
        DecodeError::BadNumber { store: "bank", .. }
    ));
    assert!(matches!(
        block.errors[1],
        DecodeError::BadLengthPrefix {
            store: "staking",
            ..
        }
    ));
}

#[test]
fn empty_block_decodes_to_nothing() {
    let block = decode_block(&BlockCommit {
        height: 1,
        time: UNIX_EPOCH,
        changes: Vec::new(),
    });
    assert!(block.changes.is_empty());
    assert!(block.errors.is_empty());
}

/// Keys that mostly start with a prefix we decode, so the fuzzing reaches the decoders
/// rather than the `Ok(None)` fallthrough.
fn any_key() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop_oneof![
        Just(0x02u8),
        Just(0x21),
        Just(0x31),
        Just(0x32),
        Just(0x00),
        Just(0x03),
        any::<u8>(),
    ];
    let tail = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        // Well-formed addresses followed by noise.
        (1u8..=40, prop::collection::vec(any::<u8>(), 0..80)).prop_map(|(len, mut rest)| {
            rest.insert(0, len);
            rest
        }),
    ];
    (prefix, tail).prop_map(|(prefix, mut tail)| {
        tail.insert(0, prefix);
        tail
    })
}

fn any_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..128),
        "[0-9a-z .-]{0,30}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        store in prop_oneof![Just("bank"), Just("staking"), Just("other")],
        key in any_key(),
        value in any_value(),
        delete in any::<bool>(),
    ) {
        let pair = crate::StoreKVPair { store_key: store.into(), delete, key, value };
        // Any outcome is fine; reaching the end is the property.
        let _ = decode_pair(&pair);
        let block = decode_block(&BlockCommit { height: 1, time: UNIX_EPOCH, changes: vec![pair] });
        prop_assert!(block.changes.len() + block.errors.len() <= 1);
    }
}
