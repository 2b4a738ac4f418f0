//! The module's Prometheus metrics (DESIGN.md 4.3). The names are a documented contract.
//! Counters are rendered with the `_total` suffix of the OpenMetrics text format.

use crate::key::SubscriptionKind;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Every `reason` of `stream_connection_rejected`.
pub const REJECTION_REASONS: [&str; 12] = [
    "max_connections",
    "max_subscriptions",
    "connect_rate",
    "invalid_request",
    "out_of_window",
    "not_websocket",
    "origin_not_allowed",
    "unavailable",
    "token_missing",
    "token_invalid",
    "token_expired",
    "permission_denied",
];

/// Every `reason` of `stream_replays_refused`: `since_height` older than the window (or the
/// replay fell out of it), a resumed client that fell behind its queue, and resumed
/// subscriptions ended because blocks never reached the module.
pub const REPLAY_REFUSAL_REASONS: [&str; 3] = ["out_of_window", "fell_behind", "gap"];

/// Bounds of `stream_commit_hook_seconds`, 0.5 us to 10 ms: the hook hands over one pointer
/// (DESIGN.md 10 targets p99 <= 50 us), so the fine buckets sit below 100 us, finest around
/// the target, where a p99 interpolated inside a 20-50 or 50-100 us bucket would say little.
const COMMIT_HOOK_BUCKETS: [f64; 19] = [
    0.5e-6, 1e-6, 2e-6, 5e-6, 10e-6, 20e-6, 25e-6, 30e-6, 40e-6, 50e-6, 60e-6, 75e-6, 100e-6,
    200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3,
];

/// A single-label label set.
pub type Label = [(&'static str, &'static str); 1];

/// How a client is connected: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A WebSocket connection (path route or `/ws`).
    WebSocket,
    /// A Server-Sent Events stream.
    Sse,
    /// A gRPC server stream.
    Grpc,
}

impl Transport {
    /// Every transport, in the order `/stats` lists them.
    pub const ALL: [Transport; 3] = [Transport::WebSocket, Transport::Sse, Transport::Grpc];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::WebSocket => "websocket",
            Transport::Sse => "sse",
            Transport::Grpc => "grpc",
        }
    }
}

