//! End-to-end: resume by height (`since_height`) at the replay window's edges, on gRPC, a
//! WebSocket path route, `/ws` and SSE (`Last-Event-ID`, through curl), while `--simulate` keeps alice's balance moving:
//! - `since_height` = the oldest resumable height (`stream_replay_oldest_height`) is served:
//!   the stream replays exactly the heights after it at which the value changed, then goes on
//!   live without a gap or a duplicate at the seam (checked against the standard queries at
//!   every height);
//! - one below the oldest is refused: gRPC OUT_OF_RANGE, HTTP 410 with a JSON body before the
//!   upgrade (or before the SSE stream), `/ws` error 410, each with the documented message naming the oldest height;
//! - above the latest height is refused: INVALID_ARGUMENT, HTTP 400, `/ws` error 400;
//! - `stream_replays_total` and `stream_replays_refused_total{reason="out_of_window"}` count
//!   exactly those;
//! - a resumed client killed mid-stream (no close frame) that resumes from the last height it
//!   received sees every change once across the reconnect.

mod gap_support;
mod stream_support;
mod support;
mod ws_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gap_support::checker::{Stats, Violation, check, refused_oldest};
use gap_support::history;
use gap_support::timeline::{self, Timeline};
use gap_support::transcript::{End, Received, Segment, ServerError, Start, Transcript, Transport};
use gap_support::transport::{Addrs, Conn, Incoming};
use stream_support::StreamKey;
use support::accounts::BOND_DENOM;
use support::{TestNode, TestNodeOptions};
use ws_support::metrics;

/// `[stream] replay_window` of the nodes under test.
const WINDOW: i64 = 20;
/// How long a stream is followed live after its replay.
const LIVE: Duration = Duration::from_secs(3);
/// Reading time after the stop height, so the last changes arrive.
const DRAIN: Duration = Duration::from_millis(1_500);
const TRANSPORTS: [Transport; 4] = [
    Transport::Grpc,
    Transport::WsPath,
    Transport::WsMux,
    Transport::Sse,
];

/// A node with simulated traffic and a 20-block window, its commit timeline sampled.
struct Setup {
    node: Arc<TestNode>,
    addrs: Addrs,
    timeline: Arc<Mutex<Timeline>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Setup {
    async fn start(block_time: &'static str) -> Setup {
        let options = TestNodeOptions {
            block_time,
            ..TestNodeOptions::default()
        }
        .simulate(10)
        .stream("replay_window", WINDOW);
        let node = Arc::new(TestNode::start(options).await);
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        {
            let (node, timeline) = (node.clone(), timeline.clone());
            tokio::spawn(async move {
                timeline::sample(&node, Duration::from_millis(20), timeline, stop_rx).await
            });
        }
        // A full window first, so its oldest height is the window's and not genesis.
        node.wait_for_height(WINDOW + 5).await;
        let addrs = Addrs {
            grpc: node.grpc_addr(),
            api: node.api_addr(),
        };
        Setup {
            node,
            addrs,
            timeline,
            stop,
        }
    }

    async fn metric(&self, key: &str) -> f64 {
        metrics::scrape(self.node.api_addr())
            .await
            .try_get(key)
            .unwrap_or(0.0)
    }

    /// Checks `transcripts` against the standard queries at every height they cover.
    async fn violations(&self, transcripts: &[Transcript]) -> Vec<Violation> {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let history = history::query(&self.node, &history::needed(transcripts)).await;
        let timeline = self.timeline.lock().expect("timeline").clone();
        let mut out = Vec::new();
        for t in transcripts {
            check(t, &history, &timeline, &mut Stats::default(), &mut out);
        }
        out
    }
}

const REPLAYS: &str = "stream_replays_total";
const OUT_OF_WINDOW: &str = "stream_replays_refused_total{reason=\"out_of_window\"}";

fn alice() -> StreamKey {
    StreamKey::balance("alice", BOND_DENOM)
}

/// The code each transport refuses a resume from outside the window with.
fn gone(transport: Transport) -> &'static str {
    match transport {
        Transport::Grpc => "OutOfRange",
        Transport::WsPath | Transport::Sse => "HTTP 410",
        Transport::WsMux => "410",
    }
}

/// The code each transport ends a resumed stream with when it cannot continue.
fn ended_gone(transport: Transport) -> &'static str {
    match transport {
        Transport::Grpc => "OutOfRange",
        Transport::WsPath => "4410",
        Transport::WsMux | Transport::Sse => "410",
    }
}

