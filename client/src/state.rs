//! The connection state of a subscription, published on a `tokio::sync::watch` channel.

use std::fmt;

/// Where a subscription's connection stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// Opening the first stream.
    Connecting,
    /// A stream is open on `endpoint`: values flow as the chain changes.
    Live {
        /// The endpoint serving the stream (one of the configured ones).
        endpoint: String,
    },
    /// The stream was lost (or could not be opened); reconnect attempt `attempt` (1-based,
    /// counted since the subscription was last live) is waiting for its backoff delay or
    /// opening.
    Reconnecting {
        /// 1-based number of this reconnect attempt since the stream was last live.
        attempt: u32,
    },
    /// The subscription ended for good: the request was invalid, the token does not allow
    /// it, or [`crate::ClientConfig::max_attempts`] consecutive attempts failed. The subscription's
    /// stream yields the error, then ends.
    Failed(String),
}

impl ConnectionState {
    /// True while a stream is open.
    pub fn is_live(&self) -> bool {
        matches!(self, ConnectionState::Live { .. })
    }
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionState::Connecting => write!(f, "connecting"),
            ConnectionState::Live { endpoint } => write!(f, "live ({endpoint})"),
            ConnectionState::Reconnecting { attempt } => {
                write!(f, "reconnecting (attempt {attempt})")
            }
            ConnectionState::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}
