//! The checker must be able to fail: fabricated transcripts with a missing change, a
//! duplicate, a wrong value, a height not yet committed, an undelivered newest value, a silent
//! end or an undocumented error each give a violation, as do more dropped connections than
//! the node counted write timeouts; exact ones give none.

use super::*;
use crate::gap_support::transcript::Received;
use crate::stream_support::StreamKey;
use std::time::{Duration, Instant};

/// A balance in the canonical form.
fn amount(n: u64) -> Json {
    serde_json::json!({"denom": "ujuno", "amount": n.to_string()})
}

/// Heights 10..=20 of alice's balance: changes at 12, 15 and 18.
fn fixture() -> (StreamKey, History, Timeline, Instant) {
    let key = StreamKey::balance("alice", "ujuno");
    let mut history = History::default();
    for h in 10..=20 {
        let v = match h {
            ..12 => 100,
            12..15 => 90,
            15..18 => 95,
            _ => 70,
        };
        history.insert(&key, h, amount(v));
    }
    // Height h is committed at t0 + h seconds.
    let t0 = Instant::now();
    let mut timeline = Timeline::default();
    for h in 10..=20 {
        timeline.record(t0 + Duration::from_secs(h as u64), h);
    }
    (key, history, timeline, t0)
}

fn msg(t0: Instant, h: i64, v: u64) -> Received {
    Received {
        height: h,
        value: amount(v),
        // Half a second after its commit.
        at: t0 + Duration::from_millis(h as u64 * 1000 + 500),
    }
}

fn run(key: &StreamKey, h: &History, tl: &Timeline, segments: Vec<Segment>) -> Vec<Violation> {
    let mut t = Transcript::new(1, Transport::Grpc, "test", key.clone());
    t.segments = segments;
    let mut out = Vec::new();
    check(&t, h, tl, &mut Stats::default(), &mut out);
    out
}

fn resumed(since: i64, messages: Vec<Received>, end: End) -> Segment {
    Segment {
        start: Start::Since(since),
        messages,
        end,
    }
}

#[test]
fn exact_sequences_pass() {
    let (key, h, tl, t0) = fixture();
    let stopped = End::Stopped { stop_height: 20 };
    let ok = resumed(
        10,
        vec![msg(t0, 12, 90), msg(t0, 15, 95), msg(t0, 18, 70)],
        stopped.clone(),
    );
    assert_eq!(run(&key, &h, &tl, vec![ok]), vec![]);
    let snapshot = Segment {
        start: Start::Snapshot,
        messages: vec![msg(t0, 13, 90), msg(t0, 18, 70)],
        end: stopped,
    };
    // Skipping 15 is conflation in latest mode: allowed, the newest value came.
    assert_eq!(run(&key, &h, &tl, vec![snapshot]), vec![]);
}

#[test]
fn a_missing_change_a_duplicate_and_a_wrong_value_are_violations() {
    let (key, h, tl, t0) = fixture();
    let stopped = End::Stopped { stop_height: 20 };
    let missing = resumed(10, vec![msg(t0, 12, 90), msg(t0, 18, 70)], stopped.clone());
    let v = run(&key, &h, &tl, vec![missing]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].what.contains("missed change(s) at height(s) [15]"),
        "{v:?}"
    );

    let duplicate = resumed(
        10,
        vec![
            msg(t0, 12, 90),
            msg(t0, 15, 95),
            msg(t0, 15, 95),
            msg(t0, 18, 70),
        ],
        stopped.clone(),
    );
    let v = run(&key, &h, &tl, vec![duplicate]);
    assert!(
        v.iter()
            .any(|v| v.what.contains("duplicate message at height 15")),
        "{v:?}"
    );

    let no_change = resumed(
        10,
        vec![
            msg(t0, 12, 90),
            msg(t0, 13, 90),
            msg(t0, 15, 95),
            msg(t0, 18, 70),
        ],
        stopped.clone(),
    );
    let v = run(&key, &h, &tl, vec![no_change]);
    assert!(
        v.iter().any(|v| v.what.contains("did not change there")),
        "{v:?}"
    );

    let wrong = resumed(
        10,
        vec![msg(t0, 12, 90), msg(t0, 15, 96), msg(t0, 18, 70)],
        stopped.clone(),
    );
    let v = run(&key, &h, &tl, vec![wrong]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].what.starts_with("wrong value at height 15"), "{v:?}");
}

