//! A node under test with its commit timeline sampled, consumers that record what a client
//! library delivered, and the translation of a consumer's sequence into the gap checker's
//! transcript: the snapshot, then one resumed segment per stretch between resyncs, each of
//! which must carry every change exactly once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::gap_support::checker::{Stats, Violation, check};
use crate::gap_support::history;
use crate::gap_support::timeline::{self, Timeline};
use crate::gap_support::transcript::{End, Received, Segment, Start, Transcript, Transport};
use crate::stream_support::StreamKey;
use crate::support::{TestNode, TestNodeOptions};

/// How a delivered value stands in the sequence (the client libraries' kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Change,
    /// A fresh snapshot after the node could not resume from `last_height`.
    Resynced {
        last_height: i64,
    },
}

/// One value a consumer got.
#[derive(Clone, Debug)]
pub struct Got {
    pub height: i64,
    /// Canonical form (`gap_support::target`).
    pub value: Json,
    pub kind: Kind,
    pub at: Instant,
}

/// A node with the commit timeline sampled every 20 ms until [`Run::violations`].
pub struct Run {
    pub node: Arc<TestNode>,
    timeline: Arc<Mutex<Timeline>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Run {
    pub async fn start(options: TestNodeOptions) -> Run {
        let node = Arc::new(TestNode::start(options).await);
        let timeline = Arc::new(Mutex::new(Timeline::default()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        {
            let (node, timeline) = (node.clone(), timeline.clone());
            tokio::spawn(async move {
                timeline::sample(&node, Duration::from_millis(20), timeline, stop_rx).await
            });
        }
        Run {
            node,
            timeline,
            stop,
        }
    }

    /// Checks `transcripts` against the standard queries at every height they cover.
    pub async fn violations(&self, transcripts: &[Transcript]) -> (Vec<Violation>, Stats) {
        let _ = self.stop.send(true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let history = history::query(&self.node, &history::needed(transcripts)).await;
        let timeline = self.timeline.lock().expect("timeline").clone();
        let mut out = Vec::new();
        let mut stats = Stats::default();
        for t in transcripts {
            check(t, &history, &timeline, &mut stats, &mut out);
        }
        (out, stats)
    }
}

/// The transcript of one consumer's sequence, which must start with its snapshot: a
/// snapshot segment holding it, then a segment resumed from its height holding every later
/// value (so every change after the snapshot must be there, once), split at each `Resynced`
/// the same way (the changes skipped before a resync are the one gap the contract allows,
/// and only explicitly). The last segment was still open at `stop_height`.
pub fn transcript(
    client: usize,
    transport: Transport,
    behaviour: &'static str,
    key: StreamKey,
    got: &[Got],
    stop_height: i64,
) -> Transcript {
    let mut t = Transcript::new(client, transport, behaviour, key);
    let mut resumed: Option<Segment> = None;
    for (i, g) in got.iter().enumerate() {
        let received = Received {
            height: g.height,
            value: g.value.clone(),
            at: g.at,
        };
        match g.kind {
            Kind::Snapshot | Kind::Resynced { .. } => {
                assert!(
                    (i == 0) == (g.kind == Kind::Snapshot),
                    "client {client}: item {i} is {:?}: the snapshot comes first and only first",
                    g.kind
                );
                if let Some(s) = resumed.take() {
                    t.segments.push(Segment {
                        end: End::Killed,
                        ..s
                    });
                }
                t.segments.push(Segment {
                    start: Start::Snapshot,
                    messages: vec![received],
                    end: End::Killed,
                });
                resumed = Some(Segment {
                    start: Start::Since(g.height),
                    messages: Vec::new(),
                    end: End::Stopped { stop_height },
                });
            }
            Kind::Change => resumed
                .as_mut()
                .unwrap_or_else(|| panic!("client {client}: a change before the snapshot"))
                .messages
                .push(received),
        }
    }
    if let Some(s) = resumed {
        t.segments.push(s);
    }
    t
}
