//! The four transports as one client connection the behaviours drive: open a subscription
//! (from a snapshot or `since_height`), read the next event, kill the connection (no close
//! frame, no goodbye) or close it politely. A *slow* gRPC connection advertises a 1 KiB HTTP/2
//! stream window, so a client that reads slowly or pauses really does push back on the server
//! (its outbox conflates). WebSocket clients keep the kernel's TCP buffers: a receive buffer
//! below the loopback MSS (64 KiB) makes Linux advertise zero windows until half of it is free,
//! which turns a slow reader into a stalled connection and tests TCP rather than the module.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value as Json, json};
use stream_proto::juno::stream::v1::query_client::QueryClient;
use stream_proto::juno::stream::v1::*;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use super::sse::{SseEvent, SseStream};
use super::target::{canonical, from_ws, ws_stream};
use super::transcript::{ServerError, Start, Transport};
use crate::stream_support::{StreamKey, StreamValue};

/// Bound for connecting and for a subscribe to be answered (2 loaded cores).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 stream window of a slow gRPC client.
const SLOW_H2_WINDOW: u32 = 1024;

/// Where the node listens.
#[derive(Clone, Copy, Debug)]
pub struct Addrs {
    pub grpc: SocketAddr,
    pub api: SocketAddr,
}

/// What a connection delivers next.
#[derive(Debug)]
pub enum Incoming {
    /// An update of subscription `sub`.
    Update {
        sub: usize,
        height: i64,
        value: Json,
    },
    /// The server ended subscription `sub` with an error.
    Ended { sub: usize, error: ServerError },
    /// The connection (every subscription on it) ended without an error, or broke the wire
    /// contract; says how.
    Closed(String),
    /// A WebSocket connection ended without a close frame (end of stream, reset): what the
    /// client sees when the node drops it because a write did not finish within
    /// `write_timeout` (or when the node dies); says how.
    Dropped(String),
}

type Updates = Pin<Box<dyn Stream<Item = Result<(i64, Json), ServerError>> + Send>>;

/// A gRPC status as the checker sees it.
fn server_error(s: &Status) -> ServerError {
    ServerError {
        code: format!("{:?}", s.code()),
        message: s.message().to_owned(),
    }
}
type Ws = WebSocketStream<TcpStream>;

enum Inner {
    /// One stream on its own HTTP/2 connection.
    Grpc {
        channel: Channel,
        stream: Option<Updates>,
    },
    /// One path-route connection.
    Path { ws: Option<Ws> },
    /// One SSE stream (curl).
    Sse { events: Option<SseStream> },
    /// One `/ws` connection with several subscriptions.
    Mux {
        ws: Ws,
        next_id: u64,
        /// Server subscription id -> our subscription index.
        sids: HashMap<String, usize>,
        /// Events read while waiting for a subscribe reply.
        pending: VecDeque<Incoming>,
    },
}

/// One client connection.
pub struct Conn {
    addrs: Addrs,
    inner: Inner,
}

impl Conn {
    /// A new connection of `transport` (for `/ws`, the upgrade happens here).
    pub async fn connect(transport: Transport, addrs: Addrs, slow: bool) -> Result<Conn, String> {
        let inner = match transport {
            Transport::Grpc => {
                let mut endpoint = Endpoint::from_shared(format!("http://{}", addrs.grpc))
                    .expect("valid URL")
                    .connect_timeout(Duration::from_secs(5));
                if slow {
                    endpoint = endpoint.initial_stream_window_size(SLOW_H2_WINDOW);
                }
                Inner::Grpc {
                    channel: endpoint.connect_lazy(),
                    stream: None,
                }
            }
            Transport::WsPath => Inner::Path { ws: None },
            Transport::Sse => Inner::Sse { events: None },
            Transport::WsMux => {
                let ws = upgrade(addrs.api, "/ws")
                    .await
                    .map_err(|e| format!("/ws refused: {e:?}"))?;
                Inner::Mux {
                    ws,
                    next_id: 1,
                    sids: HashMap::new(),
                    pending: VecDeque::new(),
                }
            }
        };
        Ok(Conn { addrs, inner })
    }

    /// [`Conn::subscribe`] on a node that may be a block or two behind the height `start`
    /// names (another node served it): the node refuses a `since_height` above the latest
    /// height it has streamed, and, as the client libraries do, this tries again (every
    /// 100 ms, for up to `patience`) until the node has streamed it. Any other refusal, or
    /// that one after `patience`, is returned.
    pub async fn subscribe_behind(
        &mut self,
        sub: usize,
        key: &StreamKey,
        start: Start,
        patience: Duration,
    ) -> Result<(), ServerError> {
        let give_up = tokio::time::Instant::now() + patience;
        loop {
            match self.subscribe(sub, key, start).await {
                Err(e)
                    if e.message.starts_with("since_height ")
                        && e.message.contains(" is above the latest height ")
                        && tokio::time::Instant::now() < give_up =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                done => return done,
            }
        }
    }

