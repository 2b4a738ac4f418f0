//! `stream-bench`: measures streamd's streams beside two references on the same machine, in
//! one run and with the same N, message size and tick: a raw WebSocket fan-out server (the
//! limit of writing one frame per connection per tick) and NATS server over WebSocket.
//! Prints one Markdown table, with ours/raw and ours/NATS ratios. See README "Performance".

mod nats;
mod node;
mod ours;
mod process;
mod raw;
mod report;
mod stamp;
mod subscriber;
mod traffic;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "stream-bench",
    about = "Fan-out benchmark: streamd vs a raw WebSocket server vs NATS"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// The raw fan-out reference server (started by the benchmark itself; controlled on stdin).
    RawServer {
        #[arg(long)]
        port: u16,
        #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
        tick: Duration,
        #[arg(long, default_value_t = 100)]
        frame_size: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Subscriptions over WebSocket path routes (one connection each).
    #[arg(long, default_value_t = 1000)]
    ws: usize,
    /// Subscriptions over the multiplexed `/ws` (10 per connection).
    #[arg(long, default_value_t = 0)]
    mux: usize,
    /// gRPC streams (`StreamAllBalances`), on one HTTP/2 connection.
    #[arg(long, default_value_t = 0)]
    grpc: usize,
    /// Dev accounts the subscriptions watch, round robin: 1 = alice only, up to 3 (alice, bob, carol).
    #[arg(long, default_value_t = 1)]
    accounts: usize,
    /// How many of those accounts change in every block (a 1 ujuno send each).
    #[arg(long, default_value_t = 1)]
    changing: usize,
    /// Block time of the node, which is also the references' tick.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    block_time: Duration,
    /// Length of the measured window of each system.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    duration: Duration,
    /// Systems to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "ours,raw,nats")]
    systems: Vec<String>,
    /// The `streamd` binary (default: next to this one).
    #[arg(long)]
    streamd: Option<PathBuf>,
    /// Measure an already running node's gRPC port instead of starting one (with `--api`;
    /// no RSS or CPU figures then).
    #[arg(long = "grpc-addr", requires = "api")]
    grpc_addr: Option<SocketAddr>,
    /// That node's API (WebSocket) port.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// The `nats-server` binary.
    #[arg(long, default_value = "nats-server")]
    nats_server: PathBuf,
    /// Exit with status 1 if any client missed a value.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Command::RawServer {
        port,
        tick,
        frame_size,
    }) = cli.command
    {
        return raw::serve(port, tick, frame_size).await;
    }
    // Thousands of sockets: the soft open-file limit up to the hard one.
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        let _ = rlimit::Resource::NOFILE.set(hard, hard);
    }
    let args = cli.run;
    let n = args.ws + args.mux + args.grpc;
    if n == 0 {
        bail!("nothing to measure: give --ws, --mux or --grpc");
    }
    let mut rows = Vec::new();
    let mut frame_size = 100;
    for system in &args.systems {
        eprintln!("running {system} with N = {n}...");
        let row = match system.as_str() {
            "ours" => {
                let row = run_ours(&args).await?;
                frame_size = row.frame_bytes.max(1);
                row
            }
            "raw" => raw::run(n, args.block_time, frame_size, args.duration).await?,
            "nats" => {
                nats::run(
                    &args.nats_server,
                    n,
                    args.block_time,
                    frame_size,
                    args.duration,
                )
                .await?
            }
            other => bail!("unknown system {other:?} (ours, raw, nats)"),
        };
        eprintln!("{}", report::row(&row));
        rows.push(row);
    }
    println!(
        "\nN = {n} ({} path WebSocket, {} /ws, {} gRPC), tick {}, {} per system\n",
        args.ws,
        args.mux,
        args.grpc,
        humantime::format_duration(args.block_time),
        humantime::format_duration(args.duration)
    );
    println!("{}", report::header());
    for row in &rows {
        println!("{}", report::row(row));
    }
    if let Some(ours) = rows.iter().find(|r| r.system == "streamd") {
        for reference in rows.iter().filter(|r| r.system != "streamd") {
            println!("{}", report::ratio(ours, reference));
        }
    }
    let missed: usize = rows.iter().map(|r| r.missed).sum();
    if args.check && missed > 0 {
        bail!("{missed} clients missed a value");
    }
    Ok(())
}

async fn run_ours(args: &RunArgs) -> Result<report::Row> {
    let plan = ours::Plan {
        ws: args.ws,
        mux: args.mux,
        grpc: args.grpc,
        accounts: args.accounts,
        changing: args.changing,
        duration: args.duration,
    };
    if let (Some(grpc), Some(api)) = (args.grpc_addr, args.api) {
        return ours::run(&plan, grpc, api, None).await;
    }
    let bin = match &args.streamd {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("streamd"),
    };
    let block_time = humantime::format_duration(args.block_time).to_string();
    let node = node::Node::start(&bin, &block_time).await?;
    let row = ours::run(&plan, node.grpc, node.api, Some(node.pid())).await;
    drop(node);
    row
}
