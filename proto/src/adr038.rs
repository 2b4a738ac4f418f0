//! ADR-038 plugin mode (DESIGN.md section 9): the services a Go Cosmos SDK v0.50 node and
//! hashicorp go-plugin speak to an out-of-process streaming plugin, client and server code.
//!
//! The CometBFT messages are a subset (the fields the plugin reads), so the host's full
//! messages decode into them; everything else is wire-identical to the Go definitions.

/// `cosmos.store`: `v1beta1.StoreKVPair` and `streaming.abci.ABCIListenerService`.
pub mod cosmos {
    /// `cosmos.store`.
    pub mod store {
        /// `cosmos.store.v1beta1` (`StoreKVPair`).
        #[allow(missing_docs, clippy::all)]
        pub mod v1beta1 {
            include!(concat!(env!("OUT_DIR"), "/adr038/cosmos.store.v1beta1.rs"));
        }
        /// `cosmos.store.streaming`.
        pub mod streaming {
            /// `cosmos.store.streaming.abci.ABCIListenerService`.
            #[allow(missing_docs, clippy::all)]
            pub mod abci {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/adr038/cosmos.store.streaming.abci.rs"
                ));
            }
        }
    }
}

/// `tendermint.abci`: the subset of FinalizeBlock and Commit messages a listener reads.
pub mod tendermint {
    /// `tendermint.abci`.
    #[allow(missing_docs, clippy::all)]
    pub mod abci {
        include!(concat!(env!("OUT_DIR"), "/adr038/tendermint.abci.rs"));
    }
}

/// `plugin.GRPCController` (go-plugin: the host asks the plugin to stop).
#[allow(missing_docs, clippy::all)]
pub mod plugin {
    include!(concat!(env!("OUT_DIR"), "/adr038/plugin.rs"));
}

/// `grpc.health.v1.Health` (go-plugin checks service "plugin").
pub mod grpc {
    /// `grpc.health`.
    pub mod health {
        /// `grpc.health.v1`.
        #[allow(missing_docs, clippy::all)]
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/adr038/grpc.health.v1.rs"));
        }
    }
}

/// Encoded descriptors of the services above, for a plugin's server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/adr038/descriptor.bin"));
