//! End-to-end: node telemetry on the API port (`[telemetry] enabled = true`, the default
//! `streamd init` writes). `GET /metrics` (OpenMetrics) and `GET /metrics?format=prometheus`
//! (Prometheus text 0.0.4) serve the stream metrics of DESIGN.md 4.3 with their documented
//! types and labels beside the node's own, `promtool check metrics` accepts both, and each
//! metric moves as documented while gRPC and WebSocket clients come and go.

mod support;
mod ws_support;

use std::process::Stdio;

use serde_json::json;
use support::accounts::{BOND_DENOM, address, valoper};
use support::tools::PROMTOOL;
use support::{TestNode, TestNodeOptions};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use ws_support::client::WsClient;
use ws_support::expected::WsStream;
use ws_support::metrics::{
    Format, Scrape, scrape, scrape_format, wait_for_index, wait_for_value, wait_until,
};
use ws_support::{grpc_balance_stream, http, loopback};

/// The six subscription types (`type` / `subscription_type` label values).
const TYPES: [&str; 6] = [
    "balance",
    "balances",
    "delegation",
    "delegations",
    "unbonding_delegation",
    "unbonding_delegations",
];

/// Every metric family and its declared type (OpenMetrics names: counters without `_total`).
const FAMILIES: [(&str, &str); 20] = [
    ("stream_connections", "gauge"),
    ("stream_subscriptions", "gauge"),
    ("stream_messages_sent", "counter"),
    ("stream_buffer_overflow", "counter"),
    ("stream_connection_duration", "histogram"),
    ("stream_connection_rejected", "counter"),
    ("stream_commit_to_send_seconds", "histogram"),
    ("stream_commit_hook_seconds", "histogram"),
    ("stream_blocks_dispatched", "counter"),
    ("stream_blocks_dropped", "counter"),
    ("stream_dispatcher_lag_blocks", "gauge"),
    ("stream_decode_errors", "counter"),
    ("stream_resyncs", "counter"),
    ("stream_topics", "gauge"),
    ("stream_dispatcher_subscriptions", "gauge"),
    ("streamd_block_height", "gauge"),
    ("streamd_block_interval_seconds", "histogram"),
    ("streamd_txs", "counter"),
    ("streamd_failed_txs", "counter"),
    ("streamd_mempool_txs", "gauge"),
];

fn subs(kind: &str) -> String {
    format!("stream_subscriptions{{type=\"{kind}\"}}")
}

fn sent(kind: &str) -> String {
    format!("stream_messages_sent_total{{type=\"{kind}\"}}")
}

fn rejected(reason: &str) -> String {
    format!("stream_connection_rejected_total{{reason=\"{reason}\"}}")
}

/// A node with small limits and one allowed origin, so every refusal reason can be caused.
async fn limited_node() -> TestNode {
    TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_open_connections", 6)
            .rpc("max_subscriptions_per_client", 3)
            .stream("allowed_origins", vec!["https://app.example"]),
    )
    .await
}

