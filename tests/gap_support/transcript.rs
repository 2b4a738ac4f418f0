//! What one subscription received, segment by segment (one segment per stream the client
//! opened for it), with arrival times, how each segment ended, and the resumes the node
//! refused. The checker judges these; the clients only record.

use std::time::Instant;

use serde_json::Value as Json;

use crate::stream_support::StreamKey;

/// The four ways to stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// `juno.stream.v1.Query` on the gRPC port.
    Grpc,
    /// A path route `/ws/subscribe/...`: one subscription per connection.
    WsPath,
    /// `/ws`: several subscriptions on one connection.
    WsMux,
    /// Server-Sent Events `/sse/subscribe/...` (curl), resumed with `Last-Event-ID`.
    Sse,
}

impl Transport {
    /// Name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Grpc => "gRPC",
            Transport::WsPath => "WS path",
            Transport::WsMux => "/ws",
            Transport::Sse => "SSE",
        }
    }
}

/// Where a segment started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// No `since_height`: the current value first, then changes (latest mode, may conflate).
    Snapshot,
    /// `since_height` = S: every change after S, none skipped.
    Since(i64),
}

/// One message as received.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    /// Its `height`.
    pub height: i64,
    /// Its value in the canonical form (see `target`).
    pub value: Json,
    /// When the client read it.
    pub at: Instant,
}

/// An error the server ended a stream (or refused one) with, as the transport carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// gRPC code name (`OutOfRange`), WebSocket close code (`4410`), `/ws` error code (`410`)
    /// or HTTP status before the upgrade (`HTTP 410`).
    pub code: String,
    /// The message (a WebSocket close reason is cut to 120 bytes by the server).
    pub message: String,
}

/// How a segment ended.
#[derive(Clone, Debug, PartialEq)]
pub enum End {
    /// Still open when the run stopped at `stop_height` (the node's height then); the client
    /// kept reading at full speed for the drain time afterwards.
    Stopped { stop_height: i64 },
    /// The client killed its connection (no close frame, no goodbye).
    Killed,
    /// The server ended it with an error.
    Error(ServerError),
    /// The stream ended without any error (a silent end: always a violation).
    Silent(String),
    /// A client that stops reading (slow, paused) over WebSocket lost its connection without
    /// a close frame: the node dropped it after `write_timeout`. Its `connection` (the
    /// client's n-th) is one the node must have counted in `stream_write_timeouts_total`.
    Dropped { how: String, connection: usize },
}

/// One stream the client opened for the subscription.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    /// How it started.
    pub start: Start,
    /// Every message, in arrival order.
    pub messages: Vec<Received>,
    /// How it ended.
    pub end: End,
}

/// A resume the node refused before any message.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The `since_height` asked for.
    pub since: i64,
    /// What the node answered.
    pub error: ServerError,
    /// Whether the client asked on purpose from outside the replay window.
    pub expected: bool,
}

/// Everything one subscription received.
#[derive(Clone, Debug)]
pub struct Transcript {
    /// Client number (for reports).
    pub client: usize,
    /// Its transport.
    pub transport: Transport,
    /// The behaviour's name.
    pub behaviour: &'static str,
    /// What it follows.
    pub key: StreamKey,
    /// In order.
    pub segments: Vec<Segment>,
    /// Refused resumes, in order.
    pub refusals: Vec<Refusal>,
    /// Resumes from outside the replay window that the node accepted instead of refusing.
    pub unrefused: Vec<i64>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new(
        client: usize,
        transport: Transport,
        behaviour: &'static str,
        key: StreamKey,
    ) -> Transcript {
        Transcript {
            client,
            transport,
            behaviour,
            key,
            segments: Vec::new(),
            refusals: Vec::new(),
            unrefused: Vec::new(),
        }
    }

    /// Height of the last message received in any segment.
    pub fn last_height(&self) -> Option<i64> {
        self.segments
            .iter()
            .rev()
            .find_map(|s| s.messages.last().map(|m| m.height))
    }

    /// Messages received in all segments.
    pub fn message_count(&self) -> usize {
        self.segments.iter().map(|s| s.messages.len()).sum()
    }
}
