//! The API port (1317): `/metrics` (OpenMetrics text, when `[telemetry] enabled`) and the
//! stream module's WebSocket routes.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

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
        axum::Json(serde_json::json!({"error": "not found; the API port serves /metrics and /ws, /ws/subscribe/..."})),
    )
        .into_response()
}

/// The API router: metrics when `registry` is given, plus `extra` (the WebSocket routes).
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

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
