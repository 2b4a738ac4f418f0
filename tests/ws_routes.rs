//! End-to-end: the six WebSocket path routes and the multiplexed `/ws` endpoint on the API
//! port (DESIGN.md 4.2) with a real WebSocket client. Every message is compared, as parsed
//! JSON, with the value the standard Cosmos queries return at the message's height, and with
//! the known dev-chain values: snapshot first, then exactly one message per block in which
//! the value changed.

mod support;
mod ws_support;

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use support::accounts::{
    ATOM_DENOM, BOND_DENOM, GENESIS_UATOM, GENESIS_UJUNO, SELF_BOND, address, valoper,
};
use support::{TestNode, TestNodeOptions};
use ws_support::client::WsClient;
use ws_support::expected::{WsStream, dec18, rfc3339};
use ws_support::{loopback, metrics};

/// A node whose unbonding entries outlive the test.
async fn node() -> TestNode {
    TestNode::start(TestNodeOptions::slow_unbonding()).await
}

/// The `height` of a stream message.
fn height_of(message: &Json) -> i64 {
    message["height"]
        .as_i64()
        .unwrap_or_else(|| panic!("message without a numeric height: {message}"))
}

/// Reads the next message of a path route and asserts it is `stream`'s value at `height`.
async fn expect_at(node: &TestNode, client: &mut WsClient, stream: &WsStream, height: i64) -> Json {
    let message = client.next_json().await;
    assert_eq!(
        height_of(&message),
        height,
        "{}: the next message must be the value at block {height}: {message}",
        client.path
    );
    let expected = stream.expected(node, height).await;
    assert_eq!(
        message, expected,
        "{}: message vs standard queries at {height}",
        client.path
    );
    message
}

/// Reads a snapshot and asserts it is `stream`'s value at the (committed) height it names.
async fn expect_snapshot(node: &TestNode, client: &mut WsClient, stream: &WsStream) -> Json {
    let message = client.next_json().await;
    let height = height_of(&message);
    assert!(
        height >= 1 && height <= node.height().await,
        "{}: snapshot at an uncommitted height: {message}",
        client.path
    );
    assert_eq!(
        message,
        stream.expected(node, height).await,
        "{}: snapshot vs standard queries at {height}",
        client.path
    );
    message
}

