//! Connection and subscription limits shared by gRPC and WebSocket, from CometBFT's
//! `[rpc] max_open_connections` and `max_subscriptions_per_client` (0 = unlimited), per client:
//! the IP, or with token auth on the token's subject ([`ClientId`]). Admission
//! is a check-and-increment under one lock, so a burst of connects never over-admits; a
//! permit gives its slot back the moment it is dropped. New connections are also rate
//! limited per client (`[stream] connect_rate` / `connect_burst` in app.toml, GCRA).

use crate::config::ConnectRate;
use crate::metrics::{Metrics, Transport};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Who limits count: the client's IP, or with token auth on the token's `sub` (so that an
/// office behind one NAT is not one client, and one user on many IPs is).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// The TCP peer (or the `X-Forwarded-For` address of a trusted proxy).
    Ip(IpAddr),
    /// A verified token's `sub`.
    Subject(Arc<str>),
}

impl From<IpAddr> for ClientId {
    fn from(ip: IpAddr) -> Self {
        ClientId::Ip(ip)
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientId::Ip(ip) => ip.fmt(f),
            ClientId::Subject(sub) => write!(f, "{sub:?} (token subject)"),
        }
    }
}

/// The two limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Open WebSocket connections + gRPC streams; 0 = unlimited.
    pub max_open_connections: u32,
    /// Subscriptions per client IP; 0 = unlimited.
    pub max_subscriptions_per_client: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_open_connections: 900,
            max_subscriptions_per_client: 5,
        }
    }
}

/// A refused admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `max_open_connections` reached.
    #[error(
        "connection limit reached: {limit} open connections (max_open_connections in config.toml)"
    )]
    MaxConnections {
        /// The limit.
        limit: u32,
    },
    /// `max_subscriptions_per_client` reached for this client.
    #[error(
        "subscription limit reached: client {client} already holds {limit} subscriptions (max_subscriptions_per_client in config.toml)"
    )]
    MaxSubscriptions {
        /// The client.
        client: ClientId,
        /// The limit.
        limit: u32,
    },
    /// The client opened connections faster than `connect_rate` allows.
    #[error(
        "connect rate exceeded: client {client} may open {rate} new connections (connect_rate in app.toml); retry after {retry_after_secs} s"
    )]
    ConnectRate {
        /// The client.
        client: ClientId,
        /// The configured rate, as written (`120/min`).
        rate: String,
        /// Whole seconds until the next connection is admitted (at least 1).
        retry_after_secs: u64,
    },
    /// The node is shutting down: no new connections.
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl LimitError {
    /// `stream_connection_rejected` reason label.
    pub fn reason(&self) -> &'static str {
        match self {
            LimitError::MaxConnections { .. } => "max_connections",
            LimitError::MaxSubscriptions { .. } => "max_subscriptions",
            LimitError::ConnectRate { .. } => "connect_rate",
            LimitError::ShuttingDown => "unavailable",
        }
    }
}

#[derive(Default)]
struct Counts {
    open: u32,
    per_client: HashMap<ClientId, u32>,
    /// Last connection id handed out.
    next_id: u64,
}

/// Admission control.
pub(crate) struct Limits {
    config: LimitsConfig,
    counts: Mutex<Counts>,
    metrics: Arc<Metrics>,
    /// Cloned into every connection permit; taken on shutdown, so that the receiver held by
    /// the module learns, by the channel closing, that the last connection has ended.
    done: Mutex<Option<mpsc::Sender<()>>>,
    /// Per-client connect rate, when limited.
    rate: Option<(DefaultKeyedRateLimiter<ClientId>, String)>,
}

/// An open connection (or gRPC stream); released on drop.
pub(crate) struct ConnectionPermit {
    limits: Arc<Limits>,
    /// Names the connection in logs.
    id: u64,
    client: ClientId,
    transport: Transport,
    opened: Instant,
    _done: mpsc::Sender<()>,
}