/// The code each transport refuses a `since_height` above the latest height with.
fn invalid(transport: Transport) -> &'static str {
    match transport {
        Transport::Grpc => "InvalidArgument",
        Transport::WsPath | Transport::Sse => "HTTP 400",
        Transport::WsMux => "400",
    }
}

/// Reads `conn` until `stop_at`, then until the timeline passes the height reached then and
/// `DRAIN` more; returns the segment (ended `Stopped`, or by the server).
async fn follow(conn: &mut Conn, setup: &Setup, start: Start, stop_at: Instant) -> Segment {
    let mut messages = Vec::new();
    let mut stop: Option<(Instant, i64)> = None;
    loop {
        let deadline = match stop {
            Some((until, _)) => until,
            None => stop_at,
        };
        let event = tokio::time::timeout_at(deadline.into(), conn.next()).await;
        match event {
            Ok(Incoming::Update { height, value, .. }) => messages.push(Received {
                height,
                value,
                at: Instant::now(),
            }),
            Ok(Incoming::Ended { error, .. }) => {
                return Segment {
                    start,
                    messages,
                    end: End::Error(error),
                };
            }
            Ok(Incoming::Closed(how) | Incoming::Dropped(how)) => {
                return Segment {
                    start,
                    messages,
                    end: End::Silent(how),
                };
            }
            Err(_) => match stop {
                Some((_, stop_height)) => {
                    return Segment {
                        start,
                        messages,
                        end: End::Stopped { stop_height },
                    };
                }
                None => {
                    let h = setup
                        .timeline
                        .lock()
                        .expect("timeline")
                        .latest()
                        .unwrap_or(0);
                    stop = Some((Instant::now() + DRAIN, h));
                }
            },
        }
    }
}

