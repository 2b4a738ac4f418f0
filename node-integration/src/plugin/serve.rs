//! `streamd plugin`: binds, announces itself to the host, then serves the host's calls and
//! the stream module's APIs until the host goes away.

use super::handshake;
use super::listener::{PluginController, PluginHealth, PluginListener};
use super::reader::{HostReader, host_chain, host_channel};
use super::watch::{HostConnections, tracked, watch_pipes};
use crate::config::{CometConfig, Home, parse_api_address, parse_grpc_address};
use anyhow::{Context, anyhow};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use stream_module::{DecodingReader, LimitsConfig, StreamConfig, StreamModule};
use stream_proto::adr038::cosmos::store::streaming::abci::abci_listener_service_server::AbciListenerServiceServer;
use stream_proto::adr038::grpc::health::v1::health_server::HealthServer;
use stream_proto::adr038::plugin::grpc_controller_server::GrpcControllerServer;
use tokio::sync::watch;

/// `streamd plugin` arguments (DESIGN.md section 9).
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// The Go node's home: limits from config/config.toml `[rpc]`, the optional `[stream]`
    /// table and the node's gRPC address from config/app.toml.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// Where the plugin serves `juno.stream.v1` (the node keeps 9090).
    #[arg(
        long = "grpc.address",
        value_name = "HOST:PORT",
        default_value = "0.0.0.0:9091"
    )]
    grpc_address: String,
    /// Where the plugin serves the WebSocket streams (the node keeps 1317).
    #[arg(
        long = "api.address",
        value_name = "tcp://HOST:PORT",
        default_value = "tcp://0.0.0.0:1318"
    )]
    api_address: String,
    /// The node's gRPC server, for state reads [default: app.toml `[grpc] address`, else
    /// http://127.0.0.1:9090].
    #[arg(long = "node-grpc", value_name = "URL")]
    node_grpc: Option<String>,
}

/// Everything read before the handshake: a bad home fails before the host connects.
struct Setup {
    stream: StreamConfig,
    limits: LimitsConfig,
    telemetry: bool,
    node_grpc: String,
    plugin: std::net::TcpListener,
    grpc: std::net::TcpListener,
    api: std::net::TcpListener,
}

/// The node's gRPC address from app.toml as a URL the plugin can dial.
fn node_grpc_from_app_toml(app: &toml::Table) -> Option<String> {
    let address = app.get("grpc")?.get("address")?.as_str()?;
    let address = address.strip_prefix("tcp://").unwrap_or(address);
    let address = address.replace("0.0.0.0", "127.0.0.1");
    Some(format!("http://{address}"))
}

fn bind(addr: SocketAddr, what: &str, flag: &str) -> anyhow::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| anyhow!("cannot listen for {what} on {addr}: {e} (set {flag})"))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

fn setup(args: PluginArgs) -> anyhow::Result<Setup> {
    let home = Home(args.home);
    let comet: CometConfig = toml::from_str(&home.read(&home.config_toml())?)
        .map_err(|e| anyhow!("{}: {e}", home.config_toml().display()))?;
    let app: toml::Table = match std::fs::read_to_string(home.app_toml()) {
        Ok(text) => text
            .parse()
            .map_err(|e| anyhow!("{}: {e}", home.app_toml().display()))?,
        Err(_) => toml::Table::new(),
    };
    let stream_table = match app.get("stream") {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => toml::Table::new(),
    };
    let stream = StreamConfig::from_table_at(&stream_table, &home.0)
        .map_err(|e| anyhow!("{}: {e}", home.app_toml().display()))?;
    if !stream.enable {
        anyhow::bail!(
            "{}: [stream] enable = false leaves the plugin nothing to serve; remove the plugin \
             from [streaming.abci] instead",
            home.app_toml().display()
        );
    }
    let telemetry = app
        .get("telemetry")
        .and_then(|t| t.get("enabled"))
        .and_then(|e| e.as_bool())
        .unwrap_or(false);
    let node_grpc = args
        .node_grpc
        .or_else(|| node_grpc_from_app_toml(&app))
        .unwrap_or_else(|| "http://127.0.0.1:9090".into());
    let grpc_addr =
        parse_grpc_address(&args.grpc_address).map_err(|e| anyhow!("--grpc.address: {e}"))?;
    let api_addr =
        parse_api_address(&args.api_address).map_err(|e| anyhow!("--api.address: {e}"))?;
    Ok(Setup {
        limits: LimitsConfig {
            max_open_connections: comet.rpc.max_open_connections,
            max_subscriptions_per_client: comet.rpc.max_subscriptions_per_client,
        },
        stream,
        telemetry,
        node_grpc,
        plugin: bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            "the host",
            "nothing: the port is chosen by the OS",
        )?,
        grpc: bind(grpc_addr, "gRPC streams", "--grpc.address")?,
        api: bind(api_addr, "WebSocket streams", "--api.address")?,
    })
}

