//! WebSocket clients of the API port: a tokio-tungstenite client connected from a chosen
//! loopback address (with optional extra headers), its refusals before the upgrade (status +
//! JSON body), and a hand-rolled client that upgrades over a raw TCP socket and never reads
//! (it may still send), to play a stalled peer.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value as Json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

use super::WAIT;

/// A refusal before the upgrade: the HTTP status and the body parsed as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// HTTP status code.
    pub status: u16,
    /// The body (`{"error": ...}`), or `Json::String` of the raw body if it is not JSON.
    pub body: Json,
}

impl Refusal {
    /// The `"error"` string of the body; fails the test if the body is not `{"error": "..."}`.
    pub fn error(&self) -> &str {
        let object = self
            .body
            .as_object()
            .unwrap_or_else(|| panic!("refusal body is not a JSON object: {self:?}"));
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            ["error"],
            "refusal body must be exactly {{\"error\": ...}}: {self:?}"
        );
        object["error"]
            .as_str()
            .unwrap_or_else(|| panic!("\"error\" is not a string: {self:?}"))
    }
}

/// Opens a TCP connection to `server` from loopback address `from`.
pub async fn tcp_from(from: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
    tcp_with(from, server, None).await
}

/// Opens a TCP connection to `server` from `from`, with a receive buffer of `recv_buffer`
/// bytes if given (set before connecting, so the advertised window stays that small).
async fn tcp_with(
    from: IpAddr,
    server: SocketAddr,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(server).await
}

/// One WebSocket connection to the node.
pub struct WsClient {
    ws: WebSocketStream<TcpStream>,
    /// What the client connected to, for messages.
    pub path: String,
}

/// Time a received message arrived.
pub type Arrival = Instant;

impl WsClient {
    /// Upgrades `ws://api{path}` from loopback address `from`, sending `headers` too.
    pub async fn try_connect(
        api: SocketAddr,
        path: &str,
        from: IpAddr,
        headers: &[(&str, &str)],
    ) -> Result<WsClient, Refusal> {
        let mut request = format!("ws://{api}{path}")
            .into_client_request()
            .unwrap_or_else(|e| panic!("bad WebSocket URL for {path}: {e}"));
        for (name, value) in headers {
            request.headers_mut().insert(
                tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let tcp = tcp_from(from, api)
            .await
            .unwrap_or_else(|e| panic!("TCP connect to {api} from {from}: {e}"));
        match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, tcp)).await {
            Err(_) => panic!("WebSocket handshake for {path} did not finish within {WAIT:?}"),
            Ok(Ok((ws, _response))) => Ok(WsClient {
                ws,
                path: path.to_owned(),
            }),
            Ok(Err(tungstenite::Error::Http(response))) => {
                let status = response.status().as_u16();
                let bytes = response.into_body().unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let body = serde_json::from_str(&text).unwrap_or(Json::String(text));
                Err(Refusal { status, body })
            }
            Ok(Err(e)) => panic!("WebSocket handshake for {path} failed: {e}"),
        }
    }

    /// Like [`WsClient::try_connect`] without extra headers; fails the test on a refusal.
    pub async fn connect(api: SocketAddr, path: &str, from: IpAddr) -> WsClient {
        WsClient::try_connect(api, path, from, &[])
            .await
            .unwrap_or_else(|r| panic!("{path} from {from} refused: {r:?}"))
    }

    /// Like [`WsClient::try_connect`] without extra headers; fails the test if it connects.
    pub async fn refused(api: SocketAddr, path: &str, from: IpAddr) -> Refusal {
        match WsClient::try_connect(api, path, from, &[]).await {
            Ok(_) => panic!("{path} from {from} must be refused, but it was upgraded"),
            Err(r) => r,
        }
    }

    /// The next text frame parsed as JSON (pings and pongs are skipped; tungstenite answers
    /// pings by itself while we read). Fails the test on a close, an error or a timeout.
    pub async fn next_json(&mut self) -> Json {
        self.next_json_timed().await.0
    }

