//! `streamd`: a minimal Cosmos-SDK-compatible node that hosts the stream module.
//!
//! It keeps bank, staking and auth state in the Cosmos SDK v0.50 store layout, accepts real
//! SIGN_MODE_DIRECT transactions through `cosmos.tx.v1beta1.Service/BroadcastTx`, answers the
//! standard queries (honouring `x-cosmos-block-height`), and produces blocks on a timer or
//! lets CometBFT v0.38 drive it over ABCI ([`abci`]). The state machine ([`chain`]) is an
//! ABCI-shaped application ([`app::App`]: InitChain, CheckTx, FinalizeBlock, Commit) and hands
//! every committed change set to the registered [`stream_abci_listener::CommitListener`]s,
//! which is where the stream module plugs in.
#![warn(missing_docs)]

pub mod abci;
pub mod address;
pub mod api;
pub mod chain;
pub mod cli;
pub mod comet_home;
pub mod config;
pub mod grpc;
pub mod guard;
pub mod keys;
pub mod node;
pub mod plugin;
pub mod simulate;
pub mod stream;
pub mod telemetry;

// The state machine's modules keep their crate-level paths (`crate::app`, `crate::state`, ...).
pub use chain::{app, genesis, state, store, tx};
