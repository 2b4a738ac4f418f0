//! `stream-module`: real-time streams of committed balances, delegations and unbonding
//! delegations, compiled into a Cosmos-style node.
//!
//! The node gives the module three things and gets three back:
//! - it hands over a [`StateReader`] (reads of committed state at a height; a node with
//!   direct store access implements [`KvReader`] and wraps it in [`DecodingReader`]), the chain's
//!   prefixes and bond denom ([`Chain`]), the `[stream]` table of `app.toml`
//!   ([`StreamConfig`]; [`StreamConfig::from_table_at`] resolves `[stream.auth]` key files
//!   against the node's home) and CometBFT's `[rpc]` limits ([`LimitsConfig`]);
//! - it gets a [`CommitListener`] for its commit path (O(1): one `try_send` of a pointer to
//!   a bounded queue, drained by a thread of the module's; it never blocks or fails the node), the tonic service
//!   `juno.stream.v1.Query` ([`StreamServer`]: requests bounded to [`MAX_REQUEST_BYTES`]) for
//!   its gRPC server, the WebSocket routes for its API port, and the `stream_*` metrics to
//!   register in its telemetry.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use stream_module::*;
//! # async fn embed(reader: Arc<dyn StateReader>, app_toml_stream: toml::Table) -> Result<(), Box<dyn std::error::Error>> {
//! let chain = Chain { account_prefix: "juno".into(), validator_prefix: "junovaloper".into(), bond_denom: "ujuno".into() };
//! let config = StreamConfig::from_table(&app_toml_stream)?;
//! let module = StreamModule::start(&config, LimitsConfig::default(), chain, reader);
//! // 1. commit path: call `listener.on_commit(Arc<BlockCommit>)` after every commit
//! let listener = module.commit_listener();
//! // 2. gRPC: add the service (and its descriptors, for reflection) to the node's server
//! let service = module.grpc_service();
//! let descriptors = stream_module::FILE_DESCRIPTOR_SET;
//! // 3. API port: merge the WebSocket routes into the node's axum router
//! let ws_routes = module.websocket_router(&config);
//! // 4. telemetry: register the stream_* metrics in the node's registry
//! let mut registry = prometheus_client::registry::Registry::default();
//! module.register_metrics(&mut registry);
//! // 5. on node shutdown: gRPC streams end with UNAVAILABLE, WebSockets with close code 1001
//! module.shutdown(std::time::Duration::from_secs(10)).await;
//! # let _ = (listener, service, descriptors, ws_routes); Ok(()) }
//! ```
//!
//! Inside: the commit hook queues whole blocks; the dispatcher (the only writer of the
//! subscription index, on a thread of its own so that no burst of connection or read tasks
//! on the node's runtime delays a block's fan-out) decodes each block once, keeps it in the replay window, finds the
//! affected subscriptions through its indexes (by account, by validator), computes each key's
//! new value once and puts it into every subscriber's outbox: the latest value only for a
//! plain subscription (a slow client skips heights instead of costing memory), a bounded
//! queue of every change for a resumed one (`since_height`). The dispatcher never waits on a
//! state read: snapshot and resync reads run in their own tasks and the blocks committed
//! meanwhile are applied on top; resumes replay the window in their own tasks and hand over
//! at the dispatched height. First message = value at a committed height (or, resumed, the
//! first change after `since_height`), then one message per later block in which the value
//! changed.
//!
//! Every transport's requests pass one edge (`edge`): the six stream types are named there
//! once, one parser turns (stream type, parameters) into a typed subscription key, the caller
//! is the IP or, with token auth on (`[stream.auth]`, [`AuthConfig`]), the token's `sub`, and
//! every refusal or stream end is one `Refusal` answered per transport in one place (gRPC
//! status, HTTP status + JSON, `/ws` error code, WebSocket close code, SSE `error` event).
//!
//! Everything else (dispatcher, outboxes, topics, the window) is private: nothing outside the
//! module can become a second writer of its state.
#![warn(missing_docs)]

pub mod auth;
mod chain;
pub mod config;
mod dispatcher;
mod edge;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod grpc;
mod handle;
mod handover;
mod json;
mod key;
mod limits;
mod metrics;
mod ops;
mod outbox;
mod reader;
mod replay;
mod topic;
mod value;
mod window;
mod ws;

