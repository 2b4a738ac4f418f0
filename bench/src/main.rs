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
mod scrape;
mod stalled;
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
    /// gRPC streams (`StreamAllBalances`).
    #[arg(long, default_value_t = 0)]
    grpc: usize,
    /// HTTP/2 connections the gRPC streams are spread over, round robin.
    #[arg(long, default_value_t = 10)]
    grpc_conns: usize,
    /// Dev accounts the subscriptions watch, round robin: 1 = alice only, up to 3 (alice, bob, carol).
    #[arg(long, default_value_t = 1)]
    accounts: usize,
    /// How many of those accounts change in every block (a 1 ujuno send each).
    #[arg(long, default_value_t = 1)]
    changing: usize,
    /// Every subscription watches a fresh address of its own (instead of dev accounts);
    /// alice sends 1 ujuno to `--changing-fraction` of them in every block.
    #[arg(long)]
    own_accounts: bool,
    /// With --own-accounts: the share of the subscribed addresses that change per block.
    #[arg(long, default_value_t = 0.1)]
    changing_fraction: f64,
    /// Also measure M WebSocket clients that subscribe and never read: the node's block
    /// interval with them against idle, and its memory growth (a node of its own).
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Length of each of the never-reading measurement's two windows (idle, stalled): long
    /// enough for the clients' receive windows to fill and the node's writes to them to block.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    stalled_duration: Duration,
    /// Runs of every system; the table shows the median of each column.
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Block time of the node, which is also the references' tick.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    block_time: Duration,
    /// Length of the measured window of each system.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s")]
    duration: Duration,
    /// Systems to run, in order (`--systems ''` runs none, e.g. for --stalled alone).
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
    let machine = machine();
    let mut runs: Vec<(String, Vec<report::Row>)> = Vec::new();
    let mut loads = Vec::new();
    let mut frame_size = 100;
    let any_system = args.systems.iter().any(|s| !s.is_empty());
    for run in 1..=args.runs.max(1) {
        if any_system {
            loads.push(load());
        }
        for system in args.systems.iter().filter(|s| !s.is_empty()) {
            eprintln!("run {run}: {system} with N = {n}...");
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
            match runs.iter_mut().find(|(s, _)| s == system) {
                Some((_, rows)) => rows.push(row),
                None => runs.push((system.clone(), vec![row])),
            }
        }
    }
    let mut stalled_runs = Vec::new();
    if args.stalled > 0 {
        let bin = streamd(&args)?;
        let block_time = humantime::format_duration(args.block_time).to_string();
        for run in 1..=args.runs.max(1) {
            if !any_system {
                loads.push(load());
            }
            eprintln!("run {run}: {} never-reading clients...", args.stalled);
            let row = stalled::run(&bin, &block_time, args.stalled, args.stalled_duration).await?;
            eprintln!("{row:?}");
            stalled_runs.push(row);
        }
    }
    loads.push(load());
    let rows: Vec<report::Row> = runs.iter().map(|(_, r)| report::Row::median(r)).collect();
    println!(
        "\nN = {n} ({} path WebSocket, {} /ws, {} gRPC over {} HTTP/2 connections), {}, tick {}, {} per system, {}\n",
        args.ws,
        args.mux,
        args.grpc,
        args.grpc_conns,
        if args.own_accounts {
            format!(
                "each on its own address, {}% changing per block",
                args.changing_fraction * 100.0
            )
        } else {
            format!(
                "{} dev account(s), {} changing per block",
                args.accounts, args.changing
            )
        },
        humantime::format_duration(args.block_time),
        humantime::format_duration(args.duration),
        match args.runs {
            0 | 1 => "one run".to_owned(),
            r => format!("median of {r} runs"),
        },
    );
    println!(
        "Machine: {machine}; load average (1 min) before each run and after the last: {}\n",
        loads.join(", ")
    );
    if !rows.is_empty() {
        println!("{}", report::header());
    }
    for row in &rows {
        println!("{}", report::row(row));
    }
    if let Some(ours) = rows.iter().find(|r| r.system == "streamd") {
        for reference in rows.iter().filter(|r| r.system != "streamd") {
            println!("{}", report::ratio(ours, reference));
        }
        if !ours.rss_by_transport.is_empty() {
            println!("\n| streamd memory by transport | RSS/sub KiB |\n|---|---|");
            for (transport, kib) in &ours.rss_by_transport {
                println!("| {transport} | {kib:.1} |");
            }
        }
    }
    if !stalled_runs.is_empty() {
        println!("\n{}", stalled::table(&stalled_runs));
    }
    let missed: usize = rows.iter().map(|r| r.missed).sum();
    if args.check && missed > 0 {
        bail!("{missed} clients missed a value");
    }
    Ok(())
}

/// CPU model, cores and kernel of this machine.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_owned())
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {kernel}")
}

/// The 1-minute load average now.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The `streamd` binary: `--streamd`, or the one next to this one.
fn streamd(args: &RunArgs) -> Result<PathBuf> {
    match &args.streamd {
        Some(bin) => Ok(bin.clone()),
        None => Ok(std::env::current_exe()?.with_file_name("streamd")),
    }
}

async fn run_ours(args: &RunArgs) -> Result<report::Row> {
    let plan = ours::Plan {
        ws: args.ws,
        mux: args.mux,
        grpc: args.grpc,
        grpc_conns: args.grpc_conns,
        accounts: args.accounts,
        changing: args.changing,
        own_accounts: args.own_accounts,
        changing_fraction: args.changing_fraction,
        duration: args.duration,
    };
    if let (Some(grpc), Some(api)) = (args.grpc_addr, args.api) {
        return ours::run(&plan, grpc, api, None).await;
    }
    let bin = streamd(args)?;
    let block_time = humantime::format_duration(args.block_time).to_string();
    let node = node::Node::start(&bin, &block_time).await?;
    let row = ours::run(&plan, node.grpc, node.api, Some(node.pid())).await;
    drop(node);
    row
}
