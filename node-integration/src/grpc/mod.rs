//! The node's gRPC server: the standard Cosmos SDK queries and tx service, the dev service,
//! and server reflection (v1 and v1alpha, so grpcurl 1.8 works without proto files).

// Handlers return tonic's `Status` directly: it is the error type of every gRPC method.
#![allow(clippy::result_large_err)]

mod auth;
mod bank;
mod dev;
mod size_limit;
mod staking;
mod tendermint;
mod tx;

pub use size_limit::MAX_REQUEST_BYTES;

use crate::app::Committed;
use crate::node::{Node, VersionError};
use cosmos_sdk_proto::cosmos::base::query::v1beta1::{PageRequest, PageResponse};
use size_limit::SizeLimited;
use std::net::SocketAddr;
use std::sync::Arc;
use tonic::metadata::MetadataValue;
use tonic::service::{Routes, RoutesBuilder};
use tonic::{Request, Response, Status};

/// Metadata key selecting (request) and reporting (response) the query height.
pub const HEIGHT_HEADER: &str = "x-cosmos-block-height";

/// Default page size of list queries (the SDK's).
const DEFAULT_LIMIT: u64 = 100;

/// Every gRPC service of the node; the caller adds the stream module's service (whose
/// descriptors go in `extra_descriptors`, for reflection) before serving.
pub fn routes(
    node: &Node,
    extra_descriptors: &[&'static [u8]],
) -> Result<RoutesBuilder, tonic_reflection::server::Error> {
    let reflection = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(stream_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            );
        for d in extra_descriptors {
            b = b.register_encoded_file_descriptor_set(d);
        }
        b
    };
    let max = MAX_REQUEST_BYTES;
    let reflection_v1 = reflection().build_v1()?.max_decoding_message_size(max);
    let reflection_v1alpha = reflection().build_v1alpha()?.max_decoding_message_size(max);
    let mut routes = Routes::builder();
    routes
        .add_service(SizeLimited(
            bank::service(node.clone()).max_decoding_message_size(max),
        ))
        .add_service(SizeLimited(
            staking::service(node.clone()).max_decoding_message_size(max),
        ))
        .add_service(SizeLimited(
            auth::service(node.clone()).max_decoding_message_size(max),
        ))
        .add_service(SizeLimited(
            tx::service(node.clone()).max_decoding_message_size(max),
        ))
        .add_service(SizeLimited(
            tendermint::service(node.clone()).max_decoding_message_size(max),
        ))
        .add_service(SizeLimited(
            dev::service(node.clone()).max_decoding_message_size(max),
        ))
        .add_service(SizeLimited(reflection_v1))
        .add_service(SizeLimited(reflection_v1alpha));
    Ok(routes)
}

/// HTTP/2 keepalive: a ping after this much silence on a connection...
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
/// ...that must be answered within this, or the connection is closed (a peer that vanished,
/// or one that holds a connection without speaking HTTP/2).
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves `routes` on `listener` until `shutdown` resolves. Connections are admitted by
/// `guard` (handshake deadline, per-client cap on connections still handshaking) and kept
/// honest by HTTP/2 keepalive.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Routes,
    guard: crate::guard::ConnectionGuard,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_routes(routes)
        .serve_with_incoming_shutdown(guard.grpc_incoming(listener), shutdown)
        .await
}

/// Binds the gRPC port with a clear error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen for gRPC on {addr}: {e} (is another node running? set --grpc.address)"
        )
    })
}

/// The committed state a query asks for with `x-cosmos-block-height` (latest without it).
fn version<T>(node: &Node, req: &Request<T>) -> Result<Arc<Committed>, Status> {
    let height = match req.metadata().get(HEIGHT_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|h| *h >= 0)
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "{HEIGHT_HEADER} must be a non-negative integer"
                    ))
                })?,
        ),
    };
    node.version(height).map_err(|e| match e {
        VersionError::NoBlocks => Status::unavailable(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    })
}

/// A response stamped with the height it answers at.
fn at_height<T>(v: &Committed, msg: T) -> Response<T> {
    at_block_height(v.block.height, msg)
}

/// A response stamped with `height`.
fn at_block_height<T>(height: i64, msg: T) -> Response<T> {
    let mut resp = Response::new(msg);
    resp.metadata_mut()
        .insert(HEIGHT_HEADER, MetadataValue::from(height));
    resp
}

fn invalid(e: impl std::fmt::Display) -> Status {
    Status::invalid_argument(e.to_string())
}

/// Applies an SDK `PageRequest` to items in store-key order.
fn paginate<T>(
    items: Vec<(Vec<u8>, T)>,
    page: Option<PageRequest>,
) -> Result<(Vec<T>, Option<PageResponse>), Status> {
    let page = page.unwrap_or_default();
    if !page.key.is_empty() && page.offset > 0 {
        return Err(Status::invalid_argument(
            "invalid request, either offset or key is expected, got both",
        ));
    }
    let total = items.len() as u64;
    let mut items = items;
    if page.reverse {
        items.reverse();
    }
    let start = if !page.key.is_empty() {
        items
            .iter()
            .position(|(k, _)| {
                if page.reverse {
                    *k <= page.key
                } else {
                    *k >= page.key
                }
            })
            .unwrap_or(items.len())
    } else {
        (page.offset as usize).min(items.len())
    };
    let limit = if page.limit == 0 {
        DEFAULT_LIMIT
    } else {
        page.limit
    } as usize;
    let mut rest = items.split_off(start);
    let next_key = if rest.len() > limit {
        rest[limit].0.clone()
    } else {
        Vec::new()
    };
    rest.truncate(limit);
    let total = if page.count_total && page.key.is_empty() {
        total
    } else {
        0
    };
    Ok((
        rest.into_iter().map(|(_, t)| t).collect(),
        Some(PageResponse { next_key, total }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_by_offset_and_key() {
        let items: Vec<(Vec<u8>, u8)> = (0..5u8).map(|i| (vec![i], i)).collect();
        let (page, resp) = paginate(
            items.clone(),
            Some(PageRequest {
                limit: 2,
                count_total: true,
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!(page, vec![0, 1]);
        let resp = resp.unwrap();
        assert_eq!((resp.next_key.clone(), resp.total), (vec![2], 5));
        let (page, resp) = paginate(
            items.clone(),
            Some(PageRequest {
                key: resp.next_key,
                limit: 2,
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!(page, vec![2, 3]);
        assert_eq!(resp.unwrap().next_key, vec![4]);
        let (page, _) = paginate(
            items.clone(),
            Some(PageRequest {
                offset: 4,
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!(page, vec![4]);
        assert!(
            paginate(
                items,
                Some(PageRequest {
                    offset: 1,
                    key: vec![1],
                    ..Default::default()
                })
            )
            .is_err()
        );
    }
}
