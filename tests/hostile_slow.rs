//! End-to-end, slow and half-open connections ([5/11] D4): 1,000 connections from one IP
//! that send their request headers (API port) or their HTTP/2 preface (gRPC port) at one byte
//! per second. Each port admits at most 256 of them per client IP, cuts the rest at once and
//! the admitted ones after the 10 s handshake timeout, all counted; meanwhile a fresh client
//! streams over WebSocket and gRPC and scrapes `/metrics` as if nothing happened.

mod support;
mod ws_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stream_proto::juno::stream::v1::StreamBalanceRequest;
use stream_proto::juno::stream::v1::query_client::QueryClient;
use support::accounts::{BOND_DENOM, address};
use support::{TestNode, TestNodeOptions, client_channel};
use tokio::net::TcpStream;
use ws_support::client::{WsClient, tcp_from};
use ws_support::{WAIT, loopback, metrics};

const SLOW: usize = 1_000;
/// The node's per-client cap on connections still handshaking, per port.
const PENDING_CAP: usize = 256;
/// The node's handshake timeout, and the slack a loaded machine gets on it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(10);

/// Opens `SLOW` connections from `from` to `to`, each having sent `first` bytes.
async fn open_slow(from: u8, to: SocketAddr, first: &[u8]) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let tcp = tcp_from(loopback(from), to).await.expect("connect");
        let _ = tcp.try_write(first);
        out.push(tcp);
    }
    out
}

/// Whether the server closed `tcp` (a read sees EOF or a reset).
fn closed(tcp: &TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tcp.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // a response or frames before the close
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_capped_and_timed_out_while_others_stream() {
    // This process holds 2,000 sockets.
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit");
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let (api, grpc) = (node.api_addr(), node.grpc_addr());
    let started = Instant::now();
    let api_slow = open_slow(200, api, b"GET /metrics HTTP/1.1\r\nHost: n\r\n").await;
    // The HTTP/2 client preface, one byte at a time (24 bytes: longer than the timeout).
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let grpc_slow = open_slow(201, grpc, &PREFACE[..1]).await;
    // One more byte per second on each, from one task.
    let dripping = {
        let (api_slow, grpc_slow) = (api_slow, grpc_slow);
        tokio::spawn(async move {
            let deadline = Instant::now() + HANDSHAKE_TIMEOUT + SLACK;
            let mut next = 1;
            while Instant::now() < deadline {
                for tcp in api_slow.iter() {
                    let _ = tcp.try_write(b"X");
                }
                if next < PREFACE.len() {
                    for tcp in grpc_slow.iter() {
                        let _ = tcp.try_write(&PREFACE[next..next + 1]);
                    }
                    next += 1;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            (api_slow, grpc_slow)
        })
    };

    // A fresh client is served on both ports.
    let path = format!(
        "/ws/subscribe/bank/balance/{}/{BOND_DENOM}",
        address("alice")
    );
    let mut ws = WsClient::connect(api, &path, loopback(1)).await;
    let snapshot = ws.next_json().await;
    assert_eq!(snapshot["denom"], BOND_DENOM, "{snapshot}");
    let mut stream = QueryClient::new(client_channel(grpc, 2))
        .stream_balance(StreamBalanceRequest {
            address: address("bob"),
            denom: BOND_DENOM.into(),
            since_height: 0,
        })
        .await
        .expect("a gRPC stream opens")
        .into_inner();
    tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("gRPC snapshot in time")
        .expect("gRPC snapshot")
        .expect("a message");
    let h = node
        .tx_ok(&["bank", "send", "alice", "bob", "7ujuno"])
        .await
        .height;
    let update = ws.next_json().await;
    assert_eq!(update["height"], serde_json::json!(h), "{update}");
    let refused = |s: &metrics::Scrape, port: &str| {
        s.get(&format!(
            "streamd_connections_refused_total{{port=\"{port}\",reason=\"pending_per_client\"}}"
        ))
    };
    // Connections over the per-client cap are refused as they are accepted.
    let s = metrics::wait_until(api, "the over-cap connections refused", |s| {
        refused(s, "api") >= (SLOW - PENDING_CAP) as f64
            && refused(s, "grpc") >= (SLOW - PENDING_CAP) as f64
    })
    .await;
    for port in ["api", "grpc"] {
        assert_eq!(
            refused(&s, port),
            (SLOW - PENDING_CAP) as f64,
            "{port}: exactly the connections over the per-client cap are refused"
        );
    }
    assert!(
        started.elapsed() < HANDSHAKE_TIMEOUT,
        "the fresh client was served before any slow connection timed out ({:?})",
        started.elapsed()
    );

    // After the handshake timeout, every slow connection is gone.
    let (api_slow, grpc_slow) = dripping.await.expect("drip task");
    let open = |conns: &[TcpStream]| conns.iter().filter(|c| !closed(c)).count();
    assert_eq!(
        (open(&api_slow), open(&grpc_slow)),
        (0, 0),
        "slow connections still open {:?} after the handshake timeout",
        started.elapsed()
    );
    let s = metrics::scrape(api).await;
    for port in ["api", "grpc"] {
        let timed_out = s.get(&format!(
            "streamd_connections_refused_total{{port=\"{port}\",reason=\"handshake_timeout\"}}"
        ));
        assert_eq!(
            timed_out, PENDING_CAP as f64,
            "{port}: admitted slow connections time out"
        );
        assert_eq!(
            s.get(&format!(
                "streamd_connections_handshaking{{port=\"{port}\"}}"
            )),
            0.0
        );
    }
}
