//! WebSocket streams on the node's API port (DESIGN.md 4.2): six path routes with one
//! subscription per connection, and the multiplexed `/ws` endpoint with JSON control
//! messages. Requests are checked before the upgrade (path and addresses: 400, origin: 403,
//! connection limit: 503, subscription limit: 429), each with a JSON `{"error": ...}` body and
//! a `stream_connection_rejected{reason}` count.

mod connection;
mod control;
mod request;

use crate::chain::RequestError;
use crate::config::WebSocketConfig;
use crate::handle::Handle;
use crate::key::SubscriptionKey;
use crate::limits::LimitError;
use crate::outbox::CloseReason;
use axum::Router;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) use request::{STREAMS, parse_stream};

/// Shared by every WebSocket handler.
#[derive(Clone)]
struct WsState {
    handle: Handle,
    config: Arc<WebSocketConfig>,
}

/// A refusal before the upgrade: status + `{"error": message}`.
#[derive(Debug)]
pub(crate) struct HttpError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({"error": self.message}));
        if self.status == StatusCode::UPGRADE_REQUIRED {
            // RFC 9110 15.5.22: a 426 names the protocol to switch to.
            return (
                self.status,
                [(axum::http::header::UPGRADE, "websocket")],
                body,
            )
                .into_response();
        }
        (self.status, body).into_response()
    }
}

