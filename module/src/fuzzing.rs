//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`; also built for the
//! module's own tests): the module's parsers of hostile input, reachable without making the
//! internals public. Each returns plain data, so a target can check properties of it. Not an
//! API: nothing here is stable.
#![doc(hidden)]
#![allow(missing_docs)]

use crate::chain::Chain;
use crate::edge::{Naming, Param, StreamType};
use crate::grpc::{StreamRequest, parse_request};
use crate::handle::Start;
use crate::key::SubscriptionKey;
use crate::metrics::Metrics;
use crate::reader::{ReadError, StateReader};
use crate::topic::{TopicState, Validators};
use crate::value::{Update, Value};
use crate::ws::control::{self, Request};
use crate::{LimitsConfig, StreamConfig, StreamModule};
use async_trait::async_trait;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use stream_abci_listener::{Address, Dec, Int, StateChange, UnbondingEntry};
use stream_proto::juno::stream::v1::*;

/// The chain every entry point parses for: prefixes `juno` / `junovaloper`, bond denom
/// `ujuno`.
pub fn chain() -> Chain {
    Chain {
        account_prefix: "juno".into(),
        validator_prefix: "junovaloper".into(),
        bond_denom: "ujuno".into(),
    }
}

/// A subscription a parser accepted, in the words of a request: the stream name, its
/// parameters with canonical values (bech32 re-rendered), and `since_height` (0 = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub stream: &'static str,
    pub params: Vec<(&'static str, String)>,
    pub since_height: i64,
}

fn accepted(chain: &Chain, key: &SubscriptionKey, start: Start) -> Accepted {
    let (denom, validator) = match key {
        SubscriptionKey::Balance { denom, .. } => (Some(denom.clone()), None),
        SubscriptionKey::Delegation { validator, .. }
        | SubscriptionKey::UnbondingDelegation { validator, .. } => {
            (None, Some(chain.validator_string(validator)))
        }
        _ => (None, None),
    };
    let stream = StreamType::of(key);
    let params = stream
        .params()
        .iter()
        .map(|p| {
            let value = match p {
                Param::Address | Param::Delegator => chain.account_string(key.account()),
                Param::Denom => denom.clone().unwrap_or_default(),
                Param::Validator => validator.clone().unwrap_or_default(),
            };
            (p.name(Naming::Http), value)
        })
        .collect();
    let stream = stream.name();
    let since_height = match start {
        Start::Snapshot => 0,
        Start::Since(h) => h,
    };
    Accepted {
        stream,
        params,
        since_height,
    }
}

/// What the `/ws` control parser made of a text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A subscribe request; `id` is the raw JSON text the reply will echo.
    Subscribe { id: String, request: Accepted },
    /// An unsubscribe request.
    Unsubscribe { id: String, subscription: String },
    /// The error reply sent instead (JSON text), and whether it counted as a rejection.
    Error { reply: String, counted: bool },
}

/// Parses one `/ws` control message as a connection does.
pub fn ws_control(text: &str) -> Control {
    let chain = chain();
    let metrics = Metrics::default();
    match control::parse(&chain, &metrics, text) {
        Ok(Request::Subscribe { id, key, start }) => Control::Subscribe {
            id: id.raw().to_string(),
            request: accepted(&chain, &key, start),
        },
        Ok(Request::Unsubscribe { id, subscription }) => Control::Unsubscribe {
            id: id.raw().to_string(),
            subscription,
        },
        Err(reply) => Control::Error {
            reply: reply.0,
            counted: metrics.rejected("invalid_request").get() == 1,
        },
    }
}

/// The six RPCs, by number (`rpc % 6`): the request message name and its field names.
pub const RPCS: [(&str, &[&str]); 6] = [
    ("StreamBalanceRequest", &["address", "denom"]),
    ("StreamAllBalancesRequest", &["address"]),
    ("StreamDelegationsRequest", &["delegator_address"]),
    (
        "StreamDelegationRequest",
        &["delegator_address", "validator_address"],
    ),
    ("StreamUnbondingDelegationsRequest", &["delegator_address"]),
    (
        "StreamUnbondingDelegationRequest",
        &["delegator_address", "validator_address"],
    ),
];

