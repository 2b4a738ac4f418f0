//! ADR-038 plugin mode (DESIGN.md section 9): `streamd plugin` streams an unmodified Go
//! Cosmos SDK v0.50+ node, which loads it over hashicorp go-plugin; [`host`] is the other
//! side, so streamd can load the plugin exactly as the SDK does.
//!
//! The plugin answers the go-plugin handshake ([`handshake`]), receives each committed
//! change set through `ABCIListenerService/ListenCommit` and hands it to the stream module's
//! commit hook ([`listener`]), reads snapshots from the host's gRPC queries at a height
//! ([`reader`]), serves the module's gRPC and WebSocket APIs on its own ports, and exits
//! when its host dies ([`watch`]).

pub mod host;

#[cfg(feature = "stream")]
pub mod handshake;
#[cfg(feature = "stream")]
pub mod listener;
#[cfg(feature = "stream")]
pub mod reader;
#[cfg(feature = "stream")]
mod serve;
#[cfg(feature = "stream")]
pub mod watch;

#[cfg(feature = "stream")]
pub use serve::{PluginArgs, run};