/// Every metric of the module. Cheap to update from any thread.
pub struct Metrics {
    /// Open WebSocket connections + SSE streams + gRPC streams.
    pub connections: Gauge,
    /// Open connections (WebSocket) and streams (gRPC) by `transport`.
    pub transport_connections: Family<Label, Gauge>,
    /// Connections and streams ever admitted, by `transport`.
    pub transport_connections_opened: Family<Label, Counter>,
    /// Messages sent by `transport`.
    pub transport_messages_sent: Family<Label, Counter>,
    /// Newest height the node committed (as the commit hook saw it).
    pub committed_height: Gauge,
    /// Newest height the dispatcher has fanned out.
    pub dispatched_height: Gauge,
    /// Time between consecutive dispatched blocks' header times, seconds.
    pub block_interval: Histogram,
    /// Active subscriptions by `type`.
    pub subscriptions: Family<Label, Gauge>,
    /// Messages sent by `type`.
    pub messages_sent: Family<Label, Counter>,
    /// Updates a slow client skipped (its outbox still held an unsent value), by `subscription_type`.
    pub buffer_overflow: Family<Label, Counter>,
    /// Lifetime of connections and gRPC streams, seconds.
    pub connection_duration: Histogram,
    /// WebSocket connections dropped because a write did not finish within `write_timeout`.
    pub write_timeouts: Counter,
    /// Refused connections/subscriptions by `reason`.
    pub connection_rejected: Family<Label, Counter>,
    /// Time from the dispatcher producing an update to it being handed to the transport, seconds.
    pub commit_to_send: Histogram,
    /// Time the commit hook took to hand a block over, seconds.
    pub commit_hook: Histogram,
    /// Blocks the dispatcher processed.
    pub blocks_dispatched: Counter,
    /// Blocks the commit hook could not queue (queue full); the dispatcher resynchronises.
    pub blocks_dropped: Counter,
    /// Blocks waiting in the commit queue when the dispatcher took the last one.
    pub dispatcher_lag_blocks: Gauge,
    /// Store writes that could not be decoded.
    pub decode_errors: Counter,
    /// Times subscriptions were resynchronised from state (missed blocks, start-up).
    pub resyncs: Counter,
    /// Oldest `since_height` the replay window can serve.
    pub replay_oldest_height: Gauge,
    /// Blocks held by the replay window.
    pub replay_window_blocks: Gauge,
    /// Estimated bytes held by the replay window.
    pub replay_window_bytes: Gauge,
    /// Resumes served (`since_height` accepted).
    pub replays: Counter,
    /// Resumes refused or ended with "resume from H" / "re-snapshot", by `reason`.
    pub replays_refused: Family<Label, Counter>,
    /// Keys (topics) in the dispatcher's index.
    pub topics: Gauge,
    /// Subscriptions registered in the dispatcher's index (including those still loading).
    pub dispatcher_subscriptions: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Gauge::default(),
            transport_connections: Family::default(),
            transport_connections_opened: Family::default(),
            transport_messages_sent: Family::default(),
            committed_height: Gauge::default(),
            dispatched_height: Gauge::default(),
            block_interval: Histogram::new(exponential_buckets(0.05, 2.0, 13)),
            subscriptions: Family::default(),
            messages_sent: Family::default(),
            buffer_overflow: Family::default(),
            connection_duration: Histogram::new(exponential_buckets(0.5, 2.0, 16)),
            write_timeouts: Counter::default(),
            connection_rejected: Family::default(),
            commit_to_send: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            commit_hook: Histogram::new(COMMIT_HOOK_BUCKETS),
            blocks_dispatched: Counter::default(),
            blocks_dropped: Counter::default(),
            dispatcher_lag_blocks: Gauge::default(),
            decode_errors: Counter::default(),
            resyncs: Counter::default(),
            replay_oldest_height: Gauge::default(),
            replay_window_blocks: Gauge::default(),
            replay_window_bytes: Gauge::default(),
            replays: Counter::default(),
            replays_refused: Family::default(),
            topics: Gauge::default(),
            dispatcher_subscriptions: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Subscriptions gauge of a kind.
    pub fn subscriptions(&self, kind: SubscriptionKind) -> Gauge {
        self.subscriptions
            .get_or_create(&[("type", kind.label())])
            .clone()
    }

    /// Messages-sent counter of a kind.
    pub fn messages_sent(&self, kind: SubscriptionKind) -> Counter {
        self.messages_sent
            .get_or_create(&[("type", kind.label())])
            .clone()
    }

    /// Overflow counter of a kind.
    pub fn buffer_overflow(&self, kind: SubscriptionKind) -> Counter {
        self.buffer_overflow
            .get_or_create(&[("subscription_type", kind.label())])
            .clone()
    }

    /// Open connections (gRPC: streams) of a transport.
    pub fn transport_connections(&self, t: Transport) -> Gauge {
        self.transport_connections
            .get_or_create(&[("transport", t.label())])
            .clone()
    }

    /// Connections (gRPC: streams) of a transport ever admitted.
    pub fn transport_connections_opened(&self, t: Transport) -> Counter {
        self.transport_connections_opened
            .get_or_create(&[("transport", t.label())])
            .clone()
    }

    /// Messages sent over a transport.
    pub fn transport_messages_sent(&self, t: Transport) -> Counter {
        self.transport_messages_sent
            .get_or_create(&[("transport", t.label())])
            .clone()
    }

    /// Rejection counter of a reason (`max_connections`, `max_subscriptions`, `invalid_request`, ...).
    pub fn rejected(&self, reason: &'static str) -> Counter {
        self.connection_rejected
            .get_or_create(&[("reason", reason)])
            .clone()
    }

    /// Refused-replay counter of a reason (see [`REPLAY_REFUSAL_REASONS`]).
    pub fn replays_refused(&self, reason: &'static str) -> Counter {
        self.replays_refused
            .get_or_create(&[("reason", reason)])
            .clone()
    }

