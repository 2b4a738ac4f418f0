//! The gap checker's parts: seeded choices (`rng`), the streams clients follow and their values
//! in one canonical JSON form (`target`), what each client received (`transcript`), the four
//! transports (gRPC, WebSocket path routes, `/ws`, SSE through curl) as clients that can be slowed, paused and killed (`transport`), the behaviours
//! that drive them (`behaviour`), the node's commit timeline (`timeline`), the standard
//! queries' value of every followed stream at every height (`history`), and the checker that
//! holds every transcript against them (`checker`).
//!
//! Builds on the shared harness (`support`, `stream_support`, `ws_support`), which it only
//! reads.

#![allow(dead_code)] // the two test binaries use different parts

pub mod behaviour;
pub mod checker;
pub mod history;
pub mod rng;
pub mod sse;
pub mod target;
pub mod timeline;
pub mod transcript;
pub mod transport;
