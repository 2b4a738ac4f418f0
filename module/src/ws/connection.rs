//! One WebSocket connection: writes with a deadline, pings on an interval, closes a client
//! that has been silent (not even a pong) for the idle timeout, answers close frames, and
//! sends close code 1001 on shutdown. `single` serves a path route's one subscription;
//! `multiplexed` serves `/ws` and its control messages.

use super::Encoding;
use super::control::{self, Reply};
use crate::config::WebSocketConfig;
use crate::edge::{Caller, Refusal};
use crate::handle::{Handle, Subscription};
use crate::limits::{ClientId, ConnectionPermit, SubscriptionPermit};
use crate::metrics::Transport;
use crate::outbox::{CloseReason, Next, shutting_down};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures_util::{SinkExt, StreamExt};
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, Sleep, interval_at, sleep, timeout};

/// Updates waiting between `/ws` subscription forwarders and the connection's writer; when
/// full, forwarders wait and their outboxes keep only the newest value.
const MUX_QUEUE: usize = 64;

/// What happened on the connection.
enum Inbound {
    /// Time to ping.
    PingDue,
    /// Nothing arrived for the idle timeout.
    Idle,
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary,
    /// Any frame counts as life; nothing else to do.
    Alive,
    /// The client broke the protocol: close with this code and reason.
    Violation(u16, &'static str),
    /// The client closed or the socket failed.
    Gone,
}

/// A connection's socket with its heartbeat and deadlines. The socket is not split into a
/// sink and a stream: reads and writes never overlap here, and a split would put a lock
/// (and a waker registration) in front of every write.
struct Conn {
    socket: WebSocket,
    config: Arc<WebSocketConfig>,
    ping: Interval,
    idle: Pin<Box<Sleep>>,
    /// `stream_write_timeouts`: counts this connection if a write times out.
    write_timeouts: Counter,
}

/// The socket cannot be written to any more.
struct Broken;

impl Conn {
    fn new(socket: WebSocket, config: Arc<WebSocketConfig>, write_timeouts: Counter) -> Conn {
        let start = Instant::now();
        Conn {
            socket,
            ping: interval_at(start + config.ping_interval, config.ping_interval),
            idle: Box::pin(sleep(config.idle_timeout)),
            config,
            write_timeouts,
        }
    }

    /// Sends `m`; a write that does not finish within `write_timeout` (the client stopped
    /// reading and the socket's buffers are full) breaks the connection, counted in
    /// `stream_write_timeouts`: the caller drops it without a close frame, which could not
    /// be written either.
    async fn send(&mut self, m: Message) -> Result<(), Broken> {
        match timeout(self.config.write_timeout, self.socket.send(m)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Broken),
            Err(_) => {
                self.write_timeouts.inc();
                tracing::debug!(
                    write_timeout = ?self.config.write_timeout,
                    "dropping a WebSocket client that stopped reading"
                );
                Err(Broken)
            }
        }
    }

    async fn text(&mut self, s: impl Into<Utf8Bytes>) -> Result<(), Broken> {
        self.send(Message::Text(s.into())).await
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = self.send(Message::Close(Some(frame))).await;
    }

    /// Closes with the code and words of `r` (the request edge's one mapping).
    async fn close_for(&mut self, r: impl Into<Refusal>) {
        let r = r.into();
        self.close(r.close_code(), &truncate(&r.to_string())).await
    }

    /// The next event: a frame (any frame resets the idle deadline), a ping due, or idleness.
    async fn event(&mut self) -> Inbound {
        let frame = tokio::select! {
            f = self.socket.next() => f,
            _ = self.ping.tick() => return Inbound::PingDue,
            _ = &mut self.idle => return Inbound::Idle,
        };
        match frame {
            Some(Ok(m)) => {
                let deadline = Instant::now() + self.config.idle_timeout;
                self.idle.as_mut().reset(deadline);
                match m {
                    Message::Text(t) => Inbound::Text(t),
                    Message::Binary(_) => Inbound::Binary,
                    // The library queued the pong / close reply; push it out now.
                    Message::Ping(_) => {
                        let _ = timeout(self.config.write_timeout, self.socket.flush()).await;
                        Inbound::Alive
                    }
                    Message::Pong(_) => Inbound::Alive,
                    Message::Close(_) => {
                        let _ = timeout(self.config.write_timeout, self.socket.flush()).await;
                        Inbound::Gone
                    }
                }
            }
            Some(Err(e)) => violation(e),
            None => Inbound::Gone,
        }
    }
}

