//! The request size limit of the node's own gRPC services, answered as gRPC servers answer it.

use std::convert::Infallible;
use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;

/// Largest request message the node's services decode: the Cosmos SDK's `[grpc]
/// max-recv-msg-size` default (10 MiB). It sits above `[mempool] max_tx_bytes` so that an
/// oversized tx still reaches BroadcastTx and gets CometBFT's "Tx too large" answer; past it,
/// the request is refused before its body is read.
pub const MAX_REQUEST_BYTES: usize = 10 << 20;

/// `grpc-status` of tonic's refusal of an oversized message (OUT_OF_RANGE).
const TONIC_TOO_LARGE_STATUS: &str = "11";
/// The start of tonic's `grpc-message` for it.
const TONIC_TOO_LARGE_MESSAGE: &str = "Error, decoded message length too large";
/// RESOURCE_EXHAUSTED, what grpc-go (and so a Cosmos SDK node) answers.
const RESOURCE_EXHAUSTED: HeaderValue = HeaderValue::from_static("8");

/// A service whose refusals of oversized request messages carry RESOURCE_EXHAUSTED, as
/// grpc-go's do, instead of tonic's OUT_OF_RANGE. The limit itself is the wrapped service's
/// `max_decoding_message_size`. Unary calls refuse in the response headers, which is where
/// this looks; a streaming call that sends an oversized message later keeps tonic's code.
#[derive(Clone)]
pub struct SizeLimited<S>(pub S);

impl<S: NamedService> NamedService for SizeLimited<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for SizeLimited<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let response = self.0.call(req);
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            let too_large = headers
                .get("grpc-status")
                .is_some_and(|v| v == TONIC_TOO_LARGE_STATUS)
                && headers
                    .get("grpc-message")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|m| m.replace("%20", " ").starts_with(TONIC_TOO_LARGE_MESSAGE));
            if too_large {
                headers.insert("grpc-status", RESOURCE_EXHAUSTED);
            }
            Ok(response)
        })
    }
}
