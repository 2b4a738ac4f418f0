//! End-to-end: malformed and wrong-prefix addresses, empty fields, invalid denoms and a
//! negative `since_height` or one above the latest height are refused with INVALID_ARGUMENT
//! and a message naming the field, and cost nothing: open streams keep their updates and
//! refused calls hold no slot.

mod stream_support;
mod support;

use stream_support::values::coin;
use stream_support::{
    Recorder, StreamKey, StreamValue, client_channel, expect_message, recorder::open_error_since,
};
use support::TestNode;
use support::accounts::{
    ACCOUNT_PREFIX, BOND_DENOM, GENESIS_UJUNO, VALOPER_PREFIX, address, bech32, valoper,
};
use tonic::Code;

/// A refused request: the key, `since_height`, the field the message must name, and text
/// the message must also contain (e.g. the expected prefix).
struct Case {
    key: StreamKey,
    since_height: i64,
    field: &'static str,
    mentions: &'static str,
}

fn case(key: StreamKey, field: &'static str, mentions: &'static str) -> Case {
    Case {
        key,
        since_height: 0,
        field,
        mentions,
    }
}

/// alice's address with its last character (part of the checksum) changed.
fn bad_checksum(name: &str) -> String {
    let mut a = address(name);
    let last = a.pop().expect("non-empty");
    a.push(if last == 'q' { 'p' } else { 'q' });
    a
}

fn bad_cases() -> Vec<Case> {
    let alice = address("alice");
    let v1 = valoper("validator1");
    let balance = |address: &str, denom: &str| StreamKey::Balance {
        address: address.to_owned(),
        denom: denom.to_owned(),
    };
    let delegation = |delegator: &str, validator: &str| StreamKey::Delegation {
        delegator: delegator.to_owned(),
        validator: validator.to_owned(),
    };
    let unbonding = |delegator: &str, validator: &str| StreamKey::UnbondingDelegation {
        delegator: delegator.to_owned(),
        validator: validator.to_owned(),
    };
    let all = |address: &str| StreamKey::AllBalances {
        address: address.to_owned(),
    };
    let delegations = |delegator: &str| StreamKey::Delegations {
        delegator: delegator.to_owned(),
    };
    let unbondings = |delegator: &str| StreamKey::UnbondingDelegations {
        delegator: delegator.to_owned(),
    };
    let cosmos_alice = bech32("cosmos", &[0x11; 20]);
    let mut cases = vec![
        // StreamBalance
        case(balance("", BOND_DENOM), "address", "juno1"),
        case(balance("juno1qqqqqq", BOND_DENOM), "address", "bech32"),
        case(
            balance(&bad_checksum("alice"), BOND_DENOM),
            "address",
            "bech32",
        ),
        case(balance("not an address", BOND_DENOM), "address", ""),
        case(
            balance(&valoper("alice"), BOND_DENOM),
            "address",
            "junovaloper",
        ),
        case(balance(&cosmos_alice, BOND_DENOM), "address", "cosmos"),
        case(balance(&alice, ""), "denom", ""),
        case(balance(&alice, "1ujuno"), "denom", ""),
        case(balance(&alice, "uj"), "denom", ""),
        case(balance(&alice, "u juno"), "denom", ""),
        case(balance(&alice, "ujuno!"), "denom", ""),
        case(
            balance(&alice, &format!("u{}", "a".repeat(128))),
            "denom",
            "",
        ),
        // StreamAllBalances
        case(all(""), "address", ""),
        case(all(&valoper("bob")), "address", "junovaloper"),
        case(all(&bad_checksum("bob")), "address", ""),
        // StreamDelegations: a validator address where the delegator belongs.
        case(delegations(""), "delegator_address", ""),
        case(delegations(&v1), "delegator_address", "junovaloper"),
        case(delegations("juno1"), "delegator_address", ""),
        // StreamDelegation
        case(delegation(&v1, &v1), "delegator_address", "junovaloper"),
        case(delegation("", &v1), "delegator_address", ""),
        case(delegation(&alice, ""), "validator_address", ""),
        case(
            delegation(&alice, &address("validator1")),
            "validator_address",
            "junovaloper",
        ),
        case(
            delegation(&alice, "junovaloper1xyz"),
            "validator_address",
            "",
        ),
        // StreamUnbondingDelegations
        case(unbondings(""), "delegator_address", ""),
        case(
            unbondings(&valoper("validator2")),
            "delegator_address",
            "junovaloper",
        ),
        // StreamUnbondingDelegation
        case(
            unbonding(&valoper("validator2"), &v1),
            "delegator_address",
            "junovaloper",
        ),
        case(
            unbonding(&alice, &alice),
            "validator_address",
            "junovaloper",
        ),
        case(unbonding(&alice, ""), "validator_address", ""),
    ];
    // A negative since_height, or one above the latest height, is refused on every RPC
    // (resuming from a streamed height is tested in stream_resume.rs).
    for (i, key) in StreamKey::all_six("alice", "validator1")
        .into_iter()
        .enumerate()
    {
        cases.push(Case {
            key,
            since_height: if i == 0 { -1 } else { 1_000_000 },
            field: "since_height",
            mentions: "",
        });
    }
    cases
}

