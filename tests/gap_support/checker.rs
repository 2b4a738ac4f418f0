//! The gap checker proper: holds each subscription's transcript against the standard queries'
//! value at every height (`History`) and the node's commit timeline (`Timeline`), and lists
//! every violation of the stream contract (DESIGN.md 5):
//! - every message is at a height committed when it arrived, and carries exactly the standard
//!   queries' value at that height;
//! - heights strictly increase, and every message after a segment's first is at a height where
//!   the value changed (anything else is a duplicate);
//! - a resumed segment (`since_height` S) carries exactly the heights in (S, end] where the
//!   value changed: none missed, none extra;
//! - a snapshot segment may skip changes only by conflation (latest mode), and a segment still
//!   open at the end must have delivered the newest value by then;
//! - a stream ends only with a documented error (gRPC OUT_OF_RANGE, WebSocket close 4410,
//!   `/ws` error 410, with the documented words; "fell behind" names the last height sent),
//!   or, for a WebSocket client that stops reading, with its connection dropped by the node's
//!   `write_timeout` (no more such drops than `stream_write_timeouts_total` counts); and a
//!   resume from outside the window is refused with the documented code and message.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::history::History;
use super::target::short;
use super::timeline::Timeline;
use super::transcript::{End, Refusal, Segment, ServerError, Start, Transcript, Transport};

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Client, transport, behaviour, stream and segment it happened in.
    pub at: String,
    /// What is wrong.
    pub what: String,
}

/// What the checker looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Messages checked (height committed, value, order, change).
    pub messages: usize,
    /// Segments without / with `since_height`.
    pub snapshot_segments: usize,
    pub resumed_segments: usize,
    /// Places where a latest-mode segment skipped changes (conflation), and changes skipped.
    pub conflated_gaps: usize,
    pub conflated_changes: usize,
    /// Streams the server ended with a documented error, by kind.
    pub errors: BTreeMap<&'static str, usize>,
    /// Refused resumes: asked from outside the window on purpose, or not.
    pub refusals_expected: usize,
    pub refusals_unexpected: usize,
    /// Lowest and highest height any segment covered.
    pub lowest: Option<i64>,
    pub highest: Option<i64>,
    /// Connections of slow or paused WebSocket clients the node dropped, as (client, its
    /// n-th connection): at most `stream_write_timeouts_total` (see [`check_dropped`]).
    pub dropped: BTreeSet<(usize, usize)>,
}

/// The documented end of a resumed stream that cannot continue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// "the client fell behind ...; resume with since_height=H".
    FellBehind(i64),
    /// "since_height S is outside the replay window ..." (evicted during the replay).
    Evicted,
    /// "blocks a..=b did not reach the stream module ..." (a resync gap).
    Gap,
}

impl Ending {
    fn name(self) -> &'static str {
        match self {
            Ending::FellBehind(_) => "fell behind (resume)",
            Ending::Evicted => "evicted during replay",
            Ending::Gap => "block gap",
        }
    }
}

/// The code a transport carries "gone" with (OUT_OF_RANGE; close 4410; `/ws` 410).
fn gone_code(transport: Transport) -> &'static str {
    match transport {
        Transport::Grpc => "OutOfRange",
        Transport::WsPath => "4410",
        Transport::WsMux | Transport::Sse => "410",
    }
}

/// The documented refusal message of a resume from `since` when the oldest is `oldest`.
pub fn outside_window(since: i64, oldest: i64) -> String {
    format!(
        "since_height {since} is outside the replay window: the oldest since_height available is \
         {oldest}; subscribe without since_height for a fresh snapshot"
    )
}

/// Parses the oldest height out of a refusal message for `since`, if it is the documented one.
pub fn refused_oldest(since: i64, message: &str) -> Option<i64> {
    let head = format!(
        "since_height {since} is outside the replay window: the oldest since_height available is "
    );
    let oldest: i64 = message
        .strip_prefix(&head)?
        .split(';')
        .next()?
        .parse()
        .ok()?;
    (message == outside_window(since, oldest)).then_some(oldest)
}

