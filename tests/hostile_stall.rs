//! End-to-end, stalled readers ([5/11] D9): clients that stop reading while their value
//! changes every block, then read again, get the newest value after only the few frames their
//! own receive buffer held: the server bounds each connection's unsent bytes, so skipping
//! happens in the outbox (which keeps only the newest value), not in kernel buffers.

mod support;
mod ws_support;

use std::time::{Duration, Instant};

use serde_json::Value as Json;
use support::accounts::address;
use support::{TestNode, TestNodeOptions};
use ws_support::client::RawClient;
use ws_support::loopback;

const CLIENTS: usize = 20;
/// Changes each stalled client misses: well above what buffers can hold once bounded.
const CHANGES: i64 = 200;
/// Accounts whose balances the simulated traffic changes in every block.
const BUSY: [&str; 3] = ["alice", "bob", "carol"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_get_the_newest_value_after_few_stale_frames() {
    let node = TestNode::start(
        TestNodeOptions {
            block_time: "100ms",
            ..TestNodeOptions::slow_unbonding()
        }
        .simulate(30)
        .rpc("max_subscriptions_per_client", 0)
        .stream("write_timeout", "60s")
        .stream("idle_timeout", "120s"),
    )
    .await;
    let api = node.api_addr();
    let mut clients = Vec::new();
    let subscribed_at = node.height().await;
    for i in 0..CLIENTS {
        let path = format!(
            "/ws/subscribe/bank/balances/{}",
            address(BUSY[i % BUSY.len()])
        );
        // A small receive window: what piles up beyond it is what the server lets pile up.
        let mut c = RawClient::upgrade_with(api, &path, loopback(1), Some(4096)).await;
        assert!(
            !c.read_for(Duration::from_millis(200)).await.is_empty(),
            "snapshot"
        );
        clients.push(c);
    }
    for step in 1..=4 {
        node.wait_for_height(subscribed_at + CHANGES * step / 4)
            .await;
    }
    let resumed_at = node.height().await;
    let mut stale = Vec::new();
    let mut waits = Vec::new();
    for mut c in clients {
        let started = Instant::now();
        let mut frames = 0usize;
        let newest = loop {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no fresh value within 30 s: {frames} stale frames read so far"
            );
            let batch = c.read_for(Duration::from_millis(20)).await;
            let texts: Vec<Json> = batch
                .iter()
                .filter(|f| f.opcode == 1)
                .map(|f| serde_json::from_slice(&f.payload).expect("JSON"))
                .collect();
            let fresh = texts
                .iter()
                .position(|v| v["height"].as_i64().unwrap_or(0) >= resumed_at);
            if let Some(i) = fresh {
                frames += i;
                break texts[i].clone();
            }
            frames += texts.len();
        };
        assert!(newest["balances"].is_array(), "{newest}");
        stale.push(frames);
        waits.push(started.elapsed());
    }
    let changes = (resumed_at - subscribed_at) as usize;
    let max_stale = stale.iter().max().copied().unwrap_or(0);
    let max_wait = waits.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{CLIENTS} clients stalled for {changes}+ changes each on values changing every \
         block: stale frames before the newest value: {stale:?} (max {max_stale}); slowest had it \
         {max_wait:?} after reading again"
    );
    // What the client's receive buffer (4 KiB asked, doubled by the kernel) holds plus the
    // server's bound on unsent bytes (4 KiB) and one segment: about 100 of these frames,
    // measured; not the whole stall (before the bound: every change, ~95% of them).
    assert!(
        max_stale <= 130,
        "a stalled reader got {max_stale} stale frames of {changes} changes before the newest value"
    );
}
