//! A TCP proxy in front of a node's port that a test controls: it cuts every open connection
//! (sockets dropped mid-stream, wherever the bytes are), stalls them (open, but nothing moves
//! in either direction, never closed), or refuses new ones (accepted and closed at once),
//! and records when each connection arrived.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One proxied connection.
struct Link {
    /// Set: nothing is forwarded any more, in either direction; the sockets stay open.
    stalled: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    links: Vec<Link>,
    /// When each connection arrived (refused ones too), in order.
    arrivals: Vec<Instant>,
    refusing: bool,
}

/// The proxy; stops (and drops every connection) when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let accept = {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let mut s = shared.lock().expect("proxy lock");
                    s.arrivals.push(Instant::now());
                    s.links.retain(|l| !l.task.is_finished());
                    if s.refusing {
                        drop(client);
                        continue;
                    }
                    let stalled = Arc::new(AtomicBool::new(false));
                    let task = tokio::spawn(forward(client, target, stalled.clone()));
                    s.links.push(Link { stalled, task });
                }
            })
        };
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (gRPC endpoint).
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://ADDR` (WebSocket endpoint).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Drops every open connection (both sockets), wherever their bytes are.
    pub fn cut(&self) -> usize {
        let mut s = self.shared.lock().expect("proxy lock");
        let n = s.links.iter().filter(|l| !l.task.is_finished()).count();
        for link in s.links.drain(..) {
            link.task.abort();
        }
        n
    }

    /// Freezes every open connection: nothing more is forwarded, nothing is closed. New
    /// connections are forwarded normally.
    pub fn stall(&self) -> usize {
        let s = self.shared.lock().expect("proxy lock");
        let live: Vec<&Link> = s.links.iter().filter(|l| !l.task.is_finished()).collect();
        for link in &live {
            link.stalled.store(true, Ordering::SeqCst);
        }
        live.len()
    }

    /// From now on, accepts new connections only to close them at once (`true`), or
    /// forwards them again (`false`).
    pub fn refuse(&self, refusing: bool) {
        self.shared.lock().expect("proxy lock").refusing = refusing;
    }

    /// When each connection arrived, in order.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.shared.lock().expect("proxy lock").arrivals.clone()
    }

    /// Connections open now (stalled ones included).
    pub fn open_links(&self) -> usize {
        let s = self.shared.lock().expect("proxy lock");
        s.links.iter().filter(|l| !l.task.is_finished()).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

async fn forward(client: TcpStream, target: SocketAddr, stalled: Arc<AtomicBool>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, stalled.clone());
    let down = pump(sr, cw, stalled);
    // Either direction ending ends the link (both sockets dropped).
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Copies `from` to `to` until either ends; while stalled, reads nothing and writes nothing.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Bytes read just as the stall began are held, never delivered.
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
