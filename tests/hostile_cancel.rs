//! End-to-end, streams ended at every possible moment ([5/11] D10): gRPC streams cancelled
//! right after (or while) they open, and WebSocket connections closed before reading their 101,
//! by the thousand. Afterwards the dispatcher's index is empty (no topic, no registered
//! subscription) and no leftover subscription keeps counting skipped updates.

mod support;
mod ws_support;

use std::time::Duration;

use stream_proto::juno::stream::v1::StreamAllBalancesRequest;
use stream_proto::juno::stream::v1::query_client::QueryClient;
use support::accounts::{DEV_KEYS, address};
use support::{TestNode, TestNodeOptions, client_channel};
use tokio::io::AsyncWriteExt;
use ws_support::client::tcp_from;
use ws_support::loopback;
use ws_support::metrics::{scrape, wait_for_index, wait_for_value};

const GRPC_STREAMS: usize = 2_000;
const WS_CONNECTS: usize = 500;

/// xorshift64: reproducible random moments.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_cancelled_at_random_moments_leave_an_empty_index() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .simulate(20)
            .rpc("max_open_connections", 0)
            .rpc("max_subscriptions_per_client", 0),
    )
    .await;
    let (api, grpc) = (node.api_addr(), node.grpc_addr());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    eprintln!("seed {seed:#x}");

    let mut tasks = Vec::new();
    for i in 0..GRPC_STREAMS {
        let wait = Duration::from_micros(next(&mut seed) % 5_000);
        let channel = client_channel(grpc, 1 + (i % 8) as u8);
        let request = StreamAllBalancesRequest {
            address: address(DEV_KEYS[i % DEV_KEYS.len()]),
            since_height: 0,
        };
        tasks.push(tokio::spawn(async move {
            // Cancelled after `wait`: before the request is sent, while it is being
            // admitted or registered, or after the snapshot.
            let _ = tokio::time::timeout(wait, async {
                let mut stream = QueryClient::new(channel)
                    .stream_all_balances(request)
                    .await?
                    .into_inner();
                stream.message().await
            })
            .await;
        }));
    }
    for i in 0..WS_CONNECTS {
        let path = format!(
            "/ws/subscribe/bank/balances/{}",
            address(DEV_KEYS[i % DEV_KEYS.len()])
        );
        let linger = Duration::from_micros(next(&mut seed) % 5_000);
        tasks.push(tokio::spawn(async move {
            let Ok(mut tcp) = tcp_from(loopback(20 + (i % 8) as u8), api).await else {
                return;
            };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            let _ = tcp.write_all(request.as_bytes()).await;
            tokio::time::sleep(linger).await;
            drop(tcp); // never reads the 101
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }

    wait_for_index(api, 0, 0, "after every stream was cancelled").await;
    wait_for_value(api, "stream_connections", 0.0).await;
    // Leftovers would keep skipping updates (counted) while blocks change their values.
    let before = scrape(api).await.sum("stream_buffer_overflow_total");
    let h = node.height().await;
    node.wait_for_height(h + 10).await;
    let s = scrape(api).await;
    assert_eq!(
        s.sum("stream_buffer_overflow_total"),
        before,
        "no subscription outlived its client"
    );
    assert_eq!(s.sum("stream_subscriptions"), 0.0);
}
