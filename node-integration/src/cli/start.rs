//! `streamd start`: loads the home, runs InitChain, serves gRPC and produces blocks until
//! Ctrl-C / SIGTERM; or, with `--with-comet=false`, serves ABCI and lets a separately
//! started CometBFT (`cometbft start --home <same home>`) produce the blocks.

use super::HomeArg;
use crate::app::App;
use crate::config::{NodeConfig, parse_api_address, parse_grpc_address};
use crate::genesis::Genesis;
use crate::node::Node;
use anyhow::{Context, anyhow};
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

/// Simulated transactions per block with `--dev` when `--simulate` is not given.
const DEV_SIMULATE: u32 = 5;

/// `streamd start` arguments.
#[derive(Debug, Args)]
pub struct StartArgs {
    #[command(flatten)]
    home: HomeArg,
    /// Development mode: initialise the home if it does not exist and simulate traffic
    /// (5 txs per block unless --simulate says otherwise).
    #[arg(long)]
    dev: bool,
    /// Time between blocks (e.g. 1s, 200ms).
    #[arg(long, default_value = "1s")]
    block_time: humantime::Duration,
    /// Built-in traffic: signed sends, delegations, undelegations, redelegations and
    /// cancellations per block (0 = none).
    #[arg(long, value_name = "TXS_PER_BLOCK")]
    simulate: Option<u32>,
    /// gRPC listen address (overrides app.toml [grpc] address), e.g. 127.0.0.1:9090.
    #[arg(long = "grpc.address", value_name = "HOST:PORT")]
    grpc_address: Option<String>,
    /// API listen address (overrides app.toml [api] address), e.g. tcp://127.0.0.1:1317.
    #[arg(long = "api.address", value_name = "tcp://HOST:PORT")]
    api_address: Option<String>,
    /// The Cosmos SDK's standalone mode: `--with-comet=false` serves ABCI on `--address` for
    /// a CometBFT v0.38 started separately on the same home (`cometbft start --home <home>
    /// --proxy_app <address>`). Without the flag, streamd produces blocks itself (the dev
    /// chain); streamd has no in-process CometBFT, so `--with-comet=true` is refused.
    #[arg(long = "with-comet", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    with_comet: Option<bool>,
    /// ABCI listen address with `--with-comet=false`.
    #[arg(
        long,
        value_name = "tcp://HOST:PORT",
        default_value = "tcp://127.0.0.1:26658"
    )]
    address: String,
}

