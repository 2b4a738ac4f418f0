//! `stream-module`: real-time streams of committed balances, delegations and unbonding
//! delegations, compiled into a Cosmos-style node.
//!
//! The node gives the module three things and gets three back:
//! - it hands over a [`StateReader`] (reads of committed state at a height; a node with
//!   direct store access implements [`KvReader`] and wraps it in [`DecodingReader`]), the chain's
//!   prefixes and bond denom ([`Chain`]), the `[stream]` table of `app.toml`
//!   ([`StreamConfig`]) and CometBFT's `[rpc]` limits ([`LimitsConfig`]);
//! - it gets a [`CommitListener`] for its commit path (O(1): one `try_send` of a pointer to
//!   a bounded queue; it never blocks or fails the node), the tonic service
//!   `juno.stream.v1.Query` for its gRPC server, the WebSocket routes for its API port, and
//!   the module's [`Metrics`] to register in its telemetry.
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
//! // 4. on node shutdown: gRPC streams end with UNAVAILABLE, WebSockets with close code 1001
//! module.shutdown(std::time::Duration::from_secs(10)).await;
//! # let _ = (listener, service, descriptors, ws_routes); Ok(()) }
//! ```
//!
//! Inside: the commit hook queues whole blocks; the [`dispatcher`] decodes each block, finds
//! the affected subscriptions through its indexes (by account, by validator), computes each
//! key's new value once and puts it into every subscriber's [`outbox`] (latest value only, so
//! a slow client skips heights instead of costing memory). Subscriptions are registered
//! between blocks with a snapshot at the last dispatched height: first message = value at a
//! committed height, then one message per later block in which the value changed.
#![warn(missing_docs)]

pub mod chain;
pub mod config;
pub mod dispatcher;
pub mod grpc;
pub mod handle;
pub mod json;
pub mod key;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod reader;
pub mod topic;
pub mod value;
pub mod ws;

pub use chain::{Chain, RequestError};
pub use config::{ConfigError, StreamConfig};
pub use grpc::StreamService;
pub use handle::{Handle, Subscription};
pub use key::{SubscriptionKey, SubscriptionKind};
pub use limits::{LimitError, Limits, LimitsConfig};
pub use metrics::Metrics;
pub use reader::{DecodingReader, KvReader, ReadError, StateReader};
pub use stream_abci_listener::{BlockCommit, CommitListener};

use dispatcher::{Dispatcher, Inputs};
use std::sync::{Arc, Mutex};
use stream_proto::juno::stream::v1::query_server::QueryServer;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Encoded descriptors of `juno.stream.v1` for the node's server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = stream_proto::STREAM_FILE_DESCRIPTOR_SET;

/// The commit hook: hands each committed block to the dispatcher's bounded queue.
struct CommitHook {
    blocks: mpsc::Sender<Arc<BlockCommit>>,
    /// Highest dropped height, so the dispatcher catches up even if no block follows.
    dropped: watch::Sender<i64>,
    metrics: Arc<Metrics>,
}

impl CommitListener for CommitHook {
    fn on_commit(&self, commit: Arc<BlockCommit>) {
        match self.blocks.try_send(commit) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(c)) => {
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
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The running module.
pub struct StreamModule {
    handle: Handle,
    hook: Arc<CommitHook>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl StreamModule {
    /// Starts the dispatcher on the current tokio runtime.
    pub fn start(
        config: &StreamConfig,
        limits: LimitsConfig,
        chain: Chain,
        reader: Arc<dyn StateReader>,
    ) -> StreamModule {
        let metrics = Arc::new(Metrics::default());
        let chain = Arc::new(chain);
        let (blocks_tx, blocks) = mpsc::channel(config.block_queue);
        let (subscribe_tx, subscribe) = mpsc::channel(config.subscribe_queue);
        let (unsubscribe_tx, unsubscribe) = mpsc::unbounded_channel();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (dropped_tx, dropped) = watch::channel(0);
        let dispatcher = Dispatcher::new(chain.clone(), reader, metrics.clone());
        let task = tokio::spawn(dispatcher.run(Inputs {
            blocks,
            subscribe,
            unsubscribe,
            dropped,
            shutdown: shutdown_rx,
        }));
        StreamModule {
            handle: Handle {
                chain,
                limits: Limits::new(limits, metrics.clone()),
                metrics: metrics.clone(),
                shutdown: shutdown.subscribe(),
                subscribe: subscribe_tx,
                unsubscribe: unsubscribe_tx,
            },
            hook: Arc::new(CommitHook {
                blocks: blocks_tx,
                dropped: dropped_tx,
                metrics,
            }),
            shutdown,
            task: Mutex::new(Some(task)),
        }
    }

    /// The listener to call after every commit.
    pub fn commit_listener(&self) -> Arc<dyn CommitListener> {
        self.hook.clone()
    }

    /// `juno.stream.v1.Query` for the node's gRPC server.
    pub fn grpc_service(&self) -> QueryServer<StreamService> {
        StreamService::server(self.handle.clone())
    }

    /// Access for transports (WebSocket) and tests.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The module's metrics, to register in the node's telemetry.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.handle.metrics
    }

    /// Ends every subscription (gRPC `UNAVAILABLE`, WebSocket close code 1001), stops the
    /// dispatcher, and waits (up to `grace`) until every connection has said goodbye.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        let _ = self.shutdown.send(true);
        let task = self.task.lock().expect("task lock").take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.handle.limits.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// The WebSocket routes (`/ws`, `/ws/subscribe/...`) for the node's API server.
    pub fn websocket_router(&self, config: &StreamConfig) -> axum::Router {
        ws::router(self.handle.clone(), config.websocket.clone())
    }
}
