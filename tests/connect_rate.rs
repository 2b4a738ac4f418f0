//! End-to-end: the per-client connect rate (`[stream] connect_rate` / `connect_burst`).
//! With 3 connects per minute, a client's fourth new connection within the minute is refused
//! on every transport: WebSocket and SSE with HTTP 429, a `Retry-After` header and a JSON
//! error naming the setting; gRPC with RESOURCE_EXHAUSTED and `retry-after` metadata. Another
//! client is not affected, and `stream_connection_rejected{reason="connect_rate"}` counts each
//! refusal.

mod support;
mod ws_support;

use stream_proto::juno::stream::v1::StreamBalanceRequest;
use stream_proto::juno::stream::v1::query_client::QueryClient;
use support::accounts::{BOND_DENOM, address};
use support::{TestNode, TestNodeOptions, client_channel};
use ws_support::client::WsClient;
use ws_support::http::get_from;
use ws_support::loopback;
use ws_support::metrics::scrape;

#[tokio::test]
async fn a_clients_fourth_connect_within_the_minute_is_refused_with_retry_after() {
    let node = TestNode::start(
        TestNodeOptions::default()
            .stream("connect_rate", "3/min")
            .stream("connect_burst", 3),
    )
    .await;
    let api = node.api_addr();
    let alice = address("alice");
    let path = format!("/ws/subscribe/bank/balances/{alice}");
    let limited = loopback(5);

    let mut open = Vec::new();
    for _ in 0..3 {
        let mut ws = WsClient::connect(api, &path, limited).await;
        ws.next_json().await;
        open.push(ws);
    }
    // Closing does not give connects back: the rate counts connects, not open connections.
    drop(open);

    let refused = WsClient::refused(api, &path, limited).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(
        refused.error().contains("connect rate exceeded"),
        "{refused:?}"
    );
    assert!(
        refused.error().contains("connect_rate in app.toml"),
        "{refused:?}"
    );

    let sse = get_from(
        api,
        &format!("/sse/subscribe/bank/balances/{alice}"),
        limited,
    )
    .await;
    assert_eq!(sse.status, 429, "{sse:?}");
    let retry: u64 = sse
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!(
        (1..=20).contains(&retry),
        "one connect per 20 s: retry after {retry}"
    );
    assert!(
        sse.json()["error"]
            .as_str()
            .unwrap()
            .contains("retry after"),
        "{sse:?}"
    );

    let status = QueryClient::new(client_channel(node.grpc_addr(), 5))
        .stream_balance(StreamBalanceRequest {
            address: alice.clone(),
            denom: BOND_DENOM.into(),
            since_height: 0,
        })
        .await
        .expect_err("refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("connect rate exceeded"),
        "{status:?}"
    );
    let retry: u64 = status
        .metadata()
        .get("retry-after")
        .expect("retry-after metadata")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");

    // Another client connects as usual.
    let mut other = WsClient::connect(api, &path, loopback(6)).await;
    other.next_json().await;

    let s = scrape(api).await;
    assert_eq!(
        s.get("stream_connection_rejected_total{reason=\"connect_rate\"}"),
        3.0
    );
}
