//! End-to-end: the TypeScript client (`clients/ts`) under Node against the real node, over
//! WebSocket (`/ws`) and over Server-Sent Events (`/sse/subscribe/...`, Node's `fetch`),
//! through a TCP proxy that cuts its connections at random moments and stalls them once
//! without closing. What each subscription delivered is held against the standard queries
//! at every height (the gap checker): the snapshot, then every change exactly once.
//! With token auth on and 3 s tokens that the client's token function mints anew at every
//! call, the same holds across at least two expiries per subscription, over `/ws` and over
//! SSE; a token narrowed to another address fails the subscription with 403, after one
//! attempt.

mod client_support;
mod gap_support;
mod stream_support;
mod support;
mod ws_support;

use std::time::{Duration, Instant};

use client_support::auth::{SECRET, TOKEN_SECS, with_auth};
use client_support::node::Follow;
use client_support::proxy::Proxy;
use client_support::run::{Run, transcript};
use gap_support::rng::Rng;
use gap_support::transcript::{Transcript, Transport};
use serde_json::{Value as Json, json};
use stream_support::StreamKey;
use support::TestNodeOptions;
use support::accounts::{BOND_DENOM, address};

const DRAIN: Duration = Duration::from_millis(1_500);

/// The wire the client streams over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    /// `WebSocketTransport` (`/ws`, the `ws` package): a stall is found by its probe,
    /// 500 ms of silence + 1 s unanswered.
    WebSocket,
    /// `SseTransport` (`fetch`): a stall is found by max(500 ms, the node's 300 ms
    /// `ping_interval`) + 1 s of silence; the node sends a keepalive comment every 300 ms, so
    /// only a stall is that silent.
    Sse,
}

impl Wire {
    /// The follower's `transport` option, and the transport the gap checker holds it as.
    fn names(self) -> (&'static str, Transport) {
        match self {
            Wire::WebSocket => ("websocket", Transport::WsMux),
            Wire::Sse => ("sse", Transport::Sse),
        }
    }
}

