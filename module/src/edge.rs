//! The request edge, shared by every transport (gRPC streams, WebSocket path routes, `/ws`,
//! SSE): the six stream types and their parameters (named here and nowhere else), the one
//! parser from (stream type, parameters) to a typed [`SubscriptionKey`], who is asking
//! ([`Caller`]: the token's subject with auth on, else the IP), admission, and the one error
//! type ([`Refusal`]) with its one conversion to each transport's answer: gRPC `Status`, HTTP
//! status + JSON body, `/ws` error code, WebSocket close code, SSE `error` event.

use crate::auth::{AuthError, Grant};
use crate::chain::{Chain, RequestError};
use crate::handle::{Handle, Start, Subscription};
use crate::key::SubscriptionKey;
use crate::limits::{ClientId, ConnectionPermit, LimitError};
use crate::metrics::{Metrics, Transport};
use crate::outbox::CloseReason;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// The six stream types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// One denom's balance of an account.
    Balance,
    /// Every balance of an account.
    Balances,
    /// Every delegation of a delegator.
    Delegations,
    /// One delegator-validator delegation.
    Delegation,
    /// Every unbonding delegation of a delegator.
    UnbondingDelegations,
    /// One delegator-validator unbonding delegation.
    UnbondingDelegation,
}

/// A stream parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// The account of a balance stream.
    Address,
    /// The denom of a single-balance stream.
    Denom,
    /// The delegator of a staking stream.
    Delegator,
    /// The validator of a single-delegation stream.
    Validator,
}

/// How a transport names parameters (and so how its refusals name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Path segments and `/ws` params: `address`, `denom`, `delegator`, `validator`.
    Http,
    /// The gRPC request fields: `address`, `denom`, `delegator_address`, `validator_address`.
    Grpc,
}

impl StreamType {
    /// Every stream type, in the order the API lists them.
    pub const ALL: [StreamType; 6] = [
        StreamType::Balance,
        StreamType::Balances,
        StreamType::Delegations,
        StreamType::Delegation,
        StreamType::UnbondingDelegations,
        StreamType::UnbondingDelegation,
    ];

    /// The name: the paths' `<stream>` (`/ws/subscribe/bank/balances/...`), `/ws`'s `"stream"`,
    /// and a token's `stream.types` claim.
    pub const fn name(self) -> &'static str {
        match self {
            StreamType::Balance => "bank/balance",
            StreamType::Balances => "bank/balances",
            StreamType::Delegations => "staking/delegations",
            StreamType::Delegation => "staking/delegation",
            StreamType::UnbondingDelegations => "staking/unbonding-delegations",
            StreamType::UnbondingDelegation => "staking/unbonding-delegation",
        }
    }

    /// The stream type called `name`.
    pub fn named(name: &str) -> Result<StreamType, RequestError> {
        StreamType::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| RequestError::UnknownStream(name.to_string()))
    }

    /// Every name, comma-separated (for messages).
    pub fn names() -> String {
        StreamType::ALL.map(StreamType::name).join(", ")
    }

    /// The parameters, in path order.
    pub const fn params(self) -> &'static [Param] {
        match self {
            StreamType::Balance => &[Param::Address, Param::Denom],
            StreamType::Balances => &[Param::Address],
            StreamType::Delegations | StreamType::UnbondingDelegations => &[Param::Delegator],
            StreamType::Delegation | StreamType::UnbondingDelegation => {
                &[Param::Delegator, Param::Validator]
            }
        }
    }

    /// The type of stream that serves `key`.
    pub fn of(key: &SubscriptionKey) -> StreamType {
        match key {
            SubscriptionKey::Balance { .. } => StreamType::Balance,
            SubscriptionKey::Balances { .. } => StreamType::Balances,
            SubscriptionKey::Delegations { .. } => StreamType::Delegations,
            SubscriptionKey::Delegation { .. } => StreamType::Delegation,
            SubscriptionKey::UnbondingDelegations { .. } => StreamType::UnbondingDelegations,
            SubscriptionKey::UnbondingDelegation { .. } => StreamType::UnbondingDelegation,
        }
    }
}

impl Param {
    /// Every parameter.
    pub const ALL: [Param; 4] = [
        Param::Address,
        Param::Denom,
        Param::Delegator,
        Param::Validator,
    ];