impl WsState {
    fn reject(
        &self,
        status: StatusCode,
        reason: &'static str,
        message: impl Into<String>,
    ) -> HttpError {
        self.handle.metrics.rejected(reason).inc();
        HttpError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(&self, e: RequestError) -> HttpError {
        self.reject(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
    }

    /// The one place a subscription the module could not open becomes an HTTP refusal
    /// (the handle already counted replay refusals).
    fn refused(&self, r: CloseReason) -> HttpError {
        match r {
            CloseReason::Shutdown | CloseReason::Failed(_) => self.reject(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                r.to_string(),
            ),
            CloseReason::OutOfRange(m) => self.reject(StatusCode::GONE, "out_of_window", m),
            CloseReason::InvalidArgument(m) => HttpError {
                status: StatusCode::BAD_REQUEST,
                message: m,
            },
        }
    }

    /// Limits already counted the rejection.
    fn limit(&self, e: LimitError) -> HttpError {
        let status = match e {
            LimitError::MaxConnections { .. } | LimitError::ShuttingDown => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            LimitError::MaxSubscriptions { .. } => StatusCode::TOO_MANY_REQUESTS,
        };
        HttpError {
            status,
            message: e.to_string(),
        }
    }

    /// Checks that apply to both kinds of endpoint; returns the upgrade.
    fn accept(
        &self,
        upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
        headers: &HeaderMap,
    ) -> Result<WebSocketUpgrade, HttpError> {
        let upgrade = upgrade.map_err(|e| match e {
            // A WebSocket handshake, but a broken one: the client's bug, not a plain request.
            WebSocketUpgradeRejection::WebSocketKeyHeaderMissing(_) => self.reject(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("invalid WebSocket handshake: {e}"),
            ),
            _ => self.reject(
                StatusCode::UPGRADE_REQUIRED,
                "not_websocket",
                format!("this endpoint speaks WebSocket ({e}); connect with a WebSocket client, e.g. websocat"),
            ),
        })?;
        let origin = headers.get("origin").and_then(|o| o.to_str().ok());
        if !self.config.origin_allowed(origin) {
            return Err(self.reject(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!(
                    "origin {:?} is not allowed ([stream] allowed_origins in app.toml)",
                    origin.unwrap_or_default()
                ),
            ));
        }
        // The frame bound makes the library refuse an oversize frame from its header, before
        // reading the payload (close 1009), instead of buffering up to its 16 MiB default.
        let max = self.config.max_message_size;
        Ok(upgrade.max_message_size(max).max_frame_size(max))
    }
}

/// The WebSocket routes, to merge into the node's API router. The router needs
/// `into_make_service_with_connect_info::<SocketAddr>()` to know client addresses.
pub(crate) fn router(handle: Handle, config: WebSocketConfig) -> Router {
    let state = WsState {
        handle,
        config: Arc::new(config),
    };
    Router::new()
        .route("/ws", get(multiplexed))
        .route(
            "/ws/subscribe/bank/balance/{address}/{*denom}",
            get(path_route("bank/balance")),
        )
        .route(
            "/ws/subscribe/bank/balances/{address}",
            get(path_route("bank/balances")),
        )
        .route(
            "/ws/subscribe/staking/delegations/{delegator}",
            get(path_route("staking/delegations")),
        )
        .route(
            "/ws/subscribe/staking/delegation/{delegator}/{validator}",
            get(path_route("staking/delegation")),
        )
        .route(
            "/ws/subscribe/staking/unbonding-delegations/{delegator}",
            get(path_route("staking/unbonding-delegations")),
        )
        .route(
            "/ws/subscribe/staking/unbonding-delegation/{delegator}/{validator}",
            get(path_route("staking/unbonding-delegation")),
        )
        .route("/ws/{*rest}", get(unknown_path))
        .with_state(state)
}

type PathParams = Path<HashMap<String, String>>;

/// A handler for one of the six single-subscription routes.
#[allow(clippy::type_complexity)]
fn path_route(
    stream: &'static str,
) -> impl Fn(
    State<WsState>,
    ConnectInfo<SocketAddr>,
    HeaderMap,
    PathParams,
    Query<HashMap<String, String>>,
    Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |State(ws), ConnectInfo(peer), headers, Path(params), Query(query), upgrade| {
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
    stream: &'static str,
    params: HashMap<String, String>,
    query: HashMap<String, String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, HttpError> {
    let start = request::start_from(query.get("since_height").map(String::as_str))
        .map_err(|e| ws.bad_request(e))?;
    let key: SubscriptionKey = parse_stream(&ws.handle.chain, stream, |k| {
        params.get(k).map(String::as_str)
    })
    .map_err(|e| ws.bad_request(e))?;
    let upgrade = ws.accept(upgrade, &headers)?;
    let client = request::client_ip(peer, &headers, &ws.config);
    // The subscription slot first, so a refused request never counts as a connection.
    let permit = ws
        .handle
        .limits
        .subscribe(client)
        .map_err(|e| ws.limit(e))?;
    let connection = ws.handle.limits.connect().map_err(|e| ws.limit(e))?;
    let sub = ws
        .handle
        .subscribe(key, start, permit)
        .await
        .map_err(|r| ws.refused(r))?;
    let config = ws.config.clone();
    let shutdown = ws.handle.shutdown.clone();
    Ok(upgrade
        .on_upgrade(move |socket| connection::single(socket, sub, connection, config, shutdown)))
}

async fn multiplexed(
    State(ws): State<WsState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match ws.accept(upgrade, &headers) {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let client = request::client_ip(peer, &headers, &ws.config);
    // The seat first (an empty connection counts toward its client's share), so a refused
    // request never counts as a connection.
    let seat = match ws.handle.limits.subscribe(client) {
        Ok(s) => s,
        Err(e) => return ws.limit(e).into_response(),
    };
    let connection = match ws.handle.limits.connect() {
        Ok(c) => c,
        Err(e) => return ws.limit(e).into_response(),
    };
    let (handle, config) = (ws.handle.clone(), ws.config.clone());
    upgrade.on_upgrade(move |socket| {
        connection::multiplexed(socket, handle, client, connection, seat, config)
    })
}

async fn unknown_path(State(ws): State<WsState>, uri: Uri) -> HttpError {
    ws.reject(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        format!(
            "unknown stream path {}; use /ws or /ws/subscribe/{{{}}}/...",
            uri.path(),
            STREAMS.join(",")
        ),
    )
}