/// Which documented ending `e` is, if it is one for `transport`.
pub fn documented_ending(transport: Transport, e: &ServerError) -> Result<Ending, String> {
    if e.code != gone_code(transport) {
        return Err(format!(
            "ended with {} {:?}; the documented end of a stream that cannot continue is {}",
            e.code,
            e.message,
            gone_code(transport)
        ));
    }
    let m = e.message.as_str();
    if let Some(rest) = m.strip_prefix("the client fell behind: more than ") {
        let h = rest
            .split_once(" updates were waiting; resume with since_height=")
            .and_then(|(_, h)| h.parse().ok())
            .ok_or_else(|| format!("undocumented fell-behind message {m:?}"))?;
        return Ok(Ending::FellBehind(h));
    }
    if m.starts_with("since_height ") && m.contains(" is outside the replay window") {
        return Ok(Ending::Evicted);
    }
    if m.starts_with("blocks ") && m.contains(" did not reach the stream module") {
        return Ok(Ending::Gap);
    }
    Err(format!("undocumented message {m:?} with {}", e.code))
}

/// Checks every transcript; returns the violations (empty = the streams kept the contract).
pub fn check_all(
    transcripts: &[Transcript],
    history: &History,
    timeline: &Timeline,
    stats: &mut Stats,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for t in transcripts {
        check(t, history, timeline, stats, &mut out);
    }
    out
}

/// A dropped connection is a documented end only as a write timeout the node counted: no
/// more connections dropped than `stream_write_timeouts_total` says.
pub fn check_dropped(stats: &Stats, write_timeouts: f64) -> Option<Violation> {
    let dropped = stats.dropped.len();
    (dropped as f64 > write_timeouts).then(|| Violation {
        at: format!("connections {:?}", stats.dropped),
        what: format!(
            "{dropped} WebSocket connections ended without a close frame, but the node counted \
             {write_timeouts} write timeouts"
        ),
    })
}

/// Checks one subscription's transcript.
pub fn check(
    t: &Transcript,
    history: &History,
    timeline: &Timeline,
    stats: &mut Stats,
    out: &mut Vec<Violation>,
) {
    for (i, segment) in t.segments.iter().enumerate() {
        let at = format!(
            "client {} ({}, {}) {} segment {} ({:?})",
            t.client,
            t.transport.name(),
            t.behaviour,
            short(&t.key),
            i,
            segment.start
        );
        let mut fail = |what: String| {
            out.push(Violation {
                at: at.clone(),
                what,
            })
        };
        check_segment(t, segment, history, timeline, stats, &mut fail);
    }
    for since in &t.unrefused {
        out.push(Violation {
            at: format!(
                "client {} ({}, {}) {}",
                t.client,
                t.transport.name(),
                t.behaviour,
                short(&t.key)
            ),
            what: format!(
                "resumed from since_height {since}, older than the replay window, and was not \
                 refused"
            ),
        });
    }
    for r in &t.refusals {
        let at = format!(
            "client {} ({}, {}) {} refusal of since_height {}",
            t.client,
            t.transport.name(),
            t.behaviour,
            short(&t.key),
            r.since
        );
        if let Err(what) = check_refusal(t.transport, r, timeline) {
            out.push(Violation { at, what });
        } else if r.expected {
            stats.refusals_expected += 1;
        } else {
            stats.refusals_unexpected += 1;
        }
    }
}

fn check_refusal(transport: Transport, r: &Refusal, timeline: &Timeline) -> Result<(), String> {
    let code = match transport {
        Transport::Grpc => "OutOfRange",
        Transport::WsPath | Transport::Sse => "HTTP 410",
        Transport::WsMux => "410",
    };
    if r.error.code != code {
        return Err(format!(
            "refused with {} {:?}; expected {code}",
            r.error.code, r.error.message
        ));
    }
    let oldest = refused_oldest(r.since, &r.error.message)
        .ok_or_else(|| format!("undocumented refusal message {:?}", r.error.message))?;
    if oldest <= r.since {
        return Err(format!(
            "refused since_height {} although the oldest available is {oldest}",
            r.since
        ));
    }
    if timeline.latest().is_some_and(|h| oldest > h) {
        return Err(format!("oldest height {oldest} named is not committed"));
    }
    Ok(())
}

