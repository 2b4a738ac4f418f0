//! Slow and half-open connections on the node's two ports: every accepted connection must
//! complete its handshake (HTTP/1 request headers on the API port, the HTTP/2 preface and
//! SETTINGS on the gRPC port) within [`HANDSHAKE_TIMEOUT`], and a client IP may hold at most
//! [`MAX_PENDING_PER_CLIENT`] connections that have not done so yet. A slowloris client
//! therefore holds a bounded number of sockets for a bounded time, and everyone else is
//! served. Accept errors (the descriptor limit reached) pause accepting briefly instead of
//! spinning.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// Time a connection has to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections per client IP and port that may be waiting for their handshake at once.
pub const MAX_PENDING_PER_CLIENT: usize = 256;
/// Pause after an accept error such as "too many open files", so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// The HTTP/2 client preface (24 bytes) and the header of its SETTINGS frame (9 bytes).
const H2_HANDSHAKE_BYTES: usize = 24 + 9;

/// Which port a connection came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// The gRPC port.
    Grpc,
    /// The API port.
    Api,
}

impl Port {
    fn label(self) -> &'static str {
        match self {
            Port::Grpc => "grpc",
            Port::Api => "api",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    port: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabel {
    port: &'static str,
}

/// Admission of new connections; cheap to clone.
#[derive(Clone, Default)]
pub struct ConnectionGuard {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<HashMap<(Port, IpAddr), usize>>,
    refused: Family<Refusal, Counter>,
    waiting: Family<PortLabel, Gauge>,
}

/// A connection that has not completed its handshake; frees its place on drop.
pub struct Pending {
    inner: Arc<Inner>,
    port: Port,
    client: IpAddr,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut pending = self.inner.pending.lock().expect("guard lock");
        if let Some(n) = pending.get_mut(&(self.port, self.client)) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&(self.port, self.client));
            }
        }
        drop(pending);
        self.inner.waiting_gauge(self.port).dec();
    }
}

impl Inner {
    fn waiting_gauge(&self, port: Port) -> Gauge {
        self.waiting
            .get_or_create(&PortLabel { port: port.label() })
            .clone()
    }

    fn refused(&self, port: Port, reason: &'static str) {
        self.refused
            .get_or_create(&Refusal {
                port: port.label(),
                reason,
            })
            .inc();
    }
}

impl ConnectionGuard {
    /// Registers `streamd_connections_refused{port,reason}` and
    /// `streamd_connections_handshaking{port}`.
    pub fn register(&self, registry: &mut Registry) {
        for port in [Port::Grpc, Port::Api] {
            for reason in ["pending_per_client", "handshake_timeout"] {
                let _ = self.inner.refused.get_or_create(&Refusal {
                    port: port.label(),
                    reason,
                });
            }
            let _ = self.inner.waiting_gauge(port);
        }
        registry.register(
            "streamd_connections_refused",
            "Connections closed before their first request: pending_per_client (the client IP \
             already had too many connections waiting for their handshake) or \
             handshake_timeout",
            self.inner.refused.clone(),
        );
        registry.register(
            "streamd_connections_handshaking",
            "Accepted connections that have not completed their handshake yet",
            self.inner.waiting.clone(),
        );
    }

    /// Admits a connection from `client`, or `None` (counted) if that client already has
    /// [`MAX_PENDING_PER_CLIENT`] connections waiting for their handshake.
    pub fn admit(&self, port: Port, client: IpAddr) -> Option<Pending> {
        let mut pending = self.inner.pending.lock().expect("guard lock");
        let n = pending.entry((port, client)).or_default();
        if *n >= MAX_PENDING_PER_CLIENT {
            drop(pending);
            self.inner.refused(port, "pending_per_client");
            return None;
        }
        *n += 1;
        drop(pending);
        self.inner.waiting_gauge(port).inc();
        Some(Pending {
            inner: self.inner.clone(),
            port,
            client,
        })
    }

    /// Counts a connection closed for not completing its handshake in time.
    pub fn timed_out(&self, port: Port) {
        self.inner.refused(port, "handshake_timeout");
    }

    /// The next admitted connection on `listener`. Accept errors (descriptor limit reached,
    /// connection aborted) are logged and retried after a short pause.
    pub async fn accept(&self, listener: &TcpListener, port: Port) -> (TcpStream, Pending) {
        loop {
            match listener.accept().await {
                Ok((tcp, peer)) => {
                    if let Some(pending) = self.admit(port, peer.ip()) {
                        return (tcp, pending);
                    }
                }
                Err(e) => {
                    tracing::warn!(port = port.label(), error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    }

    /// The gRPC port's connections for tonic: each must send the HTTP/2 preface and its
    /// SETTINGS within [`HANDSHAKE_TIMEOUT`].
    pub fn grpc_incoming(
        self,
        listener: TcpListener,
    ) -> impl futures_util::Stream<Item = io::Result<Handshaking>> + Send + 'static {
        futures_util::stream::unfold((self, listener), |(guard, listener)| async move {
            let (tcp, pending) = guard.accept(&listener, Port::Grpc).await;
            let _ = tcp.set_nodelay(true);
            let conn = Handshaking {
                inner: tcp,
                seen: 0,
                pending: Some(pending),
                deadline: Some(Box::pin(tokio::time::sleep(HANDSHAKE_TIMEOUT))),
                guard: guard.clone(),
            };
            Some((Ok(conn), (guard, listener)))
        })
    }
}

/// A gRPC connection that must send its HTTP/2 preface and SETTINGS header before its
/// deadline; after that it is an ordinary TCP stream.
pub struct Handshaking {
    inner: TcpStream,
    seen: usize,
    pending: Option<Pending>,
    deadline: Option<Pin<Box<Sleep>>>,
    guard: ConnectionGuard,
}

impl AsyncRead for Handshaking {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(deadline) = &mut this.deadline
            && deadline.as_mut().poll(cx).is_ready()
        {
            this.deadline = None;
            this.pending = None;
            this.guard.timed_out(Port::Grpc);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 handshake within the handshake timeout",
            )));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.deadline.is_some() && polled.is_ready() {
            this.seen += buf.filled().len() - before;
            if this.seen >= H2_HANDSHAKE_BYTES {
                this.deadline = None;
                this.pending = None;
            }
        }
        polled
    }
}

impl AsyncWrite for Handshaking {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for Handshaking {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// Raises this process's open-file soft limit to its hard limit (as Go does at startup), so
/// that the descriptor limit, not an arbitrary 1,024 default, bounds connections.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_share_of_pending_connections_per_port() {
        let guard = ConnectionGuard::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<Pending> = (0..MAX_PENDING_PER_CLIENT)
            .map(|_| guard.admit(Port::Api, a).expect("within the share"))
            .collect();
        assert!(guard.admit(Port::Api, a).is_none(), "over the share");
        assert!(
            guard.admit(Port::Api, b).is_some(),
            "other clients are served"
        );
        assert!(
            guard.admit(Port::Grpc, a).is_some(),
            "the other port has its own share"
        );
        drop(held);
        assert!(
            guard.admit(Port::Api, a).is_some(),
            "places are freed on drop"
        );
        assert!(
            guard.inner.pending.lock().unwrap().is_empty(),
            "no entry outlives its connections"
        );
    }
}