    /// Its name under `naming`.
    pub const fn name(self, naming: Naming) -> &'static str {
        match (self, naming) {
            (Param::Address, _) => "address",
            (Param::Denom, _) => "denom",
            (Param::Delegator, Naming::Http) => "delegator",
            (Param::Validator, Naming::Http) => "validator",
            (Param::Delegator, Naming::Grpc) => "delegator_address",
            (Param::Validator, Naming::Grpc) => "validator_address",
        }
    }

    /// What a value looks like on `chain` (for messages).
    pub fn expected(self, chain: &Chain) -> String {
        match self {
            Param::Denom => format!("a denom such as {}", chain.bond_denom),
            Param::Validator => format!("a {}1... address", chain.validator_prefix),
            Param::Address | Param::Delegator => format!("a {}1... address", chain.account_prefix),
        }
    }
}

/// The one parser: `stream`'s key from its parameters (`value`; absent = empty), each checked
/// by the chain's rules and named as the transport names it.
pub fn subscription_key<'a>(
    chain: &Chain,
    stream: StreamType,
    naming: Naming,
    value: impl Fn(Param) -> Option<&'a str>,
) -> Result<SubscriptionKey, RequestError> {
    let text = |p: Param| value(p).unwrap_or("");
    let account = |p: Param| chain.account(p.name(naming), text(p));
    let validator = || chain.validator(Param::Validator.name(naming), text(Param::Validator));
    Ok(match stream {
        StreamType::Balance => SubscriptionKey::Balance {
            address: account(Param::Address)?,
            denom: chain.denom(text(Param::Denom))?,
        },
        StreamType::Balances => SubscriptionKey::Balances {
            address: account(Param::Address)?,
        },
        StreamType::Delegations => SubscriptionKey::Delegations {
            delegator: account(Param::Delegator)?,
        },
        StreamType::Delegation => SubscriptionKey::Delegation {
            delegator: account(Param::Delegator)?,
            validator: validator()?,
        },
        StreamType::UnbondingDelegations => SubscriptionKey::UnbondingDelegations {
            delegator: account(Param::Delegator)?,
        },
        StreamType::UnbondingDelegation => SubscriptionKey::UnbondingDelegation {
            delegator: account(Param::Delegator)?,
            validator: validator()?,
        },
    })
}

/// Why a request is refused or a stream ended, whichever transport it came by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A bad request field (path, query, `/ws` message, gRPC request).
    Request(RequestError),
    /// A plain HTTP request to a WebSocket endpoint.
    NotWebSocket(String),
    /// A broken WebSocket handshake.
    Handshake(String),
    /// A browser `Origin` outside `allowed_origins`.
    Origin(String),
    /// No token, a bad one, or one that does not allow the stream.
    Auth(AuthError),
    /// A connection or subscription limit, or the connect rate.
    Limit(LimitError),
    /// The module could not open the subscription, or ended it.
    Closed(CloseReason),
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Self {
        Refusal::Request(e)
    }
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        Refusal::Auth(e)
    }
}

impl From<LimitError> for Refusal {
    fn from(e: LimitError) -> Self {
        Refusal::Limit(e)
    }
}

impl From<CloseReason> for Refusal {
    fn from(r: CloseReason) -> Self {
        Refusal::Closed(r)
    }
}

/// WebSocket close code of a resumed subscription that cannot continue from where it is
/// (fell behind its queue, blocks skipped): "410 Gone" in the private-use range.
pub const CLOSE_GONE: u16 = 4410;
/// WebSocket close code of a stream whose token expired: "401" in the private-use range.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;

impl std::fmt::Display for Refusal {
    /// The words clients see.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Request(e) => e.fmt(f),
            Refusal::NotWebSocket(m) | Refusal::Handshake(m) => f.write_str(m),
            Refusal::Origin(origin) => write!(
                f,
                "origin {origin:?} is not allowed ([stream] allowed_origins in app.toml)"
            ),
            Refusal::Auth(e) => e.fmt(f),
            Refusal::Limit(e) => e.fmt(f),
            Refusal::Closed(r) => r.fmt(f),
        }
    }
}