    /// Opens subscription `sub` to `key` from `start`; the server's refusal if it refuses.
    /// gRPC and path routes carry one subscription (a new one replaces the old).
    pub async fn subscribe(
        &mut self,
        sub: usize,
        key: &StreamKey,
        start: Start,
    ) -> Result<(), ServerError> {
        let since = match start {
            Start::Snapshot => 0,
            Start::Since(h) => h,
        };
        match &mut self.inner {
            Inner::Grpc { channel, stream } => {
                *stream = None;
                let open = open_grpc(channel.clone(), key, since);
                let opened = match tokio::time::timeout(OPEN_TIMEOUT, open).await {
                    Ok(opened) => opened,
                    Err(_) => panic!("{} {key:?} not answered within {OPEN_TIMEOUT:?}", key.rpc()),
                };
                *stream = Some(opened.map_err(|s| server_error(&s))?);
                Ok(())
            }
            Inner::Sse { events } => {
                *events = None;
                let path = ws_stream(key).path().replacen("/ws/", "/sse/", 1);
                let resume = (since > 0).then_some(since);
                let open = SseStream::open(self.addrs.api, &path, resume);
                let opened = tokio::time::timeout(OPEN_TIMEOUT, open)
                    .await
                    .unwrap_or_else(|_| panic!("SSE {path} not answered within {OPEN_TIMEOUT:?}"));
                *events = Some(opened?);
                Ok(())
            }
            Inner::Path { ws } => {
                *ws = None;
                let mut path = ws_stream(key).path();
                if since > 0 {
                    path.push_str(&format!("?since_height={since}"));
                }
                *ws = Some(upgrade(self.addrs.api, &path).await?);
                Ok(())
            }
            Inner::Mux {
                ws,
                next_id,
                sids,
                pending,
            } => {
                let id = *next_id;
                *next_id += 1;
                let stream = ws_stream(key);
                let mut params = stream.params();
                if since > 0 {
                    params["since_height"] = json!(since);
                }
                let request = json!({"id": id, "method": "subscribe", "stream": stream.name(), "params": params});
                ws.send(Message::text(request.to_string()))
                    .await
                    .map_err(|e| ServerError {
                        code: "send".into(),
                        message: e.to_string(),
                    })?;
                let deadline = tokio::time::Instant::now() + OPEN_TIMEOUT;
                loop {
                    let frame = tokio::time::timeout_at(deadline, read_mux(ws, sids))
                        .await
                        .unwrap_or_else(|_| {
                            panic!("/ws subscribe {id} not answered within {OPEN_TIMEOUT:?}")
                        });
                    match frame {
                        MuxFrame::Reply { id: rid, result } if rid == id => {
                            return match result {
                                Ok(sid) => {
                                    sids.insert(sid, sub);
                                    Ok(())
                                }
                                Err(e) => Err(e),
                            };
                        }
                        MuxFrame::Reply { id: rid, .. } => pending.push_back(Incoming::Closed(
                            format!("a reply to request {rid} while waiting for {id}"),
                        )),
                        MuxFrame::Event(e) => {
                            let closed = matches!(e, Incoming::Closed(_) | Incoming::Dropped(_));
                            pending.push_back(e);
                            if closed {
                                return Err(ServerError {
                                    code: "closed".into(),
                                    message: "the connection ended during a subscribe".into(),
                                });
                            }
                        }
                    }
                }
            }
        }
    }