    /// [`WsClient::next_json`] with the time the frame arrived.
    pub async fn next_json_timed(&mut self) -> (Json, Arrival) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: no message within {WAIT:?}", self.path));
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let arrived = Instant::now();
                    let json = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("{}: text frame is not JSON ({e}): {text:?}", self.path)
                    });
                    return (json, arrived);
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(other)) => panic!("{}: expected a text frame, got {other:?}", self.path),
                Some(Err(e)) => panic!("{}: connection failed: {e}", self.path),
                None => panic!("{}: connection ended", self.path),
            }
        }
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        let text: String = text.into();
        self.ws
            .send(Message::text(text))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.path));
    }

    /// Sends `value` as a JSON text frame.
    pub async fn send_json(&mut self, value: &Json) {
        self.send_text(value.to_string()).await;
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::binary(bytes))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.path));
    }

    /// Sends `request` and returns the next message (the reply; the caller makes sure no
    /// update can arrive in between, e.g. no subscription is active or it checks the shape).
    pub async fn request(&mut self, request: &Json) -> Json {
        self.send_json(request).await;
        self.next_json().await
    }

    /// Reads (skipping data frames) until the server's close frame; returns it, or `None`
    /// if the connection ended without one. Fails the test if nothing ends within `WAIT`.
    pub async fn closed_by_server(&mut self) -> Option<CloseFrame> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: not closed within {WAIT:?}", self.path));
            match frame {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Starts the closing handshake with `code` and waits for the server's answer; returns
    /// the close frame the server sent back (`None` if it ended the connection without one).
    pub async fn close(&mut self, code: CloseCode) -> Option<CloseFrame> {
        self.ws
            .close(Some(CloseFrame {
                code,
                reason: "test client leaving".into(),
            }))
            .await
            .unwrap_or_else(|e| panic!("{}: sending close failed: {e}", self.path));
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut reply = None;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{}: close not answered within {WAIT:?}", self.path));
            match frame {
                Some(Ok(Message::Close(frame))) => reply = Some(frame),
                Some(Ok(_)) => {}
                // tungstenite ends the stream once the handshake is complete.
                Some(Err(_)) | None => return reply.flatten(),
            }
        }
    }

    /// Drops the TCP socket without a close frame (FIN, as from a killed process).
    pub fn vanish(self) {
        drop(self.ws);
    }

    /// Resets the TCP connection (RST, no close frame, no FIN): a peer that is simply gone.
    pub fn reset(self) {
        let tcp = self.ws.into_inner();
        tcp.set_zero_linger().expect("set SO_LINGER 0");
        drop(tcp);
    }
}

/// A client that upgraded by hand over a raw TCP socket and then stops reading: it never
/// answers pings. Its socket stays open until [`RawClient::drain`] or drop.
pub struct RawClient {
    tcp: TcpStream,
    /// Bytes after the 101 response that came with it.
    pending: Vec<u8>,
}

/// One frame a server sent (servers never mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Opcode: 1 text, 2 binary, 8 close, 9 ping, 10 pong.
    pub opcode: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

impl RawClient {
    /// Sends the upgrade request for `path` from `from` and reads the 101 response.
    pub async fn upgrade(api: SocketAddr, path: &str, from: IpAddr) -> RawClient {
        RawClient::upgrade_with(api, path, from, None).await
    }

    /// [`RawClient::upgrade`] over a socket with a `recv_buffer`-byte receive buffer, so
    /// that the server's writes block as soon as a few KiB are unread.
    pub async fn upgrade_with(
        api: SocketAddr,
        path: &str,
        from: IpAddr,
        recv_buffer: Option<u32>,
    ) -> RawClient {
        let mut tcp = tcp_with(from, api, recv_buffer)
            .await
            .unwrap_or_else(|e| panic!("TCP connect to {api}: {e}"));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes())
            .await
            .expect("send upgrade");
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        let end = loop {
            if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
                .await
                .expect("101 response within WAIT")
                .expect("read upgrade response");
            assert!(n > 0, "connection closed during the upgrade of {path}");
            received.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&received[..end]).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "raw upgrade of {path} refused: {head}"
        );
        // RFC 6455 example key -> this accept value.
        assert!(
            head.to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "wrong Sec-WebSocket-Accept: {head}"
        );
        RawClient {
            tcp,
            pending: received[end..].to_vec(),
        }
    }

    /// Sends a text frame (masked, as clients must).
    pub async fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.tcp
            .write_all(&masked_frame(0x1, text.as_bytes()))
            .await
    }

    /// Writes `bytes` as they are (hand-made frames, possibly malformed).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tcp.write_all(bytes).await
    }

    /// Reads for `period` (or until the server closes) and returns the whole frames that
    /// arrived; a partial frame waits for the next call.
    pub async fn read_for(&mut self, period: std::time::Duration) -> Vec<RawFrame> {
        let deadline = tokio::time::Instant::now() + period;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut buf)).await {
                Err(_) | Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
        let (frames, used) = split_frames(&self.pending);
        self.pending.drain(..used);
        frames
    }

    /// Sends a ping frame: the client is alive, it only does not read.
    pub async fn send_ping(&mut self) -> std::io::Result<()> {
        self.tcp.write_all(&masked_frame(0x9, b"")).await
    }

    /// Reads everything the server sent until it closed the connection (bounded), and
    /// splits it into frames.
    pub async fn drain(mut self) -> Vec<RawFrame> {
        let mut bytes = std::mem::take(&mut self.pending);
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.tcp.read(&mut buf)).await {
                Err(_) => panic!("raw client: the server did not close within {WAIT:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        parse_frames(&bytes)
    }
}

/// A final client frame with `opcode` and `payload`, masked with a fixed key.
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];
    let mut frame = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => frame.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&MASK);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    frame
}

/// Splits unmasked server frames.
fn parse_frames(bytes: &[u8]) -> Vec<RawFrame> {
    split_frames(bytes).0
}

/// Splits unmasked server frames; also returns how many bytes the whole frames took.
fn split_frames(all: &[u8]) -> (Vec<RawFrame>, usize) {
    let mut bytes = all;
    let mut frames = Vec::new();
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        assert_eq!(bytes[1] & 0x80, 0, "servers must not mask frames");
        let (len, header) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            127 if bytes.len() >= 10 => (
                u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if bytes.len() < header + len {
            break;
        }
        frames.push(RawFrame {
            opcode,
            payload: bytes[header..header + len].to_vec(),
        });
        bytes = &bytes[header + len..];
    }
    (frames, all.len() - bytes.len())
}
