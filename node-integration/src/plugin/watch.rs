//! How the plugin learns that its host died: the host starts it through `sh -c`, and a
//! shell that does not exec outlives a killed node, so the parent pid says nothing. The host
//! holds the read ends of the plugin's stdout and stderr pipes: when they close, poll reports
//! POLLERR/POLLHUP on our ends (DESIGN.md section 9). The host's gRPC connection is the
//! second witness ([`HostConnections`]), used when stdout or stderr is not a pipe: a live
//! Go host closes its connection too when no block comes for 30 minutes (grpc-go's default
//! idle timeout, e.g. a halted chain), so it is no proof of death while the pipes can say.

use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How often the pipe watch wakes up even without an event (it never needs to: poll
/// returns on the hang-up; this only bounds a missed wakeup).
const POLL_INTERVAL_MS: i32 = 200;

/// `true` for a pipe or socket: a file or a terminal never reports the host's death.
fn is_pipe_or_socket(fd: RawFd) -> bool {
    // SAFETY: fstat writes into the zeroed struct we own; an invalid fd only fails the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    let kind = st.st_mode & libc::S_IFMT;
    kind == libc::S_IFIFO || kind == libc::S_IFSOCK
}

/// Watches stdout and stderr on a thread of its own and sends `true` on `gone` when the
/// reading end of either closes. `false` when they are not both pipes or sockets (a file, a
/// terminal): then nothing is watched and the host's connection must tell.
pub fn watch_pipes(gone: watch::Sender<bool>) -> bool {
    let fds: Vec<RawFd> = [1, 2]
        .into_iter()
        .filter(|fd| is_pipe_or_socket(*fd))
        .collect();
    if fds.len() < 2 {
        tracing::debug!(
            "stdout or stderr is not a pipe; the host's death is seen on its connection"
        );
        return false;
    }
    let spawned = std::thread::Builder::new()
        .name("host-pipes".into())
        .spawn(move || {
            let mut polls: Vec<libc::pollfd> = fds
                .iter()
                .map(|&fd| libc::pollfd {
                    fd,
                    events: 0, // POLLERR and POLLHUP are always reported
                    revents: 0,
                })
                .collect();
            loop {
                // SAFETY: `polls` is a live, correctly sized array of pollfd.
                let n = unsafe {
                    libc::poll(
                        polls.as_mut_ptr(),
                        polls.len() as libc::nfds_t,
                        POLL_INTERVAL_MS,
                    )
                };
                if n > 0
                    && polls
                        .iter()
                        .any(|p| p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0)
                {
                    tracing::info!("the host closed our stdout/stderr pipes: it is gone");
                    let _ = gone.send(true);
                    return;
                }
            }
        });
    match spawned {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the host's pipes");
            false
        }
    }
}

/// Counts the host's open connections to the plugin's gRPC port: once one has opened, the
/// port going without any for [`CONNECTION_GRACE`] means the host is gone.
#[derive(Clone, Default)]
pub struct HostConnections {
    open: Arc<AtomicUsize>,
    /// Whether any connection has opened: a watch started later still knows.
    ever: Arc<std::sync::atomic::AtomicBool>,
    changed: Arc<tokio::sync::Notify>,
}

/// How long the plugin port may go without a connection, after the first, before the host
/// counts as gone (a redial of a live host is much faster).
pub const CONNECTION_GRACE: Duration = Duration::from_millis(1000);

impl HostConnections {
    /// One more open connection; the returned token closes it when dropped.
    pub fn opened(&self) -> ConnectionToken {
        self.open.fetch_add(1, Ordering::SeqCst);
        self.ever.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
        ConnectionToken(self.clone())
    }

    /// Resolves when a connection has been open and none has been for [`CONNECTION_GRACE`].
    pub async fn host_gone(&self) {
        // Until the first connection, nothing to watch.
        loop {
            let changed = self.changed.notified();
            if self.ever.load(Ordering::SeqCst) {
                break;
            }
            changed.await;
        }
        loop {
            let changed = self.changed.notified();
            if self.open.load(Ordering::SeqCst) == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(CONNECTION_GRACE) => {
                        if self.open.load(Ordering::SeqCst) == 0 {
                            tracing::info!("the host's connection closed and none came back: it is gone");
                            return;
                        }
                    }
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

/// Held by each open connection.
pub struct ConnectionToken(HostConnections);

impl Drop for ConnectionToken {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// The plugin port's connections, each counted in `connections` while open.
pub fn tracked(
    listener: tokio::net::TcpListener,
    connections: HostConnections,
) -> impl futures_util::Stream<Item = std::io::Result<Tracked>> + Send + 'static {
    futures_util::stream::unfold(
        (listener, connections),
        |(listener, connections)| async move {
            let accepted = listener.accept().await.map(|(tcp, _)| {
                let _ = tcp.set_nodelay(true);
                Tracked {
                    inner: tcp,
                    _token: connections.opened(),
                }
            });
            Some((accepted, (listener, connections)))
        },
    )
}

/// A TCP connection from the host, counted while open.
pub struct Tracked {
    inner: TcpStream,
    _token: ConnectionToken,
}

impl tonic::transport::server::Connected for Tracked {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