    /// The next event. Cancel-safe (the behaviours read with deadlines).
    pub async fn next(&mut self) -> Incoming {
        match &mut self.inner {
            Inner::Grpc { stream, .. } => {
                let Some(s) = stream else {
                    return std::future::pending().await;
                };
                match s.next().await {
                    Some(Ok((height, value))) => Incoming::Update {
                        sub: 0,
                        height,
                        value,
                    },
                    Some(Err(error)) => {
                        *stream = None;
                        Incoming::Ended { sub: 0, error }
                    }
                    None => {
                        *stream = None;
                        Incoming::Closed("the gRPC stream ended with OK".into())
                    }
                }
            }
            Inner::Sse { events } => {
                let Some(e) = events else {
                    return std::future::pending().await;
                };
                match e.next().await {
                    SseEvent::Update(height, value) => Incoming::Update {
                        sub: 0,
                        height,
                        value,
                    },
                    SseEvent::Ended(error) => {
                        *events = None;
                        Incoming::Ended { sub: 0, error }
                    }
                    SseEvent::Closed(why) => {
                        *events = None;
                        Incoming::Closed(why)
                    }
                }
            }
            Inner::Path { ws } => {
                let Some(w) = ws else {
                    return std::future::pending().await;
                };
                loop {
                    let frame = w.next().await;
                    match frame {
                        Some(Ok(Message::Text(text))) => {
                            return match serde_json::from_str(text.as_str())
                                .map_err(|e| e.to_string())
                                .and_then(from_ws)
                            {
                                Ok((height, value)) => Incoming::Update {
                                    sub: 0,
                                    height,
                                    value,
                                },
                                Err(e) => Incoming::Closed(format!("bad frame {text:?}: {e}")),
                            };
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                        Some(Ok(Message::Close(Some(frame)))) => {
                            *ws = None;
                            return Incoming::Ended {
                                sub: 0,
                                error: ServerError {
                                    code: u16::from(frame.code).to_string(),
                                    message: frame.reason.to_string(),
                                },
                            };
                        }
                        other if dropped(&other) => {
                            *ws = None;
                            return Incoming::Dropped(format!("connection ended: {other:?}"));
                        }
                        other => {
                            *ws = None;
                            return Incoming::Closed(format!("connection ended: {other:?}"));
                        }
                    }
                }
            }
            Inner::Mux {
                ws, sids, pending, ..
            } => {
                if let Some(e) = pending.pop_front() {
                    return e;
                }
                match read_mux(ws, sids).await {
                    MuxFrame::Event(e) => e,
                    MuxFrame::Reply { id, .. } => {
                        Incoming::Closed(format!("unexpected reply to request {id}"))
                    }
                }
            }
        }
    }

    /// Ends the connection abruptly: the socket is dropped without a close frame (as when
    /// the client's process is killed).
    pub fn kill(self) {
        drop(self);
    }

    /// Ends the connection politely (WebSocket close frame; gRPC streams are reset).
    pub async fn close(self) {
        match self.inner {
            // SSE has no goodbye: the client closes its connection.
            Inner::Grpc { .. } | Inner::Sse { .. } => {}
            Inner::Path { ws: Some(mut ws) } | Inner::Mux { mut ws, .. } => {
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
            }
            Inner::Path { ws: None } => {}
        }
    }
}

/// Whether a read's result is the connection ending without a close frame (end of stream,
/// reset, I/O error), as opposed to a frame the client did not expect.
fn dropped(read: &Option<Result<Message, tungstenite::Error>>) -> bool {
    use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
    matches!(
        read,
        None | Some(Err(tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Io(_)
            | tungstenite::Error::Protocol(ResetWithoutClosingHandshake)))
    )
}

/// A frame of `/ws`.
enum MuxFrame {
    Reply {
        id: u64,
        result: Result<String, ServerError>,
    },
    Event(Incoming),
}

async fn read_mux(ws: &mut Ws, sids: &mut HashMap<String, usize>) -> MuxFrame {
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other if dropped(&other) => {
                return MuxFrame::Event(Incoming::Dropped(format!("/ws ended: {other:?}")));
            }
            other => {
                return MuxFrame::Event(Incoming::Closed(format!("/ws ended: {other:?}")));
            }
        };
        let bad = |why: &str| MuxFrame::Event(Incoming::Closed(format!("{why}: {text}")));
        let Ok(v) = serde_json::from_str::<Json>(text.as_str()) else {
            return bad("not JSON");
        };
        let error = |e: &Json| ServerError {
            code: e["code"]
                .as_u64()
                .map_or_else(|| e["code"].to_string(), |c| c.to_string()),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        };
        if let Some(id) = v.get("id").and_then(Json::as_u64) {
            let result = match (v.get("result"), v.get("error")) {
                (Some(r), None) => match r["subscription"].as_str() {
                    Some(s) => Ok(s.to_owned()),
                    None => return bad("result without a subscription"),
                },
                (None, Some(e)) => Err(error(e)),
                _ => return bad("reply without result or error"),
            };
            return MuxFrame::Reply { id, result };
        }
        let Some(sub) = v["subscription"]
            .as_str()
            .and_then(|s| sids.get(s))
            .copied()
        else {
            return bad("frame of an unknown subscription");
        };
        if let Some(e) = v.get("error") {
            return MuxFrame::Event(Incoming::Ended {
                sub,
                error: error(e),
            });
        }
        return match from_ws(v["data"].clone()) {
            Ok((height, value)) => MuxFrame::Event(Incoming::Update { sub, height, value }),
            Err(e) => bad(&e),
        };
    }
}

