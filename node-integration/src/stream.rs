//! The stream module in the node: its `StateReader` over the node's committed versions, and
//! start-up from the node's config.

#[cfg(feature = "stream")]
mod enabled {
    use crate::address::Addr;
    use crate::config::{Home, NodeConfig};
    use crate::node::Node;
    use crate::state::keys;
    use crate::store::{MultiStore, StoreKey};
    use async_trait::async_trait;
    use prometheus_client::registry::Registry;
    use std::sync::Arc;
    use stream_abci_listener::{
        Address, Dec, Int, StateChange, StoreKVPair, UnbondingEntry, ValidatorTokens, decode_pair,
    };
    use stream_module::{Chain, LimitsConfig, ReadError, StateReader, StreamConfig, StreamModule};
    use tonic::service::RoutesBuilder;

    /// Reads committed state from the node's kept versions, decoding store entries with the
    /// same decoder that decodes change sets, so snapshots and updates cannot disagree.
    pub struct NodeReader(pub Node);

    impl NodeReader {
        fn state(&self, height: i64) -> Result<MultiStore, ReadError> {
            self.0
                .version(Some(height))
                .map(|c| c.state.clone())
                .map_err(|e| ReadError {
                    height,
                    reason: e.to_string(),
                })
        }
    }

    /// Decodes every entry under `prefix` as a state change.
    fn scan(state: &MultiStore, store: StoreKey, prefix: &[u8]) -> Vec<StateChange> {
        state
            .prefix(store, prefix)
            .filter_map(|(k, v)| {
                let pair = StoreKVPair {
                    store_key: store.name().into(),
                    delete: false,
                    key: k.clone(),
                    value: v.clone(),
                };
                match decode_pair(&pair) {
                    Ok(change) => change,
                    Err(e) => {
                        tracing::warn!(error = %e, "undecodable store entry skipped in a snapshot");
                        None
                    }
                }
            })
            .collect()
    }

    fn addr(a: &Address) -> Addr {
        Addr(a.as_bytes().to_vec())
    }

    #[async_trait]
    impl StateReader for NodeReader {
        async fn balances(
            &self,
            height: i64,
            address: &Address,
        ) -> Result<Vec<(String, Int)>, ReadError> {
            let state = self.state(height)?;
            Ok(
                scan(&state, StoreKey::Bank, &keys::balances(&addr(address)))
                    .into_iter()
                    .filter_map(|c| match c {
                        StateChange::Balance { denom, amount, .. } => Some((denom, amount)),
                        _ => None,
                    })
                    .collect(),
            )
        }

        async fn validators(
            &self,
            height: i64,
        ) -> Result<Vec<(Address, ValidatorTokens)>, ReadError> {
            let state = self.state(height)?;
            Ok(scan(&state, StoreKey::Staking, keys::VALIDATORS)
                .into_iter()
                .filter_map(|c| match c {
                    StateChange::Validator {
                        operator,
                        value: Some(v),
                    } => Some((operator, v)),
                    _ => None,
                })
                .collect())
        }

        async fn delegations(
            &self,
            height: i64,
            delegator: &Address,
        ) -> Result<Vec<(Address, Dec)>, ReadError> {
            let state = self.state(height)?;
            Ok(scan(
                &state,
                StoreKey::Staking,
                &keys::delegations(&addr(delegator)),
            )
            .into_iter()
            .filter_map(|c| match c {
                StateChange::Delegation {
                    validator,
                    shares: Some(s),
                    ..
                } => Some((validator, s)),
                _ => None,
            })
            .collect())
        }

        async fn unbonding_delegations(
            &self,
            height: i64,
            delegator: &Address,
        ) -> Result<Vec<(Address, Vec<UnbondingEntry>)>, ReadError> {
            let state = self.state(height)?;
            Ok(scan(
                &state,
                StoreKey::Staking,
                &keys::unbondings(&addr(delegator)),
            )
            .into_iter()
            .filter_map(|c| match c {
                StateChange::UnbondingDelegation {
                    validator,
                    entries: Some(e),
                    ..
                } => Some((validator, e)),
                _ => None,
            })
            .collect())
        }
    }

    /// The module as the node runs it.
    pub struct Stream {
        module: StreamModule,
        config: StreamConfig,
    }

    impl Stream {
        /// Starts the module if `[stream] enable` (the default) and registers its commit listener.
        pub fn start(
            node: &Node,
            home: &Home,
            config: &NodeConfig,
        ) -> anyhow::Result<Option<Stream>> {
            let stream = StreamConfig::from_table(&config.app.stream)
                .map_err(|e| anyhow::anyhow!("{}: {e}", home.app_toml().display()))?;
            if !stream.enable {
                return Ok(None);
            }
            let params = node.params();
            let chain = Chain {
                account_prefix: params.prefixes.account.clone(),
                validator_prefix: params.prefixes.validator.clone(),
                bond_denom: params.bond_denom.clone(),
            };
            let limits = LimitsConfig {
                max_open_connections: config.comet.rpc.max_open_connections,
                max_subscriptions_per_client: config.comet.rpc.max_subscriptions_per_client,
            };
            let module =
                StreamModule::start(&stream, limits, chain, Arc::new(NodeReader(node.clone())));
            node.add_listener(module.commit_listener());
            Ok(Some(Stream {
                module,
                config: stream,
            }))
        }

        /// Descriptors for the node's gRPC reflection.
        pub fn descriptors(&self) -> &'static [&'static [u8]] {
            &[stream_module::FILE_DESCRIPTOR_SET]
        }

        /// Adds `juno.stream.v1.Query` to the node's gRPC routes.
        pub fn add_grpc(&self, routes: &mut RoutesBuilder) {
            routes.add_service(self.module.grpc_service());
        }

        /// The WebSocket routes for the API port.
        pub fn websocket_router(&self) -> axum::Router {
            self.module.websocket_router(&self.config)
        }

        /// Registers the module's metrics in the node's telemetry.
        pub fn register_metrics(&self, registry: &mut Registry) {
            self.module.metrics().register(registry);
        }

        /// Ends every stream (gRPC UNAVAILABLE, WebSocket 1001) and waits for the goodbyes, at
        /// most one write timeout.
        pub async fn shutdown(&self) {
            self.module
                .shutdown(self.config.websocket.write_timeout)
                .await;
        }
    }
}

#[cfg(feature = "stream")]
pub use enabled::{NodeReader, Stream};

/// Built without the `stream` feature: there is never a module to run.
#[cfg(not(feature = "stream"))]
mod disabled {
    use crate::config::{Home, NodeConfig};
    use crate::node::Node;
    use prometheus_client::registry::Registry;
    use std::convert::Infallible;
    use tonic::service::RoutesBuilder;

    /// Uninhabited: `start` always answers `None`.
    pub struct Stream(Infallible);

    impl Stream {
        /// No module in this build.
        pub fn start(_: &Node, _: &Home, _: &NodeConfig) -> anyhow::Result<Option<Stream>> {
            Ok(None)
        }
        /// Unreachable.
        pub fn descriptors(&self) -> &'static [&'static [u8]] {
            match self.0 {}
        }
        /// Unreachable.
        pub fn add_grpc(&self, _: &mut RoutesBuilder) {
            match self.0 {}
        }
        /// Unreachable.
        pub fn websocket_router(&self) -> axum::Router {
            match self.0 {}
        }
        /// Unreachable.
        pub fn register_metrics(&self, _: &mut Registry) {
            match self.0 {}
        }
        /// Unreachable.
        pub async fn shutdown(&self) {
            match self.0 {}
        }
    }
}

#[cfg(not(feature = "stream"))]
pub use disabled::Stream;
