//! WebSocket streams on the node's API port (DESIGN.md 4.2): six path routes with one
//! subscription per connection, and the multiplexed `/ws` endpoint with JSON control
//! messages; and the same six path routes as Server-Sent Events (`sse`). Requests are
//! checked before the upgrade (path and addresses: 400, token: 401 / 403, origin: 403,
//! connection limit: 503, subscription limit and connect rate: 429), each answered by the
//! request edge's `Refusal` (a JSON `{"error": ...}` body and a
//! `stream_connection_rejected{reason}` count).

mod connection;
pub(crate) mod control;
mod request;
mod sse;

use crate::auth::bearer;
use crate::chain::RequestError;
use crate::config::WebSocketConfig;
use crate::edge::{Caller, Naming, Param, Refusal, StreamType, subscription_key};
use crate::handle::{Handle, Start};
use crate::key::SubscriptionKey;
use crate::metrics::Transport;
use axum::Router;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Bytes a WebSocket connection reads into at a time: a `/ws` subscribe is a few hundred
/// bytes, a pong a few. tungstenite zero-fills this much before every read attempt (each
/// time a connection's task looks for inbound frames, i.e. once per message sent), so it is
/// CPU per message as well as memory per connection.
const READ_BUFFER_BYTES: usize = 1024;

/// Shared by every WebSocket handler.
#[derive(Clone)]
struct WsState {
    handle: Handle,
    config: Arc<WebSocketConfig>,
}

/// How a path route's updates are framed (`?encoding=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Text frames: the JSON of DESIGN.md 4.2 (the default).
    Json,
    /// Binary frames: the protobuf `Stream*Response` the gRPC stream of the same kind sends.
    Proto,
}

/// A path route's checked request.
struct PathRequest {
    key: SubscriptionKey,
    start: Start,
    encoding: Encoding,
    /// `?token=`.
    token: Option<String>,
}

impl WsState {
    /// Counts a refusal decided here.
    fn refuse(&self, r: impl Into<Refusal>) -> Refusal {
        r.into().count(&self.handle.metrics)
    }

    /// A path route's subscription: its key from the path, where it starts from the query's
    /// `since_height` (or `resume_after`, which takes precedence: SSE's `Last-Event-ID`), the
    /// frames' `encoding`, and the `token`.
    fn path_request(
        &self,
        stream: StreamType,
        params: PathParams,
        query: QueryParams,
        resume_after: Option<Start>,
    ) -> Result<PathRequest, Refusal> {
        let Path(params) = params.map_err(|e| self.refuse(path_error(e)))?;
        let Query(query) = query.map_err(|e| self.refuse(query_error(e)))?;
        let once = |name: &'static str| once(&query, name).map_err(|e| self.refuse(e));
        let start = request::start_from(once("since_height")?).map_err(|e| self.refuse(e))?;
        let encoding = match once("encoding")? {
            None | Some("json") => Encoding::Json,
            Some("proto") => Encoding::Proto,
            Some(other) => {
                return Err(self.refuse(RequestError::UnknownEncoding(other.to_string())));
            }
        };
        let token = once("token")?.map(str::to_string);
        let key = subscription_key(&self.handle.chain, stream, Naming::Http, |p| {
            params.get(p.name(Naming::Http)).map(String::as_str)
        })
        .map_err(|e| self.refuse(e))?;
        Ok(PathRequest {
            key,
            start: resume_after.unwrap_or(start),
            encoding,
            token,
        })
    }

    /// Who is asking: the client's IP (through trusted proxies) and, with auth on, the
    /// checked token (`Authorization: Bearer`, or `?token=`).
    fn caller(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        token: Option<&str>,
    ) -> Result<Caller, Refusal> {
        let ip = request::client_ip(peer, headers, &self.config);
        let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
        let token = bearer(authorization, token).map_err(|e| self.refuse(e))?;
        self.handle.caller(ip, token)
    }

