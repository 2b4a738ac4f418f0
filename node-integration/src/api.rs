//! The API port (1317): `/metrics` (OpenMetrics text, when `[telemetry] enabled`) and the
//! stream module's WebSocket routes, `/health` and `/stats`.

use crate::guard::{self, ConnectionGuard, Port};
use axum::Router;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::sync::Arc;
use tower_service::Service;

#[derive(Deserialize)]
struct MetricsQuery {
    format: Option<String>,
}

/// `GET /metrics[?format=prometheus]`: the OpenMetrics text of prometheus-client for both
/// (`format=prometheus` is the Cosmos SDK's telemetry query; Prometheus scrapes OpenMetrics
/// natively).
async fn metrics(State(registry): State<Arc<Registry>>, Query(q): Query<MetricsQuery>) -> Response {
    match q.format.as_deref() {
        None | Some("") | Some("prometheus") | Some("openmetrics") => {}
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": format!("unknown format {other:?}; use prometheus or openmetrics")})),
            )
                .into_response();
        }
    }
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &registry) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not found; the API port serves /metrics, /health, /stats, /ws, /ws/subscribe/... and /sse/subscribe/..."})),
    )
        .into_response()
}

/// The API router: metrics when `registry` is given, plus `extra` (the stream module's
/// WebSocket routes, `/health` and `/stats`).
pub fn router(registry: Option<Registry>, extra: Option<Router>) -> Router {
    let mut r = Router::new();
    if let Some(registry) = registry {
        r = r.route("/metrics", get(metrics).with_state(Arc::new(registry)));
    }
    if let Some(extra) = extra {
        r = r.merge(extra);
    }
    r.fallback(not_found)
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits for open connections
/// (the caller bounds that wait). HTTP/1 with upgrades (WebSocket); request headers are
/// bounded in size ([`MAX_HEADER_BYTES`]) and must arrive within
/// [`guard::HANDSHAKE_TIMEOUT`], and `guard` caps each client's connections that have not
/// sent their first request yet.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    guard: ConnectionGuard,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(guard::HANDSHAKE_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES);
    // Each connection task holds a sender: when all are gone, the drain is complete.
    let (draining, mut drained) = tokio::sync::mpsc::channel::<()>(1);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, pending) = tokio::select! {
            accepted = guard.accept(&listener, Port::Api) => accepted,
            _ = &mut shutdown => break,
        };
        let Ok(peer) = tcp.peer_addr() else { continue };
        let _ = tcp.set_nodelay(true);
        // A stalled reader must not have a backlog of stale updates queued in the kernel:
        // writes wait once this much is unsent, so the stream module's outbox (which keeps
        // only the newest value) does the skipping.
        let _ = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(UNSENT_BYTES);
        // The first request (its headers complete) frees the connection's pending place.
        let pending = std::sync::Mutex::new(Some(pending));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            pending.lock().expect("pending lock").take();
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request)
        });
        let connection = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let (guard, mut stopping, draining) = (guard.clone(), stopping.clone(), draining.clone());
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result
                && e.is_timeout()
            {
                guard.timed_out(Port::Api);
            }
            drop(draining);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(draining);
    let _ = drained.recv().await;
    Ok(())
}

/// Bytes a connection may have written but not yet sent (`TCP_NOTSENT_LOWAT`).
pub const UNSENT_BYTES: u32 = 4 * 1024;

/// Largest request head (request line and headers) the API port reads.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
