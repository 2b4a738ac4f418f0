//! The stream module in the node: raw reads of the node's committed versions, and
//! start-up from the node's config.

#[cfg(feature = "stream")]
mod enabled {
    use crate::config::{Home, NodeConfig};
    use crate::node::Node;
    use crate::store::StoreKey;
    use async_trait::async_trait;
    use prometheus_client::registry::Registry;
    use std::sync::Arc;
    use std::time::Duration;
    use stream_module::{
        Chain, DecodingReader, KvReader, LimitsConfig, ReadError, StreamConfig, StreamModule,
    };
    use tonic::service::RoutesBuilder;

    /// Raw reads of the node's kept versions; the module decodes them
    /// ([`DecodingReader`]) with the change-set decoder, so snapshots and updates cannot
    /// disagree.
    pub struct NodeReader(pub Node);

    #[async_trait]
    impl KvReader for NodeReader {
        fn earliest_height(&self) -> Option<i64> {
            self.0.oldest_kept()
        }

        async fn scan(
            &self,
            height: i64,
            store: &'static str,
            prefix: Vec<u8>,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ReadError> {
            let err = |reason: String| ReadError { height, reason };
            let store = StoreKey::ALL
                .into_iter()
                .find(|s| s.name() == store)
                .ok_or_else(|| err(format!("no store named {store:?}")))?;
            let version = self
                .0
                .version(Some(height))
                .map_err(|e| err(e.to_string()))?;
            Ok(version
                .state
                .prefix(store, &prefix)
                .map(|(k, v)| (k.clone(), v.clone()))
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
            let stream = StreamConfig::from_table_at(&config.app.stream, &home.0)
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
            let module = StreamModule::start(
                &stream,
                limits,
                chain,
                Arc::new(DecodingReader(NodeReader(node.clone()))),
            );
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

        /// The module's routes for the API port: the WebSocket routes, `/health` and `/stats`.
        pub fn api_router(&self) -> axum::Router {
            self.module
                .websocket_router(&self.config)
                .merge(self.module.operator_router())
        }

        /// Registers the module's metrics in the node's telemetry.
        pub fn register_metrics(&self, registry: &mut Registry) {
            self.module.register_metrics(registry);
        }

        /// Ends every stream (gRPC UNAVAILABLE, WebSocket 1001) and waits for the goodbyes, at
        /// most `grace` (or one write timeout, if shorter).
        pub async fn shutdown(&self, grace: Duration) {
            self.module
                .shutdown(grace.min(self.config.websocket.write_timeout))
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
        pub fn api_router(&self) -> axum::Router {
            match self.0 {}
        }
        /// Unreachable.
        pub fn register_metrics(&self, _: &mut Registry) {
            match self.0 {}
        }
        /// Unreachable.
        pub async fn shutdown(&self, _: std::time::Duration) {
            match self.0 {}
        }
    }
}

#[cfg(not(feature = "stream"))]
pub use disabled::Stream;
