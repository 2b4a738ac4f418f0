//! End-to-end, hostile clients at shutdown ([5/11] D2): SIGTERM while a client holds an
//! unfinished HTTP request on the API port and gRPC streams whose client stopped reading
//! (their flow-control windows are full, so nothing more can be written to them). Every
//! well-behaved stream still ends with its status, and the process exits within 5 s.

mod support;
mod ws_support;

use std::time::{Duration, Instant};

use stream_proto::juno::stream::v1::StreamBalanceRequest;
use stream_proto::juno::stream::v1::query_client::QueryClient;
use support::accounts::{BOND_DENOM, DEV_KEYS, address};
use support::{TestNode, TestNodeOptions};
use tokio::io::AsyncWriteExt;
use tonic::Code;
use tonic::transport::Endpoint;
use ws_support::client::tcp_from;
use ws_support::{WAIT, loopback};

/// The documented bound on shutdown, and the slack a loaded 2-core CI machine gets on it.
const EXIT_WITHIN: Duration = Duration::from_secs(5);
const SLACK: Duration = Duration::from_secs(3);

fn balance_request(i: usize) -> StreamBalanceRequest {
    StreamBalanceRequest {
        address: address(DEV_KEYS[i % DEV_KEYS.len()]),
        denom: BOND_DENOM.into(),
        since_height: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_five_seconds_whatever_clients_do() {
    const STUCK: usize = 20;
    let mut node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .simulate(50)
            .rpc("max_subscriptions_per_client", 0),
    )
    .await;

    // An HTTP request whose headers never end.
    let mut unfinished = tcp_from(loopback(1), node.api_addr())
        .await
        .expect("connect to the API port");
    unfinished
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: streamd\r\nX-Slow: 1")
        .await
        .expect("send a partial request");

    // gRPC streams on busy balances whose client never reads: 1 KiB stream windows fill
    // within a few blocks.
    let stuck = Endpoint::from_shared(node.grpc_url())
        .expect("URL")
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .expect("connect gRPC");
    let mut held = Vec::new();
    for i in 0..STUCK {
        let mut stream = QueryClient::new(stuck.clone())
            .stream_balance(balance_request(i))
            .await
            .expect("open stream")
            .into_inner();
        tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("snapshot in time")
            .expect("snapshot")
            .expect("a message");
        held.push(stream);
    }
    // A well-behaved stream, which must still get its UNAVAILABLE.
    let mut good = QueryClient::new(node.channel())
        .stream_balance(balance_request(0))
        .await
        .expect("open stream")
        .into_inner();
    good.message().await.expect("snapshot").expect("a message");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let signalled = Instant::now();
    node.terminate();
    let ended = tokio::time::timeout(WAIT, async {
        loop {
            match good.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the well-behaved stream ends");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    let status = node.wait_exit(EXIT_WITHIN + SLACK).await;
    let took = signalled.elapsed();
    eprintln!(
        "SIGTERM with {STUCK} stuck gRPC streams and an unfinished HTTP request: exited in {took:?} ({status})"
    );
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        node.log_text()
    );
    assert!(
        took <= EXIT_WITHIN + SLACK,
        "exited after {took:?}, documented bound {EXIT_WITHIN:?}"
    );
    drop((held, unfinished));
}
