//! `juno.stream.v1.Query`: the six server-streaming RPCs. Handlers stay thin: parse the
//! request into a `SubscriptionKey`, admit it, subscribe, and render each update.

mod request;

pub(crate) use request::{StreamRequest, parse_request};

use crate::auth::bearer;
use crate::edge::Refusal;
use crate::handle::{Handle, Subscription};
use crate::limits::ConnectionPermit;
use crate::metrics::Transport;
use crate::outbox::Next;
use crate::value::{Coin, DelegationValue, UnbondingValue, Update, Value, unix_time};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, DelegationResponse, UnbondingDelegation, UnbondingDelegationEntry,
};
use futures_util::Stream;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use stream_proto::juno::stream::v1::query_server::{Query, QueryServer};
use stream_proto::juno::stream::v1::*;
use tonic::{Request, Response, Status};

/// A server stream of one RPC's responses.
pub(crate) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The gRPC service.
#[derive(Clone)]
pub struct StreamService {
    handle: Handle,
}

/// Largest request a stream RPC reads: an address, a denom and a height need a few hundred
/// bytes; the length prefix of anything larger is refused before its body is buffered.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// `juno.stream.v1.Query` as served: requests bounded to [`MAX_REQUEST_BYTES`], and a larger
/// one answered `RESOURCE_EXHAUSTED` (gRPC's code for a message over the receiver's limit;
/// tonic itself says `OUT_OF_RANGE`) and counted as an invalid request.
#[derive(Clone)]
pub struct StreamServer {
    inner: QueryServer<StreamService>,
    handle: Handle,
}

impl tonic::server::NamedService for StreamServer {
    const NAME: &'static str = <QueryServer<StreamService> as tonic::server::NamedService>::NAME;
}

impl tower_service::Service<http::Request<tonic::body::Body>> for StreamServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower_service::Service::<http::Request<tonic::body::Body>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let response = self.inner.call(request);
        let handle = self.handle.clone();
        Box::pin(async move {
            let mut response = response.await?;
            let too_large = Status::from_header_map(response.headers()).is_some_and(|s| {
                s.code() == tonic::Code::OutOfRange
                    && s.message().contains("decoded message length too large")
            });
            if too_large {
                handle.metrics.rejected("invalid_request").inc();
                let status = Status::resource_exhausted(format!(
                    "request too large: a stream request is at most {MAX_REQUEST_BYTES} bytes"
                ));
                let _ = status.add_header(response.headers_mut());
            }
            Ok(response)
        })
    }
}

impl StreamService {
    /// The tonic server for it.
    pub(crate) fn server(handle: Handle) -> StreamServer {
        use tonic::codec::CompressionEncoding::{Gzip, Zstd};
        // Compressed both ways when the client asks (`grpc-accept-encoding`); plain otherwise.
        let inner = QueryServer::new(StreamService {
            handle: handle.clone(),
        })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .accept_compressed(Gzip)
        .accept_compressed(Zstd)
        .send_compressed(Gzip)
        .send_compressed(Zstd);
        StreamServer { inner, handle }
    }

    /// Opens the stream `request` asks for: the caller (token, with auth on), the request's
    /// fields, then admission; each refusal as its gRPC status.
    async fn open<R: StreamRequest, T: Send + 'static>(
        &self,
        request: Request<R>,
        render: fn(&Update) -> Option<T>,
    ) -> Result<Response<ResponseStream<T>>, Status> {
        let h = &self.handle;
        let ip = request
            .remote_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let authorization = request.metadata().get("authorization");
        let caller = bearer(authorization.map(|v| v.as_bytes()), None)
            .map_err(|e| Refusal::Auth(e).count(&h.metrics))
            .and_then(|token| h.caller(ip, token))
            .map_err(|r| r.grpc())?;
        let (start, key) = parse_request(&h.chain, request.get_ref())
            .map_err(|e| Refusal::Request(e).count(&h.metrics).grpc())?;
        let (sub, connection) = h
            .open(&caller, Transport::Grpc, key, start)
            .await
            .map_err(|r| r.grpc())?;
        Ok(Response::new(Box::pin(updates(sub, connection, render))))
    }
}

/// The response stream: each update rendered, then one final status when the server ends
/// the subscription. Dropping it (client gone) unsubscribes and frees the slots.
fn updates<T: Send + 'static>(
    sub: Subscription,
    connection: ConnectionPermit,
    render: fn(&Update) -> Option<T>,
) -> impl Stream<Item = Result<T, Status>> + Send {
    futures_util::stream::unfold(Some((sub, connection)), move |state| async move {
        let (sub, connection) = state?;
        match sub.next().await {
            Next::Update(u) => match render(&u) {
                Some(msg) => Some((Ok(msg), Some((sub, connection)))),
                None => Some((Err(Status::internal("update of an unexpected kind")), None)),
            },
            Next::Closed(r) => Some((Err(Refusal::Closed(r).grpc()), None)),
        }
    })
}

fn coin(c: &Coin) -> ProtoCoin {
    ProtoCoin {
        denom: c.denom.clone(),
        amount: c.amount.to_string(),
    }
}

fn delegation(d: &DelegationValue) -> DelegationResponse {
    DelegationResponse {
        delegation: Some(Delegation {
            delegator_address: d.delegator.clone(),
            validator_address: d.validator.clone(),
            shares: d.shares.to_wire(),
        }),
        balance: Some(coin(&d.balance)),
    }
}

