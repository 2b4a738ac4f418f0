//! Client for the `juno.stream.v1` streams of a `streamd` node (or any node with the stream
//! module): one typed [`futures_util::Stream`] per stream type, which never loses a change.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use stream_client::{ClientConfig, StreamClient, UpdateKind};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = StreamClient::new(ClientConfig::new([
//!     "http://127.0.0.1:9090",
//!     "http://127.0.0.1:9190", // another node of the same chain: failover
//! ]))?;
//! let mut balance = client.balance("juno1ccwqzcnvkdvxp7yql57gyxyy853vz4s36rn0am", "ujuno");
//! let mut state = balance.state(); // connecting / live / reconnecting(n) / failed
//! while let Some(update) = balance.next().await {
//!     let update = update?; // an error ends the stream: the request is invalid, or gave up
//!     match update.kind {
//!         UpdateKind::Snapshot => println!("{}: {} (snapshot)", update.height, update.value.amount),
//!         UpdateKind::Change => println!("{}: {}", update.height, update.value.amount),
//!         UpdateKind::Resynced { last_height } => println!(
//!             "{}: {} (resynced: changes after {last_height} were no longer available)",
//!             update.height, update.value.amount
//!         ),
//!     }
//!     println!("connection: {}", *state.borrow_and_update());
//! }
//! # Ok(()) }
//! ```
//!
//! The runnable version prints one line per update:
//! `cargo run -p stream-client --example watch_balance -- --endpoint http://127.0.0.1:9090 <address>`.
//!
//! # What a consumer can rely on
//!
//! - **Snapshot first.** The first item is the value at a committed height
//!   ([`UpdateKind::Snapshot`]).
//! - **Every change exactly once, across reconnects.** Each later item is the value at a
//!   later height at which it changed ([`UpdateKind::Change`]); heights strictly increase.
//!   When a stream is lost (connection cut, node restarted or shutting down, stalled
//!   connection, failover to another endpoint), the client reconnects and resumes with
//!   `since_height` = the height of the last item it delivered: the node replays every change
//!   after it, so nothing is missed and nothing repeats.
//! - **Never a silent skip.** If the node can no longer resume from that height (gRPC
//!   `OUT_OF_RANGE`, WebSocket HTTP 410 or close 4410: outside its replay window, 10,000
//!   blocks by default), the client subscribes afresh and delivers the new snapshot as
//!   [`UpdateKind::Resynced`], naming the last height delivered before it. A resumed stream
//!   that the node ends because the client fell behind (also `OUT_OF_RANGE`, after values
//!   were delivered) is simply resumed again from the new last height.
//! - **One caveat, before the first reconnect.** The first stream of a subscription is a
//!   fresh one, which the node serves in "latest" mode: a consumer that reads slower than
//!   blocks arrive may skip intermediate heights there (it always gets the newest value).
//!   Every stream after a reconnect is a resumed one, which delivers every height.
//! - **Errors end the stream.** Only three: [`Error::InvalidRequest`] (`INVALID_ARGUMENT` /
//!   HTTP 400: a bad address or denom; never retried), [`Error::PermissionDenied`]
//!   (`PERMISSION_DENIED` / HTTP 403: the token does not allow this stream) and
//!   [`Error::GaveUp`] (after [`ClientConfig::max_attempts`] consecutive failures; unlimited
//!   by default). A `since_height` above a node's latest height (a lagging failover node) is
//!   retried.
//!
//! # Reconnecting
//!
//! Consecutive failed attempts wait `1 s, 2 s, 4 s, ... 60 s` (x2 each, capped), each
//! +-20% ([`Backoff`], configurable). The count starts again once a stream delivers a value
//! or stays open 30 s. A failed attempt moves to the next endpoint (round robin); a
//! subscription stays on an endpoint that serves it. `UNAVAILABLE` (shutdown) and
//! `RESOURCE_EXHAUSTED` / 429 / 503 (limits) back off the same way.
//!
//! # Stale connections
//!
//! - **gRPC**: the stream service sends nothing on a quiet stream, so staleness is the
//!   transport's: after [`ClientConfig::keepalive_interval`] (15 s) without any HTTP/2 frame
//!   the client sends an HTTP/2 PING, and a PING not acknowledged within
//!   [`ClientConfig::keepalive_timeout`] (10 s) closes the connection; the stream fails and
//!   resumes. A stalled connection (open, nothing moving) is found within 25 s by default.
//! - **WebSocket**: anything received (an update, the node's ping every 30 s, a pong) is
//!   life. After `keepalive_interval` of silence the client pings; nothing within
//!   `keepalive_timeout` after that -> stale -> reconnect.
//! - **Idle** ([`ClientConfig::idle_timeout`], off by default): no *update* for that long ->
//!   reconnect. A quiet account legitimately gets no update for hours, so leave it off
//!   unless updates are known to be frequent; a reconnect is lossless anyway (it resumes).
//!
//! # Token auth
//!
//! For a node with `[stream.auth]`, give the client a token provider
//! ([`ClientConfig::token_provider`], or [`ClientConfig::token`] for one fixed token). It is
//! asked before every connect and reconnect; the token goes out as gRPC metadata
//! `authorization: Bearer <JWT>`, or as the same `Authorization` header on the WebSocket
//! upgrade. A stream whose token expires (gRPC `UNAUTHENTICATED`, WebSocket close 4001), and
//! a connect refused with 401, is reconnected with backoff and a new token, resuming from the
//! last height delivered: no change is lost. A token whose `stream` claim does not allow the
//! subscription fails it ([`Error::PermissionDenied`]).
//!
//! ```no_run
//! # use stream_client::{ClientConfig, StreamClient};
//! # fn mint_token() -> String { todo!() }
//! let client = StreamClient::new(
//!     ClientConfig::new(["http://127.0.0.1:9090"])
//!         .token_provider(|| async { Ok::<_, std::convert::Infallible>(mint_token()) }),
//! )?;
//! # Ok::<_, stream_client::ConfigError>(())
//! ```
//!
//! # Transports
//!
//! [`Transport::Grpc`] (default; endpoints `http://HOST:9090`) or [`Transport::WebSocket`]
//! (path routes on the API port; endpoints `ws://HOST:1317`). Both yield the same Rust
//! types: the Cosmos SDK's protobuf messages (`shares` in the gRPC wire form, the value x
//! 10^18 as an integer string). Each subscription holds its own connection.

