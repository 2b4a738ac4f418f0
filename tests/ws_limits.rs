//! End-to-end: CometBFT's `[rpc] max_open_connections` and `max_subscriptions_per_client`
//! (config/config.toml) shared by WebSocket and gRPC. Over the connection limit a WebSocket
//! upgrade gets 503 and a gRPC stream RESOURCE_EXHAUSTED; over a client IP's subscription
//! limit a path route gets 429, a `/ws` subscribe a 429 error reply and a gRPC stream
//! RESOURCE_EXHAUSTED; each refusal is counted in `stream_connection_rejected{reason}`;
//! admission is exact under a burst, and a closed connection frees its slots at once.

mod support;
mod ws_support;

use std::sync::Arc;

use serde_json::json;
use support::accounts::{BOND_DENOM, address};
use support::{TestNode, TestNodeOptions};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tonic::Code;
use ws_support::client::{Refusal, WsClient};
use ws_support::expected::WsStream;
use ws_support::{grpc_balance_stream, loopback, metrics};

const MAX_CONNECTIONS: &str = "stream_connection_rejected_total{reason=\"max_connections\"}";
const MAX_SUBSCRIPTIONS: &str = "stream_connection_rejected_total{reason=\"max_subscriptions\"}";

fn balance_path(name: &str) -> String {
    WsStream::Balance {
        address: address(name),
        denom: BOND_DENOM.into(),
    }
    .path()
}

/// Asserts a refusal is `status` with a JSON error naming `setting`.
fn assert_refused(r: &Refusal, status: u16, setting: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert!(
        r.error().contains(setting),
        "the refusal must name {setting}: {r:?}"
    );
}

/// A counter's value; a labelled counter that was never incremented may be absent.
fn count(s: &metrics::Scrape, key: &str) -> f64 {
    s.try_get(key).unwrap_or(0.0)
}