pub use auth::AuthConfig;
pub use chain::Chain;
pub use config::{ConfigError, ConnectRate, StreamConfig, WebSocketConfig};
pub use grpc::{MAX_REQUEST_BYTES, StreamServer, StreamService};
pub use limits::LimitsConfig;
pub use reader::{DecodingReader, KvReader, ReadError, StateReader};
pub use stream_abci_listener::{BlockCommit, CommitListener};

use dispatcher::{Dispatcher, Inputs};
use handle::Handle;
use handover::Handover;
use limits::Limits;
use metrics::Metrics;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use window::ReplayWindow;

/// Encoded descriptors of `juno.stream.v1` for the node's server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = stream_proto::STREAM_FILE_DESCRIPTOR_SET;

/// The commit hook: hands each committed block to the dispatcher's bounded queue, through
/// the handover thread (see `handover`).
struct CommitHook {
    blocks: Handover,
    /// Highest dropped height, so the dispatcher catches up even if no block follows.
    dropped: watch::Sender<i64>,
    metrics: Arc<Metrics>,
}

impl CommitListener for CommitHook {
    fn on_commit(&self, commit: Arc<BlockCommit>) {
        let started = std::time::Instant::now();
        self.metrics.committed_height.set(commit.height);
        self.hand_over(commit, started);
        self.metrics
            .commit_hook
            .observe(started.elapsed().as_secs_f64());
    }
}

impl CommitHook {
    /// `at`: when the hook got the block, which the handover thread learns the pace from.
    fn hand_over(&self, commit: Arc<BlockCommit>, at: std::time::Instant) {
        match self.blocks.push(commit, at) {
            Ok(()) => {}
            Err(Some(c)) => {
                // Never wait on the commit path: the dispatcher sees the height gap and
                // resynchronises its subscriptions from state.
                self.metrics.blocks_dropped.inc();
                self.dropped.send_if_modified(|h| {
                    let newer = c.height > *h;
                    *h = (*h).max(c.height);
                    newer
                });
                tracing::warn!(
                    height = c.height,
                    "stream block queue full; block dropped, subscriptions will resynchronise"
                );
            }
            Err(None) => {}
        }
    }
}

/// Runs the dispatcher on its own thread; the receiver fires once it has returned.
fn spawn_dispatcher(
    dispatcher: impl Future<Output = ()> + Send + 'static,
) -> oneshot::Receiver<()> {
    let (done, done_rx) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("stream-dispatcher".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(dispatcher),
                Err(e) => tracing::error!(error = %e, "stream dispatcher runtime failed to start"),
            }
            let _ = done.send(());
        });
    if let Err(e) = thread {
        // Only when the OS refuses a thread at startup: no subscription can be served.
        tracing::error!(error = %e, "stream dispatcher thread failed to start");
    }
    done_rx
}

/// The running module.
pub struct StreamModule {
    handle: Handle,
    hook: Arc<CommitHook>,
    shutdown: watch::Sender<bool>,
    /// Fires when the dispatcher's thread has finished closing every subscription.
    dispatcher_done: Mutex<Option<oneshot::Receiver<()>>>,
    /// Closes when shutdown has begun and the last connection or stream has ended.
    all_closed: Mutex<Option<mpsc::Receiver<()>>>,
    /// What `/health` and `/stats` read.
    ops: ops::Ops,
    /// Held by a test to stall the dispatcher before its next block.
    #[cfg(test)]
    stall: Arc<Mutex<()>>,
}

