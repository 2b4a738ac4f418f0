//! End-to-end: WebSocket heartbeat and cleanup with short `[stream]` timeouts in app.toml
//! (ping every 500 ms, idle timeout 2 s, write timeout 2 s). A client that stops reading
//! (never answers a ping) is closed with code 1008 once the idle timeout passes; a client
//! that vanishes without a close frame (FIN or RST) is dropped at once; both free their
//! slots, and a healthy client on the same node keeps getting every update on time and is
//! never closed, although it only ever answers pings.

mod support;
mod ws_support;

use std::time::{Duration, Instant};

use support::accounts::{BOND_DENOM, address};
use tokio::sync::mpsc;
use ws_support::client::{RawClient, RawFrame, WsClient};
use ws_support::expected::WsStream;
use ws_support::node::{WsNode, WsNodeConfig};
use ws_support::{WAIT, loopback, metrics};

/// `idle_timeout` of [`WsNodeConfig::short_timeouts`].
const IDLE: Duration = Duration::from_secs(2);
/// `ping_interval` of [`WsNodeConfig::short_timeouts`].
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
    let node = WsNode::start(WsNodeConfig::default().short_timeouts()).await;
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
        let amount = node.balance_at(&address("alice"), BOND_DENOM, height).await;
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
        mux.iter().any(|f| f.opcode == 9) && mux.last().and_then(RawFrame::close_code) == Some(1008),
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