/// Connects and reads the snapshot (a path route's subscription is then certainly live).
async fn subscribed(api: std::net::SocketAddr, path: &str, from: u8) -> WsClient {
    let mut client = WsClient::connect(api, path, loopback(from)).await;
    client.next_json().await;
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_limits_websocket_gets_503_and_429_grpc_resource_exhausted_all_counted() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_open_connections", 4)
            .rpc("max_subscriptions_per_client", 2),
    )
    .await;
    let (api, grpc) = (node.api_addr(), node.grpc_addr());
    let alice = address("alice");
    let s = metrics::scrape(api).await;
    assert_eq!(
        (count(&s, MAX_CONNECTIONS), count(&s, MAX_SUBSCRIPTIONS)),
        (0.0, 0.0)
    );

    // Client 127.0.0.1 takes its two subscriptions with path routes.
    let mut a1 = subscribed(api, &balance_path("alice"), 1).await;
    let _a2 = subscribed(api, &format!("/ws/subscribe/bank/balances/{alice}"), 1).await;
    // Its third subscription is refused on every transport.
    let r = WsClient::refused(
        api,
        &format!("/ws/subscribe/staking/delegations/{alice}"),
        loopback(1),
    )
    .await;
    assert_refused(&r, 429, "max_subscriptions_per_client");
    assert_eq!(metrics::scrape(api).await.get(MAX_SUBSCRIPTIONS), 1.0);
    let status = grpc_balance_stream(grpc, loopback(1), &alice, BOND_DENOM)
        .await
        .expect_err("a gRPC stream over the subscription limit must be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_subscriptions_per_client"),
        "{status:?}"
    );
    assert_eq!(metrics::scrape(api).await.get(MAX_SUBSCRIPTIONS), 2.0);
    // An empty `/ws` connection counts toward its client's share too: refused before the
    // upgrade (one IP cannot hold every connection slot with connections that subscribe
    // to nothing).
    let r = WsClient::refused(api, "/ws", loopback(1)).await;
    assert_refused(&r, 429, "max_subscriptions_per_client");
    assert_eq!(metrics::scrape(api).await.get(MAX_SUBSCRIPTIONS), 3.0);
    // From another client IP it is admitted (the third connection), and its first
    // subscription takes over the connection's seat.
    let mut ws = WsClient::connect(api, "/ws", loopback(4)).await;
    let stream = WsStream::Balances {
        address: address("bob"),
    };
    let reply = ws.request(&stream.subscribe(1)).await;
    assert_eq!(
        reply,
        json!({"id": 1, "result": {"subscription": "s1"}}),
        "{reply}"
    );

    // Another client IP takes the fourth and last connection.
    let mut b1 = subscribed(api, &balance_path("bob"), 2).await;
    assert_eq!(metrics::scrape(api).await.get("stream_connections"), 4.0);
    // The fifth connection is refused, whoever asks and however.
    let r = WsClient::refused(api, &balance_path("carol"), loopback(3)).await;
    assert_refused(&r, 503, "max_open_connections");
    let r = WsClient::refused(api, "/ws", loopback(3)).await;
    assert_refused(&r, 503, "max_open_connections");
    let status = grpc_balance_stream(grpc, loopback(3), &alice, BOND_DENOM)
        .await
        .expect_err("a gRPC stream over the connection limit must be refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_open_connections"),
        "{status:?}"
    );
    let s = metrics::scrape(api).await;
    assert_eq!(
        (s.get(MAX_CONNECTIONS), s.get(MAX_SUBSCRIPTIONS)),
        (3.0, 3.0)
    );
    assert_eq!(s.get("stream_connections"), 4.0, "refusals hold no slot");

    // Closing a connection frees its slot at once: the very next connect is admitted.
    b1.close(CloseCode::Normal).await;
    let _c1 = WsClient::try_connect(api, &balance_path("carol"), loopback(3), &[])
        .await
        .unwrap_or_else(|r| panic!("a closed connection must free its slot at once: {r:?}"));
    // ...and its subscription slot: after a1 leaves, 127.0.0.1 may open `/ws` and subscribe.
    a1.close(CloseCode::Normal).await;
    drop(ws);
    metrics::wait_for_value(api, "stream_connections", 2.0).await;
    let mut ws = WsClient::connect(api, "/ws", loopback(1)).await;
    let reply = ws.request(&stream.subscribe(3)).await;
    assert_eq!(
        reply,
        json!({"id": 3, "result": {"subscription": "s1"}}),
        "a closed connection must free its subscription slot at once"
    );
    let s = metrics::scrape(api).await;
    assert_eq!(
        (s.get(MAX_CONNECTIONS), s.get(MAX_SUBSCRIPTIONS)),
        (3.0, 3.0),
        "admissions after a slot was freed are not refusals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connects_admit_exactly_fifty() {
    const CLIENTS: usize = 200;
    const LIMIT: usize = 50;
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_open_connections", LIMIT as i64)
            .rpc("max_subscriptions_per_client", 0),
    )
    .await;
    let api = node.api_addr();
    let path = balance_path("alice");

    // Everyone from 127.0.0.1: with max_subscriptions_per_client = 0 (unlimited) only the
    // connection limit applies. Half path routes (a subscription each), half `/ws`.
    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let attempts: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (start, path) = (start.clone(), path.clone());
            tokio::spawn(async move {
                let path = if i % 2 == 0 { path } else { "/ws".to_owned() };
                start.wait().await;
                WsClient::try_connect(api, &path, loopback(1), &[]).await
            })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    for attempt in attempts {
        match attempt.await.expect("connect task") {
            Ok(client) => admitted.push(client),
            Err(r) => refused.push(r),
        }
    }
    assert_eq!(
        (admitted.len(), refused.len()),
        (LIMIT, CLIENTS - LIMIT),
        "exactly max_open_connections of {CLIENTS} concurrent connects are admitted"
    );
    for r in &refused {
        assert_refused(r, 503, "max_open_connections");
    }
    let s = metrics::scrape(api).await;
    assert_eq!(s.get("stream_connections"), LIMIT as f64);
    assert_eq!(s.get(MAX_CONNECTIONS), (CLIENTS - LIMIT) as f64);
    assert_eq!(
        count(&s, MAX_SUBSCRIPTIONS),
        0.0,
        "0 = unlimited subscriptions"
    );

    // Close ten: exactly ten new connects are admitted right away, the eleventh is refused.
    for mut client in admitted.drain(..10) {
        client.close(CloseCode::Normal).await;
    }
    for i in 0..10 {
        let client = WsClient::try_connect(api, &path, loopback(1), &[])
            .await
            .unwrap_or_else(|r| panic!("reconnect {i} after closing ten: {r:?}"));
        admitted.push(client);
    }
    let r = WsClient::refused(api, "/ws", loopback(1)).await;
    assert_refused(&r, 503, "max_open_connections");

    // Everyone leaves: the gauge returns to 0.
    for mut client in admitted {
        client.close(CloseCode::Normal).await;
    }
    metrics::wait_for_value(api, "stream_connections", 0.0).await;
    let s = metrics::scrape(api).await;
    assert_eq!(s.get("stream_subscriptions{type=\"balance\"}"), 0.0);
    assert_eq!(s.get(MAX_CONNECTIONS), (CLIENTS - LIMIT + 1) as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_subscriptions_per_client", 1)
            .stream("trusted_proxies", vec!["127.0.0.5"]),
    )
    .await;
    let api = node.api_addr();
    let path = balance_path("alice");
    let via = |ip: &'static str| [("X-Forwarded-For", ip)];

    // Behind the trusted proxy 127.0.0.5, X-Forwarded-For tells clients apart.
    let _c1 = WsClient::try_connect(api, &path, loopback(5), &via("203.0.113.1"))
        .await
        .expect("first client behind the proxy");
    let _c2 = WsClient::try_connect(api, &path, loopback(5), &via("203.0.113.2"))
        .await
        .expect("second client behind the proxy is another client");
    let r = WsClient::try_connect(api, &path, loopback(5), &via("203.0.113.1"))
        .await
        .err()
        .expect("203.0.113.1 already holds its one subscription");
    assert_refused(&r, 429, "203.0.113.1");

    // From an untrusted peer the header is ignored: the peer's own address is the client.
    let _d1 = WsClient::try_connect(api, &path, loopback(6), &via("203.0.113.3"))
        .await
        .expect("first subscription of 127.0.0.6");
    let r = WsClient::try_connect(api, &path, loopback(6), &via("203.0.113.4"))
        .await
        .err()
        .expect("127.0.0.6 already holds its one subscription, whatever it claims");
    assert_refused(&r, 429, "127.0.0.6");
    assert_eq!(metrics::scrape(api).await.get(MAX_SUBSCRIPTIONS), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_ws_connections_count_toward_their_clients_share() {
    // [5/11] D5: with max_open_connections = 100, one IP opening 100 empty `/ws`
    // connections used to take every slot, and every other client got 503.
    const PER_CLIENT: usize = 5;
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_open_connections", 100)
            .rpc("max_subscriptions_per_client", PER_CLIENT as i64),
    )
    .await;
    let api = node.api_addr();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        match WsClient::try_connect(api, "/ws", loopback(1), &[]).await {
            Ok(c) => admitted.push(c),
            Err(r) => {
                assert_refused(&r, 429, "max_subscriptions_per_client");
                refused += 1;
            }
        }
    }
    assert_eq!(
        (admitted.len(), refused),
        (PER_CLIENT, 100 - PER_CLIENT),
        "one client holds at most its share of empty connections"
    );
    // Everyone else is served.
    let _other = subscribed(api, &balance_path("bob"), 2).await;

    // A seat becomes the connection's first subscription; a second one needs a free slot.
    let stream = WsStream::Balances {
        address: address("alice"),
    };
    let first = &mut admitted[0];
    let reply = first.request(&stream.subscribe(1)).await;
    assert_eq!(reply["result"]["subscription"], json!("s1"), "{reply}");
    first.next_json().await; // its snapshot
    let reply = first.request(&stream.subscribe(2)).await;
    assert_eq!(reply["error"]["code"], json!(429), "{reply}");
    // Dropping one empty connection frees a slot for it.
    admitted.pop();
    metrics::wait_for_value(api, "stream_connections", PER_CLIENT as f64).await;
    let reply = admitted[0].request(&stream.subscribe(3)).await;
    assert_eq!(reply["result"]["subscription"], json!("s2"), "{reply}");
    admitted[0].next_json().await; // its snapshot
    // Unsubscribing both leaves the connection holding one seat again: the freed slot is
    // usable by a new connection, the second is not.
    for (id, sid) in [(4, "s1"), (5, "s2")] {
        let reply = admitted[0]
            .request(&json!({"id": id, "method": "unsubscribe", "params": {"subscription": sid}}))
            .await;
        assert_eq!(reply["result"]["unsubscribed"], json!(sid), "{reply}");
    }
    let _again = WsClient::try_connect(api, "/ws", loopback(1), &[])
        .await
        .unwrap_or_else(|r| panic!("a slot freed by unsubscribe is usable: {r:?}"));
    let r = WsClient::refused(api, "/ws", loopback(1)).await;
    assert_refused(&r, 429, "max_subscriptions_per_client");
}
