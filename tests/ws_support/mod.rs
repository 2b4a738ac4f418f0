//! End-to-end helpers for the WebSocket streams, limits and telemetry on the API port:
//! WebSocket clients that connect from a chosen loopback address, plain HTTP, `/metrics`
//! scraping and the JSON each stream must carry (built from the standard Cosmos queries).
//!
//! Builds on the shared harness (`support`), which starts every node (with custom
//! `config.toml` / `app.toml` settings through `TestNodeOptions`).

#![allow(dead_code)] // each test binary uses a different part of these helpers

pub mod client;
pub mod expected;
pub mod http;
pub mod metrics;

use std::net::IpAddr;
use std::time::Duration;

/// Upper bound for any wait on a message, a close or a metric; generous for a loaded
/// machine (the suite runs on 2 cores).
pub const WAIT: Duration = Duration::from_secs(30);

#[allow(unused_imports)] // each test binary uses a different part of these helpers
pub use crate::support::loopback;

/// Opens `juno.stream.v1.Query/StreamBalance` from loopback address `from` over a new
/// HTTP/2 connection and waits for its snapshot; the refusal status if the node refuses it.
pub async fn grpc_balance_stream(
    grpc: std::net::SocketAddr,
    from: IpAddr,
    address: &str,
    denom: &str,
) -> Result<tonic::Streaming<stream_proto::juno::stream::v1::StreamBalanceResponse>, tonic::Status>
{
    use stream_proto::juno::stream::v1::StreamBalanceRequest;
    use stream_proto::juno::stream::v1::query_client::QueryClient;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .expect("valid URL")
        .local_address(Some(from))
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let request = StreamBalanceRequest {
        address: address.to_owned(),
        denom: denom.to_owned(),
        since_height: 0,
    };
    let mut stream = tokio::time::timeout(WAIT, QueryClient::new(channel).stream_balance(request))
        .await
        .expect("StreamBalance answers within WAIT")?
        .into_inner();
    let first = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("StreamBalance snapshot within WAIT")?;
    assert!(first.is_some(), "StreamBalance ended before its snapshot");
    Ok(stream)
}