    /// A browser's `Origin` must be in `allowed_origins` (403 otherwise).
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let origin = headers.get("origin").and_then(|o| o.to_str().ok());
        if !self.config.origin_allowed(origin) {
            return Err(self.refuse(Refusal::Origin(origin.unwrap_or_default().to_string())));
        }
        Ok(())
    }

    /// Checks that apply to both kinds of endpoint; returns the upgrade.
    fn accept(
        &self,
        upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
        headers: &HeaderMap,
    ) -> Result<WebSocketUpgrade, Refusal> {
        let upgrade = upgrade.map_err(|e| {
            self.refuse(match e {
                // A WebSocket handshake, but a broken one: the client's bug, not a plain request.
                WebSocketUpgradeRejection::WebSocketKeyHeaderMissing(_) => {
                    Refusal::Handshake(format!("invalid WebSocket handshake: {e}"))
                }
                _ => Refusal::NotWebSocket(format!(
                    "this endpoint speaks WebSocket ({e}); connect with a WebSocket client, e.g. websocat"
                )),
            })
        })?;
        self.check_origin(headers)?;
        // The frame bound makes the library refuse an oversize frame from its header, before
        // reading the payload (close 1009), instead of buffering up to its 16 MiB default.
        let max = self.config.max_message_size;
        Ok(upgrade
            .max_message_size(max)
            .max_frame_size(max)
            // tungstenite's defaults (128 KiB to read into, zero-filled on the first read,
            // and 128 KiB of write batching) were most of a connection's memory. Clients
            // send small control messages and pongs; a larger message grows the buffer to
            // its header's length, up to max_message_size, once.
            .read_buffer_size(READ_BUFFER_BYTES)
            // Every frame goes to the socket as it is sent: `Conn::send` flushes each one
            // anyway, and TCP_NOTSENT_LOWAT keeps the kernel's unsent backlog small.
            .write_buffer_size(0))
    }
}

/// The value of query parameter `name`, refused when given more than once (rather than one
/// of its values picked).
fn once<'q>(
    query: &'q [(String, String)],
    name: &'static str,
) -> Result<Option<&'q str>, RequestError> {
    let mut values = query.iter().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.as_str());
    match values.next() {
        Some(_) => Err(RequestError::Repeated(name)),
        None => Ok(first),
    }
}

/// The WebSocket routes, to merge into the node's API router. The router needs
/// `into_make_service_with_connect_info::<SocketAddr>()` to know client addresses.
pub(crate) fn router(handle: Handle, config: WebSocketConfig) -> Router {
    let state = WsState {
        handle,
        config: Arc::new(config),
    };
    let mut r = Router::new().route("/ws", get(multiplexed));
    for stream in StreamType::ALL {
        let path = path_template(stream);
        r = r
            .route(&format!("/ws/subscribe/{path}"), get(path_route(stream)))
            .route(&format!("/sse/subscribe/{path}"), get(sse::route(stream)));
    }
    // `{*rest}` needs at least one character: `/ws/` itself would get the router's empty 404
    // (found by the ws_request fuzz target).
    r.route("/ws/", get(unknown_path))
        .route("/ws/{*rest}", get(unknown_path))
        .route("/sse", get(unknown_path))
        .route("/sse/", get(unknown_path))
        .route("/sse/{*rest}", get(unknown_path))
        .with_state(state)
}

/// A stream's path route after `/ws/subscribe/` or `/sse/subscribe/`: its name, then one
/// segment per parameter (a denom, last, may hold slashes: `ibc/27394FB0...`).
fn path_template(stream: StreamType) -> String {
    let mut path = stream.name().to_string();
    for p in stream.params() {
        let name = p.name(Naming::Http);
        match p {
            Param::Denom => path.push_str(&format!("/{{*{name}}}")),
            _ => path.push_str(&format!("/{{{name}}}")),
        }
    }
    path
}

