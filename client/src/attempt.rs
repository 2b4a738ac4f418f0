//! One attempt: a stream opened on one endpoint with one transport, and the ways it can end.

use crate::config::{ClientConfig, Transport};
use crate::topic::{Topic, Values};

/// Why an attempt ended (or never opened), as far as the driver cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A cut or refused connection, a stale one, a node shutting down (UNAVAILABLE / close
    /// 1001), a limit (RESOURCE_EXHAUSTED / 429 / 503): back off, try the next endpoint.
    Retry(String),
    /// The node cannot continue a resume without a gap (OUT_OF_RANGE / HTTP 410 / close
    /// 4410): resume from the last height delivered, or take a fresh snapshot.
    Gone(String),
    /// The request itself is bad (INVALID_ARGUMENT / HTTP 400): give up.
    Invalid(String),
    /// The token does not allow this stream (PERMISSION_DENIED / HTTP 403): give up. (A
    /// missing, invalid or expired token, UNAUTHENTICATED / 401 / close 4001, is `Retry`:
    /// the next attempt asks the provider for a new one.)
    Denied(String),
}

impl Failure {
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Retry(m) | Failure::Gone(m) | Failure::Invalid(m) | Failure::Denied(m) => m,
        }
    }
}

/// Opens `topic` on `endpoint` with the configured transport, from `since` (None: snapshot),
/// presenting a token fresh from the provider, if one is configured.
pub(crate) async fn open<T: Topic>(
    topic: &T,
    config: &ClientConfig,
    endpoint: &str,
    since: Option<i64>,
) -> Result<Values<T::Value, Failure>, Failure> {
    let token = match &config.token {
        None => None,
        Some(source) => Some(
            tokio::time::timeout(config.connect_timeout, source.fetch())
                .await
                .map_err(|_| {
                    Failure::Retry(format!(
                        "the token provider did not answer within {:?}",
                        config.connect_timeout
                    ))
                })?
                .map_err(|e| Failure::Retry(format!("the token provider failed: {e}")))?,
        ),
    };
    let token = token.as_deref();
    match config.transport {
        Transport::Grpc => crate::grpc::open(topic, config, endpoint, since, token).await,
        Transport::WebSocket => crate::ws::open(topic, config, endpoint, since, token).await,
    }
}