/// One subscription slot of a client; released on drop.
pub(crate) struct SubscriptionPermit {
    limits: Arc<Limits>,
    client: ClientId,
    /// How the subscription's messages travel (counted by transport).
    pub transport: Transport,
}

impl Limits {
    /// New limits, and the receiver that closes once [`Limits::close`] was called and every
    /// connection permit is gone.
    pub fn new(
        config: LimitsConfig,
        rate: Option<ConnectRate>,
        metrics: Arc<Metrics>,
    ) -> (Arc<Limits>, mpsc::Receiver<()>) {
        let (done, all_closed) = mpsc::channel(1);
        let rate = rate.map(|r| {
            let one = NonZeroU32::MIN;
            let burst = NonZeroU32::new(r.burst).unwrap_or(one);
            let quota = Quota::with_period(r.period / r.count.max(1))
                .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
                .allow_burst(burst);
            let unit = match r.period.as_secs() {
                1 => "s",
                60 => "min",
                _ => "h",
            };
            (
                DefaultKeyedRateLimiter::keyed(quota),
                format!("{}/{unit} (burst {})", r.count, r.burst),
            )
        });
        let limits = Arc::new(Limits {
            config,
            counts: Mutex::default(),
            metrics,
            done: Mutex::new(Some(done)),
            rate,
        });
        (limits, all_closed)
    }