    /// Registers every metric in `registry` (the node's telemetry registry).
    pub fn register(&self, registry: &mut Registry) {
        // Labelled families start at zero for every kind, so dashboards see them at once.
        for kind in SubscriptionKind::ALL {
            self.subscriptions(kind);
            self.messages_sent(kind);
            self.buffer_overflow(kind);
        }
        for t in Transport::ALL {
            self.transport_connections(t);
            self.transport_connections_opened(t);
            self.transport_messages_sent(t);
        }
        for reason in REJECTION_REASONS {
            self.rejected(reason);
        }
        for reason in REPLAY_REFUSAL_REASONS {
            self.replays_refused(reason);
        }
        registry.register(
            "stream_connections",
            "Open WebSocket connections, SSE streams and gRPC streams",
            self.connections.clone(),
        );
        registry.register(
            "stream_transport_connections",
            "Open WebSocket connections and gRPC streams by transport",
            self.transport_connections.clone(),
        );
        registry.register(
            "stream_transport_connections_opened",
            "WebSocket connections and gRPC streams admitted, by transport",
            self.transport_connections_opened.clone(),
        );
        registry.register(
            "stream_transport_messages_sent",
            "Messages sent to clients by transport",
            self.transport_messages_sent.clone(),
        );
        registry.register(
            "stream_committed_height",
            "Newest height the node committed, as the stream module's commit hook saw it",
            self.committed_height.clone(),
        );
        registry.register(
            "stream_dispatched_height",
            "Newest height the stream dispatcher has fanned out to subscribers",
            self.dispatched_height.clone(),
        );
        registry.register(
            "stream_block_interval_seconds",
            "Time between consecutive committed blocks' header times",
            self.block_interval.clone(),
        );
        registry.register(
            "stream_subscriptions",
            "Active subscriptions by type",
            self.subscriptions.clone(),
        );
        registry.register(
            "stream_messages_sent",
            "Messages sent to clients by subscription type",
            self.messages_sent.clone(),
        );
        registry.register(
            "stream_buffer_overflow",
            "Updates skipped because a client was not reading (it gets the newest value instead)",
            self.buffer_overflow.clone(),
        );
        registry.register(
            "stream_connection_duration",
            "Lifetime of WebSocket connections and gRPC streams in seconds",
            self.connection_duration.clone(),
        );
        registry.register(
            "stream_write_timeouts",
            "WebSocket connections dropped because a write did not finish within write_timeout (the client stopped reading)",
            self.write_timeouts.clone(),
        );
        registry.register(
            "stream_connection_rejected",
            "Refused connections and subscriptions by reason",
            self.connection_rejected.clone(),
        );
        registry.register(
            "stream_commit_to_send_seconds",
            "Time from dispatching a committed block to handing the update to the client's transport",
            self.commit_to_send.clone(),
        );
        registry.register(
            "stream_commit_hook_seconds",
            "Time the node's commit hook took to hand each committed block to the stream module",
            self.commit_hook.clone(),
        );
        registry.register(
            "stream_blocks_dispatched",
            "Committed blocks processed by the dispatcher",
            self.blocks_dispatched.clone(),
        );
        registry.register(
            "stream_blocks_dropped",
            "Committed blocks the commit hook could not queue; the dispatcher resynchronised instead",
            self.blocks_dropped.clone(),
        );
        registry.register(
            "stream_dispatcher_lag_blocks",
            "Committed blocks waiting for the dispatcher",
            self.dispatcher_lag_blocks.clone(),
        );
        registry.register(
            "stream_decode_errors",
            "Store writes that could not be decoded",
            self.decode_errors.clone(),
        );
        registry.register(
            "stream_resyncs",
            "Resynchronisations of subscriptions from state",
            self.resyncs.clone(),
        );
        registry.register(
            "stream_replay_oldest_height",
            "Oldest since_height the replay window can serve",
            self.replay_oldest_height.clone(),
        );
        registry.register(
            "stream_replay_window_blocks",
            "Committed blocks held in the replay window",
            self.replay_window_blocks.clone(),
        );
        registry.register(
            "stream_replay_window_bytes",
            "Estimated bytes held by the replay window",
            self.replay_window_bytes.clone(),
        );
        registry.register(
            "stream_replays",
            "Resumed subscriptions served (since_height accepted)",
            self.replays.clone(),
        );
        registry.register(
            "stream_replays_refused",
            "Resumes refused or ended with an explicit resume/re-snapshot error, by reason",
            self.replays_refused.clone(),
        );
        registry.register(
            "stream_topics",
            "Keys in the dispatcher's subscription index",
            self.topics.clone(),
        );
        registry.register(
            "stream_dispatcher_subscriptions",
            "Subscriptions registered in the dispatcher's index",
            self.dispatcher_subscriptions.clone(),
        );
    }
}