/// Upgrades `ws://api{path}`; a refusal before the upgrade becomes `HTTP <status>` with the
/// body's `"error"` (or the raw body if it is not `{"error": "..."}`).
async fn upgrade(api: SocketAddr, path: &str) -> Result<Ws, ServerError> {
    let request = format!("ws://{api}{path}")
        .into_client_request()
        .expect("valid WebSocket URL");
    let socket = TcpSocket::new_v4().expect("socket");
    let connect = async {
        let tcp = socket.connect(api).await.map_err(|e| ServerError {
            code: "connect".into(),
            message: e.to_string(),
        })?;
        match tokio_tungstenite::client_async(request, tcp).await {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.into_body().unwrap_or_default();
                let text = String::from_utf8_lossy(&body).into_owned();
                let message = serde_json::from_str::<Json>(&text)
                    .ok()
                    .and_then(|j| {
                        let o = j.as_object()?;
                        (o.len() == 1).then(|| o.get("error")?.as_str().map(str::to_owned))?
                    })
                    .unwrap_or(text);
                Err(ServerError {
                    code: format!("HTTP {status}"),
                    message,
                })
            }
            Err(e) => Err(ServerError {
                code: "handshake".into(),
                message: e.to_string(),
            }),
        }
    };
    tokio::time::timeout(OPEN_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| panic!("WebSocket {path} not upgraded within {OPEN_TIMEOUT:?}"))
}

/// Opens the gRPC stream for `key` from `since`, as (height, canonical value) pairs.
async fn open_grpc(channel: Channel, key: &StreamKey, since: i64) -> Result<Updates, Status> {
    fn boxed<T: Send + 'static>(s: tonic::Streaming<T>, f: fn(T) -> (i64, Json)) -> Updates {
        Box::pin(s.map(move |r| match r {
            Ok(m) => Ok(f(m)),
            Err(s) => Err(server_error(&s)),
        }))
    }
    /// `found` as sent, so a `found` that disagrees with the object fails the comparison.
    fn with_found(mut v: Json, found: bool) -> Json {
        v["found"] = json!(found);
        v
    }
    let mut client = QueryClient::new(channel);
    Ok(match key.clone() {
        StreamKey::Balance { address, denom } => boxed(
            client
                .stream_balance(StreamBalanceRequest {
                    address,
                    denom,
                    since_height: since,
                })
                .await?
                .into_inner(),
            |m| {
                let coin = m.balance.unwrap_or_default();
                (m.height, canonical(&StreamValue::Balance(coin)))
            },
        ),
        StreamKey::AllBalances { address } => boxed(
            client
                .stream_all_balances(StreamAllBalancesRequest {
                    address,
                    since_height: since,
                })
                .await?
                .into_inner(),
            |m| (m.height, canonical(&StreamValue::AllBalances(m.balances))),
        ),
        StreamKey::Delegations { delegator } => boxed(
            client
                .stream_delegations(StreamDelegationsRequest {
                    delegator_address: delegator,
                    since_height: since,
                })
                .await?
                .into_inner(),
            |m| {
                (
                    m.height,
                    canonical(&StreamValue::Delegations(m.delegations)),
                )
            },
        ),
        StreamKey::Delegation {
            delegator,
            validator,
        } => boxed(
            client
                .stream_delegation(StreamDelegationRequest {
                    delegator_address: delegator,
                    validator_address: validator,
                    since_height: since,
                })
                .await?
                .into_inner(),
            |m| {
                let v = canonical(&StreamValue::Delegation(m.delegation));
                (m.height, with_found(v, m.found))
            },
        ),
        StreamKey::UnbondingDelegations { delegator } => boxed(
            client
                .stream_unbonding_delegations(StreamUnbondingDelegationsRequest {
                    delegator_address: delegator,
                    since_height: since,
                })
                .await?
                .into_inner(),
            |m| {
                (
                    m.height,
                    canonical(&StreamValue::UnbondingDelegations(m.delegations)),
                )
            },
        ),
        StreamKey::UnbondingDelegation {
            delegator,
            validator,
        } => boxed(
            client
                .stream_unbonding_delegation(StreamUnbondingDelegationRequest {
                    delegator_address: delegator,
                    validator_address: validator,
                    since_height: since,
                })
                .await?
                .into_inner(),
            |m| {
                let v = canonical(&StreamValue::UnbondingDelegation(m.delegation));
                (m.height, with_found(v, m.found))
            },
        ),
    })
}