#[tokio::test]
async fn bad_requests_get_invalid_argument_naming_the_field_and_no_other_stream_notices() {
    let node = TestNode::start_default().await;
    let bystander = client_channel(node.grpc_addr(), 2);
    let mut alice =
        Recorder::start(bystander.clone(), &StreamKey::balance("alice", BOND_DENOM)).await;
    alice.next().await;
    let mut bob = Recorder::start(bystander, &StreamKey::all_balances("bob")).await;
    bob.next().await;

    let refused_from = client_channel(node.grpc_addr(), 3);
    for Case {
        key,
        since_height,
        field,
        mentions,
    } in bad_cases()
    {
        let status = open_error_since(refused_from.clone(), &key, since_height).await;
        let what = format!("{} {key:?} since_height {since_height}", key.rpc());
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        let message = status.message();
        assert!(
            message.contains(field),
            "{what}: message {message:?} must name {field}"
        );
        let other = match field {
            "delegator_address" => Some("validator_address"),
            "validator_address" => Some("delegator_address"),
            _ => None,
        };
        if let Some(other) = other {
            assert!(
                !message.contains(other),
                "{what}: message {message:?} names {other}, not {field}"
            );
        }
        assert!(
            message.contains(mentions),
            "{what}: message {message:?} must mention {mentions:?}"
        );
    }

    // The open streams carry on as if nothing happened.
    let h = node
        .tx_ok(&["bank", "send", "alice", "bob", "1234ujuno"])
        .await
        .height;
    expect_message(
        &node,
        &mut alice,
        h,
        StreamValue::Balance(coin(BOND_DENOM, GENESIS_UJUNO - 1234)),
    )
    .await;
    assert_eq!(bob.next().await.height, h);

    // Refused requests hold no subscription slot: the refused client may still open the
    // default five.
    let mut held = Vec::new();
    for key in StreamKey::all_six("carol", "validator2")
        .into_iter()
        .take(5)
    {
        let mut recorder = Recorder::open(refused_from.clone(), &key)
            .await
            .unwrap_or_else(|s| panic!("{} {key:?} after refused requests: {s:?}", key.rpc()));
        stream_support::assert_committed(&node, &key, &recorder.next().await).await;
        held.push(recorder);
    }
}

#[tokio::test]
async fn well_formed_requests_for_unknown_things_are_values_not_errors() {
    let node = TestNode::start_default().await;
    let channel = client_channel(node.grpc_addr(), 2);
    let nobody = bech32(ACCOUNT_PREFIX, &[0x42; 20]);
    let contract = bech32(ACCOUNT_PREFIX, &[0x43; 32]);
    let no_validator = bech32(VALOPER_PREFIX, &[0x44; 20]);
    let cases = [
        (
            StreamKey::Balance {
                address: contract,
                denom: "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2"
                    .into(),
            },
            StreamValue::Balance(coin(
                "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
                0,
            )),
        ),
        (
            StreamKey::Delegation {
                delegator: nobody.clone(),
                validator: no_validator.clone(),
            },
            StreamValue::Delegation(None),
        ),
        (
            StreamKey::UnbondingDelegation {
                delegator: address("alice"),
                validator: no_validator,
            },
            StreamValue::UnbondingDelegation(None),
        ),
        (
            StreamKey::Delegations { delegator: nobody },
            StreamValue::Delegations(vec![]),
        ),
    ];
    for (key, value) in cases {
        let mut recorder = Recorder::open(channel.clone(), &key)
            .await
            .unwrap_or_else(|s| panic!("{} {key:?} refused: {s:?}", key.rpc()));
        let first = recorder.next().await;
        assert_eq!(first.value, value, "{} {key:?}", key.rpc());
        stream_support::assert_committed(&node, &key, &first).await;
    }
}