/// The four streams both tests follow: their keys, and the same as the follower's `subs`.
fn followed() -> ([StreamKey; 4], Vec<Json>) {
    let keys = [
        StreamKey::balance("alice", BOND_DENOM),
        StreamKey::all_balances("bob"),
        StreamKey::delegations("carol"),
        StreamKey::unbonding_delegations("alice"),
    ];
    let subs = vec![
        json!({"stream": "bank/balance", "params": {"address": address("alice"), "denom": BOND_DENOM}}),
        json!({"stream": "bank/balances", "params": {"address": address("bob")}}),
        json!({"stream": "staking/delegations", "params": {"delegator": address("carol")}}),
        json!({"stream": "staking/unbonding-delegations", "params": {"delegator": address("alice")}}),
    ];
    (keys, subs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_exactly_once_through_random_cuts_and_a_stall() {
    cuts_and_a_stall(Wire::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sse_every_change_exactly_once_through_random_cuts_and_a_stall() {
    cuts_and_a_stall(Wire::Sse).await;
}

async fn cuts_and_a_stall(wire: Wire) {
    let seed = std::env::var("STREAM_CLIENT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("seed {seed} (STREAM_CLIENT_SEED={seed} repeats the cut moments)");
    let mut rng = Rng::new(seed);
    let mut options = TestNodeOptions::default()
        .simulate(10)
        .rpc("max_subscriptions_per_client", 0);
    if wire == Wire::Sse {
        options = options.stream("ping_interval", "300ms");
    }
    let run = Run::start(options).await;
    let proxy = Proxy::start(run.node.api_addr()).await;
    let (keys, subs) = followed();
    let endpoint = match wire {
        Wire::WebSocket => proxy.ws_url(),
        Wire::Sse => proxy.http_url(),
    };
    let (transport, checked_as) = wire.names();
    let config = json!({
        "transport": transport,
        "endpoints": [endpoint],
        "subs": subs,
        "backoff": {"initialMs": 100, "maxMs": 400},
        "keepaliveIntervalMs": 500,
        "keepaliveTimeoutMs": 1000,
        "pingIntervalMs": 300,
    });
    let mut follow = Follow::start(&config);
    follow
        .wait_for_items(&[1; 4], Duration::from_secs(15))
        .await;

    let mut cuts = 0;
    let mut cut_for = async |rng: &mut Rng, secs: u64| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            tokio::time::sleep(rng.millis(150, 1_200)).await;
            cuts += usize::from(proxy.cut() > 0);
        }
    };
    cut_for(&mut rng, 8).await;

    // A stall: open, nothing moving. The client's keepalive (500 ms + 1 s) finds it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..keys.len() {
        follow
            .wait_state(i, Duration::from_secs(5), |s| s["status"] == "live")
            .await;
    }
    let before: Vec<usize> = (0..keys.len()).map(|i| follow.count(i)).collect();
    let stalled = proxy.stall();
    assert!(stalled >= keys.len(), "{stalled} connections to stall");
    let noticed = follow
        .wait_state(0, Duration::from_secs(5), |s| s["status"] == "reconnecting")
        .await;
    let back = follow
        .wait_state(0, Duration::from_secs(5), |s| s["status"] == "live")
        .await;
    println!("stalled {stalled} connections: noticed after {noticed:?}, live again {back:?} later");
    // Over SSE the 1.5 s of silence began with the last keepalive comment, <= 300 ms (plus
    // the proxy's 50 ms poll) before the stall.
    let earliest = match wire {
        Wire::WebSocket => Duration::from_millis(500),
        Wire::Sse => Duration::from_millis(1_100),
    };
    assert!(
        noticed >= earliest && noticed < Duration::from_secs(4),
        "a stalled connection is found by the keepalive (500 ms + 1 s), took {noticed:?}"
    );
    let after: Vec<usize> = before.iter().map(|n| n + 1).collect();
    follow.wait_for_items(&after, Duration::from_secs(10)).await;

    cut_for(&mut rng, 4).await;
    let arrivals = proxy.arrivals().len();
    let stop = run.node.height().await;
    tokio::time::sleep(DRAIN).await;
    follow.stop().await;

    let transcripts: Vec<Transcript> = {
        let subs = follow.subs.lock().unwrap();
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                assert!(subs[i].errors.is_empty(), "{key:?}: {:?}", subs[i].errors);
                transcript(i, checked_as, "ts cuts", key.clone(), &subs[i].got, stop)
            })
            .collect()
    };
    let (violations, stats) = run.violations(&transcripts).await;
    assert!(violations.is_empty(), "{violations:#?}");
    println!("{wire:?}: {cuts} cuts, 1 stall, {arrivals} connections; checked: {stats:?}");
    assert!(cuts >= 8, "only {cuts} cuts");
    assert!(stats.messages > 100, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_tokens_are_renewed_without_losing_a_change() {
    expiring_tokens(Wire::WebSocket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sse_expiring_tokens_are_renewed_without_losing_a_change() {
    expiring_tokens(Wire::Sse).await;
}

/// A node with auth on (HS256, no leeway); four subscriptions whose token functions mint a
/// 3 s token per call, and a fifth whose token only allows bob's address while it follows
/// alice. Nothing cuts the connections: every reconnect of the four is a token expiry (close
/// 4001 on `/ws`, `event: error` with code 401 on SSE). Each must go live at least three
/// times (two expiries) and deliver every change exactly once; the fifth must fail with 403
/// after one token.
async fn expiring_tokens(wire: Wire) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = TestNodeOptions::default()
        .simulate(10)
        .rpc("max_subscriptions_per_client", 0);
    let run = Run::start(with_auth(options, dir.path())).await;
    let (keys, mut subs) = followed();
    let endpoint = match wire {
        Wire::WebSocket => format!("ws://{}", run.node.api_addr()),
        Wire::Sse => format!("http://{}", run.node.api_addr()),
    };
    let (transport, checked_as) = wire.names();
    // A fifth subscription, whose token only allows bob's address while it follows alice.
    let narrowed = keys.len();
    subs.push(json!({
        "stream": "bank/balances", "params": {"address": address("alice")},
        "claims": {"stream": {"addresses": [address("bob")]}},
    }));
    let config = json!({
        "transport": transport,
        "endpoints": [endpoint],
        "subs": subs,
        "backoff": {"initialMs": 100, "maxMs": 400},
        "auth": {"secret": SECRET, "ttlSeconds": TOKEN_SECS},
    });
    let mut follow = Follow::start(&config);
    follow
        .wait_for_items(&[1; 4], Duration::from_secs(15))
        .await;

    // The narrowed subscription fails at once with the node's 403, and is not retried.
    follow
        .wait_state(narrowed, Duration::from_secs(10), |s| {
            s["status"] == "failed"
        })
        .await;
    let errors = follow.errors(narrowed);
    assert!(
        errors.len() == 1 && errors[0].contains("403") && errors[0].contains("does not allow"),
        "the narrowed token: {errors:?}"
    );
    assert_eq!(follow.tokens(narrowed), 1, "one attempt, no retry");
    assert_eq!(follow.count(narrowed), 0, "nothing delivered");

    // Two expiries each: three streams, each opened with a token of its own.
    let deadline = Instant::now() + Duration::from_secs(4 * TOKEN_SECS + 10);
    loop {
        let lives: Vec<usize> = (0..keys.len()).map(|i| follow.lives(i)).collect();
        if lives.iter().all(|n| *n >= 3) {
            let tokens: Vec<usize> = (0..keys.len()).map(|i| follow.tokens(i)).collect();
            println!("{wire:?}: streams opened {lives:?}, tokens minted {tokens:?}");
            for (i, (l, t)) in lives.iter().zip(&tokens).enumerate() {
                assert!(t >= l, "subscription {i}: {l} streams but {t} tokens");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "streams opened per subscription {lives:?}: each token expiry should end a stream \
             and the next should open with a new token (last states {:?})",
            (0..keys.len()).map(|i| follow.state(i)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stop = run.node.height().await;
    tokio::time::sleep(DRAIN).await;
    follow.stop().await;
    let transcripts: Vec<Transcript> = {
        let subs = follow.subs.lock().unwrap();
        keys.iter()
            .enumerate()
            .map(|(i, key)| {
                assert!(subs[i].errors.is_empty(), "{key:?}: {:?}", subs[i].errors);
                transcript(
                    i,
                    checked_as,
                    "ts token expiry",
                    key.clone(),
                    &subs[i].got,
                    stop,
                )
            })
            .collect()
    };
    let (violations, stats) = run.violations(&transcripts).await;
    assert!(violations.is_empty(), "{violations:#?}");
    println!("{wire:?}: checked: {stats:?}");
    assert!(stats.messages > 50, "{stats:?}");
}
