//! The state machine: the multi-store, x/auth, x/bank and x/staking, transaction decoding,
//! ante checks and execution, genesis, and the ABCI-shaped [`app::App`] over them.
//!
//! Deterministic and free of I/O (no sockets, clocks or threads): block time, block hash and
//! transactions come in through the proposal, so the dev producer (`crate::node`), the ABCI
//! server CometBFT drives (`crate::abci`) and the tests' replays drive the same code and get
//! the same state and app hash from the same blocks.

pub mod app;
pub mod commitment;
pub mod genesis;
pub mod state;
pub mod store;
pub mod tx;
