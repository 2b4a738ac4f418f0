//! The services the host calls: `cosmos.store.streaming.abci.ABCIListenerService` (each
//! committed change set enters the module's pipeline and the call returns at once),
//! `grpc.health.v1.Health` and go-plugin's `plugin.GRPCController`.

use futures_util::StreamExt as _;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use stream_abci_listener::{BlockCommit, CommitListener, StoreKVPair};
use stream_proto::adr038::cosmos::store::streaming::abci::abci_listener_service_server::AbciListenerService;
use stream_proto::adr038::cosmos::store::streaming::abci::{
    ListenCommitRequest, ListenCommitResponse, ListenFinalizeBlockRequest,
    ListenFinalizeBlockResponse,
};
use stream_proto::adr038::grpc::health::v1::health_check_response::ServingStatus;
use stream_proto::adr038::grpc::health::v1::health_server::Health;
use stream_proto::adr038::grpc::health::v1::{HealthCheckRequest, HealthCheckResponse};
use stream_proto::adr038::plugin::Empty;
use stream_proto::adr038::plugin::grpc_controller_server::GrpcController;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// Blocks kept while the module waits for the host's gRPC server (it starts after the
/// plugin, and blocks may commit meanwhile); beyond it the oldest are dropped, which costs
/// nothing: the module's first block is whichever it gets first, its snapshots come from
/// state.
pub const WAITING_BLOCKS: usize = 256;

/// Where committed blocks go: held until the module runs, then into its commit hook.
enum Feed {
    Waiting(VecDeque<Arc<BlockCommit>>),
    Live(Arc<dyn CommitListener>),
}

/// The plugin's side of ADR-038: turns the host's calls into [`BlockCommit`]s.
#[derive(Clone)]
pub struct PluginListener {
    feed: Arc<Mutex<Feed>>,
    /// Height and time of the last `ListenFinalizeBlock`: `ListenCommit` carries no time.
    finalized: Arc<Mutex<Option<(i64, SystemTime)>>>,
}

impl Default for PluginListener {
    fn default() -> Self {
        PluginListener {
            feed: Arc::new(Mutex::new(Feed::Waiting(VecDeque::new()))),
            finalized: Arc::new(Mutex::new(None)),
        }
    }
}

impl PluginListener {
    /// Hands the blocks held so far, then every later one, to `listener`.
    pub fn go_live(&self, listener: Arc<dyn CommitListener>) {
        let mut feed = self.feed.lock().expect("feed lock");
        if let Feed::Waiting(blocks) = &mut *feed {
            for b in blocks.drain(..) {
                listener.on_commit(b);
            }
        }
        *feed = Feed::Live(listener);
    }

    fn deliver(&self, commit: Arc<BlockCommit>) {
        let mut feed = self.feed.lock().expect("feed lock");
        match &mut *feed {
            Feed::Live(l) => l.on_commit(commit),
            Feed::Waiting(blocks) => {
                if blocks.len() == WAITING_BLOCKS {
                    blocks.pop_front();
                }
                blocks.push_back(commit);
            }
        }
    }
}

#[tonic::async_trait]
impl AbciListenerService for PluginListener {
    async fn listen_finalize_block(
        &self,
        request: Request<ListenFinalizeBlockRequest>,
    ) -> Result<Response<ListenFinalizeBlockResponse>, Status> {
        if let Some(req) = request.into_inner().req {
            let time = req
                .time
                .and_then(|t| SystemTime::try_from(t).ok())
                .unwrap_or_else(SystemTime::now);
            *self.finalized.lock().expect("finalized lock") = Some((req.height, time));
        }
        Ok(Response::new(ListenFinalizeBlockResponse {}))
    }

    async fn listen_commit(
        &self,
        request: Request<ListenCommitRequest>,
    ) -> Result<Response<ListenCommitResponse>, Status> {
        let req = request.into_inner();
        let height = req.block_height;
        let time = match *self.finalized.lock().expect("finalized lock") {
            Some((h, t)) if h == height => t,
            _ => {
                tracing::debug!(
                    height,
                    "ListenCommit without its ListenFinalizeBlock; block time = now"
                );
                SystemTime::now()
            }
        };
        // Moves the host's bytes into the listener's type: no copy of a large change set.
        let changes = req
            .change_set
            .into_iter()
            .map(|p| StoreKVPair {
                store_key: p.store_key,
                delete: p.delete,
                key: p.key,
                value: p.value,
            })
            .collect();
        self.deliver(Arc::new(BlockCommit {
            height,
            time,
            changes,
        }));
        Ok(Response::new(ListenCommitResponse {}))
    }
}

/// `grpc.health.v1.Health`: go-plugin's host checks service "plugin".
pub struct PluginHealth;

/// The service name go-plugin checks.
pub const HEALTH_SERVICE: &str = "plugin";

#[tonic::async_trait]
impl Health for PluginHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        if service.is_empty() || service == HEALTH_SERVICE {
            Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            }))
        } else {
            Err(Status::not_found(format!(
                "unknown service {service:?}; this plugin reports {HEALTH_SERVICE:?}"
            )))
        }
    }

    type WatchStream = std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, Status>> + Send>,
    >;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let first = self.check(request).await?.into_inner();
        let stream = futures_util::stream::once(async move { Ok(first) })
            .chain(futures_util::stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}

/// `plugin.GRPCController/Shutdown`: the host asks the plugin to stop.
pub struct PluginController(pub watch::Sender<bool>);

#[tonic::async_trait]
impl GrpcController for PluginController {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::info!("the host asked the plugin to shut down");
        let _ = self.0.send(true);
        Ok(Response::new(Empty {}))
    }
}
