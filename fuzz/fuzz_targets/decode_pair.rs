//! Fuzz target `decode_pair`: one store write through the change-set decoder and, when it
//! decodes, through the module's rendering of the value subscribers would see.
//!
//! Input: a flags byte (bit 0: delete; bits 1-2: store bank, staking, another store, bank),
//! a key length byte, the key, then the value (the rest).
//!
//! Properties: only streamed keys decode, and a decoded change re-encodes to exactly the key
//! it came from; deletions decode to zero/absent values and sets to present ones; a refusal
//! names the store and the key (hex); amounts, unbonding entries and their completion times
//! survive into the WebSocket JSON and the gRPC message unchanged (checked against the
//! protobuf value and a calendar computed here).
#![no_main]

use cosmos_sdk_proto::cosmos::staking::v1beta1::UnbondingDelegation;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde_json::Value;
use stream_abci_listener::{
    Address, StateChange, StoreKVPair, balances_prefix, decode_pair, delegations_prefix,
    unbonding_delegations_prefix, validate_denom,
};
use stream_module::fuzzing;

const STORES: [&str; 4] = ["bank", "staking", "distribution", "bank"];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the decoder must take this write: balances, validators, delegations, unbondings.
fn streamed(pair: &StoreKVPair) -> bool {
    matches!(
        (pair.store_key.as_str(), pair.key.first()),
        ("bank", Some(0x02)) | ("staking", Some(0x21 | 0x31 | 0x32))
    )
}

fn push_address(key: &mut Vec<u8>, a: &Address) {
    key.push(u8::try_from(a.as_bytes().len()).expect("addresses fit a length byte"));
    key.extend_from_slice(a.as_bytes());
}