type PathParams = Result<Path<HashMap<String, String>>, PathRejection>;
/// In order and with repeats, so that a repeated `since_height` is refused rather than one of
/// its values picked.
type QueryParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// A path the router matched but could not hand over (a `%FF` segment), in our words: the
/// extractor's own answer would be a plain-text 400 that no metric counts.
fn path_error(e: PathRejection) -> RequestError {
    match &e {
        PathRejection::FailedToDeserializePathParams(p) => match p.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => RequestError::PathNotUtf8(key.clone()),
            _ => RequestError::Unreadable {
                part: "path",
                reason: e.body_text(),
            },
        },
        _ => RequestError::Unreadable {
            part: "path",
            reason: e.body_text(),
        },
    }
}

fn query_error(e: QueryRejection) -> RequestError {
    RequestError::Unreadable {
        part: "query string",
        reason: e.body_text(),
    }
}

/// A handler for one of the six single-subscription routes.
#[allow(clippy::type_complexity)]
fn path_route(
    stream: StreamType,
) -> impl Fn(
    State<WsState>,
    ConnectInfo<SocketAddr>,
    HeaderMap,
    PathParams,
    QueryParams,
    Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |State(ws), ConnectInfo(peer), headers, params, query, upgrade| {
        Box::pin(async move {
            match single(ws, peer, headers, stream, params, query, upgrade).await {
                Ok(r) => r,
                Err(e) => e.into_response(),
            }
        })
    }
}

async fn single(
    ws: WsState,
    peer: SocketAddr,
    headers: HeaderMap,
    stream: StreamType,
    params: PathParams,
    query: QueryParams,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let PathRequest {
        key,
        start,
        encoding,
        token,
    } = ws.path_request(stream, params, query, None)?;
    let upgrade = ws.accept(upgrade, &headers)?;
    let caller = ws.caller(peer, &headers, token.as_deref())?;
    let (sub, connection) = ws
        .handle
        .open(&caller, Transport::WebSocket, key, start)
        .await?;
    let config = ws.config.clone();
    let write_timeouts = ws.handle.metrics.write_timeouts.clone();
    let shutdown = ws.handle.shutdown.clone();
    Ok(upgrade.on_upgrade(move |socket| {
        connection::single(
            socket,
            sub,
            encoding,
            connection,
            config,
            write_timeouts,
            shutdown,
        )
    }))
}

