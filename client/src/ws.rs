//! The WebSocket transport: one path-route connection (`/ws/subscribe/...`) per attempt,
//! with client pings for stale detection, and the one place HTTP statuses and close codes
//! become a [`Failure`].

use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::attempt::Failure;
use crate::config::ClientConfig;
use crate::grpc::error_chain;
use crate::topic::{Topic, Values};

/// Close code of a resumed stream that cannot continue without a gap.
const CLOSE_GONE: u16 = 4410;
/// Close code of a stream whose token expired: reconnect with a new one (a `Retry`).
const CLOSE_TOKEN_EXPIRED: u16 = 4001;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects to `endpoint` (`ws://HOST:PORT`) and opens `topic`'s path route with
/// `?since_height=` when resuming, and an `Authorization: Bearer <token>` header when there
/// is a token (the header rather than `?token=`: it stays out of proxies' access logs).
///
/// Stale detection: anything received (an update, the server's ping, a pong) counts as life.
/// After `keepalive_interval` of silence the client pings; if nothing arrives within
/// `keepalive_timeout` after that, the connection is stale and the attempt fails. The server
/// also pings every `ping_interval` (30 s by default), which keeps a quiet stream alive.
pub(crate) async fn open<T: Topic>(
    topic: &T,
    config: &ClientConfig,
    endpoint: &str,
    since: Option<i64>,
    token: Option<&str>,
) -> Result<Values<T::Value, Failure>, Failure> {
    let mut url = format!("{}{}", endpoint.trim_end_matches('/'), topic.ws_path());
    if let Some(h) = since {
        url.push_str(&format!("?since_height={h}"));
    }
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::Invalid(format!("{url}: {e}")))?;
    if let Some(token) = token {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            Failure::Retry("the token provider gave a token that is not header text".into())
        })?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let connecting = tokio_tungstenite::connect_async(request);
    let (socket, _) = match tokio::time::timeout(config.connect_timeout, connecting).await {
        Err(_) => {
            return Err(Failure::Retry(format!(
                "the WebSocket did not open within {:?}",
                config.connect_timeout
            )));
        }
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned();
            return Err(refusal(status, &body));
        }
        Ok(Err(e)) => return Err(Failure::Retry(format!("connect: {}", error_chain(&e)))),
        Ok(Ok(opened)) => opened,
    };
    Ok(updates::<T>(
        socket,
        config.keepalive_interval,
        config.keepalive_timeout,
    ))
}

/// An HTTP refusal before the upgrade.
fn refusal(status: u16, body: &str) -> Failure {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| body.to_owned());
    match status {
        410 => Failure::Gone(format!("HTTP 410: {message}")),
        // A since_height above this node's latest height: it is behind (see grpc.rs).
        400 if message.starts_with("since_height") => {
            Failure::Retry(format!("HTTP 400: {message}"))
        }
        400 => Failure::Invalid(message),
        // The token's `stream` claim does not allow this stream.
        403 => Failure::Denied(format!("HTTP 403: {message}")),
        // 401 (no token, an invalid or expired one: the next attempt asks the provider for
        // a new one), 429 / 503 (limits), anything else: back off.
        _ => Failure::Retry(format!("HTTP {status}: {message}")),
    }
}

/// A closing frame's meaning.
fn closed(frame: Option<CloseFrame>) -> Failure {
    match frame {
        Some(f) if u16::from(f.code) == CLOSE_GONE => {
            Failure::Gone(format!("close {CLOSE_GONE}: {}", f.reason))
        }
        Some(f) if u16::from(f.code) == CLOSE_TOKEN_EXPIRED => Failure::Retry(format!(
            "close {CLOSE_TOKEN_EXPIRED} (token expired): {}",
            f.reason
        )),
        Some(f) => Failure::Retry(format!("closed by the node: {} {}", f.code, f.reason)),
        None => Failure::Retry("closed by the node without a code".into()),
    }
}

struct Reader {
    socket: Socket,
    interval: Duration,
    timeout: Duration,
    /// When anything last arrived.
    last: Instant,
    /// When our unanswered ping left, if one is out.
    pinged: Option<Instant>,
}

fn updates<T: Topic>(
    socket: Socket,
    interval: Duration,
    timeout: Duration,
) -> Values<T::Value, Failure> {
    let reader = Reader {
        socket,
        interval,
        timeout,
        last: Instant::now(),
        pinged: None,
    };
    let stream: BoxStream<'static, Result<(i64, T::Value), Failure>> =
        futures_util::stream::unfold(Some(reader), |reader| async move {
            let mut r = reader?;
            let item = r.next::<T>().await;
            let done = item.is_err();
            Some((item, (!done).then_some(r)))
        })
        .boxed();
    stream
}

impl Reader {
    /// The next update, or why there is none.
    async fn next<T: Topic>(&mut self) -> Result<(i64, T::Value), Failure> {
        loop {
            let deadline = match self.pinged {
                Some(at) => at + self.timeout,
                None => self.last + self.interval,
            };
            tokio::select! {
                message = self.socket.next() => {
                    self.last = Instant::now();
                    self.pinged = None;
                    match message {
                        Some(Ok(Message::Text(text))) => {
                            let json: serde_json::Value = serde_json::from_str(text.as_str())
                                .map_err(|e| Failure::Retry(format!("undecodable update: {e}")))?;
                            return T::from_json(json).map_err(Failure::Retry);
                        }
                        // Pings are answered by tungstenite on the next read or write.
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Binary(_))) => {
                            return Err(Failure::Retry("unexpected binary frame".into()));
                        }
                        Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
                        Some(Err(e)) => {
                            return Err(Failure::Retry(format!("read: {}", error_chain(&e))));
                        }
                        None => return Err(Failure::Retry("connection closed".into())),
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if self.pinged.is_some() {
                        return Err(Failure::Retry(format!(
                            "stale: nothing received for {:?} (no answer to a ping within {:?})",
                            self.interval + self.timeout,
                            self.timeout
                        )));
                    }
                    self.pinged = Some(Instant::now());
                    let ping = self.socket.send(Message::Ping(Vec::new().into()));
                    if let Err(e) = tokio::time::timeout(self.timeout, ping).await.unwrap_or(Ok(())) {
                        return Err(Failure::Retry(format!("ping: {}", error_chain(&e))));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    use super::*;

    #[test]
    fn token_refusals_and_expiry_map_to_retry_or_denied() {
        assert!(matches!(
            refusal(401, r#"{"error":"token rejected: expired"}"#),
            Failure::Retry(m) if m == "HTTP 401: token rejected: expired"
        ));
        assert!(matches!(
            refusal(403, r#"{"error":"the token does not allow this address"}"#),
            Failure::Denied(m) if m == "HTTP 403: the token does not allow this address"
        ));
        let expired = CloseFrame {
            code: CloseCode::from(CLOSE_TOKEN_EXPIRED),
            reason: "token expired".into(),
        };
        assert!(matches!(closed(Some(expired)), Failure::Retry(m) if m.contains("4001")));
    }
}