#[test]
fn expected_formats_match_the_design_examples() {
    assert_eq!(dec18("5000000000000000000000"), "5000.000000000000000000");
    assert_eq!(
        dec18("1000000000000000000000000"),
        "1000000.000000000000000000"
    );
    assert_eq!(dec18("1"), "0.000000000000000001");
    assert_eq!(rfc3339(1_704_164_645, 0), "2024-01-02T03:04:05Z");
    assert_eq!(rfc3339(0, 5), "1970-01-01T00:00:00.000000005Z");
    assert_eq!(
        rfc3339(1_795_418_671, 258_011_211),
        "2026-11-23T07:24:31.258011211Z"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_routes_send_the_snapshot_then_each_change_as_exact_json() {
    let node = node().await;
    let api = node.api_addr();
    let (alice, v1) = (address("alice"), valoper("validator1"));
    let balance = WsStream::Balance {
        address: alice.clone(),
        denom: BOND_DENOM.into(),
    };
    let balances = WsStream::Balances {
        address: alice.clone(),
    };
    let delegations = WsStream::Delegations {
        delegator: alice.clone(),
    };
    let delegation = WsStream::Delegation {
        delegator: alice.clone(),
        validator: v1.clone(),
    };
    let unbondings = WsStream::UnbondingDelegations {
        delegator: alice.clone(),
    };
    let unbonding = WsStream::UnbondingDelegation {
        delegator: alice.clone(),
        validator: v1.clone(),
    };
    // One client IP per route: the default limit is 5 subscriptions per client IP.
    let mut c = Vec::new();
    for (i, s) in [
        &balance,
        &balances,
        &delegations,
        &delegation,
        &unbondings,
        &unbonding,
    ]
    .into_iter()
    .enumerate()
    {
        c.push(WsClient::connect(api, &s.path(), loopback(10 + i as u8)).await);
    }
    let [
        c_balance,
        c_balances,
        c_delegations,
        c_delegation,
        c_unbondings,
        c_unbonding,
    ] = &mut c[..]
    else {
        unreachable!()
    };

    // Snapshots: the standard queries' answer, and the known genesis values of the dev chain.
    let m = expect_snapshot(&node, c_balance, &balance).await;
    assert_eq!(
        m,
        json!({"denom": "ujuno", "amount": GENESIS_UJUNO.to_string(), "height": height_of(&m)})
    );
    let m = expect_snapshot(&node, c_balances, &balances).await;
    assert_eq!(
        m,
        json!({"balances": [
            {"denom": ATOM_DENOM, "amount": GENESIS_UATOM.to_string()},
            {"denom": BOND_DENOM, "amount": GENESIS_UJUNO.to_string()}],
            "height": height_of(&m)})
    );
    let m = expect_snapshot(&node, c_delegations, &delegations).await;
    assert_eq!(m, json!({"delegations": [], "height": height_of(&m)}));
    let m = expect_snapshot(&node, c_delegation, &delegation).await;
    assert_eq!(
        m,
        json!({"delegation": null, "balance": null, "found": false, "height": height_of(&m)})
    );
    let m = expect_snapshot(&node, c_unbondings, &unbondings).await;
    assert_eq!(
        m,
        json!({"unbonding_delegations": [], "height": height_of(&m)})
    );
    let m = expect_snapshot(&node, c_unbonding, &unbonding).await;
    assert_eq!(
        m,
        json!({"unbonding_delegation": null, "found": false, "height": height_of(&m)})
    );

    // Delegate: bank and delegation routes move, unbonding routes do not.
    let h1 = node
        .tx_ok(&["staking", "delegate", "alice", "validator1", "5000ujuno"])
        .await
        .height;
    let m = expect_at(&node, c_balance, &balance, h1).await;
    assert_eq!(m["amount"], json!((GENESIS_UJUNO - 5000).to_string()));
    expect_at(&node, c_balances, &balances, h1).await;
    let m = expect_at(&node, c_delegation, &delegation, h1).await;
    assert_eq!(
        m,
        json!({"delegation": {"delegator_address": alice, "validator_address": v1,
                              "shares": "5000.000000000000000000"},
               "balance": {"denom": "ujuno", "amount": "5000"}, "found": true, "height": h1})
    );
    let m = expect_at(&node, c_delegations, &delegations, h1).await;
    assert_eq!(
        m,
        json!({"delegations": [{"delegation": {"delegator_address": alice, "validator_address": v1,
                                               "shares": "5000.000000000000000000"},
                                "balance": {"denom": "ujuno", "amount": "5000"}}],
               "height": h1})
    );

    // Unbond: delegation and unbonding routes move; alice's bank balance does not (yet).
    let h2 = node
        .tx_ok(&["staking", "unbond", "alice", "validator1", "2000ujuno"])
        .await
        .height;
    let m = expect_at(&node, c_delegation, &delegation, h2).await;
    assert_eq!(m["delegation"]["shares"], json!("3000.000000000000000000"));
    expect_at(&node, c_delegations, &delegations, h2).await;
    let m = expect_at(&node, c_unbonding, &unbonding, h2).await;
    let entry = &m["unbonding_delegation"]["entries"][0];
    assert_eq!(
        (
            &entry["creation_height"],
            &entry["initial_balance"],
            &entry["balance"]
        ),
        (&json!(h2), &json!("2000"), &json!("2000")),
        "{m}"
    );
    assert_eq!(
        m["unbonding_delegation"]["entries"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    expect_at(&node, c_unbondings, &unbondings, h2).await;

    // Send: only the bank routes move; their previous message was block h1, not h2.
    let h3 = node
        .tx_ok(&["bank", "send", "alice", "bob", "1000ujuno"])
        .await
        .height;
    let m = expect_at(&node, c_balance, &balance, h3).await;
    assert_eq!(m["amount"], json!((GENESIS_UJUNO - 6000).to_string()));
    expect_at(&node, c_balances, &balances, h3).await;

    // Cancel part of the unbonding: staking routes move; nothing was sent for block h3.
    let h4 = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            "validator1",
            "500ujuno",
            &h2.to_string(),
        ])
        .await
        .height;
    let m = expect_at(&node, c_unbonding, &unbonding, h4).await;
    assert_eq!(
        m["unbonding_delegation"]["entries"][0]["balance"],
        json!("1500")
    );
    expect_at(&node, c_unbondings, &unbondings, h4).await;
    let m = expect_at(&node, c_delegation, &delegation, h4).await;
    assert_eq!(m["delegation"]["shares"], json!("3500.000000000000000000"));
    expect_at(&node, c_delegations, &delegations, h4).await;

    // Cancel the rest: the unbonding delegation is removed, and that is reported.
    let h5 = node
        .tx_ok(&[
            "staking",
            "cancel-unbond",
            "alice",
            "validator1",
            "1500ujuno",
            &h2.to_string(),
        ])
        .await
        .height;
    let m = expect_at(&node, c_unbonding, &unbonding, h5).await;
    assert_eq!(
        m,
        json!({"unbonding_delegation": null, "found": false, "height": h5})
    );
    let m = expect_at(&node, c_unbondings, &unbondings, h5).await;
    assert_eq!(m, json!({"unbonding_delegations": [], "height": h5}));
    expect_at(&node, c_delegation, &delegation, h5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_routes_take_denoms_with_slashes_empty_accounts_and_self_delegations() {
    let node = node().await;
    let api = node.api_addr();
    let ibc = "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2";
    let nobody = support::accounts::bech32("juno", &[7u8; 20]);
    let cases = [
        (
            WsStream::Balance {
                address: address("alice"),
                denom: ibc.into(),
            },
            json!({"denom": ibc, "amount": "0"}),
        ),
        (
            WsStream::Balances {
                address: nobody.clone(),
            },
            json!({"balances": []}),
        ),
        (
            WsStream::Delegations {
                delegator: address("validator1"),
            },
            json!({"delegations": [{
                "delegation": {"delegator_address": address("validator1"),
                               "validator_address": valoper("validator1"),
                               "shares": format!("{SELF_BOND}.000000000000000000")},
                "balance": {"denom": "ujuno", "amount": SELF_BOND.to_string()}}]}),
        ),
        (
            WsStream::Delegation {
                delegator: address("validator2"),
                validator: valoper("validator2"),
            },
            json!({"delegation": {"delegator_address": address("validator2"),
                                  "validator_address": valoper("validator2"),
                                  "shares": format!("{SELF_BOND}.000000000000000000")},
                   "balance": {"denom": "ujuno", "amount": SELF_BOND.to_string()},
                   "found": true}),
        ),
    ];
    for (i, (stream, mut known)) in cases.into_iter().enumerate() {
        let mut client = WsClient::connect(api, &stream.path(), loopback(30 + i as u8)).await;
        let m = expect_snapshot(&node, &mut client, &stream).await;
        known["height"] = json!(height_of(&m));
        assert_eq!(m, known, "{}", stream.path());
    }
}

/// The keys of a JSON object, sorted.
fn keys(value: &Json) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

/// One `/ws` message: `(subscription, data)`.
fn update_of(message: &Json) -> (String, Json) {
    assert_eq!(
        keys(message),
        ["data", "subscription"],
        "an update is exactly {{\"subscription\",\"data\"}}: {message}"
    );
    (
        message["subscription"]
            .as_str()
            .expect("subscription id")
            .to_owned(),
        message["data"].clone(),
    )
}

/// Reads `n` updates of `/ws` and returns them by subscription (each at most once).
async fn updates(client: &mut WsClient, n: usize) -> BTreeMap<String, Json> {
    let mut by_sub = BTreeMap::new();
    for _ in 0..n {
        let (sid, data) = update_of(&client.next_json().await);
        assert!(
            by_sub.insert(sid.clone(), data).is_none(),
            "two updates for {sid} where one was due"
        );
    }
    by_sub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplexed_ws_carries_several_streams_and_unsubscribes() {
    let node = node().await;
    let (alice, v2) = (address("alice"), valoper("validator2"));
    let streams = [
        WsStream::Balances {
            address: alice.clone(),
        },
        WsStream::Delegation {
            delegator: alice.clone(),
            validator: v2.clone(),
        },
        WsStream::Balance {
            address: address("bob"),
            denom: ATOM_DENOM.into(),
        },
        WsStream::UnbondingDelegation {
            delegator: alice.clone(),
            validator: v2.clone(),
        },
    ];
    let mut ws = WsClient::connect(node.api_addr(), "/ws", loopback(20)).await;
    for (i, stream) in streams.iter().enumerate() {
        let (id, sid) = (i as u64 + 1, format!("s{}", i + 1));
        let reply = ws.request(&stream.subscribe(id)).await;
        assert_eq!(reply, json!({"id": id, "result": {"subscription": sid}}));
        let (got, data) = update_of(&ws.next_json().await);
        assert_eq!(got, sid, "the snapshot follows the subscribe result");
        let height = height_of(&data);
        assert_eq!(data, stream.expected(&node, height).await, "{sid} snapshot");
    }
    let api = node.api_addr();
    metrics::wait_for_index(api, 4, 4, "four /ws subscriptions to four keys").await;

    // A send moves alice's balances (s1) and bob's uatom (s3) in the same block.
    let h1 = node
        .tx_ok(&["bank", "send", "alice", "bob", "700uatom"])
        .await
        .height;
    let got = updates(&mut ws, 2).await;
    assert_eq!(got["s1"], streams[0].expected(&node, h1).await);
    assert_eq!(got["s3"], streams[2].expected(&node, h1).await);
    assert_eq!(
        got["s3"],
        json!({"denom": "uatom", "amount": (GENESIS_UATOM + 700).to_string(), "height": h1})
    );

    // A delegation to validator2 moves s1 and s2.
    let h2 = node
        .tx_ok(&["staking", "delegate", "alice", "validator2", "3000ujuno"])
        .await
        .height;
    let got = updates(&mut ws, 2).await;
    assert_eq!(got["s1"], streams[0].expected(&node, h2).await);
    assert_eq!(got["s2"], streams[1].expected(&node, h2).await);
    assert_eq!(got["s2"]["found"], json!(true));

    // Unsubscribe s1; a second unsubscribe of it is a 404.
    let reply = ws
        .request(&json!({"id": 9, "method": "unsubscribe", "params": {"subscription": "s1"}}))
        .await;
    assert_eq!(reply, json!({"id": 9, "result": {"unsubscribed": "s1"}}));
    let reply = ws
        .request(&json!({"id": 10, "method": "unsubscribe", "params": {"subscription": "s1"}}))
        .await;
    assert_eq!(
        (&reply["id"], &reply["error"]["code"]),
        (&json!(10), &json!(404)),
        "{reply}"
    );
    metrics::wait_for_value(
        node.api_addr(),
        "stream_subscriptions{type=\"balances\"}",
        0.0,
    )
    .await;
    // The dispatcher's index lost s1's entry, not only the gauge.
    metrics::wait_for_index(api, 3, 3, "after unsubscribing s1").await;

    // s1 follows nothing any more: a send moves only s3, an unbond s2 and s4.
    let h3 = node
        .tx_ok(&["bank", "send", "alice", "bob", "300uatom"])
        .await
        .height;
    let got = updates(&mut ws, 1).await;
    assert_eq!(
        got.get("s3"),
        Some(&streams[2].expected(&node, h3).await),
        "{got:?}"
    );
    let h4 = node
        .tx_ok(&["staking", "unbond", "alice", "validator2", "1000ujuno"])
        .await
        .height;
    let got = updates(&mut ws, 2).await;
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["s2", "s4"],
        "only s2 and s4 change at {h4}: {got:?}"
    );
    assert_eq!(got["s2"], streams[1].expected(&node, h4).await);
    assert_eq!(got["s4"], streams[3].expected(&node, h4).await);
    assert_eq!(got["s4"]["found"], json!(true));

    // A new subscription gets a fresh id, never s1 again.
    let reply = ws.request(&streams[0].subscribe(11)).await;
    let sid = reply["result"]["subscription"]
        .as_str()
        .unwrap_or_else(|| panic!("subscribe result: {reply}"))
        .to_owned();
    assert!(
        !["s1", "s2", "s3", "s4"].contains(&sid.as_str()),
        "subscription ids are not reused: {reply}"
    );
    let (got, data) = update_of(&ws.next_json().await);
    assert_eq!(got, sid);
    assert_eq!(data, streams[0].expected(&node, height_of(&data)).await);
    metrics::wait_for_index(api, 4, 4, "s2, s3, s4 and the new subscription").await;

    // Unsubscribing the rest empties the index while the connection stays open.
    for (id, sid) in [(12, "s2"), (13, "s3"), (14, "s4"), (15, sid.as_str())] {
        let reply = ws
            .request(&json!({"id": id, "method": "unsubscribe", "params": {"subscription": sid}}))
            .await;
        assert_eq!(reply, json!({"id": id, "result": {"unsubscribed": sid}}));
    }
    metrics::wait_for_index(api, 0, 0, "after unsubscribing everything").await;
    assert_eq!(metrics::scrape(api).await.get("stream_connections"), 1.0);
}

/// Asserts `reply` is exactly `{"id": id, "error": {"code": code, "message": <non-empty>}}`
/// and that the message mentions `mention`.
fn assert_error(reply: &Json, id: Json, code: u16, mention: &str) {
    assert_eq!(
        (&reply["id"], &reply["error"]["code"]),
        (&id, &json!(code)),
        "{reply}"
    );
    assert_eq!(keys(reply), ["error", "id"], "{reply}");
    assert_eq!(keys(&reply["error"]), ["code", "message"], "{reply}");
    let message = reply["error"]["message"].as_str().expect("message string");
    assert!(
        message.contains(mention),
        "the error must mention {mention:?}: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ws_control_messages_get_json_errors_and_the_connection_stays_open() {
    let node = node().await;
    let api = node.api_addr();
    let alice = address("alice");
    let before = metrics::scrape(api)
        .await
        .try_get("stream_connection_rejected_total{reason=\"invalid_request\"}")
        .unwrap_or(0.0);
    let mut ws = WsClient::connect(api, "/ws", loopback(40)).await;

    ws.send_text("{not json").await;
    assert_error(&ws.next_json().await, Json::Null, 400, "malformed");
    let cases = [
        (json!({"id": 2, "method": "subscribe"}), 400, "stream"),
        (json!({"id": 3, "method": "fly"}), 400, "fly"),
        (json!({"id": 4}), 400, "method"),
        (
            json!({"id": 5, "method": "subscribe", "stream": "bank/nope", "params": {}}),
            400,
            "bank/nope",
        ),
        (
            json!({"id": 6, "method": "subscribe", "stream": "bank/balance",
                   "params": {"address": "juno1xyz", "denom": "ujuno"}}),
            400,
            "address",
        ),
        (
            json!({"id": 7, "method": "subscribe", "stream": "bank/balance",
                   "params": {"address": alice, "denom": "1bad"}}),
            400,
            "denom",
        ),
        (
            json!({"id": 8, "method": "subscribe", "stream": "staking/delegation",
                   "params": {"delegator": valoper("validator1"), "validator": valoper("validator1")}}),
            400,
            "delegator",
        ),
        (
            json!({"id": 9, "method": "subscribe", "stream": "staking/unbonding-delegation",
                   "params": {"delegator": alice, "validator": address("bob")}}),
            400,
            "validator",
        ),
        (
            json!({"id": 10, "method": "subscribe", "stream": "bank/balances", "params": {}}),
            400,
            "address",
        ),
        (
            json!({"id": "abc", "method": "unsubscribe", "params": {"subscription": "s42"}}),
            404,
            "s42",
        ),
        (
            json!({"id": 12, "method": "unsubscribe"}),
            400,
            "subscription",
        ),
    ];
    for (request, code, mention) in cases {
        let reply = ws.request(&request).await;
        assert_error(&reply, request["id"].clone(), code, mention);
    }
    ws.send_binary(vec![1, 2, 3]).await;
    assert_error(&ws.next_json().await, Json::Null, 400, "binary");

    // Still open and working.
    let stream = WsStream::Balance {
        address: alice.clone(),
        denom: BOND_DENOM.into(),
    };
    let reply = ws.request(&stream.subscribe(13)).await;
    assert_eq!(reply, json!({"id": 13, "result": {"subscription": "s1"}}));
    let (sid, data) = update_of(&ws.next_json().await);
    assert_eq!(sid, "s1");
    assert_eq!(data, stream.expected(&node, height_of(&data)).await);

    // Subscriptions refused for bad parameters are counted as invalid requests.
    let after = metrics::scrape(api)
        .await
        .get("stream_connection_rejected_total{reason=\"invalid_request\"}");
    assert!(
        after - before >= 6.0,
        "6 subscribe requests with bad parameters must count as invalid_request ({before} -> {after})"
    );
}
