//! End-to-end: WebSocket heartbeat and cleanup with short `[stream]` timeouts in app.toml.
//! A client that stops reading (never answers a ping) is closed with code 1008 once the idle
//! timeout passes; a client that vanishes without a close frame (FIN or RST) is dropped at
//! once; a client that keeps pinging but never reads is cut when a write has waited the write
//! timeout, its skipped values counted in `stream_buffer_overflow`. All of them free their
//! slots, and a healthy client on the same node keeps getting every update on time and is
//! never closed, although it only ever answers pings.

mod support;
mod ws_support;

use std::time::{Duration, Instant};

use support::accounts::{BOND_DENOM, address};
use support::queries::At;
use support::{TestNode, TestNodeOptions};
use tokio::sync::mpsc;
use ws_support::client::{RawClient, RawFrame, WsClient};
use ws_support::expected::WsStream;
use ws_support::{WAIT, loopback, metrics};

/// `idle_timeout` of [`TestNodeOptions::short_timeouts`].
const IDLE: Duration = Duration::from_secs(2);
/// `ping_interval` of [`TestNodeOptions::short_timeouts`].
const PING: Duration = Duration::from_millis(500);
/// Slack for a loaded 2-core machine on top of a configured timeout.
const SLACK: Duration = Duration::from_secs(2);
/// How late an update may reach the healthy client after its block was committed.
const ON_TIME: Duration = Duration::from_secs(2);