    /// Forgets clients whose rate state has fully recovered (bounds the limiter's memory).
    pub fn forget_idle_clients(&self) {
        if let Some((limiter, _)) = &self.rate {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Spends one of `client`'s connects.
    fn check_rate(&self, client: &ClientId) -> Result<(), LimitError> {
        let Some((limiter, rate)) = &self.rate else {
            return Ok(());
        };
        limiter.check_key(client).map_err(|not_until| {
            let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
            LimitError::ConnectRate {
                client: client.clone(),
                rate: rate.clone(),
                retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            }
        })
    }

    /// Admits no more connections (the node is shutting down).
    pub fn close(&self) {
        self.done.lock().expect("limits lock").take();
    }

    /// Admits a connection (gRPC: a stream) of `client` over `transport`.
    pub fn connect(
        self: &Arc<Self>,
        transport: Transport,
        client: impl Into<ClientId>,
    ) -> Result<ConnectionPermit, LimitError> {
        let client = client.into();
        let Some(done) = self.done.lock().expect("limits lock").clone() else {
            return Err(self.reject(LimitError::ShuttingDown));
        };
        self.check_rate(&client).map_err(|e| self.reject(e))?;
        let id = {
            let mut c = self.counts.lock().expect("limits lock");
            let limit = self.config.max_open_connections;
            if limit != 0 && c.open >= limit {
                drop(c);
                return Err(self.reject(LimitError::MaxConnections { limit }));
            }
            c.open += 1;
            c.next_id += 1;
            c.next_id
        };
        self.metrics.connections.inc();
        self.metrics.transport_connections(transport).inc();
        self.metrics.transport_connections_opened(transport).inc();
        tracing::debug!(
            connection = id,
            transport = transport.label(),
            client = %client,
            "connection opened"
        );
        Ok(ConnectionPermit {
            limits: self.clone(),
            id,
            client,
            transport,
            opened: Instant::now(),
            _done: done,
        })
    }

    /// Admits one more subscription for `client`, served over `transport`.
    pub fn subscribe(
        self: &Arc<Self>,
        client: impl Into<ClientId>,
        transport: Transport,
    ) -> Result<SubscriptionPermit, LimitError> {
        let client = client.into();
        let mut c = self.counts.lock().expect("limits lock");
        let limit = self.config.max_subscriptions_per_client;
        let n = c.per_client.entry(client.clone()).or_insert(0);
        if limit != 0 && *n >= limit {
            drop(c);
            return Err(self.reject(LimitError::MaxSubscriptions { client, limit }));
        }
        *n += 1;
        Ok(SubscriptionPermit {
            limits: self.clone(),
            client,
            transport,
        })
    }

    /// Open connections now.
    #[cfg(test)]
    pub fn open_connections(&self) -> u32 {
        self.counts.lock().expect("limits lock").open
    }

    fn reject(&self, e: LimitError) -> LimitError {
        self.metrics.rejected(e.reason()).inc();
        e
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.limits.counts.lock().expect("limits lock").open -= 1;
        self.limits.metrics.connections.dec();
        self.limits
            .metrics
            .transport_connections(self.transport)
            .dec();
        let lived = self.opened.elapsed().as_secs_f64();
        self.limits.metrics.connection_duration.observe(lived);
        tracing::debug!(
            connection = self.id,
            transport = self.transport.label(),
            client = %self.client,
            seconds = lived,
            "connection closed"
        );
    }
}

impl Drop for SubscriptionPermit {
    fn drop(&mut self) {
        let mut c = self.limits.counts.lock().expect("limits lock");
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[test]
    fn limits_admit_exactly_and_release_on_drop() {
        let m = Arc::new(Metrics::default());
        let (l, _) = Limits::new(
            LimitsConfig {
                max_open_connections: 2,
                max_subscriptions_per_client: 1,
            },
            None,
            m.clone(),
        );
        let a = l.connect(Transport::WebSocket, local()).unwrap();
        let _b = l.connect(Transport::WebSocket, local()).unwrap();
        assert!(matches!(
            l.connect(Transport::WebSocket, local()),
            Err(LimitError::MaxConnections { limit: 2 })
        ));
        drop(a);
        let _c = l.connect(Transport::WebSocket, local()).unwrap();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let s = l.subscribe(ip, Transport::WebSocket).unwrap();
        assert!(matches!(
            l.subscribe(ip, Transport::WebSocket),
            Err(LimitError::MaxSubscriptions { .. })
        ));
        assert!(
            l.subscribe("10.0.0.2".parse::<IpAddr>().unwrap(), Transport::WebSocket)
                .is_ok()
        );
        drop(s);
        assert!(l.subscribe(ip, Transport::WebSocket).is_ok());
        assert_eq!(m.rejected("max_connections").get(), 1);
        assert_eq!(m.rejected("max_subscriptions").get(), 1);
        assert_eq!(m.connections.get(), 2);
    }

    #[tokio::test]
    async fn closing_signals_when_the_last_connection_ends() {
        let (l, mut all_closed) =
            Limits::new(LimitsConfig::default(), None, Arc::new(Metrics::default()));
        let a = l.connect(Transport::WebSocket, local()).unwrap();
        l.close();
        assert!(matches!(
            l.connect(Transport::WebSocket, local()),
            Err(LimitError::ShuttingDown)
        ));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), all_closed.recv())
                .await
                .is_err(),
            "a connection is still open"
        );
        drop(a);
        assert_eq!(all_closed.recv().await, None);
    }

    #[test]
    fn zero_means_unlimited() {
        let (l, _) = Limits::new(
            LimitsConfig {
                max_open_connections: 0,
                max_subscriptions_per_client: 0,
            },
            None,
            Arc::new(Metrics::default()),
        );
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..1000)
            .map(|_| {
                (
                    l.connect(Transport::WebSocket, local()).unwrap(),
                    l.subscribe(ip, Transport::WebSocket).unwrap(),
                )
            })
            .collect();
        assert_eq!(l.open_connections(), 1000);
        drop(held);
        assert_eq!(l.open_connections(), 0);
    }

    #[test]
    fn concurrent_connects_never_over_admit() {
        let (l, _) = Limits::new(
            LimitsConfig {
                max_open_connections: 50,
                max_subscriptions_per_client: 0,
            },
            None,
            Arc::new(Metrics::default()),
        );
        let admitted: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..200)
                .map(|_| s.spawn(|| l.connect(Transport::WebSocket, local()).ok()))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(admitted.len(), 50);
    }
}