/// The store key a decoded change must have come from.
fn key_of(change: &StateChange) -> Vec<u8> {
    match change {
        StateChange::Balance { address, denom, .. } => {
            let mut k = balances_prefix(address);
            k.extend_from_slice(denom.as_bytes());
            k
        }
        StateChange::Validator { operator, .. } => {
            let mut k = vec![0x21];
            push_address(&mut k, operator);
            k
        }
        StateChange::Delegation {
            delegator,
            validator,
            ..
        } => {
            let mut k = delegations_prefix(delegator);
            push_address(&mut k, validator);
            k
        }
        StateChange::UnbondingDelegation {
            delegator,
            validator,
            ..
        } => {
            let mut k = unbonding_delegations_prefix(delegator);
            push_address(&mut k, validator);
            k
        }
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days from 1970-01-01 to y-m-d (proleptic Gregorian), counted year by year.
fn days_from_epoch(y: i64, m: usize, d: i64) -> i64 {
    const BEFORE_MONTH: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let year_days = |yr: i64| 365 + i64::from(is_leap(yr));
    let mut days: i64 = if y >= 1970 {
        (1970..y).map(year_days).sum()
    } else {
        -(y..1970).map(year_days).sum::<i64>()
    };
    days += BEFORE_MONTH[m - 1] + i64::from(m > 2 && is_leap(y)) + d - 1;
    days
}

/// `YYYY-MM-DDTHH:MM:SS[.nnnnnnnnn]Z` as (seconds since the epoch, nanos); the fraction is
/// present exactly when the nanos are not zero.
fn parse_time(s: &str) -> (i64, i32) {
    let b = s.as_bytes();
    assert!(
        b.len() == 20 || b.len() == 30,
        "RFC 3339 time expected: {s}"
    );
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        assert_eq!(b[i], c, "{s}");
    }
    assert_eq!(b[b.len() - 1], b'Z', "{s}");
    let n = |r: std::ops::Range<usize>| -> i64 {
        assert!(s[r.clone()].bytes().all(|c| c.is_ascii_digit()), "{s}");
        s[r].parse().expect("digits")
    };
    let (y, mo, d) = (n(0..4), n(5..7), n(8..10));
    assert!((1..=12).contains(&mo) && (1..=31).contains(&d), "{s}");
    let seconds =
        days_from_epoch(y, mo as usize, d) * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    let nanos = if b.len() == 30 {
        assert_eq!(b[19], b'.', "{s}");
        let nanos = n(20..29);
        assert_ne!(nanos, 0, "a zero fraction is not written: {s}");
        nanos
    } else {
        0
    };
    (seconds, nanos as i32)
}

fn check_rendering(pair: &StoreKVPair, change: &StateChange) {
    let Some(rendered) = fuzzing::render_change(change) else {
        assert!(matches!(change, StateChange::Validator { .. }));
        return;
    };
    let json: Value = serde_json::from_str(&rendered.json).expect("the update is JSON");
    match change {
        StateChange::Balance { denom, amount, .. } => {
            assert_eq!(json["denom"], denom.as_str());
            assert_eq!(json["amount"], amount.to_string());
        }
        StateChange::Delegation { shares, .. } => {
            assert_eq!(json["found"], shares.is_some());
            if let Some(shares) = shares {
                assert_eq!(json["delegation"]["shares"], shares.to_string());
            }
        }
        StateChange::UnbondingDelegation { entries, .. } => {
            assert_eq!(json["found"], entries.is_some());
            let Some(entries) = entries else { return };
            let record = UnbondingDelegation::decode(pair.value.as_slice())
                .expect("the decoder accepted this value");
            let rendered_entries = json["unbonding_delegation"]["entries"]
                .as_array()
                .expect("entries");
            assert_eq!(record.entries.len(), entries.len());
            assert_eq!(rendered_entries.len(), entries.len());
            assert_eq!(rendered.grpc_completion_times.len(), entries.len());
            for (i, (proto, entry)) in record.entries.iter().zip(entries).enumerate() {
                let t = proto.completion_time.expect("the decoder requires it");
                let time = (t.seconds, t.nanos);
                assert_eq!(
                    rendered.grpc_completion_times[i], time,
                    "gRPC completion_time"
                );
                let text = rendered_entries[i]["completion_time"]
                    .as_str()
                    .expect("a time string");
                assert_eq!(parse_time(text), time, "JSON completion_time {text}");
                assert_eq!(entry.creation_height, proto.creation_height);
                assert_eq!(entry.unbonding_id, proto.unbonding_id);
                assert_eq!(rendered_entries[i]["balance"], entry.balance.to_string());
                assert_eq!(
                    rendered_entries[i]["initial_balance"],
                    entry.initial_balance.to_string()
                );
            }
        }
        StateChange::Validator { .. } => unreachable!("validators render nothing"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((&key_len, rest)) = rest.split_first() else {
        return;
    };
    let (key, value) = rest.split_at(usize::from(key_len).min(rest.len()));
    let pair = StoreKVPair {
        store_key: STORES[usize::from(flags >> 1) % STORES.len()].into(),
        delete: flags & 1 == 1,
        key: key.to_vec(),
        value: value.to_vec(),
    };
    match decode_pair(&pair) {
        Ok(None) => assert!(!streamed(&pair), "a streamed write was ignored: {pair:?}"),
        Err(e) => {
            assert!(streamed(&pair), "an ignored write was refused: {e}");
            assert_eq!(e.store(), pair.store_key);
            assert_eq!(e.key_hex(), hex(&pair.key));
            let message = e.to_string();
            let site = format!("{} key {}: ", pair.store_key, hex(&pair.key));
            assert!(
                message.starts_with(&site) && message.len() > site.len(),
                "{message}"
            );
        }
        Ok(Some(change)) => {
            assert!(streamed(&pair), "{change:?}");
            assert_eq!(key_of(&change), pair.key, "the key must re-encode exactly");
            if !pair.delete {
                assert!(!pair.value.is_empty(), "a set with no value decoded");
            }
            match &change {
                StateChange::Balance { denom, amount, .. } => {
                    assert_eq!(pair.store_key, "bank");
                    assert_eq!(validate_denom(denom), Ok(()));
                    if pair.delete {
                        assert!(amount.is_zero());
                    } else if pair.value.iter().all(u8::is_ascii_digit) {
                        let digits = std::str::from_utf8(&pair.value).expect("ASCII");
                        let digits = digits.trim_start_matches('0');
                        let expected = if digits.is_empty() { "0" } else { digits };
                        assert_eq!(amount.to_string(), expected);
                    }
                }
                StateChange::Validator { value, .. } => {
                    assert_eq!(value.is_none(), pair.delete)
                }
                StateChange::Delegation { shares, .. } => {
                    assert_eq!(shares.is_none(), pair.delete)
                }
                StateChange::UnbondingDelegation { entries, .. } => {
                    assert_eq!(entries.is_none(), pair.delete)
                }
            }
            check_rendering(&pair, &change);
        }
    }
});
