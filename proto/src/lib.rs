//! gRPC service code and the reflection descriptor set for streamd and the stream module.
//!
//! The Cosmos SDK services here are generated from a wire-compatible subset of the SDK's
//! protos (see `proto/README.md`); their messages are `cosmos-sdk-proto`'s types, so a
//! service implementation works with the same structs a Cosmos client uses.

/// Re-export so implementors name message types through one path.
pub use cosmos_sdk_proto;

/// Encoded `FileDescriptorSet` of every .proto here, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("descriptor");

/// Encoded `FileDescriptorSet` of `juno.stream.v1` (with its Cosmos imports), for the
/// stream module's reflection.
pub const STREAM_FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("stream_descriptor");

/// The stream module's service, `juno.stream.v1.Query` (messages and service code).
pub mod juno {
    /// `juno.stream`.
    pub mod stream {
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            tonic::include_proto!("juno.stream.v1");
        }
    }
}

/// Cosmos SDK services (service code only; messages live in `cosmos_sdk_proto`).
pub mod cosmos {
    /// `cosmos.auth.v1beta1.Query` (Account).
    pub mod auth {
        #[allow(missing_docs, clippy::all)]
        pub mod v1beta1 {
            tonic::include_proto!("cosmos.auth.v1beta1");
        }
    }
    /// `cosmos.bank.v1beta1.Query` (Balance, AllBalances).
    pub mod bank {
        #[allow(missing_docs, clippy::all)]
        pub mod v1beta1 {
            tonic::include_proto!("cosmos.bank.v1beta1");
        }
    }
    /// `cosmos.staking.v1beta1.Query` (validators, delegations, unbonding delegations).
    pub mod staking {
        #[allow(missing_docs, clippy::all)]
        pub mod v1beta1 {
            tonic::include_proto!("cosmos.staking.v1beta1");
        }
    }
    /// `cosmos.tx.v1beta1.Service` (BroadcastTx, GetTx).
    pub mod tx {
        #[allow(missing_docs, clippy::all)]
        pub mod v1beta1 {
            tonic::include_proto!("cosmos.tx.v1beta1");
        }
    }
    /// `cosmos.base.tendermint.v1beta1.Service` (GetLatestBlock, GetBlockByHeight).
    pub mod base {
        /// Block queries.
        pub mod tendermint {
            #[allow(missing_docs, clippy::all)]
            pub mod v1beta1 {
                tonic::include_proto!("cosmos.base.tendermint.v1beta1");
            }
        }
    }
}

/// The dev chain's own controls (`streamd.dev.v1.Dev`).
pub mod streamd {
    /// `streamd.dev.v1`.
    pub mod dev {
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            tonic::include_proto!("streamd.dev.v1");
        }
    }
}

/// ADR-038 plugin mode: `cosmos.store.streaming.abci.ABCIListenerService`, go-plugin's
/// controller and gRPC health (DESIGN.md section 9).
pub mod adr038;