/// Heights h in (after, upto] where the value changed (V(h) != V(h-1)).
fn changes(
    history: &History,
    key: &crate::stream_support::StreamKey,
    after: i64,
    upto: i64,
) -> Result<Vec<i64>, String> {
    let mut out = Vec::new();
    for h in after + 1..=upto {
        let (Some(before), Some(now)) = (history.get(key, h - 1), history.get(key, h)) else {
            return Err(format!("no standard value at height {} or {h}", h - 1));
        };
        if before != now {
            out.push(h);
        }
    }
    Ok(out)
}

fn check_segment(
    t: &Transcript,
    segment: &Segment,
    history: &History,
    timeline: &Timeline,
    stats: &mut Stats,
    fail: &mut dyn FnMut(String),
) {
    let key = &t.key;
    let resumed = matches!(segment.start, Start::Since(_));
    if resumed {
        stats.resumed_segments += 1;
    } else {
        stats.snapshot_segments += 1;
    }
    // The height everything up to which the client has: S, or the previous message.
    let mut prev: Option<i64> = match segment.start {
        Start::Since(s) => Some(s),
        Start::Snapshot => None,
    };
    if let Some(s) = prev {
        stats.lowest = Some(stats.lowest.map_or(s, |l| l.min(s)));
    }
    for m in &segment.messages {
        stats.messages += 1;
        stats.lowest = Some(stats.lowest.map_or(m.height, |l| l.min(m.height)));
        stats.highest = Some(stats.highest.map_or(m.height, |l| l.max(m.height)));
        if let Some(committed) = timeline.committed_after(m.at)
            && m.height > committed
        {
            fail(format!(
                "message at height {} arrived before that height was committed (the node was at \
                 {committed} after it arrived)",
                m.height
            ));
        }
        match history.get(key, m.height) {
            None => fail(format!("no standard value at height {}", m.height)),
            Some(v) if *v != m.value => fail(format!(
                "wrong value at height {}: streamed {} but the standard queries answer {}",
                m.height, m.value, v
            )),
            Some(_) => {}
        }
        if let Some(p) = prev {
            if m.height == p {
                fail(format!("duplicate message at height {p}"));
                continue;
            }
            if m.height < p {
                fail(format!("height {} after height {p}", m.height));
                continue;
            }
            if history.get(key, m.height - 1) == history.get(key, m.height) {
                fail(format!(
                    "message at height {} but the value did not change there (a duplicate)",
                    m.height
                ));
            }
            match changes(history, key, p, m.height - 1) {
                Err(e) => fail(e),
                Ok(missed) if missed.is_empty() => {}
                Ok(missed) if resumed => fail(format!(
                    "missed change(s) at height(s) {missed:?} between messages at {p} and {}",
                    m.height
                )),
                Ok(missed) => {
                    stats.conflated_gaps += 1;
                    stats.conflated_changes += missed.len();
                }
            }
        }
        prev = Some(m.height);
    }
    match &segment.end {
        End::Stopped { stop_height } => {
            let Some(p) = prev else {
                fail("no message at all (not even the snapshot)".into());
                return;
            };
            let end = (*stop_height).max(p);
            stats.highest = Some(stats.highest.map_or(end, |l| l.max(end)));
            match changes(history, key, p, end) {
                Err(e) => fail(e),
                Ok(missed) if missed.is_empty() => {}
                Ok(missed) => fail(format!(
                    "change(s) at height(s) {missed:?} never delivered: the last message is at \
                     {p} and the run stopped at {stop_height}"
                )),
            }
        }
        End::Killed => {}
        End::Silent(how) => fail(format!("the stream ended without an error: {how}")),
        End::Dropped { connection, .. } => {
            stats.dropped.insert((t.client, *connection));
        }
        End::Error(e) => {
            if !resumed {
                fail(format!(
                    "a snapshot stream ended with {} {:?}",
                    e.code, e.message
                ));
                return;
            }
            match documented_ending(t.transport, e) {
                Err(what) => fail(what),
                Ok(ending) => {
                    *stats.errors.entry(ending.name()).or_default() += 1;
                    if let Ending::FellBehind(h) = ending
                        && Some(h) != prev
                    {
                        fail(format!(
                            "told to resume with since_height={h} but the last height it had is \
                             {prev:?}"
                        ));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