/// Subscribes from the oldest resumable height as `stream_replay_oldest_height` reports it.
/// The window moves every block, so a refusal may come first: it names the new oldest height,
/// and the client resumes from that one, as a real client would. Returns the height served
/// and the refusals met on the way.
async fn subscribe_at_oldest(
    conn: &mut Conn,
    setup: &Setup,
    transport: Transport,
) -> (i64, Vec<ServerError>) {
    let mut since = setup.metric("stream_replay_oldest_height").await as i64;
    let mut refusals = Vec::new();
    for _ in 0..5 {
        match conn.subscribe(0, &alice(), Start::Since(since)).await {
            Ok(()) => return (since, refusals),
            Err(e) => {
                assert_eq!(e.code, gone(transport), "{}: {e:?}", transport.name());
                since = refused_oldest(since, &e.message)
                    .unwrap_or_else(|| panic!("{}: undocumented refusal {e:?}", transport.name()));
                refusals.push(e);
            }
        }
    }
    panic!(
        "{}: could not resume from the oldest height in 5 attempts: {refusals:?}",
        transport.name()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_at_the_window_edge_replays_exactly_and_beyond_it_is_refused() {
    let setup = Setup::start("500ms").await;
    let replays_before = setup.metric(REPLAYS).await;
    let refused_before = setup.metric(OUT_OF_WINDOW).await;
    let mut out_of_window = 0;
    let mut transcripts = Vec::new();
    for (n, transport) in TRANSPORTS.into_iter().enumerate() {
        let mut conn = Conn::connect(transport, setup.addrs, false)
            .await
            .expect("connect");

        // One below the oldest: refused, naming the oldest height.
        let oldest = setup.metric("stream_replay_oldest_height").await as i64;
        assert!(oldest > 1, "the window has not moved yet: oldest {oldest}");
        let e = conn
            .subscribe(0, &alice(), Start::Since(oldest - 1))
            .await
            .expect_err("since_height below the oldest must be refused");
        assert_eq!(e.code, gone(transport), "{}: {e:?}", transport.name());
        let named = refused_oldest(oldest - 1, &e.message)
            .unwrap_or_else(|| panic!("{}: undocumented message {e:?}", transport.name()));
        assert!(
            named >= oldest,
            "{}: names {named}, oldest was {oldest}",
            transport.name()
        );
        out_of_window += 1;

        // Above the latest height: refused as invalid.
        let above = setup.node.height().await + 1_000;
        let e = conn
            .subscribe(0, &alice(), Start::Since(above))
            .await
            .expect_err("since_height above the latest must be refused");
        assert_eq!(e.code, invalid(transport), "{}: {e:?}", transport.name());
        assert!(
            e.message
                .starts_with(&format!("since_height {above} is above the latest height ")),
            "{}: {e:?}",
            transport.name()
        );

        // At the oldest: replayed, then live. The window may move past `since` between the
        // node's check and the replay's first look at it (a block committing in between);
        // then the stream ends at once with the documented OUT_OF_RANGE and the client
        // resumes from the oldest height again.
        let mut attempts = 0;
        let (since, segment) = loop {
            attempts += 1;
            let (since, refusals) = subscribe_at_oldest(&mut conn, &setup, transport).await;
            out_of_window += refusals.len();
            let segment = follow(
                &mut conn,
                &setup,
                Start::Since(since),
                Instant::now() + LIVE,
            )
            .await;
            match &segment.end {
                End::Error(e)
                    if attempts < 3
                        && segment.messages.is_empty()
                        && e.code == ended_gone(transport) =>
                {
                    assert!(
                        e.message.contains("is outside the replay window"),
                        "{}: {e:?}",
                        transport.name()
                    );
                    out_of_window += 1;
                    println!(
                        "{}: evicted before the replay began, again",
                        transport.name()
                    );
                }
                _ => break (since, segment),
            }
        };
        assert!(
            matches!(segment.end, End::Stopped { .. }),
            "{}: {:?}",
            transport.name(),
            segment.end
        );
        let replayed = segment
            .messages
            .iter()
            .filter(|m| m.height <= since + WINDOW)
            .count();
        assert!(
            replayed >= 3,
            "{}: only {replayed} changes replayed from {since}: alice's balance must move",
            transport.name()
        );
        println!(
            "{}: resumed from {since} (attempt {attempts}; {out_of_window} out-of-window \
             refusals so far), {} messages up to height {:?}",
            transport.name(),
            segment.messages.len(),
            segment.messages.last().map(|m| m.height)
        );
        let mut t = Transcript::new(n, transport, "window edge", alice());
        t.segments.push(segment);
        transcripts.push(t);
        conn.close().await;
    }

    assert_eq!(
        setup.metric(REPLAYS).await - replays_before,
        TRANSPORTS.len() as f64,
        "{REPLAYS}: one per resume served"
    );
    assert_eq!(
        setup.metric(OUT_OF_WINDOW).await - refused_before,
        out_of_window as f64,
        "{OUT_OF_WINDOW}: one per refusal"
    );
    let violations = setup.violations(&transcripts).await;
    assert!(violations.is_empty(), "{violations:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_client_killed_mid_stream_resumes_without_gap_or_duplicate() {
    let setup = Setup::start("200ms").await;
    let replays_before = setup.metric(REPLAYS).await;
    let mut transcripts = Vec::new();
    for (n, transport) in TRANSPORTS.into_iter().enumerate() {
        let mut t = Transcript::new(n, transport, "killed mid-stream", alice());
        let since = setup.node.height().await - WINDOW / 2;
        let mut conn = Conn::connect(transport, setup.addrs, false)
            .await
            .expect("connect");
        conn.subscribe(0, &alice(), Start::Since(since))
            .await
            .unwrap_or_else(|e| panic!("{}: resume from {since}: {e:?}", transport.name()));
        // Killed a little after the replay caught up with the live stream.
        let first = follow(
            &mut conn,
            &setup,
            Start::Since(since),
            Instant::now() + Duration::from_millis(1_500),
        )
        .await;
        conn.kill();
        let last = first
            .messages
            .last()
            .map(|m| m.height)
            .unwrap_or_else(|| panic!("{}: nothing replayed from {since}", transport.name()));
        t.segments.push(Segment {
            end: End::Killed,
            ..first
        });

        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut conn = Conn::connect(transport, setup.addrs, false)
            .await
            .expect("reconnect");
        conn.subscribe(0, &alice(), Start::Since(last))
            .await
            .unwrap_or_else(|e| panic!("{}: resume from {last}: {e:?}", transport.name()));
        let second = follow(&mut conn, &setup, Start::Since(last), Instant::now() + LIVE).await;
        assert!(
            matches!(second.end, End::Stopped { .. }),
            "{}: {:?}",
            transport.name(),
            second.end
        );
        assert!(
            !second.messages.is_empty(),
            "{}: nothing after the reconnect",
            transport.name()
        );
        println!(
            "{}: resumed from {since}, killed after height {last}, resumed from {last}: {} + {} \
             messages",
            transport.name(),
            t.segments[0].messages.len(),
            second.messages.len()
        );
        t.segments.push(second);
        transcripts.push(t);
        conn.close().await;
    }
    assert_eq!(
        setup.metric(REPLAYS).await - replays_before,
        2.0 * TRANSPORTS.len() as f64,
        "{REPLAYS}: two resumes per transport"
    );
    let violations = setup.violations(&transcripts).await;
    assert!(violations.is_empty(), "{violations:#?}");
}