mod attempt;
mod backoff;
mod config;
mod driver;
mod error;
mod grpc;
mod state;
mod token;
mod topic;
mod update;
mod ws;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{mpsc, watch};

pub use backoff::Backoff;
pub use config::{ClientConfig, Transport};
pub use error::{ConfigError, Error};
pub use state::ConnectionState;
pub use token::{TokenError, TokenProvider, TokenSource};
pub use update::{Update, UpdateKind};

/// The Cosmos SDK message types the values are made of.
pub use stream_proto::cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
pub use stream_proto::cosmos_sdk_proto::cosmos::staking::v1beta1::{
    DelegationResponse, UnbondingDelegation,
};

use topic::Topic;

/// Opens subscriptions; cheap to clone. Each subscription runs as its own task on the
/// current tokio runtime, so create them inside one.
#[derive(Clone, Debug)]
pub struct StreamClient {
    config: Arc<ClientConfig>,
}

impl StreamClient {
    /// A client for `config`; fails if it has no endpoint or one that is not a URL of its
    /// transport.
    pub fn new(config: ClientConfig) -> Result<StreamClient, ConfigError> {
        config.validate()?;
        Ok(StreamClient {
            config: Arc::new(config),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The balance of one denom of an account (amount "0" when absent).
    pub fn balance(
        &self,
        address: impl Into<String>,
        denom: impl Into<String>,
    ) -> Subscription<Coin> {
        self.subscribe(topic::Balance {
            address: address.into(),
            denom: denom.into(),
        })
    }

    /// All balances of an account, sorted by denom.
    pub fn balances(&self, address: impl Into<String>) -> Subscription<Vec<Coin>> {
        self.subscribe(topic::Balances {
            address: address.into(),
        })
    }

    /// One delegation (`None` when absent or removed), with its value in tokens.
    pub fn delegation(
        &self,
        delegator: impl Into<String>,
        validator: impl Into<String>,
    ) -> Subscription<Option<DelegationResponse>> {
        self.subscribe(topic::OneDelegation {
            delegator: delegator.into(),
            validator: validator.into(),
        })
    }

    /// All delegations of a delegator, with their values in tokens.
    pub fn delegations(
        &self,
        delegator: impl Into<String>,
    ) -> Subscription<Vec<DelegationResponse>> {
        self.subscribe(topic::Delegations {
            delegator: delegator.into(),
        })
    }

    /// One unbonding delegation (`None` when absent or completed).
    pub fn unbonding_delegation(
        &self,
        delegator: impl Into<String>,
        validator: impl Into<String>,
    ) -> Subscription<Option<UnbondingDelegation>> {
        self.subscribe(topic::OneUnbonding {
            delegator: delegator.into(),
            validator: validator.into(),
        })
    }

    /// All unbonding delegations of a delegator.
    pub fn unbonding_delegations(
        &self,
        delegator: impl Into<String>,
    ) -> Subscription<Vec<UnbondingDelegation>> {
        self.subscribe(topic::Unbondings {
            delegator: delegator.into(),
        })
    }

    fn subscribe<T: Topic>(&self, topic: T) -> Subscription<T::Value> {
        let (tx, rx) = mpsc::channel(self.config.queue.max(1));
        let (state_tx, state_rx) = watch::channel(ConnectionState::Connecting);
        let task = tokio::spawn(driver::run(
            Arc::new(topic),
            self.config.clone(),
            tx,
            state_tx,
        ));
        Subscription {
            rx,
            state: state_rx,
            task,
        }
    }
}

/// One subscription: a [`Stream`] of [`Update`]s in height order, plus its connection state.
/// Dropping it closes its connection.
#[derive(Debug)]
pub struct Subscription<T> {
    rx: mpsc::Receiver<Result<Update<T>, Error>>,
    state: watch::Receiver<ConnectionState>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> Subscription<T> {
    /// A watch of the connection state: `Connecting`, `Live { endpoint }`,
    /// `Reconnecting { attempt }`, `Failed(why)`.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<Update<T>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
