//! End-to-end: compact encodings. A tonic client that asks for gzip or zstd gets its gRPC
//! stream compressed (`grpc-encoding` in the response) with the same values; a WebSocket path
//! route with `?encoding=proto` sends binary frames that decode, with the published
//! `juno.stream.v1` messages, to exactly what the gRPC stream of that kind sends at the same
//! height; unknown encodings and `encoding=proto` over SSE are refused with a precise JSON
//! error. Prints each encoding's size for the same update (the README's table).

mod support;
mod ws_support;

use futures_util::StreamExt;
use prost::Message as _;
use stream_proto::juno::stream::v1::StreamAllBalancesRequest;
use stream_proto::juno::stream::v1::StreamAllBalancesResponse;
use stream_proto::juno::stream::v1::query_client::QueryClient;
use support::accounts::address;
use support::queries::At;
use support::{TestNode, TestNodeOptions};
use tokio_tungstenite::tungstenite::Message;
use tonic::codec::CompressionEncoding;
use ws_support::client::WsClient;
use ws_support::loopback;

/// The first `n` messages of alice's `StreamAllBalances`, asking for `encoding`; also the
/// response's `grpc-encoding`.
async fn grpc_messages(
    node: &TestNode,
    encoding: Option<CompressionEncoding>,
    n: usize,
) -> (Option<String>, Vec<StreamAllBalancesResponse>) {
    let mut client = QueryClient::new(node.channel());
    if let Some(e) = encoding {
        client = client.accept_compressed(e).send_compressed(e);
    }
    let response = client
        .stream_all_balances(StreamAllBalancesRequest {
            address: address("alice"),
            since_height: 0,
        })
        .await
        .expect("stream opens");
    let used = response
        .metadata()
        .get("grpc-encoding")
        .map(|v| v.to_str().unwrap().to_owned());
    let mut stream = response.into_inner();
    let mut out = Vec::new();
    while out.len() < n {
        out.push(stream.message().await.expect("message").expect("not ended"));
    }
    (used, out)
}

/// What the node's standard query says alice holds at `height`, as the stream carries it.
async fn expected(node: &TestNode, height: i64) -> Vec<(String, String)> {
    node.all_balances(&address("alice"), At::Height(height))
        .await
        .into_iter()
        .map(|(d, a)| (d, a.to_string()))
        .collect()
}

fn coins(m: &StreamAllBalancesResponse) -> Vec<(String, String)> {
    m.balances
        .iter()
        .map(|c| (c.denom.clone(), c.amount.clone()))
        .collect()
}

#[tokio::test]
async fn gzip_zstd_and_proto_frames_carry_the_same_values() {
    let node = TestNode::start(TestNodeOptions::default().simulate(5)).await;

    for (encoding, name) in [
        (None, None),
        (Some(CompressionEncoding::Gzip), Some("gzip")),
        (Some(CompressionEncoding::Zstd), Some("zstd")),
    ] {
        let (used, messages) = grpc_messages(&node, encoding, 3).await;
        assert_eq!(used.as_deref(), name, "grpc-encoding of the response");
        for m in &messages {
            assert_eq!(
                coins(m),
                expected(&node, m.height).await,
                "{name:?} at {}",
                m.height
            );
        }
    }

    // ?encoding=proto: binary frames, each a StreamAllBalancesResponse.
    let api = node.api_addr();
    let path = format!(
        "/ws/subscribe/bank/balances/{}?encoding=proto",
        address("alice")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{api}{path}"))
        .await
        .expect("upgrade");
    let mut proto_frames = Vec::new();
    while proto_frames.len() < 3 {
        match tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
            .await
            .expect("a frame within 30 s")
        {
            Some(Ok(Message::Binary(b))) => proto_frames.push(b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
    for bytes in &proto_frames {
        let m =
            StreamAllBalancesResponse::decode(bytes.as_ref()).expect("a StreamAllBalancesResponse");
        assert_eq!(
            coins(&m),
            expected(&node, m.height).await,
            "proto frame at {}",
            m.height
        );
        // Exactly the bytes a gRPC stream carries for that value at that height.
        assert_eq!(m.encode_to_vec(), bytes.to_vec());
    }

    // Sizes of the same update in each encoding (README "Compact encodings").
    let mut text = WsClient::connect(
        api,
        &format!("/ws/subscribe/bank/balances/{}", address("alice")),
        loopback(3),
    )
    .await;
    let json = text.next_json().await;
    let json_len = json.to_string().len();
    let m = StreamAllBalancesResponse::decode(proto_frames[0].as_ref()).unwrap();
    let proto_len = m.encode_to_vec().len();
    println!(
        "alice's balances (2 coins): JSON text frame {json_len} B, proto binary frame {proto_len} B"
    );
    assert!(proto_len < json_len);
}

#[tokio::test]
async fn unknown_encodings_are_refused_precisely() {
    let node = TestNode::start_default().await;
    let api = node.api_addr();
    let alice = address("alice");
    let r = WsClient::refused(
        api,
        &format!("/ws/subscribe/bank/balances/{alice}?encoding=xml"),
        loopback(1),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.error().contains("encoding \"xml\" is unknown"), "{r:?}");
    let r = WsClient::refused(
        api,
        &format!("/ws/subscribe/bank/balances/{alice}?encoding=proto&encoding=json"),
        loopback(1),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.error().contains("encoding is given more than once"),
        "{r:?}"
    );
    let sse = ws_support::http::get(
        api,
        &format!("/sse/subscribe/bank/balances/{alice}?encoding=proto"),
    )
    .await;
    assert_eq!(sse.status, 400, "{sse:?}");
    assert!(
        sse.json()["error"]
            .as_str()
            .unwrap()
            .contains("Server-Sent Events carry JSON text only"),
        "{sse:?}"
    );
}
