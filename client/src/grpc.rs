//! The gRPC transport: one HTTP/2 connection per attempt, with HTTP/2 keepalive pings, and
//! the one place a gRPC status becomes a [`Failure`].

use futures_util::{StreamExt, TryStreamExt};
use stream_proto::juno::stream::v1::query_client::QueryClient;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

use crate::attempt::Failure;
use crate::config::ClientConfig;
use crate::topic::{GrpcCall, Topic, Values};

/// Connects to `endpoint` and opens `topic`'s stream from `since` (None: snapshot first),
/// with `authorization: Bearer <token>` metadata when there is a token.
///
/// A fresh connection per attempt: a subscription that moves on after a failure never reuses
/// a connection the failure may have left half dead. The connection pings the node after
/// `keepalive_interval` without a frame and is closed (the stream then fails) when the ping
/// is not answered within `keepalive_timeout`: that is how a stalled connection is found.
pub(crate) async fn open<T: Topic>(
    topic: &T,
    config: &ClientConfig,
    endpoint: &str,
    since: Option<i64>,
    token: Option<&str>,
) -> Result<Values<T::Value, Failure>, Failure> {
    let authorization = token
        .map(|t| {
            format!("Bearer {t}").parse().map_err(|_| {
                Failure::Retry("the token provider gave a token that is not ASCII text".into())
            })
        })
        .transpose()?;
    let endpoint = Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| Failure::Invalid(format!("endpoint {endpoint:?}: {e}")))?
        .connect_timeout(config.connect_timeout)
        .http2_keep_alive_interval(config.keepalive_interval)
        .keep_alive_timeout(config.keepalive_timeout)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    let opening = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| Failure::Retry(format!("connect: {}", error_chain(&e))))?;
        let call = GrpcCall {
            client: QueryClient::new(channel),
            authorization,
        };
        topic.grpc(call, since.unwrap_or(0)).await.map_err(failure)
    };
    let values = tokio::time::timeout(config.connect_timeout, opening)
        .await
        .map_err(|_| {
            Failure::Retry(format!(
                "the stream did not open within {:?}",
                config.connect_timeout
            ))
        })??;
    Ok(values.map_err(failure).boxed())
}

/// What a status means for the subscription.
fn failure(status: Status) -> Failure {
    let message = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        // The resume cannot be served (outside the replay window, fell behind, a block
        // gap): the driver resumes again or takes a fresh snapshot.
        Code::OutOfRange => Failure::Gone(message),
        // A `since_height` above the node's latest height: this node is behind the one that
        // served the stream before (failover); another attempt (or this node, later) serves it.
        Code::InvalidArgument if status.message().starts_with("since_height") => {
            Failure::Retry(message)
        }
        // A bad address or denom: the same everywhere, forever.
        Code::InvalidArgument => Failure::Invalid(status.message().to_owned()),
        // The token's `stream` claim does not allow this stream: a new token of the same
        // kind would not either.
        Code::PermissionDenied => Failure::Denied(message),
        // No token, an invalid one, or the stream's token expired: back off; the next
        // attempt asks the provider for a fresh token and resumes from the last height.
        Code::Unauthenticated => Failure::Retry(message),
        // UNAVAILABLE (node shutting down), RESOURCE_EXHAUSTED (limits), transport errors
        // (UNKNOWN / INTERNAL / CANCELLED from a cut connection), anything else: back off.
        _ => Failure::Retry(message),
    }
}

/// An error and its sources, one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_token_is_retried_and_a_narrower_one_fails() {
        let expired = Status::unauthenticated(
            "the token expired; reconnect with a new one (and since_height)",
        );
        assert!(matches!(failure(expired), Failure::Retry(m) if m.contains("expired")));
        assert!(matches!(
            failure(Status::unauthenticated("token rejected: bad signature")),
            Failure::Retry(_)
        ));
        assert!(matches!(
            failure(Status::permission_denied("the token does not allow bank/balances")),
            Failure::Denied(m) if m.contains("does not allow")
        ));
    }
}