/// A gRPC request as the service saw it: its string fields by name, in field order, and
/// `since_height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcFields {
    pub fields: Vec<(&'static str, String)>,
    pub since_height: i64,
}

/// The service's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcOutcome {
    Accepted(Accepted),
    /// `tonic::Code` as a number and the status message.
    Refused {
        code: i32,
        message: String,
    },
}

fn check<R: StreamRequest>(
    r: &R,
    fields: Vec<(&'static str, String)>,
) -> (GrpcFields, GrpcOutcome) {
    let chain = chain();
    let outcome =
        match parse_request(&chain, r).map_err(|e| crate::edge::Refusal::Request(e).grpc()) {
            Ok((start, key)) => GrpcOutcome::Accepted(accepted(&chain, &key, start)),
            Err(status) => GrpcOutcome::Refused {
                code: status.code() as i32,
                message: status.message().to_string(),
            },
        };
    let request = GrpcFields {
        fields,
        since_height: r.since_height(),
    };
    (request, outcome)
}

/// Builds the request message of RPC `rpc % 6` from its string fields (in field order;
/// missing ones empty) and `since_height`, and checks it as the service does.
pub fn grpc_request(rpc: u8, since_height: i64, fields: &[String]) -> (GrpcFields, GrpcOutcome) {
    let f = |i: usize| fields.get(i).cloned().unwrap_or_default();
    let named = |names: &[&'static str]| -> Vec<(&'static str, String)> {
        names.iter().enumerate().map(|(i, n)| (*n, f(i))).collect()
    };
    let (_, names) = RPCS[usize::from(rpc % 6)];
    match rpc % 6 {
        0 => check(
            &StreamBalanceRequest {
                address: f(0),
                denom: f(1),
                since_height,
            },
            named(names),
        ),
        1 => check(
            &StreamAllBalancesRequest {
                address: f(0),
                since_height,
            },
            named(names),
        ),
        2 => check(
            &StreamDelegationsRequest {
                delegator_address: f(0),
                since_height,
            },
            named(names),
        ),
        3 => check(
            &StreamDelegationRequest {
                delegator_address: f(0),
                validator_address: f(1),
                since_height,
            },
            named(names),
        ),
        4 => check(
            &StreamUnbondingDelegationsRequest {
                delegator_address: f(0),
                since_height,
            },
            named(names),
        ),
        _ => check(
            &StreamUnbondingDelegationRequest {
                delegator_address: f(0),
                validator_address: f(1),
                since_height,
            },
            named(names),
        ),
    }
}

/// A decoded change as subscribers of its key would see it after it was applied to an empty
/// state: the WebSocket JSON, and the gRPC `(seconds, nanos)` of each unbonding entry's
/// completion time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub json: String,
    pub grpc_completion_times: Vec<(i64, i32)>,
}

/// Applies `change` to the topic of its own key and renders the resulting value;
/// `None` for validator changes (they are not a subscription's value by themselves).
pub fn render_change(change: &StateChange) -> Option<Rendered> {
    let chain = chain();
    let (key, mut state) = match change {
        StateChange::Balance { address, denom, .. } => (
            SubscriptionKey::Balance {
                address: address.clone(),
                denom: denom.clone(),
            },
            TopicState::Balance(Int::default()),
        ),
        StateChange::Delegation {
            delegator,
            validator,
            ..
        } => (
            SubscriptionKey::Delegation {
                delegator: delegator.clone(),
                validator: validator.clone(),
            },
            TopicState::Delegation(None),
        ),
        StateChange::UnbondingDelegation {
            delegator,
            validator,
            ..
        } => (
            SubscriptionKey::UnbondingDelegation {
                delegator: delegator.clone(),
                validator: validator.clone(),
            },
            TopicState::UnbondingDelegation(None),
        ),
        StateChange::Validator { .. } => return None,
    };
    assert!(state.apply(&key, change), "a change applies to its own key");
    let value = Arc::new(state.value(&key, &chain, &Validators::new()));
    let grpc_completion_times = match value.as_ref() {
        Value::UnbondingDelegation(Some(u)) => crate::grpc::unbonding(u)
            .entries
            .iter()
            .map(|e| {
                let t = e.completion_time.unwrap_or_default();
                (t.seconds, t.nanos)
            })
            .collect(),
        _ => Vec::new(),
    };
    let json = Update::new(1, value, Instant::now()).json().to_string();
    Some(Rendered {
        json,
        grpc_completion_times,
    })
}