/// Causes one refusal of each reason a client can cause: invalid_request, not_websocket,
/// origin_not_allowed, max_subscriptions (127.0.0.9 takes 3 subscriptions on `/ws`, then
/// asks a fourth) and max_connections (fills the node's 6 connections). Returns the clients
/// holding slots.
async fn cause_every_refusal(node: &TestNode) -> Vec<WsClient> {
    let api = node.api_addr();
    let path = WsStream::Balance {
        address: address("carol"),
        denom: BOND_DENOM.into(),
    }
    .path();
    WsClient::refused(api, "/ws/subscribe/bank/balances/juno1nope", loopback(9)).await;
    assert_eq!(http::get(api, &path).await.status, 426);
    let r = WsClient::try_connect(api, &path, loopback(9), &[("Origin", "https://x.example")])
        .await
        .err()
        .expect("foreign origin refused");
    assert_eq!(r.status, 403);
    let mut held = Vec::new();
    let mut mux = WsClient::connect(api, "/ws", loopback(9)).await;
    for (i, name) in ["alice", "bob", "carol", "validator1"]
        .into_iter()
        .enumerate()
    {
        let stream = WsStream::Balances {
            address: address(name),
        };
        let reply = mux.request(&stream.subscribe(i as u64 + 1)).await;
        if i < 3 {
            assert!(reply.get("result").is_some(), "{reply}");
            mux.next_json().await;
        } else {
            assert_eq!(reply["error"]["code"], json!(429), "{reply}");
        }
    }
    held.push(mux);
    let open = scrape(api).await.get("stream_connections") as usize;
    for i in open..6 {
        held.push(WsClient::connect(api, "/ws", loopback(20 + i as u8)).await);
    }
    assert_eq!(
        WsClient::refused(api, "/ws", loopback(30)).await.status,
        503
    );
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_formats_declare_every_metric_with_its_type() {
    let node = limited_node().await;
    let api = node.api_addr();
    let _held = cause_every_refusal(&node).await;

    let open = scrape_format(api, Format::OpenMetrics).await;
    assert_eq!(
        open.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "GET /metrics"
    );
    assert!(
        open.text.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF"
    );
    // `?format=prometheus` (the Cosmos SDK's telemetry query) gets the same OpenMetrics
    // text, which Prometheus scrapes natively: prometheus-client encodes nothing else, and
    // relabelling counters by hand would be hand-rolled metrics encoding.
    let prom = scrape_format(api, Format::Prometheus).await;
    assert_eq!(
        prom.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "GET /metrics?format=prometheus"
    );
    assert!(
        prom.text.ends_with("# EOF\n"),
        "OpenMetrics ends with # EOF"
    );
    for (name, kind) in FAMILIES {
        assert_eq!(open.type_of(name), kind, "OpenMetrics # TYPE of {name}");
        assert_eq!(
            prom.type_of(name),
            kind,
            "?format=prometheus # TYPE of {name}"
        );
    }
    for s in [&open, &prom] {
        for kind in TYPES {
            s.get(&subs(kind));
            s.get(&sent(kind));
            s.get(&format!(
                "stream_buffer_overflow_total{{subscription_type=\"{kind}\"}}"
            ));
        }
        for reason in [
            "invalid_request",
            "not_websocket",
            "origin_not_allowed",
            "max_subscriptions",
            "max_connections",
        ] {
            assert_eq!(s.get(&rejected(reason)), 1.0, "{reason}");
        }
        for histogram in [
            "stream_connection_duration",
            "stream_commit_to_send_seconds",
            "stream_commit_hook_seconds",
            "streamd_block_interval_seconds",
        ] {
            s.get(&format!("{histogram}_count"));
            s.get(&format!("{histogram}_sum"));
            s.get(&format!("{histogram}_bucket{{le=\"+Inf\"}}"));
        }
    }
    // Both formats report the same state.
    assert_eq!(open.get("stream_connections"), 6.0);
    assert_eq!(prom.get("stream_connections"), 6.0);
}

/// Runs `promtool check metrics` on `text`; returns (exit code, output).
async fn promtool_check(promtool: &std::path::Path, text: &str) -> (i32, String) {
    let mut child = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", promtool.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(text.as_bytes())
        .await
        .expect("feed promtool");
    drop(stdin);
    let output = child.wait_with_output().await.expect("promtool output");
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), combined)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_both_formats() {
    let promtool = PROMTOOL.require();
    let node = limited_node().await;
    let api = node.api_addr();
    let _held = cause_every_refusal(&node).await;
    node.tx_ok(&["bank", "send", "alice", "bob", "1ujuno"])
        .await;
    for format in [Format::OpenMetrics, Format::Prometheus] {
        let s = scrape_format(api, format).await;
        let (code, output) = promtool_check(&promtool, &s.text).await;
        eprintln!("promtool check metrics ({format:?}): exit {code}\n{output}");
        // 0: clean; 3: parses, with lint warnings only (DESIGN.md 11); 1: does not parse.
        assert!(
            code == 0 || code == 3,
            "promtool check metrics rejects the {format:?} output (exit {code}):\n{output}\n\
             --- served ---\n{}",
            s.text
        );
    }
}