/// Runs the plugin: refuses a wrong handshake with a message on stderr, binds, prints the
/// handshake line as the first stdout line, then serves until the host goes away.
pub fn run(args: PluginArgs) -> anyhow::Result<ExitCode> {
    if let Err(e) = handshake::check(|k| std::env::var(k).ok()) {
        eprintln!("streamd plugin: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let setup = setup(args)?;
    let plugin_addr = setup.plugin.local_addr()?;
    handshake::announce(plugin_addr).context("cannot write the handshake line to stdout")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(setup));
    runtime.shutdown_timeout(Duration::from_millis(200));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// How the plugin learns that its host is gone (see [`super::watch`]).
#[derive(Clone)]
struct HostWatch {
    /// `true` once stdout or stderr has lost its reader.
    pipes: watch::Receiver<bool>,
    /// Whether the pipes are watched; if not, the host's connection is.
    pipes_watched: bool,
    connections: HostConnections,
}

impl HostWatch {
    async fn gone(mut self) -> &'static str {
        if self.pipes_watched {
            let _ = self.pipes.wait_for(|g| *g).await;
            "the host closed our stdout/stderr"
        } else {
            self.connections.host_gone().await;
            "the host's connection closed"
        }
    }
}

/// Why the plugin stops.
async fn ended(host: HostWatch, mut shutdown: watch::Receiver<bool>) -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return "cannot watch SIGTERM",
    };
    tokio::select! {
        reason = host.gone() => reason,
        _ = shutdown.wait_for(|s| *s) => "the host asked us to shut down",
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
    }
}

/// Bound on the whole exit once the host is gone: DESIGN.md asks for 2 s.
const EXIT_DEADLINE: Duration = Duration::from_millis(1500);

async fn serve(setup: Setup) -> anyhow::Result<()> {
    let (pipes_tx, pipes) = watch::channel(false);
    let connections = HostConnections::default();
    let host = HostWatch {
        pipes_watched: watch_pipes(pipes_tx),
        pipes,
        connections: connections.clone(),
    };
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (stop_tx, stop) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // The host's side: ListenFinalizeBlock / ListenCommit, health, shutdown.
    let listener = PluginListener::default();
    let plugin_incoming = tracked(
        tokio::net::TcpListener::from_std(setup.plugin)?,
        connections.clone(),
    );
    let plugin_server = tonic::transport::Server::builder()
        .add_service(
            AbciListenerServiceServer::new(listener.clone())
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(HealthServer::new(PluginHealth))
        .add_service(GrpcControllerServer::new(PluginController(shutdown_tx)))
        .serve_with_incoming_shutdown(plugin_incoming, stopped());
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(async move {
        plugin_server
            .await
            .map_err(|e| anyhow!("plugin gRPC server: {e}"))
    });

    // The module, once the host's gRPC server answers (it starts after its plugins).
    let channel = host_channel(&setup.node_grpc)?;
    let node_grpc = setup.node_grpc.clone();
    let live = async {
        let mut waited = false;
        let chain = loop {
            match host_chain(&channel).await {
                Ok(c) => break c,
                Err(e) => {
                    if !waited {
                        tracing::info!(node = %node_grpc, error = %e.message(), "waiting for the host's gRPC queries");
                        waited = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        tracing::info!(
            prefix = %chain.account_prefix,
            bond_denom = %chain.bond_denom,
            "host found; streaming"
        );
        let reader = Arc::new(DecodingReader(HostReader::new(
            channel.clone(),
            chain.clone(),
        )));
        StreamModule::start(&setup.stream, setup.limits, chain, reader)
    };
    let outcome = tokio::select! {
        module = live => Ok(module),
        reason = ended(host.clone(), shutdown.clone()) => Err(reason),
    };
    let module = match outcome {
        Ok(module) => module,
        Err(reason) => {
            tracing::info!(reason, "plugin stopping before the host's gRPC answered");
            let _ = stop_tx.send(true);
            return Ok(());
        }
    };
    listener.go_live(module.commit_listener());

    let guard = crate::guard::ConnectionGuard::default();
    let routes = stream_routes(&module)?;
    let grpc = tokio::net::TcpListener::from_std(setup.grpc)?;
    let (stop, g) = (stopped(), guard.clone());
    tasks.spawn(async move {
        crate::grpc::serve(grpc, routes, g, stop)
            .await
            .map_err(|e| anyhow!("gRPC server: {e}"))
    });
    let registry = setup.telemetry.then(|| {
        let mut r = prometheus_client::registry::Registry::default();
        guard.register(&mut r);
        module.register_metrics(&mut r);
        r
    });
    let router = crate::api::router(
        registry,
        Some(
            module
                .websocket_router(&setup.stream)
                .merge(module.operator_router()),
        ),
    );
    let api = tokio::net::TcpListener::from_std(setup.api)?;
    let (stop, g) = (stopped(), guard.clone());
    tasks.spawn(async move {
        crate::api::serve(api, router, g, stop)
            .await
            .map_err(|e| anyhow!("API server: {e}"))
    });

    let reason = tokio::select! {
        r = ended(host, shutdown) => r,
        Some(r) = tasks.join_next() => {
            r.map_err(anyhow::Error::from).and_then(|r| r)?;
            "a server ended"
        }
    };
    tracing::info!(reason, "plugin stopping");
    // Whatever a client does, the process is gone within the deadline.
    std::thread::spawn(|| {
        std::thread::sleep(EXIT_DEADLINE);
        std::process::exit(0);
    });
    module.shutdown(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// `juno.stream.v1.Query` with server reflection (v1 and v1alpha, for grpcurl 1.8).
fn stream_routes(module: &StreamModule) -> anyhow::Result<tonic::service::Routes> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(stream_module::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(module.grpc_service())
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    Ok(routes.routes())
}