async fn multiplexed(
    State(ws): State<WsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: QueryParams,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match open_multiplexed(ws, peer, headers, query, upgrade) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn open_multiplexed(
    ws: WsState,
    peer: SocketAddr,
    headers: HeaderMap,
    query: QueryParams,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Refusal> {
    let Query(query) = query.map_err(|e| ws.refuse(query_error(e)))?;
    let token = once(&query, "token").map_err(|e| ws.refuse(e))?;
    let upgrade = ws.accept(upgrade, &headers)?;
    let caller = ws.caller(peer, &headers, token)?;
    // The seat first (an empty connection counts toward its client's share), so a refused
    // request never counts as a connection.
    let limits = &ws.handle.limits;
    let seat = limits.subscribe(caller.client.clone(), Transport::WebSocket)?;
    let connection = limits.connect(Transport::WebSocket, caller.client.clone())?;
    let (handle, config) = (ws.handle.clone(), ws.config.clone());
    Ok(upgrade.on_upgrade(move |socket| {
        connection::multiplexed(socket, handle, caller, connection, seat, config)
    }))
}

async fn unknown_path(State(ws): State<WsState>, uri: Uri) -> Refusal {
    let streams = StreamType::ALL.map(StreamType::name).join(",");
    ws.refuse(RequestError::UnknownPath(
        if uri.path().starts_with("/sse") {
            format!(
                "unknown stream path {}; use /sse/subscribe/{{{streams}}}/...",
                uri.path()
            )
        } else {
            format!(
                "unknown stream path {}; use /ws or /ws/subscribe/{{{streams}}}/...",
                uri.path()
            )
        },
    ))
}

#[cfg(test)]
mod tests {
    use crate::fuzzing::{HttpReply, WsRoutes};
    use serde_json::{Value as Json, json};

    fn refused(routes: &WsRoutes, path: &str) -> (u16, Json) {
        let HttpReply {
            status,
            content_type,
            body,
            rejected,
            ..
        } = routes.get(path).expect("a routable path");
        assert_eq!(content_type.as_deref(), Some("application/json"), "{path}");
        let reason = if status == 426 {
            "not_websocket"
        } else {
            "invalid_request"
        };
        assert_eq!(rejected, [(reason, 1)].into(), "{path}");
        (status, serde_json::from_str(&body).expect("JSON"))
    }

    /// Path parameters that are not UTF-8 once percent-decoded were answered by axum's own
    /// plain-text 400, uncounted.
    #[test]
    fn non_utf8_path_segments_get_our_json_400_and_are_counted() {
        let routes = WsRoutes::new();
        let alice = stream_abci_listener::Address::new(vec![9; 20])
            .unwrap()
            .to_bech32("juno");
        for (path, field) in [
            ("/ws/subscribe/bank/balances/%FF".to_string(), "address"),
            (
                format!("/ws/subscribe/bank/balance/{alice}/u%FFjuno"),
                "denom",
            ),
            (
                format!("/ws/subscribe/bank/balance/{alice}/ibc/%C3"),
                "denom",
            ),
            (
                "/ws/subscribe/staking/delegations/%80".to_string(),
                "delegator",
            ),
            (
                format!("/ws/subscribe/staking/unbonding-delegation/{alice}/%FE%FF"),
                "validator",
            ),
        ] {
            let (status, body) = refused(&routes, &path);
            assert_eq!(status, 400, "{path}");
            assert_eq!(
                body,
                json!({"error": format!("the {field} in the path is not valid UTF-8 once percent-decoded; send it as text, e.g. a bech32 address or a denom")}),
                "{path}"
            );
        }
    }

    /// Found by the ws_request fuzz target (corpus/ws_request/regression_ws_slash): `/ws/`
    /// got the router's empty 404.
    #[test]
    fn unknown_paths_under_ws_get_our_json_400() {
        let routes = WsRoutes::new();
        for path in [
            "/ws/",
            "/ws//",
            "/ws/subscribe",
            "/ws/subscribe/bank/balances/",
        ] {
            let (status, body) = refused(&routes, path);
            assert_eq!(status, 400, "{path}");
            assert_eq!(
                body["error"],
                format!(
                    "unknown stream path {path}; use /ws or /ws/subscribe/{{bank/balance,bank/balances,staking/delegations,staking/delegation,staking/unbonding-delegations,staking/unbonding-delegation}}/..."
                )
            );
        }
    }

    #[test]
    fn bad_query_strings_and_good_requests_without_upgrade_are_json_too() {
        let routes = WsRoutes::new();
        let alice = stream_abci_listener::Address::new(vec![9; 20])
            .unwrap()
            .to_bech32("juno");
        let (status, body) = refused(
            &routes,
            &format!("/ws/subscribe/bank/balances/{alice}?since_height=%FF"),
        );
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "since_height \"\u{fffd}\" is not a height; expected an integer from 0 to 9223372036854775807"
        );
        let (status, body) = refused(
            &routes,
            &format!("/ws/subscribe/bank/balances/{alice}?since_height=1&since_height=x"),
        );
        assert_eq!(status, 400);
        assert_eq!(
            body["error"],
            "since_height is given more than once; give it once"
        );
        let (status, body) = refused(&routes, &format!("/ws/subscribe/bank/balances/{alice}"));
        assert_eq!(status, 426);
        assert!(
            body["error"].as_str().unwrap().contains("WebSocket"),
            "{body}"
        );
    }
}