impl Refusal {
    /// `stream_connection_rejected{reason}` of a refusal counted here ([`Refusal::count`]);
    /// `None` for those counted where they are decided (limits, replay refusals) and for
    /// stream ends.
    fn reason(&self) -> Option<&'static str> {
        match self {
            Refusal::Request(_) | Refusal::Handshake(_) => Some("invalid_request"),
            Refusal::NotWebSocket(_) => Some("not_websocket"),
            Refusal::Origin(_) => Some("origin_not_allowed"),
            Refusal::Auth(e) => Some(e.reason()),
            Refusal::Closed(CloseReason::Shutdown | CloseReason::Failed(_)) => Some("unavailable"),
            Refusal::Limit(_) | Refusal::Closed(_) => None,
        }
    }

    /// Counts a refusal of a request (not a stream end) in `stream_connection_rejected`.
    pub fn count(self, metrics: &Metrics) -> Refusal {
        if let Some(reason) = self.reason() {
            metrics.rejected(reason).inc();
        }
        self
    }

    /// The HTTP status: the answer of a refused HTTP request, the `code` of a `/ws` error and
    /// of an SSE `error` event.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Refusal::Request(_) | Refusal::Handshake(_) => StatusCode::BAD_REQUEST,
            Refusal::NotWebSocket(_) => StatusCode::UPGRADE_REQUIRED,
            Refusal::Origin(_) => StatusCode::FORBIDDEN,
            Refusal::Auth(AuthError::Forbidden(_)) => StatusCode::FORBIDDEN,
            Refusal::Auth(_) => StatusCode::UNAUTHORIZED,
            Refusal::Limit(LimitError::MaxConnections { .. } | LimitError::ShuttingDown) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Refusal::Limit(
                LimitError::MaxSubscriptions { .. } | LimitError::ConnectRate { .. },
            ) => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Closed(r) => match r {
                CloseReason::Shutdown | CloseReason::Failed(_) => StatusCode::SERVICE_UNAVAILABLE,
                CloseReason::OutOfRange(_) => StatusCode::GONE,
                CloseReason::InvalidArgument(_) => StatusCode::BAD_REQUEST,
                CloseReason::TokenExpired => StatusCode::UNAUTHORIZED,
            },
        }
    }

    /// The gRPC status.
    pub fn grpc(&self) -> tonic::Status {
        use tonic::Code;
        let code = match self {
            Refusal::Request(_) | Refusal::Handshake(_) | Refusal::NotWebSocket(_) => {
                Code::InvalidArgument
            }
            Refusal::Origin(_) | Refusal::Auth(AuthError::Forbidden(_)) => Code::PermissionDenied,
            Refusal::Auth(_) | Refusal::Closed(CloseReason::TokenExpired) => Code::Unauthenticated,
            Refusal::Limit(LimitError::ShuttingDown) => Code::Unavailable,
            Refusal::Limit(_) => Code::ResourceExhausted,
            Refusal::Closed(CloseReason::Shutdown | CloseReason::Failed(_)) => Code::Unavailable,
            Refusal::Closed(CloseReason::OutOfRange(_)) => Code::OutOfRange,
            Refusal::Closed(CloseReason::InvalidArgument(_)) => Code::InvalidArgument,
        };
        let mut metadata = tonic::metadata::MetadataMap::new();
        if let Some(secs) = self.retry_after() {
            metadata.insert("retry-after", secs.into());
        }
        tonic::Status::with_metadata(code, self.to_string(), metadata)
    }

    /// The WebSocket close code of a stream that ends this way.
    pub fn close_code(&self) -> u16 {
        use axum::extract::ws::close_code;
        match self {
            Refusal::Closed(CloseReason::Shutdown) | Refusal::Limit(LimitError::ShuttingDown) => {
                close_code::AWAY
            }
            Refusal::Closed(CloseReason::OutOfRange(_)) => CLOSE_GONE,
            Refusal::Closed(CloseReason::TokenExpired) => CLOSE_TOKEN_EXPIRED,
            Refusal::Auth(_) | Refusal::Origin(_) | Refusal::Limit(_) => close_code::POLICY,
            Refusal::Request(_) | Refusal::Handshake(_) | Refusal::NotWebSocket(_) => {
                close_code::PROTOCOL
            }
            Refusal::Closed(CloseReason::Failed(_) | CloseReason::InvalidArgument(_)) => {
                close_code::ERROR
            }
        }
    }

    /// `Retry-After` seconds (the connect rate).
    fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::Limit(LimitError::ConnectRate {
                retry_after_secs, ..
            }) => Some(*retry_after_secs),
            _ => None,
        }
    }

    /// The JSON of an SSE `error` event: `{"code": <HTTP status>, "error": <message>}`.
    pub fn sse_error(&self) -> String {
        serde_json::json!({"code": self.http_status().as_u16(), "error": self.to_string()})
            .to_string()
    }
}

