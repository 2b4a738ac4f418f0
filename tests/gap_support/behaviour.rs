//! How each gap-checker client behaves, and the driver that plays a behaviour over one
//! connection while recording every subscription's transcript:
//! - **normal**: subscribes, reads everything as it comes;
//! - **slow**: a pause of 150-600 ms after every message (gRPC: with a tiny receive window;
//!   over WebSocket the node may drop it once a write has waited `write_timeout`, and it
//!   subscribes afresh, as after any connection loss);
//! - **paused**: one 10 s pause without reading (gRPC: with a tiny receive window);
//! - **killed**: its connection is killed (no close frame) one to three times and it resumes
//!   each subscription with `since_height` = the last height it received; half of them also
//!   pause 10 s while resumed (which may end the stream with "fell behind", and it resumes
//!   from the height the error names);
//! - **expired**: killed once, it waits until the replay window has moved past its last
//!   height, asks to resume anyway, must be refused (410 / OUT_OF_RANGE), and subscribes
//!   afresh.
//!
//! At the end every client reads at full speed for the drain time, so a conflated
//! subscription has its newest value by then.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::rng::Rng;
use super::timeline::Timeline;
use super::transcript::{End, Received, Refusal, Segment, Start, Transcript, Transport};
use super::transport::{Addrs, Conn, Incoming};
use crate::stream_support::StreamKey;

/// A client's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    Normal,
    Slow,
    Paused,
    Killed,
    Expired,
}

impl Behaviour {
    /// Every behaviour.
    pub const ALL: [Behaviour; 5] = [
        Behaviour::Normal,
        Behaviour::Slow,
        Behaviour::Paused,
        Behaviour::Killed,
        Behaviour::Expired,
    ];

    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Normal => "normal",
            Behaviour::Slow => "slow",
            Behaviour::Paused => "paused 10 s",
            Behaviour::Killed => "killed+resumed",
            Behaviour::Expired => "resumed after window",
        }
    }

    fn slow_transport(self) -> bool {
        !matches!(self, Behaviour::Normal | Behaviour::Expired)
    }
}

/// How long a paused client does not read.
pub const PAUSE: Duration = Duration::from_secs(10);
/// How long every client reads at full speed after the run stops.
pub const DRAIN: Duration = Duration::from_secs(3);

/// What every client shares.
#[derive(Clone)]
pub struct Env {
    pub addrs: Addrs,
    /// When the run stops (then the drain).
    pub stop_at: Instant,
    /// `[stream] replay_window` in blocks.
    pub window: i64,
    /// The node's heights as sampled.
    pub timeline: Arc<Mutex<Timeline>>,
}

impl Env {
    fn latest(&self) -> i64 {
        self.timeline
            .lock()
            .expect("timeline lock")
            .latest()
            .unwrap_or(0)
    }
}

/// One client's plan.
pub struct Plan {
    pub client: usize,
    pub transport: Transport,
    pub behaviour: Behaviour,
    pub keys: Vec<StreamKey>,
    pub rng: Rng,
}

/// A planned interruption.
#[derive(Clone, Copy, Debug)]
enum Action {
    Pause,
    Kill,
}

struct Sub {
    transcript: Transcript,
    /// The open segment, if any.
    open: Option<Segment>,
}

impl Sub {
    fn begin(&mut self, start: Start) {
        self.open = Some(Segment {
            start,
            messages: Vec::new(),
            end: End::Killed,
        });
    }

    fn end(&mut self, end: End) {
        if let Some(mut s) = self.open.take() {
            s.end = end;
            self.transcript.segments.push(s);
        }
    }

    /// Where to resume from: the last height received (None: nothing yet).
    fn resume_from(&self) -> Option<i64> {
        self.open
            .as_ref()
            .and_then(|s| s.messages.last().map(|m| m.height))
            .or_else(|| self.transcript.last_height())
    }
}

