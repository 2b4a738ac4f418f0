//! How a client connects: endpoints, transport, backoff, keepalive and stale detection.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::ConfigError;
use crate::token::{TokenProvider, TokenSource};

/// Which wire a client speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// `juno.stream.v1.Query` server streaming on the node's gRPC port; endpoints are
    /// `http://HOST:9090`.
    #[default]
    Grpc,
    /// The WebSocket path routes on the node's API port (`/ws/subscribe/...`); endpoints are
    /// `ws://HOST:1317`.
    WebSocket,
}

/// Everything a [`crate::StreamClient`] needs. Build it with [`ClientConfig::new`] and
/// adjust the public fields.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Endpoints, tried in order: a subscription stays on the endpoint that serves it and
    /// moves to the next one (round robin) when an attempt fails. Every node of a chain holds
    /// the same state at the same height, so a stream resumes on any of them.
    pub endpoints: Vec<String>,
    /// gRPC (default) or WebSocket.
    pub transport: Transport,
    /// Delays between consecutive failed attempts.
    pub backoff: Backoff,
    /// Longest time to open a stream: connect, handshake and the node's answer to the
    /// subscription (default 10 s). An attempt that takes longer fails.
    pub connect_timeout: Duration,
    /// Transport keepalive: after this long without anything received, the client pings the
    /// node (an HTTP/2 PING on gRPC, a WebSocket ping) (default 15 s).
    pub keepalive_interval: Duration,
    /// A keepalive ping not answered within this time marks the connection dead, and the
    /// subscription reconnects (default 10 s). A stalled connection (open, but nothing
    /// moving) is thus found within `keepalive_interval + keepalive_timeout`.
    pub keepalive_timeout: Duration,
    /// Optional application-level idle limit: no update for this long -> reconnect (and
    /// resume, so nothing is lost). Off by default: a healthy stream on a quiet account
    /// legitimately carries no update for hours, and the keepalive already finds dead
    /// connections. Set it only when updates are known to come at least that often.
    pub idle_timeout: Option<Duration>,
    /// Give up after this many consecutive failed attempts ([`crate::Error::GaveUp`]).
    /// `None` (default): keep trying forever.
    pub max_attempts: Option<u32>,
    /// Capacity of the queue between the connection task and the consumer (default 64).
    /// A consumer that falls further behind slows the reading of the stream; the node then
    /// keeps only the newest value of a fresh stream, or ends a resumed one (which the client
    /// resumes), so memory stays bounded.
    pub queue: usize,
    /// The JWT for a node with token auth (`[stream.auth]`); `None` (default): no token.
    /// Set it with [`ClientConfig::token`] or [`ClientConfig::token_provider`].
    pub token: Option<TokenSource>,
}

impl ClientConfig {
    /// Defaults (gRPC, 1 s to 60 s backoff with 20% jitter, 15 s + 10 s keepalive, no idle
    /// limit, unlimited attempts) for `endpoints`.
    pub fn new<I, S>(endpoints: I) -> ClientConfig
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ClientConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            transport: Transport::Grpc,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            keepalive_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_attempts: None,
            queue: 64,
            token: None,
        }
    }

    /// Presents `token` (a JWT, without `Bearer `) on every connect: gRPC metadata
    /// `authorization: Bearer <token>`, or the same `Authorization` header on the WebSocket
    /// upgrade.
    ///
    /// A fixed token stops working when it expires: the node ends the stream
    /// (`UNAUTHENTICATED` / close 4001) and refuses every reconnect (401), so the
    /// subscription keeps backing off until [`ClientConfig::max_attempts`]. For anything
    /// longer-lived than the token, use [`ClientConfig::token_provider`].
    pub fn token(mut self, token: impl Into<String>) -> ClientConfig {
        self.token = Some(TokenSource::fixed(token));
        self
    }

    /// Asks `provider` for a token before every connect and reconnect, and presents it as
    /// [`ClientConfig::token`] does.
    ///
    /// **Expiry.** When a token expires the node ends the stream (gRPC `UNAUTHENTICATED`,
    /// WebSocket close 4001); a refused connect is HTTP 401 / `UNAUTHENTICATED` too. The
    /// client treats all of these like a cut connection: it backs off, asks the provider for
    /// a new token and resumes from the height of the last value it delivered, so nothing is
    /// missed and nothing repeats. A provider that mints (or fetches) a fresh token per call
    /// keeps a subscription alive across any number of expiries.
    ///
    /// **Refusal.** A token whose `stream` claim does not allow the subscription (gRPC
    /// `PERMISSION_DENIED`, HTTP 403) ends it at once with [`crate::Error::PermissionDenied`]
    /// and [`crate::ConnectionState::Failed`]: the same token would be refused again.
    ///
    /// A provider error fails that attempt like a refused connection (backoff, then ask
    /// again). Each call has [`ClientConfig::connect_timeout`] to answer.
    ///
    /// ```no_run
    /// # use stream_client::ClientConfig;
    /// # fn mint() -> String { todo!() }
    /// let config = ClientConfig::new(["http://127.0.0.1:9090"])
    ///     .token_provider(|| async { Ok::<_, std::convert::Infallible>(mint()) });
    /// ```
    pub fn token_provider(mut self, provider: impl TokenProvider) -> ClientConfig {
        self.token = Some(TokenSource::provider(provider));
        self
    }

    /// The same, on WebSocket.
    pub fn websocket(mut self) -> ClientConfig {
        self.transport = Transport::WebSocket;
        self
    }

    /// Checks the endpoints against the transport.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.endpoints.is_empty() {
            return Err(ConfigError::NoEndpoints);
        }
        let schemes: &[&str] = match self.transport {
            Transport::Grpc => &["http://", "https://"],
            Transport::WebSocket => &["ws://", "wss://"],
        };
        for endpoint in &self.endpoints {
            if !schemes.iter().any(|s| endpoint.starts_with(s)) {
                return Err(ConfigError::BadEndpoint {
                    endpoint: endpoint.clone(),
                    reason: format!("expected a URL starting with {}", schemes.join(" or ")),
                });
            }
            if self.transport == Transport::Grpc {
                tonic::transport::Endpoint::from_shared(endpoint.clone()).map_err(|e| {
                    ConfigError::BadEndpoint {
                        endpoint: endpoint.clone(),
                        reason: e.to_string(),
                    }
                })?;
            }
        }
        Ok(())
    }
}