/// What a read error means: the client broke a rule (answered with the matching close code,
/// RFC 6455 section 7.4.1) or the connection is gone.
fn violation(e: axum::Error) -> Inbound {
    let Ok(e) = e.into_inner().downcast::<tungstenite::Error>() else {
        return Inbound::Gone;
    };
    match *e {
        // Checked on the frame header and while assembling fragments, before the payload is
        // buffered beyond max_message_size.
        tungstenite::Error::Capacity(_) => Inbound::Violation(
            close_code::SIZE,
            "message too big: larger than max_message_size",
        ),
        tungstenite::Error::Utf8(_) => {
            Inbound::Violation(close_code::INVALID, "text message is not valid UTF-8")
        }
        tungstenite::Error::Protocol(_) => {
            Inbound::Violation(close_code::PROTOCOL, "WebSocket protocol error")
        }
        _ => Inbound::Gone,
    }
}

/// Close reason for a silent client.
const IDLE: &str = "idle timeout: nothing received, not even a pong";

/// Close reasons are limited to 123 bytes by the protocol.
fn truncate(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// A path route's connection: the subscription's updates until either side ends.
pub(super) async fn single(
    socket: WebSocket,
    sub: Subscription,
    encoding: Encoding,
    _connection: ConnectionPermit,
    config: Arc<WebSocketConfig>,
    write_timeouts: Counter,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut c = Conn::new(socket, config, write_timeouts);
    // One wait for the whole connection: a new one per message would take the lock of the
    // shutdown channel, shared by every connection, twice per message.
    let mut shutdown = std::pin::pin!(shutting_down(&mut shutdown));
    loop {
        tokio::select! {
            _ = &mut shutdown => return c.close_for(CloseReason::Shutdown).await,
            next = sub.next() => match next {
                Next::Update(u) => {
                    let frame = match encoding {
                        Encoding::Json => Message::Text(u.frame().clone()),
                        Encoding::Proto => Message::Binary(u.proto()),
                    };
                    if c.send(frame).await.is_err() { return }
                }
                Next::Closed(r) => return c.close_for(r).await,
            },
            event = c.event() => match event {
                Inbound::Gone => return,
                Inbound::PingDue => if c.send(Message::Ping(Default::default())).await.is_err() { return },
                Inbound::Idle => return c.close(close_code::POLICY, IDLE).await,
                Inbound::Violation(code, reason) => return c.close(code, reason).await,
                // A path route takes no messages; anything a client sends only shows it is alive.
                Inbound::Text(_) | Inbound::Binary | Inbound::Alive => {}
            },
        }
    }
}

/// `/ws`: several subscriptions on one connection, driven by JSON control messages.
///
/// A connection without subscriptions holds one of its client's subscription slots (`seat`),
/// so that empty connections count toward the client's share of the node: the first
/// subscription takes the seat over, and when the last one ends the connection takes a seat
/// again (or, if the client has none left, is closed).
pub(super) async fn multiplexed(
    socket: WebSocket,
    handle: Handle,
    caller: Caller,
    _connection: ConnectionPermit,
    seat: SubscriptionPermit,
    config: Arc<WebSocketConfig>,
) {
    let client = &caller.client;
    let mut shutdown = handle.shutdown.clone();
    let mut shutdown = std::pin::pin!(shutting_down(&mut shutdown));
    // With token auth, the connection (and every subscription on it) ends when the token
    // expires: close code 4001.
    let mut expired = std::pin::pin!(async {
        match caller.expires() {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    });
    let mut seat = Some(seat);
    let mut c = Conn::new(socket, config, handle.metrics.write_timeouts.clone());
    let (updates_tx, mut updates) = mpsc::channel::<(String, Next)>(MUX_QUEUE);
    let mut subs: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut next_id = 1u64;
    loop {
        let alive = tokio::select! {
            _ = &mut shutdown => {
                c.close_for(CloseReason::Shutdown).await;
                false
            }
            _ = &mut expired => {
                c.close_for(CloseReason::TokenExpired).await;
                false
            }
            // A frame a forwarder queued before its subscription was unsubscribed is dropped:
            // nothing follows an `unsubscribed` reply.
            Some((sid, next)) = updates.recv() => match next {
                _ if !subs.contains_key(&sid) => true,
                Next::Update(u) => c.text(control::update(&sid, u.json())).await.is_ok(),
                Next::Closed(r) => {
                    subs.remove(&sid);
                    c.text(control::ended(&sid, &r)).await.is_ok()
                        && reseat(&mut c, &handle, client, &subs, &mut seat).await
                }
            },
            event = c.event() => match event {
                Inbound::Gone => false,
                Inbound::Alive => true,
                Inbound::PingDue => c.send(Message::Ping(Default::default())).await.is_ok(),
                Inbound::Idle => {
                    c.close(close_code::POLICY, IDLE).await;
                    false
                }
                Inbound::Violation(code, reason) => {
                    c.close(code, reason).await;
                    false
                }
                Inbound::Binary => c.text(control::binary_refused()).await.is_ok(),
                Inbound::Text(t) => {
                    let reply = match control::parse_with(&handle, t.as_str()) {
                        Err(reply) => reply,
                        Ok(control::Request::Subscribe { id, key, start }) => {
                            let permit = match seat.take() {
                                Some(seat) => Ok(seat),
                                None => handle.limits.subscribe(client.clone(), Transport::WebSocket),
                            };
                            match control::subscribe(&handle, &caller, permit, id, key, start).await {
                                Err(reply) => {
                                    if !send_reply(&mut c, reply).await {
                                        break;
                                    }
                                    if !reseat(&mut c, &handle, client, &subs, &mut seat).await {
                                        break;
                                    }
                                    continue;
                                }
                                Ok((id, sub)) => {
                                    let sid = format!("s{next_id}");
                                    next_id += 1;
                                    // The result goes out before the forwarder can send the snapshot.
                                    if c.text(control::subscribed(&id, &sid)).await.is_err() {
                                        break;
                                    }
                                    subs.insert(sid.clone(), tokio::spawn(forward(sid, sub, updates_tx.clone())));
                                    continue;
                                }
                            }
                        }
                        Ok(control::Request::Unsubscribe { id, subscription }) => match subs.remove(&subscription) {
                            Some(task) => {
                                task.abort();
                                // The subscription's slot is free once the task is gone.
                                let _ = task.await;
                                if !send_reply(&mut c, control::unsubscribed(&id, &subscription)).await {
                                    break;
                                }
                                if !reseat(&mut c, &handle, client, &subs, &mut seat).await {
                                    break;
                                }
                                continue;
                            }
                            None => control::unknown_subscription(&id, &subscription),
                        },
                    };
                    send_reply(&mut c, reply).await
                }
            },
        };
        if !alive {
            break;
        }
    }
    for task in subs.into_values() {
        task.abort();
    }
}

async fn send_reply(c: &mut Conn, reply: Reply) -> bool {
    c.text(reply.0).await.is_ok()
}

/// A `/ws` connection left without subscriptions takes a seat again; false (after closing
/// it with 1008) when its client has no slot left for it.
async fn reseat(
    c: &mut Conn,
    handle: &Handle,
    client: &ClientId,
    subs: &HashMap<String, JoinHandle<()>>,
    seat: &mut Option<SubscriptionPermit>,
) -> bool {
    if !subs.is_empty() || seat.is_some() {
        return true;
    }
    match handle
        .limits
        .subscribe(client.clone(), Transport::WebSocket)
    {
        Ok(s) => {
            *seat = Some(s);
            true
        }
        Err(e) => {
            c.close_for(e).await;
            false
        }
    }
}

/// Moves one `/ws` subscription's updates to the connection. Aborting it drops the
/// subscription, which unsubscribes.
async fn forward(sid: String, sub: Subscription, to: mpsc::Sender<(String, Next)>) {
    loop {
        let next = sub.next().await;
        let end = matches!(next, Next::Closed(_));
        if to.send((sid.clone(), next)).await.is_err() || end {
            return;
        }
    }
}
