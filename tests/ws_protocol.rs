//! End-to-end: the WebSocket connection handling on the API port. Close frames are
//! answered; SIGTERM gives close code 1001 to every client; an inbound message over
//! `[stream] max_message_size` closes only that client; refusals before the upgrade: 403 for
//! an Origin outside `[stream] allowed_origins`, 426 for a request that is not a WebSocket
//! upgrade, 400 for a bad path, address or denom, each with a JSON `{"error": ...}` body and
//! a `stream_connection_rejected{reason}` count; a `?since_height=` above the latest height is
//! refused rather than silently ignored.

mod support;
mod ws_support;

use serde_json::json;
use support::accounts::{BOND_DENOM, address, valoper};
use support::queries::At;
use support::{TestNode, TestNodeOptions};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use ws_support::client::WsClient;
use ws_support::expected::WsStream;
use ws_support::{http, loopback, metrics};

fn rejected(reason: &str) -> String {
    format!("stream_connection_rejected_total{{reason=\"{reason}\"}}")
}

fn balance(name: &str) -> WsStream {
    WsStream::Balance {
        address: address(name),
        denom: BOND_DENOM.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frames_are_answered_and_free_the_connection() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    let mut route = WsClient::connect(api, &balance("alice").path(), loopback(1)).await;
    route.next_json().await;
    let mut mux = WsClient::connect(api, "/ws", loopback(2)).await;
    let reply = mux.request(&balance("bob").subscribe(1)).await;
    assert_eq!(reply, json!({"id": 1, "result": {"subscription": "s1"}}));
    mux.next_json().await;
    metrics::wait_for_value(api, "stream_connections", 2.0).await;
    metrics::wait_for_index(api, 2, 2, "a path route and a /ws subscription").await;

    for (client, code) in [(&mut route, CloseCode::Normal), (&mut mux, CloseCode::Away)] {
        let answer = client.close(code).await;
        let answer = answer.unwrap_or_else(|| {
            panic!(
                "{}: the server must answer a close frame with a close frame",
                client.path
            )
        });
        assert_eq!(
            answer.code, code,
            "{}: the answer echoes the client's code",
            client.path
        );
    }
    metrics::wait_for_value(api, "stream_connections", 0.0).await;
    let s = metrics::scrape(api).await;
    assert_eq!(s.get("stream_subscriptions{type=\"balance\"}"), 0.0);
    metrics::wait_for_index(api, 0, 0, "after both closes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_client_with_1001() {
    let mut node = TestNode::start(TestNodeOptions::slow_unbonding().short_timeouts()).await;
    let api = node.api_addr();
    let alice = address("alice");
    let mut clients = Vec::new();
    for (i, path) in [
        balance("alice").path(),
        format!("/ws/subscribe/staking/delegations/{alice}"),
        format!(
            "/ws/subscribe/staking/unbonding-delegation/{alice}/{}",
            valoper("validator1")
        ),
    ]
    .iter()
    .enumerate()
    {
        let mut client = WsClient::connect(api, path, loopback(1 + i as u8)).await;
        client.next_json().await;
        clients.push(client);
    }
    let mut mux = WsClient::connect(api, "/ws", loopback(10)).await;
    mux.request(&balance("bob").subscribe(1)).await;
    mux.next_json().await;
    clients.push(mux);
    clients.push(WsClient::connect(api, "/ws", loopback(11)).await);
    metrics::wait_for_value(api, "stream_connections", clients.len() as f64).await;

    node.terminate();
    for client in &mut clients {
        let frame = client.closed_by_server().await.unwrap_or_else(|| {
            panic!(
                "{}: on shutdown the server must send a close frame",
                client.path
            )
        });
        assert_eq!(
            frame.code,
            CloseCode::Away,
            "{}: close code 1001 on shutdown ({frame:?})",
            client.path
        );
    }
    let status = node.wait_exit(std::time::Duration::from_secs(15)).await;
    assert!(
        status.success(),
        "streamd exits cleanly on SIGTERM: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_only_its_client() {
    const LIMIT: usize = 1024;
    let node =
        TestNode::start(TestNodeOptions::slow_unbonding().stream("max_message_size", LIMIT as i64))
            .await;
    let api = node.api_addr();
    let stream = balance("alice");
    let mut bystander = WsClient::connect(api, &stream.path(), loopback(1)).await;
    bystander.next_json().await;
    let mut big = WsClient::connect(api, "/ws", loopback(2)).await;

    // Up to the limit: an ordinary (here: unknown method) control message.
    let mut request = json!({"id": 1, "method": "nope", "pad": ""});
    let pad = LIMIT - request.to_string().len();
    request["pad"] = json!("x".repeat(pad));
    assert_eq!(request.to_string().len(), LIMIT);
    let reply = big.request(&request).await;
    assert_eq!(
        (&reply["id"], &reply["error"]["code"]),
        (&json!(1), &json!(400)),
        "a message of exactly max_message_size is read: {reply}"
    );

    // One byte over: the connection is closed.
    request["pad"] = json!("x".repeat(pad + 1));
    big.send_json(&request).await;
    let close = big.closed_by_server().await;
    eprintln!("client over max_message_size saw: {close:?}");
    metrics::wait_for_value(api, "stream_connections", 1.0).await;

    // The bystander is unaffected: it gets the next update.
    let h = node
        .tx_ok(&["bank", "send", "alice", "bob", "5ujuno"])
        .await
        .height;
    let update = bystander.next_json().await;
    assert_eq!(update["height"], json!(h), "{update}");
    let amount = node
        .balance(&address("alice"), BOND_DENOM, At::Height(h))
        .await
        .to_string();
    assert_eq!(
        update,
        json!({"denom": "ujuno", "amount": amount, "height": h})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_outside_allowed_origins_get_403() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding().stream("allowed_origins", vec!["https://app.example"]),
    )
    .await;
    let api = node.api_addr();
    let path = balance("alice").path();
    for target in [path.as_str(), "/ws"] {
        let r = WsClient::try_connect(
            api,
            target,
            loopback(1),
            &[("Origin", "https://evil.example")],
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{target}: a foreign Origin must be refused"));
        assert_eq!(r.status, 403, "{r:?}");
        assert!(
            r.error().contains("https://evil.example") && r.error().contains("allowed_origins"),
            "{r:?}"
        );
    }
    // The allowed origin, and non-browser clients (no Origin), connect.
    let mut ok = WsClient::try_connect(
        api,
        &path,
        loopback(2),
        &[("Origin", "https://app.example")],
    )
    .await
    .expect("the allowed origin connects");
    ok.next_json().await;
    let mut plain = WsClient::connect(api, &path, loopback(3)).await;
    plain.next_json().await;
    assert_eq!(
        metrics::scrape(api)
            .await
            .get(&rejected("origin_not_allowed")),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_a_websocket_route_gets_426() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    for target in [balance("alice").path(), "/ws".to_owned()] {
        let response = http::get(api, &target).await;
        assert_eq!(response.status, 426, "GET {target}: {response:?}");
        let body = response.json();
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            body.as_object().map(|o| o.len()) == Some(1) && error.contains("WebSocket"),
            "GET {target}: JSON error that says to use WebSocket: {body}"
        );
        assert!(
            response
                .header("upgrade")
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
            "GET {target}: a 426 response must name the protocol in an Upgrade header \
             (RFC 9110 15.5.22): {response:?}"
        );
    }
    assert_eq!(
        metrics::scrape(api).await.get(&rejected("not_websocket")),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_addresses_and_denoms_get_400_with_a_json_reason() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    let (alice, v1) = (address("alice"), valoper("validator1"));
    let cases = [
        (
            format!("/ws/subscribe/bank/balance/juno1xyz/{BOND_DENOM}"),
            "address",
        ),
        (format!("/ws/subscribe/bank/balance/{alice}/1bad"), "denom"),
        (format!("/ws/subscribe/bank/balance/{alice}/u$d"), "denom"),
        (format!("/ws/subscribe/bank/balances/{v1}"), "juno1"),
        (
            "/ws/subscribe/staking/delegations/cosmos1v0thzgvzp8vt6q7ystmfm7a9wvg0ppsfulgka7"
                .to_owned(),
            "delegator",
        ),
        (
            format!("/ws/subscribe/staking/delegation/{alice}/{alice}"),
            "validator",
        ),
        (
            format!("/ws/subscribe/staking/unbonding-delegations/{v1}"),
            "delegator",
        ),
        (
            format!("/ws/subscribe/staking/unbonding-delegation/{v1}/{v1}"),
            "delegator",
        ),
        (
            format!("/ws/subscribe/bank/nope/{alice}"),
            "/ws/subscribe/bank/nope",
        ),
        (
            format!("/ws/subscribe/bank/balance/{alice}"),
            "unknown stream path",
        ),
        ("/ws/whatever".to_owned(), "unknown stream path"),
    ];
    for (i, (path, mention)) in cases.iter().enumerate() {
        let r = WsClient::refused(api, path, loopback(1 + i as u8)).await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert!(
            r.error().contains(mention),
            "{path}: the reason must mention {mention:?}: {r:?}"
        );
    }
    // Checked before the upgrade: a plain GET gets the same 400, as JSON.
    let response = http::get(api, &cases[0].0).await;
    assert_eq!(response.status, 400, "{response:?}");
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{response:?}"
    );
    assert!(response.json()["error"].as_str().is_some(), "{response:?}");
    assert_eq!(
        metrics::scrape(api).await.get(&rejected("invalid_request")),
        (cases.len() + 1) as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_height_is_refused_not_silently_ignored() {
    // DESIGN.md 5.6: resume is `?since_height=` on WebSocket (tested in stream_resume.rs). A
    // height this node has not streamed yet is refused (400, as gRPC's INVALID_ARGUMENT), not
    // handed a snapshot at the current height as if nothing had happened in between.
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let api = node.api_addr();
    let path = format!("{}?since_height=1000000", balance("alice").path());
    match WsClient::try_connect(api, &path, loopback(1), &[]).await {
        Err(r) => {
            assert_eq!(r.status, 400, "{r:?}");
            assert!(r.error().contains("since_height"), "{r:?}");
        }
        Ok(mut client) => {
            let first = client.next_json().await;
            panic!(
                "{path}: upgraded and sent {first} for a height not streamed yet: \
                 since_height was silently ignored"
            );
        }
    }
}
