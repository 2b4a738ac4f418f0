//! End-to-end gap checker: at least 200 clients over gRPC, WebSocket path routes, `/ws` and
//! Server-Sent Events (curl), each with a random behaviour (normal, slow, paused 10 s, killed
//! and resumed with `since_height` / `Last-Event-ID`, resumed after the replay window), follow streams while `--simulate` fills
//! every block with traffic, validators are slashed and unbondings mature. Afterwards every
//! message every client received is held against the standard queries at every height (see
//! `gap_support::checker` for the rules); the report prints what was checked and the
//! violations, which must be none.
//!
//! Size and seed: `GAP_CLIENTS` (default 210), `GAP_SECONDS` of traffic (default 30),
//! `GAP_SEED` (default: from the clock; printed, so a failing run can be replayed).

mod gap_support;
mod stream_support;
mod support;
mod ws_support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gap_support::behaviour::{self, Behaviour, Env, Plan};
use gap_support::checker::{Stats, check_all, check_dropped};
use gap_support::history::{self, History};
use gap_support::rng::Rng;
use gap_support::target::universe;
use gap_support::timeline::{self, Timeline};
use gap_support::transcript::{Transcript, Transport};
use gap_support::transport::Addrs;
use serde_json::Value as Json;
use stream_proto::streamd::dev::v1::SlashRequest;
use stream_support::StreamKey;
use support::accounts::valoper;
use support::{TestNode, TestNodeOptions};
use ws_support::expected::rfc3339;