/// Sum of every `stream_messages_sent_total{type}`.
fn total_sent(s: &Scrape) -> f64 {
    s.sum("stream_messages_sent_total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_clients_come_and_go() {
    let node = limited_node().await;
    let (api, grpc) = (node.api_addr(), node.grpc_addr());
    let alice = address("alice");

    let s0 = scrape(api).await;
    assert_eq!(s0.get("stream_connections"), 0.0);
    for kind in TYPES {
        assert_eq!(s0.get(&subs(kind)), 0.0, "{kind}");
        assert_eq!(s0.get(&sent(kind)), 0.0, "{kind}");
        assert_eq!(
            s0.get(&format!(
                "stream_buffer_overflow_total{{subscription_type=\"{kind}\"}}"
            )),
            0.0
        );
    }
    assert_eq!(s0.get("stream_connection_duration_count"), 0.0);
    assert_eq!(s0.get("stream_decode_errors_total"), 0.0);
    assert_eq!(s0.get("stream_blocks_dropped_total"), 0.0);

    // A path route, a `/ws` with two subscriptions and a gRPC stream.
    let balance = WsStream::Balance {
        address: alice.clone(),
        denom: BOND_DENOM.into(),
    };
    let mut route = WsClient::connect(api, &balance.path(), loopback(1)).await;
    route.next_json().await;
    let s = scrape(api).await;
    assert_eq!(
        (
            s.get("stream_connections"),
            s.get(&subs("balance")),
            s.get(&sent("balance"))
        ),
        (1.0, 1.0, 1.0),
        "one path route with its snapshot sent"
    );
    let mut mux = WsClient::connect(api, "/ws", loopback(2)).await;
    for (id, stream) in [
        WsStream::Balances {
            address: alice.clone(),
        },
        WsStream::Delegation {
            delegator: alice.clone(),
            validator: valoper("validator1"),
        },
    ]
    .iter()
    .enumerate()
    {
        mux.request(&stream.subscribe(id as u64 + 1)).await;
        mux.next_json().await;
    }
    let mut grpc_stream = grpc_balance_stream(grpc, loopback(3), &alice, BOND_DENOM)
        .await
        .expect("gRPC stream admitted");
    let s = scrape(api).await;
    assert_eq!(
        s.get("stream_connections"),
        3.0,
        "2 WebSockets + 1 gRPC stream"
    );
    assert_eq!(
        TYPES.map(|k| s.get(&subs(k))),
        [2.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        "subscriptions by type (gRPC and WebSocket together)"
    );
    assert_eq!(
        TYPES.map(|k| s.get(&sent(k))),
        [2.0, 1.0, 1.0, 0.0, 0.0, 0.0],
        "one snapshot each"
    );
    let txs_before = s.get("streamd_txs_total");
    let failed_before = s.get("streamd_failed_txs_total");

    // A send: one message per changed subscription, on both transports.
    let h = node
        .tx_ok(&["bank", "send", "alice", "bob", "1000ujuno"])
        .await
        .height;
    assert_eq!(route.next_json().await["height"], json!(h));
    assert_eq!(mux.next_json().await["data"]["height"], json!(h));
    let message = tokio::time::timeout(ws_support::WAIT, grpc_stream.message())
        .await
        .expect("gRPC update")
        .expect("gRPC stream alive")
        .expect("gRPC message");
    assert_eq!(message.height, h);
    let s = scrape(api).await;
    assert_eq!(
        TYPES.map(|k| s.get(&sent(k))),
        [4.0, 2.0, 1.0, 0.0, 0.0, 0.0],
        "messages sent after the send"
    );
    assert_eq!(
        s.get("stream_commit_to_send_seconds_count"),
        total_sent(&s),
        "every message sent has its commit-to-send latency observed"
    );
    assert_eq!(s.get("streamd_txs_total"), txs_before + 1.0);
    assert_eq!(s.get("streamd_failed_txs_total"), failed_before);
    assert_eq!(s.get("streamd_mempool_txs"), 0.0);

    // A tx that fails in its block counts as a tx and as a failed tx.
    let failed = node
        .tx(&["bank", "send", "alice", "bob", "999999999999999999ujuno"])
        .await;
    assert_eq!(failed.code, 5, "insufficient funds: {failed:?}");
    let s = scrape(api).await;
    assert_eq!(s.get("streamd_txs_total"), txs_before + 2.0);
    assert_eq!(s.get("streamd_failed_txs_total"), failed_before + 1.0);

    // Heights: streamd_block_height follows the chain; the dispatcher keeps up with it.
    let before = node.height().await;
    let s = scrape(api).await;
    let after = node.height().await;
    let height = s.get("streamd_block_height") as i64;
    assert!(
        (before..=after).contains(&height),
        "streamd_block_height {height} outside the chain's {before}..={after}"
    );
    let s = wait_until(
        api,
        "stream_blocks_dispatched_total == streamd_block_height",
        |s| {
            s.get("stream_blocks_dispatched_total") == s.get("streamd_block_height")
                && s.get("streamd_block_height") >= after as f64
        },
    )
    .await;
    let dispatched = s.get("stream_blocks_dispatched_total");
    node.wait_for_height(after + 3).await;
    let later = scrape(api).await;
    assert!(
        later.get("stream_blocks_dispatched_total") >= dispatched + 3.0,
        "stream_blocks_dispatched grows with the chain"
    );
    assert!(
        later.get("stream_commit_hook_seconds_count") >= dispatched,
        "the commit hook's time is observed for every block it handed over"
    );
    let intervals = later.get("streamd_block_interval_seconds_count");
    let mean = later.get("streamd_block_interval_seconds_sum") / intervals;
    assert!(
        intervals >= (after - 1) as f64 && (0.1..1.0).contains(&mean),
        "block intervals: {intervals} observed, mean {mean}s for 200ms blocks"
    );
    assert_eq!(later.get("stream_dispatcher_lag_blocks"), 0.0);

    // Everyone leaves: gauges back to 0, one duration observed per connection and stream.
    route.close(CloseCode::Normal).await;
    mux.close(CloseCode::Normal).await;
    drop(grpc_stream);
    wait_for_value(api, "stream_connections", 0.0).await;
    let s = wait_until(api, "every subscription gauge back to 0", |s| {
        TYPES.iter().all(|k| s.get(&subs(k)) == 0.0)
    })
    .await;
    assert_eq!(s.get("stream_connection_duration_count"), 3.0);
    assert_eq!(s.get("stream_commit_to_send_seconds_count"), total_sent(&s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_reason_and_are_not_connections() {
    let node = limited_node().await;
    let api = node.api_addr();
    let held = cause_every_refusal(&node).await;
    let s = scrape(api).await;
    for reason in [
        "invalid_request",
        "not_websocket",
        "origin_not_allowed",
        "max_subscriptions",
        "max_connections",
    ] {
        assert_eq!(s.get(&rejected(reason)), 1.0, "{reason}");
    }
    assert_eq!(s.get("stream_connections"), 6.0);
    assert_eq!(
        s.get("stream_connection_duration_count"),
        0.0,
        "no connection has ended yet"
    );

    // A path route over the subscription limit (429) never becomes a connection: it must not
    // show up in stream_connection_duration (the lifetime of connections and streams).
    let mut held = held.into_iter();
    let _mux = held.next().expect("the /ws client of 127.0.0.9");
    for client in held {
        client.vanish();
    }
    wait_for_value(api, "stream_connections", 1.0).await;
    let ended = scrape(api).await.get("stream_connection_duration_count");
    assert_eq!(ended, 5.0, "five connections ended");
    let path = WsStream::Balance {
        address: address("alice"),
        denom: BOND_DENOM.into(),
    }
    .path();
    let r = WsClient::refused(api, &path, loopback(9)).await;
    assert_eq!(r.status, 429, "{r:?}");
    let s = scrape(api).await;
    assert_eq!(s.get(&rejected("max_subscriptions")), 2.0);
    assert_eq!(
        s.get("stream_connection_duration_count"),
        ended,
        "a refused upgrade (429) was observed as a connection lifetime"
    );
}

/// `{"id", "method": "unsubscribe"}` for subscription `sid`.
fn unsubscribe(id: u64, sid: &str) -> serde_json::Value {
    json!({"id": id, "method": "unsubscribe", "params": {"subscription": sid}})
}

/// Every way a subscription ends removes it from the dispatcher's index, not only from the
/// per-type gauge: `stream_topics` and `stream_dispatcher_subscriptions` rise while clients
/// are subscribed and are back at 0 after a `/ws` unsubscribe, a path-route close, a `/ws`
/// close with live subscriptions, a TCP drop without a close frame (FIN and RST) and a
/// cancelled gRPC stream. A leak there (the index growing with every client that came and
/// went) would pass every value test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatcher_index_is_emptied_however_a_subscription_ends() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let (api, grpc) = (node.api_addr(), node.grpc_addr());
    let alice = address("alice");
    let balance = WsStream::Balance {
        address: alice.clone(),
        denom: BOND_DENOM.into(),
    };
    let delegations = WsStream::Delegations {
        delegator: address("bob"),
    };
    wait_for_index(api, 0, 0, "a fresh node").await;

    // `/ws` unsubscribe: each one removes its entry while the connection stays open.
    let mut mux = WsClient::connect(api, "/ws", loopback(1)).await;
    for (id, stream) in [(1, &balance), (2, &delegations)] {
        mux.request(&stream.subscribe(id)).await;
        mux.next_json().await;
    }
    wait_for_index(api, 2, 2, "two /ws subscriptions").await;
    let reply = mux.request(&unsubscribe(3, "s1")).await;
    assert_eq!(reply, json!({"id": 3, "result": {"unsubscribed": "s1"}}));
    wait_for_index(api, 1, 1, "after unsubscribing s1").await;
    let reply = mux.request(&unsubscribe(4, "s2")).await;
    assert_eq!(reply, json!({"id": 4, "result": {"unsubscribed": "s2"}}));
    wait_for_index(api, 0, 0, "after unsubscribing s1 and s2").await;
    assert_eq!(
        scrape(api).await.get("stream_connections"),
        1.0,
        "unsubscribing leaves the /ws connection open"
    );

    // Two subscriptions to one key share one topic; a path-route close removes one of them,
    // closing the `/ws` connection with its subscription still live removes the other.
    let mut route = WsClient::connect(api, &balance.path(), loopback(2)).await;
    route.next_json().await;
    mux.request(&balance.subscribe(5)).await;
    mux.next_json().await;
    wait_for_index(api, 1, 2, "one key, a path route and a /ws subscription").await;
    route.close(CloseCode::Normal).await;
    wait_for_index(api, 1, 1, "after the path route's close").await;
    mux.close(CloseCode::Normal).await;
    wait_for_index(api, 0, 0, "after the /ws close").await;

    // Clients that vanish without a close frame: a `/ws` client closes its socket (FIN), a
    // path-route client resets it (RST).
    let mut fin = WsClient::connect(api, "/ws", loopback(3)).await;
    fin.request(&delegations.subscribe(1)).await;
    fin.next_json().await;
    wait_for_index(api, 1, 1, "a /ws subscription").await;
    fin.vanish();
    wait_for_index(api, 0, 0, "after the /ws client's TCP FIN").await;
    let mut rst = WsClient::connect(api, &delegations.path(), loopback(4)).await;
    rst.next_json().await;
    wait_for_index(api, 1, 1, "a path-route subscription").await;
    rst.reset();
    wait_for_index(api, 0, 0, "after the path-route client's TCP RST").await;

    // A gRPC stream the client cancels.
    let stream = grpc_balance_stream(grpc, loopback(5), &alice, BOND_DENOM)
        .await
        .expect("gRPC stream admitted");
    wait_for_index(api, 1, 1, "a gRPC stream").await;
    drop(stream);
    wait_for_index(api, 0, 0, "after the gRPC stream's cancel").await;
    wait_for_value(api, "stream_connections", 0.0).await;
    let s = scrape(api).await;
    for kind in TYPES {
        assert_eq!(s.get(&subs(kind)), 0.0, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mempool_gauges_follow_broadcasts_before_the_next_block() {
    use support::tx::{msg_send, sign};
    // [5/11] D8: the gauge used to stay stale until the next block.
    let node = TestNode::start(TestNodeOptions {
        block_time: "5s",
        ..TestNodeOptions::slow_unbonding()
    })
    .await;
    let api = node.api_addr();
    let h = node.height().await;
    node.wait_for_height(h + 1).await; // a block just committed: ~5 s until the next
    let signer = node.signer("alice").await;
    let tx = sign(
        &signer,
        vec![msg_send(&address("alice"), &address("bob"), 5, BOND_DENOM)],
        "mempool gauge",
    );
    let len = tx.len() as f64;
    let r = node.broadcast(tx).await;
    assert_eq!(r.code, 0, "CheckTx: {}", r.raw_log);
    let s = scrape(api).await;
    assert_eq!(node.height().await, h + 1, "still before the next block");
    assert_eq!(s.get("streamd_mempool_txs"), 1.0);
    assert_eq!(s.get("streamd_mempool_bytes"), len);
    node.wait_for_height(h + 2).await;
    wait_until(api, "the mempool gauge back at 0 after the block", |s| {
        s.get("streamd_mempool_txs") == 0.0 && s.get("streamd_mempool_bytes") == 0.0
    })
    .await;
}