impl StreamModule {
    /// Starts the module. The dispatcher runs on a thread of its own (a single-threaded tokio
    /// runtime), so the node's tasks (connections, reads, the node itself) never delay a
    /// block's fan-out, and it never delays them; its state reads and every transport run on
    /// the current tokio runtime, which must be a multi-thread runtime or be driven.
    pub fn start(
        config: &StreamConfig,
        limits: LimitsConfig,
        chain: Chain,
        reader: Arc<dyn StateReader>,
    ) -> StreamModule {
        let metrics = Arc::new(Metrics::default());
        let chain = Arc::new(chain);
        let reader_health = Arc::new(ops::ReaderHealth::default());
        let reader: Arc<dyn StateReader> = Arc::new(ops::WatchedReader {
            inner: reader,
            health: reader_health.clone(),
        });
        #[cfg(test)]
        let stall = Arc::new(Mutex::new(()));
        let (blocks_tx, blocks) = mpsc::channel(config.block_queue);
        let (commands_tx, commands) = mpsc::channel(config.subscribe_queue);
        let (unsubscribe_tx, unsubscribe) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (dropped_tx, dropped) = watch::channel(0);
        let window = Arc::new(ReplayWindow::new(
            config.replay_window,
            config.replay_memory,
            metrics.clone(),
        ));
        let (limits, all_closed) = Limits::new(limits, config.connect_rate, metrics.clone());
        let dispatcher = Dispatcher::run(
            chain.clone(),
            reader.clone(),
            metrics.clone(),
            window.clone(),
            tokio::runtime::Handle::current(),
            Inputs {
                blocks,
                commands,
                unsubscribe,
                dropped,
                shutdown: shutdown_rx,
                #[cfg(test)]
                stall: stall.clone(),
            },
        );
        let dispatcher_done = spawn_dispatcher(dispatcher);
        let rates = Arc::new(ops::Rates::default());
        tokio::spawn(
            rates
                .clone()
                .run(metrics.clone(), limits.clone(), shutdown.subscribe()),
        );
        let ops = ops::Ops {
            chain: chain.clone(),
            metrics: metrics.clone(),
            window: window.clone(),
            reader: reader_health,
            rates,
            commands: commands_tx.clone(),
            shutdown: shutdown.subscribe(),
            started: std::time::Instant::now(),
            max_lag: config.health_max_lag_blocks as i64,
        };
        StreamModule {
            handle: Handle {
                chain,
                limits,
                metrics: metrics.clone(),
                shutdown: shutdown.subscribe(),
                commands: commands_tx,
                unsubscribe: unsubscribe_tx,
                window,
                reader,
                resume_queue: config.resume_queue,
                next_id: Arc::new(AtomicU64::new(1)),
                auth: config.auth.as_ref().map(|a| {
                    Arc::new(auth::Auth::new(a).expect("checked when the config was parsed"))
                }),
            },
            hook: Arc::new(CommitHook {
                blocks: Handover::start(blocks_tx)
                    .expect("cannot start the stream handover thread"),
                dropped: dropped_tx,
                metrics,
            }),
            shutdown,
            dispatcher_done: Mutex::new(Some(dispatcher_done)),
            all_closed: Mutex::new(Some(all_closed)),
            ops,
            #[cfg(test)]
            stall,
        }
    }

    /// The listener to call after every commit.
    pub fn commit_listener(&self) -> Arc<dyn CommitListener> {
        self.hook.clone()
    }

    /// `juno.stream.v1.Query` for the node's gRPC server.
    pub fn grpc_service(&self) -> StreamServer {
        StreamService::server(self.handle.clone())
    }

    /// The WebSocket routes (`/ws`, `/ws/subscribe/...`) for the node's API server. The
    /// server must put `axum::extract::ConnectInfo<SocketAddr>` in each request's extensions
    /// (as `into_make_service_with_connect_info::<SocketAddr>()` does) to know clients.
    pub fn websocket_router(&self, config: &StreamConfig) -> axum::Router {
        ws::router(self.handle.clone(), config.websocket.clone())
    }

    /// The operator endpoints for the node's API port: `GET /health` (200 when the stream is
    /// caught up, 503 with the reason when the dispatcher lags by more than
    /// `health_max_lag_blocks`, state reads are failing, or the node is shutting down) and
    /// `GET /stats` (connections and messages per transport, subscriptions by type, the
    /// most-subscribed topics, the replay window, refusals by reason).
    pub fn operator_router(&self) -> axum::Router {
        ops::router(self.ops.clone())
    }

    /// Registers the module's `stream_*` metrics in the node's telemetry registry.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.handle.metrics.register(registry);
    }

    /// Ends every subscription (gRPC `UNAVAILABLE`, WebSocket close code 1001), refuses new
    /// ones, stops the dispatcher, and waits (at most `grace`) until every connection and
    /// stream has said goodbye: completion is signalled by the last connection ending, not
    /// polled.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.shutdown.send(true);
        self.handle.limits.close();
        let done = self.dispatcher_done.lock().expect("dispatcher lock").take();
        if let Some(done) = done {
            let _ = done.await;
        }
        let all_closed = self.all_closed.lock().expect("shutdown lock").take();
        if let Some(mut all_closed) = all_closed {
            let _ = tokio::time::timeout(grace, all_closed.recv()).await;
        }
    }

    /// The module's internals, for its own tests.
    #[cfg(test)]
    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stalls the dispatcher (before its next block) while the guard is held.
    #[cfg(test)]
    pub(crate) fn stall(&self) -> std::sync::MutexGuard<'_, ()> {
        self.stall.lock().expect("stall lock")
    }

    /// The module's metrics, for its own tests.
    #[cfg(test)]
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.handle.metrics
    }
}
