//! The errors a subscription ends with. Everything else (cuts, node restarts, limits, a
//! resume outside the replay window) the client handles itself.

/// Why a subscription stopped for good. It is yielded once, as the stream's last item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node refused the request itself (gRPC `INVALID_ARGUMENT`, WebSocket HTTP 400):
    /// a bad address or denom. Retrying cannot help.
    #[error("the node refused the request: {0}")]
    InvalidRequest(String),
    /// The node accepted the token but its `stream` claim does not allow this subscription
    /// (gRPC `PERMISSION_DENIED`, HTTP 403). Retrying with the same kind of token cannot
    /// help: the provider must issue one that allows this stream type and address.
    #[error("the token does not allow this stream: {0}")]
    PermissionDenied(String),
    /// [`crate::ClientConfig::max_attempts`] consecutive attempts failed.
    #[error("gave up after {attempts} consecutive failed attempts; the last one: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// What the last attempt failed with.
        last: String,
    },
}

/// A configuration the client cannot work with (returned by [`crate::StreamClient::new`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No endpoint to connect to.
    #[error("no endpoint: give at least one (e.g. http://127.0.0.1:9090)")]
    NoEndpoints,
    /// An endpoint that is not a URL of the chosen transport.
    #[error("endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
}