/// `[stream] replay_window` of the node under test: small, so "resume after the window" is
/// seconds away.
const WINDOW: i64 = 40;
/// `[stream] resume_queue`: small, so a resumed client that pauses falls behind it.
const RESUME_QUEUE: i64 = 16;
/// Simulated transactions per block.
const TRAFFIC: u32 = 20;
/// Time between dev slashes.
const SLASH_EVERY: Duration = Duration::from_millis(2_500);

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_sees_every_change_once_or_an_explicit_error() {
    let began = Instant::now();
    let seed = env_u64("GAP_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64
    });
    let clients = env_u64("GAP_CLIENTS").unwrap_or(210) as usize;
    let seconds = env_u64("GAP_SECONDS").unwrap_or(30);
    println!("gap checker: GAP_SEED=0x{seed:016x} GAP_CLIENTS={clients} GAP_SECONDS={seconds}");

    let options = TestNodeOptions::default()
        .simulate(TRAFFIC)
        .rpc("max_open_connections", 0)
        .rpc("max_subscriptions_per_client", 0)
        .stream("replay_window", WINDOW)
        .stream("resume_queue", RESUME_QUEUE);
    let node = Arc::new(TestNode::start(options).await);
    let addrs = Addrs {
        grpc: node.grpc_addr(),
        api: node.api_addr(),
    };

    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sampler = {
        let (node, timeline, stop) = (node.clone(), timeline.clone(), stop_rx.clone());
        tokio::spawn(async move {
            timeline::sample(&node, Duration::from_millis(20), timeline, stop).await
        })
    };
    let slasher = {
        let (node, mut stop) = (node.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let mut slashes = Vec::new();
            let mut turn = 0usize;
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return slashes,
                    _ = tokio::time::sleep(SLASH_EVERY) => {}
                }
                let validator = ["validator1", "validator2"][turn % 2];
                turn += 1;
                let request = SlashRequest {
                    validator_address: valoper(validator),
                    fraction: "0.01".into(),
                };
                match node.dev().slash(request).await {
                    Ok(r) => slashes.push((validator, r.into_inner().height)),
                    Err(s) => panic!("dev Slash {validator}: {s}"),
                }
            }
        })
    };

    // Plans: transports in turn, behaviours and streams at random.
    let mut rng = Rng::new(seed);
    let keys = universe();
    let transports = [
        Transport::Grpc,
        Transport::WsPath,
        Transport::WsMux,
        Transport::Sse,
    ];
    let weights = [
        (Behaviour::Normal, 30),
        (Behaviour::Slow, 20),
        (Behaviour::Paused, 15),
        (Behaviour::Killed, 20),
        (Behaviour::Expired, 15),
    ];
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let env = Env {
        addrs,
        stop_at,
        window: WINDOW,
        timeline: timeline.clone(),
    };
    let mut plans = Vec::new();
    for client in 0..clients {
        let transport = transports[client % transports.len()];
        let mut roll = rng.below(100);
        let behaviour = weights
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map_or(Behaviour::Normal, |(b, _)| *b);
        let n = if transport == Transport::WsMux { 2 } else { 1 };
        let keys = (0..n).map(|_| rng.pick(&keys).clone()).collect();
        plans.push(Plan {
            client,
            transport,
            behaviour,
            keys,
            rng: rng.fork(),
        });
    }
    let mut census: BTreeMap<(Transport, Behaviour), usize> = BTreeMap::new();
    for p in &plans {
        *census.entry((p.transport, p.behaviour)).or_default() += 1;
    }
    let tasks: Vec<_> = plans
        .into_iter()
        .map(|p| tokio::spawn(behaviour::play(p, env.clone())))
        .collect();
    let mut transcripts: Vec<Transcript> = Vec::new();
    for task in tasks {
        match task.await {
            Ok(t) => transcripts.extend(t),
            Err(e) => node.fail(&format!("a client panicked: {e}")),
        }
    }
    let _ = stop_tx.send(true);
    let slashes = slasher.await.expect("slasher");
    sampler.await.expect("sampler");
    let clients_done = began.elapsed();

    let scrape = ws_support::metrics::scrape(node.api_addr()).await;
    let ranges = history::needed(&transcripts);
    let history = history::query(&node, &ranges).await;
    let timeline = timeline.lock().expect("timeline lock").clone();
    let mut stats = Stats::default();
    let mut violations = check_all(&transcripts, &history, &timeline, &mut stats);
    let write_timeouts = scrape.get("stream_write_timeouts_total");
    violations.extend(check_dropped(&stats, write_timeouts));
    let maturities = maturities(&node, &history).await;

    // The report.
    println!("\n=== gap checker report (GAP_SEED=0x{seed:016x}) ===");
    println!(
        "clients: {clients} ({} subscriptions), {seconds} s of traffic ({TRAFFIC} txs/block), \
         replay_window {WINDOW} blocks, resume_queue {RESUME_QUEUE}",
        transcripts.len()
    );
    print!("{:<22}", "");
    for t in transports {
        print!("{:>9}", t.name());
    }
    println!("{:>9}", "total");
    for b in Behaviour::ALL {
        print!("{:<22}", b.name());
        let mut total = 0;
        for t in transports {
            let n = census.get(&(t, b)).copied().unwrap_or(0);
            total += n;
            print!("{n:>9}");
        }
        println!("{total:>9}");
    }
    let (lo, hi) = (stats.lowest.unwrap_or(0), stats.highest.unwrap_or(0));
    println!(
        "heights covered: {lo}..={hi} ({} heights); standard values queried: {} ({} streams)",
        hi - lo + 1,
        history.len(),
        ranges.len()
    );
    println!(
        "segments: {} snapshot, {} resumed (since_height); messages checked: {}",
        stats.snapshot_segments, stats.resumed_segments, stats.messages
    );
    let overflow = scrape.sum("stream_buffer_overflow_total");
    println!(
        "conflated slow-client skips: {} places, {} changes skipped (stream_buffer_overflow {overflow})",
        stats.conflated_gaps, stats.conflated_changes
    );
    println!(
        "documented stream ends: {:?}; refused resumes: {} after the window (expected), {} other",
        stats.errors, stats.refusals_expected, stats.refusals_unexpected
    );
    println!(
        "slow WebSocket connections dropped (no close frame): {} (stream_write_timeouts {write_timeouts})",
        stats.dropped.len()
    );
    println!(
        "slashes: {} at heights {:?}; unbonding maturities seen on streams' keys: {maturities}",
        slashes.len(),
        slashes.iter().map(|(_, h)| *h).collect::<Vec<_>>()
    );
    for m in [
        "stream_replays_total",
        "stream_replays_refused_total{reason=\"out_of_window\"}",
        "stream_replays_refused_total{reason=\"fell_behind\"}",
        "stream_replays_refused_total{reason=\"gap\"}",
        "stream_blocks_dropped_total",
        "stream_resyncs_total",
        "stream_replay_oldest_height",
        "stream_replay_window_blocks",
    ] {
        println!(
            "  {m} = {}",
            scrape.try_get(m).map_or("-".into(), |v| v.to_string())
        );
    }
    println!(
        "violations: {}; clients ran {:.1} s, total {:.1} s",
        violations.len(),
        clients_done.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    for v in violations.iter().take(30) {
        println!("  VIOLATION {}: {}", v.at, v.what);
    }

    assert!(
        violations.is_empty(),
        "{} violations (GAP_SEED=0x{seed:016x}); first: {:?}",
        violations.len(),
        violations.first()
    );
    assert!(
        stats.conflated_gaps as f64 <= overflow,
        "{} conflated skips but stream_buffer_overflow counts only {overflow}: a skip the \
         server did not account for",
        stats.conflated_gaps
    );
    let expired = census
        .iter()
        .filter(|((_, b), _)| *b == Behaviour::Expired)
        .map(|(_, n)| n)
        .sum::<usize>();
    // Every resume from outside the window that was not refused is already a violation; this
    // makes sure the path was taken at all.
    assert!(
        expired == 0 || stats.refusals_expected > 0,
        "{expired} clients resumed after the window but no refusal was seen"
    );
    assert_eq!(
        scrape.try_get("stream_blocks_dropped_total").unwrap_or(0.0),
        0.0,
        "the module dropped blocks: the run did not test what it meant to"
    );
}

