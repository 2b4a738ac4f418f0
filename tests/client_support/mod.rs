//! Helpers of the client libraries' end-to-end tests: a TCP proxy that cuts, stalls and
//! refuses connections on command (`proxy`), and a run of a node whose consumers' sequences
//! are held against the standard queries at every height by the gap checker (`run`).
//!
//! Builds on the shared harness (`support`, `stream_support`, `gap_support`), which it only
//! reads.

#![allow(dead_code)] // each test binary uses a different part

pub mod node;
pub mod proxy;
pub mod run;