#[test]
fn uncommitted_heights_undelivered_newest_values_and_silent_ends_are_violations() {
    let (key, h, tl, t0) = fixture();
    let mut early = msg(t0, 18, 70);
    early.at = t0 + Duration::from_millis(16_500);
    let v = run(
        &key,
        &h,
        &tl,
        vec![resumed(15, vec![early], End::Stopped { stop_height: 20 })],
    );
    assert!(
        v.iter()
            .any(|v| v.what.contains("before that height was committed")),
        "{v:?}"
    );

    let stale = Segment {
        start: Start::Snapshot,
        messages: vec![msg(t0, 13, 90), msg(t0, 15, 95)],
        end: End::Stopped { stop_height: 20 },
    };
    let v = run(&key, &h, &tl, vec![stale]);
    assert!(
        v.iter().any(|v| v.what.contains("never delivered")),
        "{v:?}"
    );

    let silent = resumed(10, vec![msg(t0, 12, 90)], End::Silent("OK".into()));
    assert_eq!(run(&key, &h, &tl, vec![silent]).len(), 1);
}

#[test]
fn errors_must_be_the_documented_ones() {
    let (key, h, tl, t0) = fixture();
    let behind = |resume: i64| {
        End::Error(ServerError {
            code: "OutOfRange".into(),
            message: format!(
                "the client fell behind: more than 16 updates were waiting; resume with \
                 since_height={resume}"
            ),
        })
    };
    let ok = resumed(10, vec![msg(t0, 12, 90)], behind(12));
    assert_eq!(run(&key, &h, &tl, vec![ok]), vec![]);
    let wrong_height = resumed(10, vec![msg(t0, 12, 90)], behind(15));
    assert_eq!(run(&key, &h, &tl, vec![wrong_height]).len(), 1);
    let unavailable = resumed(
        10,
        vec![],
        End::Error(ServerError {
            code: "Unavailable".into(),
            message: "the node is shutting down".into(),
        }),
    );
    assert_eq!(run(&key, &h, &tl, vec![unavailable]).len(), 1);

    let mut t = Transcript::new(1, Transport::WsMux, "test", key.clone());
    t.refusals.push(Refusal {
        since: 5,
        error: ServerError {
            code: "410".into(),
            message: outside_window(5, 9),
        },
        expected: true,
    });
    t.refusals.push(Refusal {
        since: 5,
        error: ServerError {
            code: "400".into(),
            message: "nope".into(),
        },
        expected: true,
    });
    let mut out = Vec::new();
    check(&t, &h, &tl, &mut Stats::default(), &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].what.contains("expected 410"), "{out:?}");
}

#[test]
fn dropped_connections_must_not_outnumber_the_nodes_write_timeouts() {
    let (key, h, tl, t0) = fixture();
    let dropped = |connection| Segment {
        start: Start::Snapshot,
        messages: vec![msg(t0, 12, 90)],
        end: End::Dropped {
            how: "connection ended: None".into(),
            connection,
        },
    };
    // Two subscriptions of client 1's first connection and one of its second: two drops.
    let mut a = Transcript::new(1, Transport::WsMux, "test", key.clone());
    a.segments = vec![dropped(0), dropped(1)];
    let mut b = Transcript::new(1, Transport::WsMux, "test", key.clone());
    b.segments = vec![dropped(0)];
    let mut stats = Stats::default();
    let mut out = Vec::new();
    check(&a, &h, &tl, &mut stats, &mut out);
    check(&b, &h, &tl, &mut stats, &mut out);
    assert!(out.is_empty(), "a drop alone is not a violation: {out:?}");
    assert_eq!(stats.dropped.len(), 2);
    assert!(check_dropped(&stats, 2.0).is_none());
    let v = check_dropped(&stats, 1.0).expect("more drops than write timeouts");
    assert!(v.what.contains("counted 1 write timeouts"), "{v:?}");
}