/// Runs the node.
pub fn run(args: StartArgs) -> anyhow::Result<ExitCode> {
    let home = args.home.home();
    let abci = match args.with_comet {
        None => false,
        Some(false) if args.dev => {
            anyhow::bail!(
                "--dev runs the embedded dev chain; it cannot be combined with --with-comet=false"
            )
        }
        Some(false) => true,
        Some(true) => anyhow::bail!(
            "streamd has no in-process CometBFT: run `streamd start --with-comet=false --address \
             tcp://127.0.0.1:26658` and `cometbft start --home <same home> --proxy_app \
             tcp://127.0.0.1:26658`, or `streamd start --dev` for the embedded dev chain"
        ),
    };
    if args.dev && !home.genesis().exists() {
        super::init_home(&home, "streamd-dev-1", Duration::from_secs(60), false)?;
        tracing::info!(home = %home.0.display(), "initialised a dev home");
    }
    let mut config = NodeConfig::load(&home)?;
    if let Some(a) = &args.grpc_address {
        parse_grpc_address(a).map_err(|e| anyhow!("--grpc.address: {e}"))?;
        config.app.grpc.address = a.clone();
    }
    if let Some(a) = &args.api_address {
        parse_api_address(a).map_err(|e| anyhow!("--api.address: {e}"))?;
        config.app.api.address = a.clone();
    }
    let block_time: Duration = args.block_time.into();
    if block_time < Duration::from_millis(10) {
        anyhow::bail!("--block-time must be at least 10ms");
    }
    let genesis_text = home.read(&home.genesis())?;
    let genesis = Genesis::from_json(&genesis_text)
        .with_context(|| format!("{}: invalid genesis", home.genesis().display()))?;
    let app =
        App::init_chain(&genesis).map_err(|e| anyhow!("{}: {e}", home.genesis().display()))?;
    let simulate = args
        .simulate
        .unwrap_or(if args.dev { DEV_SIMULATE } else { 0 });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let node = if abci {
            let url = config.comet.rpc.laddr.replacen("tcp://", "http://", 1);
            let rpc = tendermint_rpc::HttpClient::new(url.as_str()).map_err(|e| {
                anyhow!("{}: [rpc] laddr {url:?}: {e}", home.config_toml().display())
            })?;
            Node::comet(app, config.comet.mempool, rpc)
        } else {
            Node::new(app, config.comet.mempool)
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let stream = crate::stream::Stream::start(&node, &home, &config)?;
        // An ADR-038 plugin configured in app.toml [streaming.abci], loaded as the SDK does.
        let _plugin = crate::plugin::host::PluginHost::load(&node, &home)?;
        crate::guard::raise_fd_limit();
        let guard = crate::guard::ConnectionGuard::default();
        let mut tasks = tokio::task::JoinSet::new();
        if config.app.grpc.enable {
            let addr = config.grpc_address(&home)?;
            let listener = crate::grpc::bind(addr).await?;
            let descriptors = stream.as_ref().map(|s| s.descriptors()).unwrap_or_default();
            let mut routes = crate::grpc::routes(&node, descriptors)?;
            if let Some(s) = &stream {
                s.add_grpc(&mut routes);
            }
            let routes = routes.routes();
            let stop = stopped();
            let guard = guard.clone();
            tasks.spawn(async move {
                crate::grpc::serve(listener, routes, guard, stop)
                    .await
                    .map_err(|e| anyhow!("gRPC server: {e}"))
            });
        }
        if config.app.api.enable {
            let addr = config.api_address(&home)?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow!("cannot listen for the API on {addr}: {e} (is another node running? set --api.address)"))?;
            let registry = config.app.telemetry.enabled.then(|| {
                let mut r = prometheus_client::registry::Registry::default();
                node.metrics().register(&mut r);
                guard.register(&mut r);
                if let Some(s) = &stream {
                    s.register_metrics(&mut r);
                }
                r
            });
            let router = crate::api::router(registry, stream.as_ref().map(|s| s.api_router()));
            let stop = stopped();
            let guard = guard.clone();
            tasks.spawn(async move {
                crate::api::serve(listener, router, guard, stop)
                    .await
                    .map_err(|e| anyhow!("API server: {e}"))
            });
        }
        tracing::info!(
            chain = node.chain_id(),
            grpc = if config.app.grpc.enable {
                config.app.grpc.address.as_str()
            } else {
                "disabled"
            },
            api = if config.app.api.enable {
                config.app.api.address.as_str()
            } else {
                "disabled"
            },
            block_time = %humantime::format_duration(block_time),
            simulate_txs_per_block = simulate,
            "node started"
        );
        if abci {
            let server = node.clone();
            let address = args.address.clone();
            let stop = stopped();
            tasks.spawn(async move {
                tokio::select! {
                    r = crate::abci::serve(server, &address) => r,
                    _ = stop => Ok(()),
                }
            });
            eprintln!("streamd: serving ABCI on {} for CometBFT", args.address);
        } else {
            let producer = node.clone();
            let stop = stopped();
            tasks.spawn(async move {
                producer.run_producer(block_time, stop).await;
                Ok(())
            });
        }
        if simulate > 0 {
            let sim = node.clone();
            let stop = stopped();
            tasks.spawn(async move {
                crate::simulate::run(sim, simulate, stop).await;
                Ok(())
            });
        }
        let outcome = tokio::select! {
            r = shutdown_signal() => r.map_err(anyhow::Error::from),
            Some(r) = tasks.join_next() => r.map_err(anyhow::Error::from).and_then(|r| r),
        };
        tracing::info!("shutting down");
        // Streams first: each ends with UNAVAILABLE or close code 1001, which lets the
        // servers drain. Every step is bounded: a client that does not read (its goodbye
        // cannot be written) or never finishes its request does not hold the node up.
        if let Some(s) = &stream {
            s.shutdown(STREAMS_GRACE).await;
        }
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(SERVERS_GRACE, async {
            while let Some(r) = tasks.join_next().await {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "task ended with an error during shutdown");
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                grace = ?SERVERS_GRACE,
                "connections still open after the grace period (unfinished requests or clients \
                 that do not read); closing them"
            );
            tasks.shutdown().await;
        }
        outcome
    });
    // Connection tasks the servers spawned are dropped here, without waiting for them.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result?;
    Ok(ExitCode::SUCCESS)
}

/// How long the streams get, on shutdown, to deliver their final status / close frame.
const STREAMS_GRACE: Duration = Duration::from_millis(1500);
/// How long the servers then get to finish requests in flight before connections are cut.
const SERVERS_GRACE: Duration = Duration::from_millis(1500);

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
