//! Operator endpoints for the API port: `GET /health` (a load balancer's readiness probe) and
//! `GET /stats` (who is connected, what they follow). Both answer JSON and read only
//! counters, except the most-subscribed topics, which the dispatcher computes at most once a
//! second between blocks.

use crate::chain::Chain;
use crate::dispatcher::{Command, TopTopic};
use crate::key::{SubscriptionKey, SubscriptionKind};
use crate::limits::Limits;
use crate::metrics::{Metrics, REJECTION_REASONS, REPLAY_REFUSAL_REASONS, Transport};
use crate::reader::{ReadError, StateReader};
use crate::window::ReplayWindow;
use async_trait::async_trait;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as JsonValue, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stream_abci_listener::{Address, Dec, Int, UnbondingEntry, ValidatorTokens};
use tokio::sync::{mpsc, oneshot, watch};

/// The git commit the module was built from (`unknown` outside a git checkout).
const COMMIT: &str = env!("STREAM_GIT_COMMIT");
/// How long a failed state read keeps `/health` at 503 unless a read succeeds meanwhile.
pub(crate) const READ_FAILURE_HOLD: Duration = Duration::from_secs(60);
/// How far back `messages_per_second` looks.
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Most-subscribed topics listed by `/stats`.
pub(crate) const TOP_TOPICS: usize = 10;

/// The last state read's outcome, as `/health` sees it.
#[derive(Default)]
pub(crate) struct ReaderHealth {
    /// The error of the last read and when, if the last read failed.
    failing: Mutex<Option<(Instant, String)>>,
}

impl ReaderHealth {
    fn record<T>(&self, r: &Result<T, ReadError>) {
        let mut f = self.failing.lock().expect("reader health lock");
        match r {
            Ok(_) => *f = None,
            Err(e) => *f = Some((Instant::now(), e.to_string())),
        }
    }

    /// The error of a read that failed within [`READ_FAILURE_HOLD`] with no success since.
    fn failure(&self) -> Option<String> {
        let f = self.failing.lock().expect("reader health lock");
        f.as_ref()
            .filter(|(at, _)| at.elapsed() < READ_FAILURE_HOLD)
            .map(|(_, e)| e.clone())
    }
}

/// The node's state reader, with every read's outcome recorded for `/health`.
pub(crate) struct WatchedReader {
    pub inner: Arc<dyn StateReader>,
    pub health: Arc<ReaderHealth>,
}

#[async_trait]
impl StateReader for WatchedReader {
    async fn balances(
        &self,
        height: i64,
        address: &Address,
    ) -> Result<Vec<(String, Int)>, ReadError> {
        let r = self.inner.balances(height, address).await;
        self.health.record(&r);
        r
    }

    fn earliest_height(&self) -> Option<i64> {
        self.inner.earliest_height()
    }

    async fn validators(&self, height: i64) -> Result<Vec<(Address, ValidatorTokens)>, ReadError> {
        let r = self.inner.validators(height).await;
        self.health.record(&r);
        r
    }

    async fn delegations(
        &self,
        height: i64,
        delegator: &Address,
    ) -> Result<Vec<(Address, Dec)>, ReadError> {
        let r = self.inner.delegations(height, delegator).await;
        self.health.record(&r);
        r
    }

    async fn unbonding_delegations(
        &self,
        height: i64,
        delegator: &Address,
    ) -> Result<Vec<(Address, Vec<UnbondingEntry>)>, ReadError> {
        let r = self.inner.unbonding_delegations(height, delegator).await;
        self.health.record(&r);
        r
    }
}

/// Messages sent per transport, sampled every second for `messages_per_second`.
#[derive(Default)]
pub(crate) struct Rates {
    samples: Mutex<VecDeque<(Instant, [u64; Transport::ALL.len()])>>,
}

impl Rates {
    fn sample(&self, metrics: &Metrics) {
        let now = Instant::now();
        let counts = Transport::ALL.map(|t| metrics.transport_messages_sent(t).get());
        let mut s = self.samples.lock().expect("rates lock");
        s.push_back((now, counts));
        while s
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            s.pop_front();
        }
    }

    /// Messages per second of each transport over the last [`RATE_WINDOW`] (0 before two
    /// samples exist).
    fn per_second(&self) -> [f64; Transport::ALL.len()] {
        let s = self.samples.lock().expect("rates lock");
        match (s.front(), s.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                let dt = t1.duration_since(*t0).as_secs_f64();
                std::array::from_fn(|i| c1[i].saturating_sub(c0[i]) as f64 / dt)
            }
            _ => [0.0; Transport::ALL.len()],
        }
    }

    /// Samples every second until shutdown; once a minute, also lets the connect-rate
    /// limiter forget clients that have fully recovered.
    pub async fn run(
        self: Arc<Self>,
        metrics: Arc<Metrics>,
        limits: Arc<Limits>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = crate::outbox::shutting_down(&mut shutdown) => return,
                _ = tick.tick() => self.sample(&metrics),
            }
            ticks += 1;
            if ticks.is_multiple_of(60) {
                limits.forget_idle_clients();
            }
        }
    }
}