/// Plays `plan` until `env.stop_at` plus the drain; returns one transcript per subscription.
pub async fn play(plan: Plan, env: Env) -> Vec<Transcript> {
    let Plan {
        client,
        transport,
        behaviour,
        keys,
        mut rng,
    } = plan;
    let mut subs: Vec<Sub> = keys
        .iter()
        .map(|k| Sub {
            transcript: Transcript::new(client, transport, behaviour.name(), k.clone()),
            open: None,
        })
        .collect();
    tokio::time::sleep(rng.millis(0, 2_000)).await;
    let run = env.stop_at.saturating_duration_since(Instant::now());
    let secs = run.as_millis() as u64;
    // The interruptions, as offsets from now, each leaving time to recover before the stop.
    let mut actions: Vec<(Instant, Action)> = Vec::new();
    let now = Instant::now();
    match behaviour {
        Behaviour::Paused if secs > 16_000 => {
            actions.push((now + rng.millis(2_000, secs - 14_000), Action::Pause));
        }
        Behaviour::Killed => {
            let kills = 1 + rng.below(3);
            let mut at = 1_500;
            for i in 0..kills {
                if at + 4_000 > secs {
                    break;
                }
                at = at + 1_000 + rng.below((secs - at - 4_000) / 2 + 1);
                actions.push((now + Duration::from_millis(at), Action::Kill));
                if i == 0 && rng.below(2) == 0 && at + 2_000 + 14_000 < secs {
                    at += 2_000;
                    actions.push((now + Duration::from_millis(at), Action::Pause));
                    at += 10_000;
                }
            }
        }
        Behaviour::Expired => {
            actions.push((now + rng.millis(1_500, 6_000), Action::Kill));
        }
        _ => {}
    }
    let slow = behaviour.slow_transport();
    let mut conn = connect(transport, env.addrs, slow).await;
    // Which connection of this client `conn` is (0: the first).
    let mut connections = 0;
    for (i, sub) in subs.iter_mut().enumerate() {
        open(&mut conn, i, sub, Start::Snapshot, false).await;
    }
    let mut draining: Option<(Instant, i64)> = None;
    loop {
        let next_action = actions.first().map(|(t, _)| *t);
        let deadline = match draining {
            Some((until, _)) => until,
            None => next_action.map_or(env.stop_at, |t| t.min(env.stop_at)),
        };
        // A client with a backlog always has an event ready, so the deadline is checked first.
        let event = if Instant::now() >= deadline {
            None
        } else {
            tokio::time::timeout_at(deadline.into(), conn.next())
                .await
                .ok()
        };
        let Some(event) = event else {
            if let Some((_, stop_height)) = draining {
                for sub in &mut subs {
                    sub.end(End::Stopped { stop_height });
                }
                conn.close().await;
                break;
            }
            if Instant::now() >= env.stop_at {
                draining = Some((Instant::now() + DRAIN, env.latest()));
                continue;
            }
            let (_, action) = actions.remove(0);
            match action {
                Action::Pause => tokio::time::sleep(PAUSE).await,
                Action::Kill => {
                    conn.kill();
                    for sub in &mut subs {
                        sub.end(End::Killed);
                    }
                    tokio::time::sleep(rng.millis(200, 3_000)).await;
                    if behaviour == Behaviour::Expired {
                        // Past the window: wait until even the newest height any subscription
                        // has is older than the oldest resumable one, with a margin.
                        let newest = subs
                            .iter()
                            .filter_map(|s| s.transcript.last_height())
                            .max()
                            .unwrap_or(0);
                        let wait_until = Instant::now() + Duration::from_secs(60);
                        while env.latest() < newest + env.window + 5 && Instant::now() < wait_until
                        {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    conn = connect(transport, env.addrs, slow).await;
                    connections += 1;
                    for (i, sub) in subs.iter_mut().enumerate() {
                        let start = sub.resume_from().map_or(Start::Snapshot, Start::Since);
                        open(&mut conn, i, sub, start, behaviour == Behaviour::Expired).await;
                    }
                }
            }
            continue;
        };
        match event {
            Incoming::Update { sub, height, value } => {
                if let Some(s) = subs[sub].open.as_mut() {
                    s.messages.push(Received {
                        height,
                        value,
                        at: Instant::now(),
                    });
                }
                if behaviour == Behaviour::Slow && draining.is_none() {
                    tokio::time::sleep(rng.millis(150, 600)).await;
                }
            }
            Incoming::Ended { sub, error } => {
                let resume = subs[sub].resume_from();
                let fell_behind = error.message.contains("resume with since_height=");
                subs[sub].end(End::Error(error));
                if draining.is_none() {
                    let start = match (fell_behind, resume) {
                        (true, Some(h)) => Start::Since(h),
                        _ => Start::Snapshot,
                    };
                    open(&mut conn, sub, &mut subs[sub], start, false).await;
                }
            }
            ended @ (Incoming::Closed(_) | Incoming::Dropped(_)) => {
                let end = match ended {
                    // A client that stops reading may be dropped by the node's write_timeout.
                    Incoming::Dropped(how) if slow => End::Dropped {
                        how,
                        connection: connections,
                    },
                    Incoming::Closed(how) | Incoming::Dropped(how) => End::Silent(how),
                    Incoming::Update { .. } | Incoming::Ended { .. } => unreachable!(),
                };
                for sub in &mut subs {
                    sub.end(end.clone());
                }
                if draining.is_some() {
                    break;
                }
                connections += 1;
                conn = connect(transport, env.addrs, slow).await;
                for (i, sub) in subs.iter_mut().enumerate() {
                    open(&mut conn, i, sub, Start::Snapshot, false).await;
                }
            }
        }
    }
    subs.into_iter().map(|s| s.transcript).collect()
}

async fn connect(transport: Transport, addrs: Addrs, slow: bool) -> Conn {
    Conn::connect(transport, addrs, slow)
        .await
        .unwrap_or_else(|e| panic!("{} connection: {e}", transport.name()))
}

/// Opens `sub` from `start`; a refused resume is recorded and followed by a fresh snapshot.
async fn open(conn: &mut Conn, i: usize, sub: &mut Sub, start: Start, expect_refusal: bool) {
    let key = sub.transcript.key.clone();
    match conn.subscribe(i, &key, start).await {
        Ok(()) => {
            if let (true, Start::Since(since)) = (expect_refusal, start) {
                sub.transcript.unrefused.push(since);
            }
            sub.begin(start)
        }
        Err(error) => {
            let Start::Since(since) = start else {
                panic!("{key:?}: a subscription without since_height was refused: {error:?}");
            };
            sub.transcript.refusals.push(Refusal {
                since,
                error,
                expected: expect_refusal,
            });
            match conn.subscribe(i, &key, Start::Snapshot).await {
                Ok(()) => sub.begin(Start::Snapshot),
                Err(e) => panic!("{key:?}: a fresh subscription was refused: {e:?}"),
            }
        }
    }
}