/// An HTTP refusal: the status and `{"error": message}`, with `Retry-After` (429 for the
/// connect rate), `WWW-Authenticate` (401, RFC 6750) or `Upgrade` (426) where they apply.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.http_status();
        let body = axum::Json(serde_json::json!({"error": self.to_string()}));
        let mut response = (status, body).into_response();
        let h = response.headers_mut();
        if let Some(secs) = self.retry_after() {
            h.insert(header::RETRY_AFTER, secs.into());
        }
        match &self {
            // RFC 9110 15.5.22: a 426 names the protocol to switch to.
            Refusal::NotWebSocket(_) => {
                h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            Refusal::Auth(e) => {
                if let Ok(v) = HeaderValue::from_str(&e.www_authenticate()) {
                    h.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        response
    }
}

/// Who is asking: the client identity limits count (the token's `sub` with auth on, else the
/// IP), the IP, and what the token allows.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// What `max_subscriptions_per_client` and `connect_rate` count.
    pub client: ClientId,
    /// The verified token, with auth on.
    pub grant: Option<Arc<Grant>>,
}

impl Caller {
    /// Whether the token allows `key` (403 otherwise); anything without auth.
    pub fn allows(&self, key: &SubscriptionKey, chain: &Chain) -> Result<(), Refusal> {
        match &self.grant {
            Some(grant) => grant.allows(key, chain).map_err(Refusal::Auth),
            None => Ok(()),
        }
    }

    /// When its streams end for the token's expiry (`None`: never).
    pub fn expires(&self) -> Option<tokio::time::Instant> {
        self.grant.as_ref().map(|g| g.deadline())
    }
}

impl Handle {
    /// Who is asking from `ip` with `token` (the bearer token, if any). With auth on, the
    /// token is required and verified; without, it is ignored.
    pub(crate) fn caller(&self, ip: IpAddr, token: Option<&str>) -> Result<Caller, Refusal> {
        match &self.auth {
            None => Ok(Caller {
                client: ClientId::Ip(ip),
                grant: None,
            }),
            Some(auth) => {
                let grant = auth
                    .verify(token, &self.chain)
                    .map_err(|e| Refusal::Auth(e).count(&self.metrics))?;
                Ok(Caller {
                    client: ClientId::Subject(grant.subject.clone()),
                    grant: Some(Arc::new(grant)),
                })
            }
        }
    }

    /// Admits `caller` over `transport` and opens its one subscription: what the token allows
    /// first, then the subscription slot (so a refused request never counts as a
    /// connection), then the connection, then the subscription itself, which ends when the
    /// token expires.
    pub(crate) async fn open(
        &self,
        caller: &Caller,
        transport: Transport,
        key: SubscriptionKey,
        start: Start,
    ) -> Result<(Subscription, ConnectionPermit), Refusal> {
        caller
            .allows(&key, &self.chain)
            .map_err(|r| r.count(&self.metrics))?;
        let permit = self.limits.subscribe(caller.client.clone(), transport)?;
        let connection = self.limits.connect(transport, caller.client.clone())?;
        let sub = self
            .subscribe(key, start, permit)
            .await
            .map_err(|r| Refusal::Closed(r).count(&self.metrics))?
            .until(caller.expires());
        Ok((sub, connection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_list_the_streams() {
        for s in StreamType::ALL {
            assert_eq!(StreamType::named(s.name()), Ok(s));
        }
        let e = StreamType::named("bank/nope").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "unknown stream \"bank/nope\"; streams: {}",
                StreamType::names()
            )
        );
    }

    #[test]
    fn each_refusal_has_one_answer_per_transport() {
        let expired = Refusal::Closed(CloseReason::TokenExpired);
        assert_eq!(expired.http_status(), StatusCode::UNAUTHORIZED);
        assert_eq!(expired.grpc().code(), tonic::Code::Unauthenticated);
        assert_eq!(expired.close_code(), CLOSE_TOKEN_EXPIRED);
        let gone = Refusal::Closed(CloseReason::OutOfRange("resume".into()));
        assert_eq!(
            (gone.http_status(), gone.grpc().code(), gone.close_code()),
            (StatusCode::GONE, tonic::Code::OutOfRange, CLOSE_GONE)
        );
        let forbidden = Refusal::Auth(AuthError::Forbidden("no".into()));
        assert_eq!(forbidden.http_status(), StatusCode::FORBIDDEN);
        assert_eq!(forbidden.grpc().code(), tonic::Code::PermissionDenied);
        let rate = Refusal::Limit(LimitError::ConnectRate {
            client: ClientId::Ip(IpAddr::from([1, 2, 3, 4])),
            rate: "1/min (burst 1)".into(),
            retry_after_secs: 7,
        });
        assert_eq!(rate.http_status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(rate.grpc().metadata().get("retry-after").unwrap(), "7");
        let response = rate.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(
            Refusal::Closed(CloseReason::Failed("x".into())).sse_error(),
            r#"{"code":503,"error":"x"}"#
        );
    }
}