/// Asserts a raw client saw the snapshot, at least one ping, and a 1008 close last.
fn assert_closed_for_silence(who: &str, frames: &[RawFrame]) {
    let summary: Vec<(u8, usize)> = frames.iter().map(|f| (f.opcode, f.payload.len())).collect();
    assert_eq!(
        frames.first().map(|f| f.opcode),
        Some(1),
        "{who}: the snapshot (a text frame) comes first: {summary:?}"
    );
    assert!(
        frames.iter().any(|f| f.opcode == 9),
        "{who}: the server pings every {PING:?}: {summary:?}"
    );
    let last = frames.last().expect("frames");
    assert_eq!(
        last.close_code(),
        Some(1008),
        "{who}: a silent client is closed with 1008 (policy violation): {summary:?}, last {:?}",
        String::from_utf8_lossy(&last.payload)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_vanished_clients_are_cleaned_up_while_a_healthy_client_keeps_up() {
    let node = TestNode::start(TestNodeOptions::slow_unbonding().short_timeouts()).await;
    let api = node.api_addr();
    let stream = WsStream::Balance {
        address: address("alice"),
        denom: BOND_DENOM.into(),
    };
    let path = stream.path();

    // The healthy client reads all the time (tungstenite answers each ping while reading).
    let mut healthy = WsClient::connect(api, &path, loopback(1)).await;
    let snapshot = healthy.next_json().await;
    let (updates_tx, mut updates) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let update = healthy.next_json_timed().await;
            if updates_tx.send(update).is_err() {
                return healthy;
            }
        }
    });

    // Clients that stop reading: two hand-rolled ones (path route and /ws) and a tungstenite
    // client that is never polled again. None of them will ever answer a ping.
    let silent_since = Instant::now();
    let raw_route = RawClient::upgrade(api, &path, loopback(2)).await;
    let raw_mux = RawClient::upgrade(api, "/ws", loopback(3)).await;
    let _stalled = WsClient::connect(api, &path, loopback(4)).await;
    // Clients that vanish without a close frame: one closes its socket (FIN), one resets it.
    let fin = WsClient::connect(api, &path, loopback(5)).await;
    let rst = WsClient::connect(api, "/ws", loopback(6)).await;
    metrics::wait_for_value(api, "stream_connections", 6.0).await;

    fin.vanish();
    rst.reset();
    let noticed = metrics::wait_for_value(api, "stream_connections", 4.0).await;
    assert!(
        noticed < IDLE,
        "a client that vanished (FIN / RST) must be dropped at once, not after the idle \
         timeout; took {noticed:?}"
    );

    // While the silent ones wait for their idle timeout, blocks with updates keep coming:
    // the healthy client gets each one, in order, on time, for three idle timeouts.
    let watcher = tokio::spawn(async move {
        metrics::wait_for_value(api, "stream_connections", 1.0).await;
        silent_since.elapsed()
    });
    let mut last_height = snapshot["height"].as_i64().expect("height");
    let mut worst = Duration::ZERO;
    let mut blocks = 0;
    while silent_since.elapsed() < 3 * IDLE {
        let tx = node
            .tx_ok(&["bank", "send", "alice", "bob", "1ujuno"])
            .await;
        let committed = Instant::now();
        let (update, arrived) = tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("the healthy client gets the update")
            .expect("the healthy client is still connected");
        let height = update["height"].as_i64().expect("height");
        assert_eq!(
            height, tx.height,
            "the healthy client's next update is the block of the tx (after {last_height})"
        );
        let amount = node
            .balance(&address("alice"), BOND_DENOM, At::Height(height))
            .await
            .to_string();
        assert_eq!(update["amount"].as_str(), Some(amount.as_str()), "{update}");
        worst = worst.max(arrived.saturating_duration_since(committed));
        last_height = height;
        blocks += 1;
    }
    let silent_closed_after = watcher
        .await
        .expect("clients that never answer a ping must be closed");
    eprintln!(
        "silent clients closed after {silent_closed_after:?}; healthy client got {blocks} \
         updates, worst delay after the tx returned {worst:?}"
    );
    assert!(
        silent_closed_after >= IDLE && silent_closed_after <= IDLE + PING + SLACK,
        "clients that never answer a ping must be closed after idle_timeout ({IDLE:?}) and \
         within idle_timeout + ping_interval + {SLACK:?}; took {silent_closed_after:?}"
    );
    assert!(
        worst <= ON_TIME,
        "the healthy client got an update {worst:?} after the tx returned (limit {ON_TIME:?})"
    );

    // What the silent clients saw: snapshot, pings, then close code 1008.
    assert_closed_for_silence("raw path route", &raw_route.drain().await);
    let mux = raw_mux.drain().await;
    assert!(
        mux.iter().any(|f| f.opcode == 9)
            && mux.last().and_then(RawFrame::close_code) == Some(1008),
        "raw /ws client: pings then close 1008: {:?}",
        mux.iter().map(|f| f.opcode).collect::<Vec<_>>()
    );

    // The healthy client outlived three idle timeouts only answering pings, and is still here.
    let s = metrics::scrape(api).await;
    assert_eq!(s.get("stream_connections"), 1.0, "{}", s.text);
    assert_eq!(s.get("stream_subscriptions{type=\"balance\"}"), 1.0);
    drop(updates);
    reader.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_pinging_but_never_reads_is_cut_by_the_write_timeout() {
    /// `write_timeout` of this node; the idle timeout is far away, and the client pings anyway.
    const WRITE: Duration = Duration::from_secs(2);
    /// Subscriptions of the stuck client to each dev account's balances.
    const PER_ACCOUNT: usize = 400;
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .simulate(20)
            .rpc("max_subscriptions_per_client", 0)
            .stream("ping_interval", "500ms")
            .stream("idle_timeout", "60s")
            .stream("write_timeout", "2s"),
    )
    .await;
    let api = node.api_addr();

    // The healthy client follows alice's balances, which the simulated traffic changes in
    // nearly every block.
    let healthy_stream = WsStream::Balances {
        address: address("alice"),
    };
    let mut healthy = WsClient::connect(api, &healthy_stream.path(), loopback(1)).await;
    healthy.next_json().await;
    let (updates_tx, mut updates) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        loop {
            let update = healthy.next_json_timed().await;
            if updates_tx.send(update).is_err() {
                return;
            }
        }
    });

    // A client with a 4 KiB receive buffer subscribes 2,000 times to the dev accounts'
    // balances over `/ws` and never reads. It pings every 300 ms, so it is never idle; the
    // megabytes of updates soon fill the socket buffers and a write of the server blocks.
    // It never reads from the upgrade on: a server write can block from then on.
    let stuck_since = Instant::now();
    let mut stuck = RawClient::upgrade_with(api, "/ws", loopback(2), Some(4096)).await;
    let mut id = 0u64;
    for name in ["alice", "bob", "carol", "validator1", "validator2"] {
        let stream = WsStream::Balances {
            address: address(name),
        };
        for _ in 0..PER_ACCOUNT {
            id += 1;
            stuck
                .send_text(&stream.subscribe(id).to_string())
                .await
                .expect("send a subscribe request");
        }
    }
    let pinger = tokio::spawn(async move {
        while stuck.send_ping().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });

    let cut_after = metrics::wait_for_value(api, "stream_connections", 1.0).await;
    eprintln!(
        "stuck client cut {cut_after:?} after its subscriptions, {:?} after its upgrade",
        stuck_since.elapsed()
    );
    let s = metrics::wait_until(api, "the stuck client's subscriptions are gone", |s| {
        s.get("stream_subscriptions{type=\"balances\"}") == 1.0
    })
    .await;
    assert!(
        s.get("stream_buffer_overflow_total{subscription_type=\"balances\"}") > 0.0,
        "values the stuck client could not take were skipped and counted: {}",
        s.text
    );
    assert!(
        stuck_since.elapsed() >= WRITE,
        "cut before a write could have waited write_timeout {WRITE:?}"
    );
    assert_eq!(
        s.get("stream_write_timeouts_total"),
        1.0,
        "the cut is counted as a write timeout: {}",
        s.text
    );

    // The healthy client kept getting alice's balances all along: increasing heights, no
    // long gap, and still current now.
    let now = node.height().await;
    let mut last: Option<(i64, Instant)> = None;
    let mut worst_gap = Duration::ZERO;
    loop {
        let (update, arrived) = tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("the healthy client keeps getting updates")
            .expect("the healthy client is still connected");
        let height = update["height"].as_i64().expect("height");
        if let Some((previous, at)) = last {
            assert!(
                height > previous,
                "heights increase: {previous} then {height}"
            );
            worst_gap = worst_gap.max(arrived - at);
        }
        last = Some((height, arrived));
        if height >= now {
            break;
        }
    }
    eprintln!("healthy client: longest gap between updates {worst_gap:?}");
    assert!(
        worst_gap <= ON_TIME,
        "the healthy client went {worst_gap:?} without an update while the stuck one was \
         being cut (limit {ON_TIME:?})"
    );
    pinger.abort();
    reader.abort();
}
