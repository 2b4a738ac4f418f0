//! Helpers of the client libraries' end-to-end tests: a TCP proxy that cuts, stalls and
//! refuses connections on command (`proxy`), a run of a node whose consumers' sequences
//! are held against the standard queries at every height by the gap checker (`run`), and
//! token auth with short-lived tokens (`auth`).
//!
//! Builds on the shared harness (`support`, `stream_support`, `gap_support`), which it only
//! reads.

#![allow(dead_code)] // each test binary uses a different part

pub mod auth;
pub mod node;
pub mod proxy;
pub mod run;