pub(crate) fn unbonding(u: &UnbondingValue) -> UnbondingDelegation {
    UnbondingDelegation {
        delegator_address: u.delegator.clone(),
        validator_address: u.validator.clone(),
        entries: u
            .entries
            .iter()
            .map(|e| {
                let (seconds, nanos) = unix_time(e.completion_time);
                UnbondingDelegationEntry {
                    creation_height: e.creation_height,
                    completion_time: Some(cosmos_sdk_proto::Timestamp {
                        seconds,
                        nanos: nanos as i32,
                    }),
                    initial_balance: e.initial_balance.to_string(),
                    balance: e.balance.to_string(),
                    unbonding_id: e.unbonding_id,
                    unbonding_on_hold_ref_count: e.unbonding_on_hold_ref_count,
                }
            })
            .collect(),
    }
}

fn balance_response(u: &Update) -> Option<StreamBalanceResponse> {
    match u.value.as_ref() {
        Value::Balance(b) => Some(StreamBalanceResponse {
            balance: Some(coin(b)),
            height: u.height,
        }),
        _ => None,
    }
}

fn all_balances_response(u: &Update) -> Option<StreamAllBalancesResponse> {
    match u.value.as_ref() {
        Value::Balances(b) => Some(StreamAllBalancesResponse {
            balances: b.iter().map(coin).collect(),
            height: u.height,
        }),
        _ => None,
    }
}

fn delegations_response(u: &Update) -> Option<StreamDelegationsResponse> {
    match u.value.as_ref() {
        Value::Delegations(d) => Some(StreamDelegationsResponse {
            delegations: d.iter().map(delegation).collect(),
            height: u.height,
        }),
        _ => None,
    }
}

fn delegation_response(u: &Update) -> Option<StreamDelegationResponse> {
    match u.value.as_ref() {
        Value::Delegation(d) => Some(StreamDelegationResponse {
            delegation: d.as_ref().map(delegation),
            height: u.height,
            found: d.is_some(),
        }),
        _ => None,
    }
}

fn unbonding_delegations_response(u: &Update) -> Option<StreamUnbondingDelegationsResponse> {
    match u.value.as_ref() {
        Value::UnbondingDelegations(d) => Some(StreamUnbondingDelegationsResponse {
            delegations: d.iter().map(unbonding).collect(),
            height: u.height,
        }),
        _ => None,
    }
}

fn unbonding_delegation_response(u: &Update) -> Option<StreamUnbondingDelegationResponse> {
    match u.value.as_ref() {
        Value::UnbondingDelegation(d) => Some(StreamUnbondingDelegationResponse {
            delegation: d.as_ref().map(unbonding),
            height: u.height,
            found: d.is_some(),
        }),
        _ => None,
    }
}

/// The protobuf `Stream*Response` of an update, as the gRPC stream of its kind sends it
/// (WebSocket path routes with `?encoding=proto` send exactly these bytes).
pub(crate) fn protobuf(u: &Update) -> Vec<u8> {
    use prost::Message as _;
    match u.value.as_ref() {
        Value::Balance(_) => balance_response(u).map(|m| m.encode_to_vec()),
        Value::Balances(_) => all_balances_response(u).map(|m| m.encode_to_vec()),
        Value::Delegations(_) => delegations_response(u).map(|m| m.encode_to_vec()),
        Value::Delegation(_) => delegation_response(u).map(|m| m.encode_to_vec()),
        Value::UnbondingDelegations(_) => {
            unbonding_delegations_response(u).map(|m| m.encode_to_vec())
        }
        Value::UnbondingDelegation(_) => {
            unbonding_delegation_response(u).map(|m| m.encode_to_vec())
        }
    }
    .unwrap_or_default()
}

#[tonic::async_trait]
impl Query for StreamService {
    type StreamBalanceStream = ResponseStream<StreamBalanceResponse>;
    type StreamAllBalancesStream = ResponseStream<StreamAllBalancesResponse>;
    type StreamDelegationsStream = ResponseStream<StreamDelegationsResponse>;
    type StreamDelegationStream = ResponseStream<StreamDelegationResponse>;
    type StreamUnbondingDelegationsStream = ResponseStream<StreamUnbondingDelegationsResponse>;
    type StreamUnbondingDelegationStream = ResponseStream<StreamUnbondingDelegationResponse>;

    async fn stream_balance(
        &self,
        req: Request<StreamBalanceRequest>,
    ) -> Result<Response<Self::StreamBalanceStream>, Status> {
        self.open(req, balance_response).await
    }

    async fn stream_all_balances(
        &self,
        req: Request<StreamAllBalancesRequest>,
    ) -> Result<Response<Self::StreamAllBalancesStream>, Status> {
        self.open(req, all_balances_response).await
    }

    async fn stream_delegations(
        &self,
        req: Request<StreamDelegationsRequest>,
    ) -> Result<Response<Self::StreamDelegationsStream>, Status> {
        self.open(req, delegations_response).await
    }

    async fn stream_delegation(
        &self,
        req: Request<StreamDelegationRequest>,
    ) -> Result<Response<Self::StreamDelegationStream>, Status> {
        self.open(req, delegation_response).await
    }

    async fn stream_unbonding_delegations(
        &self,
        req: Request<StreamUnbondingDelegationsRequest>,
    ) -> Result<Response<Self::StreamUnbondingDelegationsStream>, Status> {
        self.open(req, unbonding_delegations_response).await
    }

    async fn stream_unbonding_delegation(
        &self,
        req: Request<StreamUnbondingDelegationRequest>,
    ) -> Result<Response<Self::StreamUnbondingDelegationStream>, Status> {
        self.open(req, unbonding_delegation_response).await
    }
}