/// What the operator endpoints read.
#[derive(Clone)]
pub(crate) struct Ops {
    pub chain: Arc<Chain>,
    pub metrics: Arc<Metrics>,
    pub window: Arc<ReplayWindow>,
    pub reader: Arc<ReaderHealth>,
    pub rates: Arc<Rates>,
    pub commands: mpsc::Sender<Command>,
    pub shutdown: watch::Receiver<bool>,
    pub started: Instant,
    /// `health_max_lag_blocks`.
    pub max_lag: i64,
}

/// `/health` and `/stats`.
pub(crate) fn router(ops: Ops) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/stats", get(stats))
        .with_state(ops)
}

async fn health(State(ops): State<Ops>) -> Response {
    let height = ops.metrics.dispatched_height.get();
    let committed = ops.metrics.committed_height.get();
    let lag = (committed - height).max(0);
    let problem = if *ops.shutdown.borrow() {
        Some(("shutting_down", "the node is shutting down".to_string()))
    } else if lag > ops.max_lag {
        Some((
            "lagging",
            format!(
                "the dispatcher is {lag} blocks behind the node (height {height}, node at \
                 {committed}; health_max_lag_blocks = {})",
                ops.max_lag
            ),
        ))
    } else {
        ops.reader
            .failure()
            .map(|e| ("reader_failing", format!("state reads are failing: {e}")))
    };
    let mut body = json!({
        "service": "stream",
        "status": problem.as_ref().map_or("ok", |(s, _)| s),
        "height": height,
        "node_height": committed,
        "dispatcher_lag_blocks": lag,
        "uptime_seconds": ops.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "commit": COMMIT,
    });
    let code = match problem {
        None => StatusCode::OK,
        Some((_, reason)) => {
            body["reason"] = reason.into();
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (code, Json(body)).into_response()
}

async fn stats(State(ops): State<Ops>) -> Response {
    let m = &ops.metrics;
    let rates = ops.rates.per_second();
    let mut transports = Map::new();
    for (i, t) in Transport::ALL.into_iter().enumerate() {
        transports.insert(
            t.label().into(),
            json!({
                "connections": m.transport_connections(t).get(),
                "connections_total": m.transport_connections_opened(t).get(),
                "messages_sent": m.transport_messages_sent(t).get(),
                "messages_per_second": (rates[i] * 10.0).round() / 10.0,
            }),
        );
    }
    let mut subscriptions = Map::new();
    for kind in SubscriptionKind::ALL {
        subscriptions.insert(kind.label().into(), m.subscriptions(kind).get().into());
    }
    let mut refusals = Map::new();
    for reason in REJECTION_REASONS {
        refusals.insert(reason.into(), m.rejected(reason).get().into());
    }
    let mut replays_refused = Map::new();
    for reason in REPLAY_REFUSAL_REASONS {
        replays_refused.insert(reason.into(), m.replays_refused(reason).get().into());
    }
    let top: Vec<JsonValue> = top_topics(&ops)
        .await
        .iter()
        .map(|t| topic_json(&ops.chain, t))
        .collect();
    let (_, latest) = ops.window.bounds();
    Json(json!({
        "height": m.dispatched_height.get(),
        "transports": transports,
        "subscriptions": subscriptions,
        "topics": m.topics.get(),
        "top_topics": top,
        "replay_window": {
            "oldest_height": m.replay_oldest_height.get(),
            "latest_height": latest,
            "blocks": m.replay_window_blocks.get(),
            "bytes": m.replay_window_bytes.get(),
        },
        "refusals": refusals,
        "replays_refused": replays_refused,
    }))
    .into_response()
}

/// The dispatcher's most-subscribed topics (empty while it is shutting down or busy for more
/// than a second).
async fn top_topics(ops: &Ops) -> Vec<TopTopic> {
    let (reply, answer) = oneshot::channel();
    let ask = async {
        ops.commands.send(Command::Stats { reply }).await.ok()?;
        answer.await.ok()
    };
    tokio::time::timeout(Duration::from_secs(1), ask)
        .await
        .ok()
        .flatten()
        .map(|t| t.to_vec())
        .unwrap_or_default()
}

fn topic_json(chain: &Chain, t: &TopTopic) -> JsonValue {
    let mut o = json!({ "type": t.key.kind().label(), "subscribers": t.subscribers });
    match &t.key {
        SubscriptionKey::Balance { address, denom } => {
            o["address"] = chain.account_string(address).into();
            o["denom"] = denom.clone().into();
        }
        SubscriptionKey::Balances { address } => {
            o["address"] = chain.account_string(address).into();
        }
        SubscriptionKey::Delegation {
            delegator,
            validator,
        }
        | SubscriptionKey::UnbondingDelegation {
            delegator,
            validator,
        } => {
            o["delegator"] = chain.account_string(delegator).into();
            o["validator"] = chain.validator_string(validator).into();
        }
        SubscriptionKey::Delegations { delegator }
        | SubscriptionKey::UnbondingDelegations { delegator } => {
            o["delegator"] = chain.account_string(delegator).into();
        }
    }
    o
}