/// Unbonding entries that left an unbonding stream's value at a height whose block time had
/// reached their completion time (maturities, not cancellations).
async fn maturities(node: &TestNode, history: &History) -> usize {
    let mut count = 0;
    let unbondings: Vec<&StreamKey> = history
        .keys()
        .filter(|k| matches!(k, StreamKey::UnbondingDelegations { .. }))
        .collect();
    let mut times: BTreeMap<i64, String> = BTreeMap::new();
    for key in unbondings {
        for h in history.change_heights(key) {
            let (Some(before), Some(after)) = (history.get(key, h - 1), history.get(key, h)) else {
                continue;
            };
            let entries = |v: &Json| -> Vec<Json> {
                v["unbonding_delegations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|u| u["entries"].as_array().cloned().unwrap_or_default())
                    .collect()
            };
            let now: Vec<u64> = entries(after)
                .iter()
                .filter_map(|e| e["unbonding_id"].as_u64())
                .collect();
            let block_time = match times.get(&h) {
                Some(t) => time_key(t),
                None => {
                    let t = node.block(h).await.time;
                    let t = rfc3339(t.seconds, t.nanos);
                    let key = time_key(&t);
                    times.insert(h, t);
                    key
                }
            };
            count += entries(before)
                .iter()
                .filter(|e| {
                    e["unbonding_id"]
                        .as_u64()
                        .is_some_and(|id| !now.contains(&id))
                })
                .filter(|e| {
                    e["completion_time"]
                        .as_str()
                        .is_some_and(|c| time_key(c) <= block_time)
                })
                .count();
        }
    }
    count
}

/// An RFC 3339 UTC time as an ordered (date and time to the second, nanoseconds) pair.
fn time_key(t: &str) -> (String, u32) {
    let t = t.trim_end_matches('Z');
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    let nanos = format!("{fraction:0<9}").parse().unwrap_or(0);
    (whole.to_owned(), nanos)
}