/// A state reader with nothing in it: the WebSocket harness never gets as far as a read.
struct NoState;

#[async_trait]
impl StateReader for NoState {
    async fn balances(&self, _: i64, _: &Address) -> Result<Vec<(String, Int)>, ReadError> {
        Ok(Vec::new())
    }

    async fn validators(
        &self,
        _: i64,
    ) -> Result<Vec<(Address, stream_abci_listener::ValidatorTokens)>, ReadError> {
        Ok(Vec::new())
    }

    async fn delegations(&self, _: i64, _: &Address) -> Result<Vec<(Address, Dec)>, ReadError> {
        Ok(Vec::new())
    }

    async fn unbonding_delegations(
        &self,
        _: i64,
        _: &Address,
    ) -> Result<Vec<(Address, Vec<UnbondingEntry>)>, ReadError> {
        Ok(Vec::new())
    }
}

/// The answer to a plain GET (no upgrade) on the WebSocket routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub upgrade: Option<String>,
    pub body: String,
    /// `stream_connection_rejected` increments, by reason, that the request caused.
    pub rejected: HashMap<&'static str, u64>,
}

/// The module's WebSocket router on a runtime of its own, for requests one at a time.
pub struct WsRoutes {
    runtime: tokio::runtime::Runtime,
    module: StreamModule,
    router: axum::Router,
}

impl Default for WsRoutes {
    fn default() -> Self {
        Self::new()
    }
}

impl WsRoutes {
    /// A module on a fresh current-thread runtime, with the default configuration.
    pub fn new() -> WsRoutes {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = StreamConfig::default();
        let module = runtime.block_on(async {
            StreamModule::start(&config, LimitsConfig::default(), chain(), Arc::new(NoState))
        });
        let router = module.websocket_router(&config);
        WsRoutes {
            runtime,
            module,
            router,
        }
    }

    fn rejections(&self) -> HashMap<&'static str, u64> {
        crate::metrics::REJECTION_REASONS
            .iter()
            .map(|r| (*r, self.module.handle.metrics.rejected(r).get()))
            .collect()
    }

    /// `GET <path_and_query>` from 127.0.0.1 without a WebSocket upgrade; `None` when it is
    /// not a URI an HTTP server would route.
    pub fn get(&self, path_and_query: &str) -> Option<HttpReply> {
        use tower_service::Service;
        let uri: axum::http::Uri = path_and_query.parse().ok()?;
        uri.path_and_query()?;
        let mut request = axum::http::Request::get(uri)
            .body(axum::body::Body::empty())
            .ok()?;
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let before = self.rejections();
        let mut router = self.router.clone();
        let response = self.runtime.block_on(async move {
            let response = router.call(request).await.expect("infallible");
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .expect("a small body");
            (parts, body)
        });
        let (parts, body) = response;
        let header = |name| {
            parts
                .headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        let after = self.rejections();
        Some(HttpReply {
            status: parts.status.as_u16(),
            content_type: header(axum::http::header::CONTENT_TYPE),
            upgrade: header(axum::http::header::UPGRADE),
            body: String::from_utf8_lossy(&body).into_owned(),
            rejected: after
                .into_iter()
                .map(|(r, n)| (r, n - before[r]))
                .filter(|(_, n)| *n > 0)
                .collect(),
        })
    }
}
