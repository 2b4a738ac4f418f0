//! Ours: N subscriptions to `bank/balances` over WebSocket path routes, `/ws` and gRPC, on
//! a node with blocks in which the subscribed dev accounts change; latency from each
//! block's header time to each client's receipt.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cosmos_sdk_proto::cosmos::bank::v1beta1::QueryAllBalancesRequest;
use stream_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::node::{block_time_ns, channel, latest_height};
use crate::report::{ClientRecord, Row, RowInput};
use crate::subscriber::{Balances, Kind, Transcript};
use crate::{process, traffic};

/// Connections being opened at once (below the node's 256 pending handshakes per IP).
const CONNECT_PARALLELISM: usize = 64;
/// `/ws` subscriptions per multiplexed connection.
const MUX_PER_CONNECTION: usize = 10;

/// How the subscriptions are spread and how long traffic runs.
pub struct Plan {
    /// Path-route WebSocket subscriptions.
    pub ws: usize,
    /// `/ws` subscriptions.
    pub mux: usize,
    /// gRPC streams.
    pub grpc: usize,
    /// Distinct dev accounts the subscriptions watch (1..=3); subscription i watches i mod this.
    pub accounts: usize,
    /// How many of those accounts change per block.
    pub changing: usize,
    pub duration: Duration,
}

/// What the subscribers watch: account index to `juno1...`.
fn addresses(n: usize) -> Result<Vec<String>> {
    traffic::SENDERS[..n]
        .iter()
        .map(|name| Ok(traffic::DevKey::new(name)?.address.to_string()))
        .collect()
}

/// Runs the plan against the node at `grpc`/`api` whose process is `pid`.
pub async fn run(plan: &Plan, grpc: SocketAddr, api: SocketAddr, pid: Option<u32>) -> Result<Row> {
    if !(1..=traffic::SENDERS.len()).contains(&plan.accounts) || plan.changing > plan.accounts {
        bail!("--accounts must be 1 to 3 and --changing at most --accounts");
    }
    let channel = channel(grpc);
    let addresses = Arc::new(addresses(plan.accounts)?);
    let before = pid.map(process::Usage::of).transpose()?;

    // Traffic stops first; readers a few blocks later, once the last change reached them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (read_stop_tx, read_stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<Result<Vec<Transcript>>> = JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut index = 0;
    let mut spawn = |kind: Kind, count: usize, tasks: &mut JoinSet<_>| {
        let first = index;
        index += count;
        let accounts: Vec<usize> = (first..first + count).map(|i| i % plan.accounts).collect();
        let (addresses, stop, ready, gate, channel) = (
            addresses.clone(),
            read_stop_rx.clone(),
            ready_tx.clone(),
            gate.clone(),
            channel.clone(),
        );
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await?;
            let conn = kind.connect(api, &channel, &addresses, &accounts).await?;
            drop(permit);
            conn.read(stop, ready, accounts.len()).await
        });
    };
    for _ in 0..plan.ws {
        spawn(Kind::Path, 1, &mut tasks);
    }
    for chunk in chunks(plan.mux, MUX_PER_CONNECTION) {
        spawn(Kind::Mux, chunk, &mut tasks);
    }
    for _ in 0..plan.grpc {
        spawn(Kind::Grpc, 1, &mut tasks);
    }
    drop(ready_tx);
    // Every subscription reports once its snapshot has arrived; a task that ends first failed.
    let total = plan.ws + plan.mux + plan.grpc;
    let mut ready = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready < total {
        tokio::select! {
            n = ready_rx.recv() => ready += n.unwrap_or(0),
            Some(done) = tasks.join_next() => {
                done??;
                bail!("a subscription ended before the run started");
            }
            _ = tokio::time::sleep_until(deadline) => {
                bail!("only {ready} of {total} subscriptions had their snapshot after 120 s")
            }
        }
    }
    // Give the node a moment to settle its memory after the burst of subscribes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = pid.map(process::Usage::of).transpose()?;
    let start_height = latest_height(&channel).await?;
    let window_start = Instant::now();

    let senders = &traffic::SENDERS[..plan.changing];
    let driver = tokio::spawn(traffic::drive(channel.clone(), senders, stop_rx.clone()));
    tokio::time::sleep(plan.duration).await;
    // Stop traffic, then let the last change reach everyone.
    let end = pid.map(process::Usage::of).transpose()?;
    let window = window_start.elapsed();
    let _ = stop_tx.send(true);
    let sent = driver.await??;
    let final_height = latest_height(&channel).await? + 3;
    while latest_height(&channel).await? < final_height {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = read_stop_tx.send(true);
    let mut transcripts = Vec::new();
    while let Some(done) = tasks.join_next().await {
        transcripts.extend(done??);
    }
    eprintln!("ours: {sent} sends accepted over {window:?}, final height {final_height}");

    // Block times, fetched once per height; then every client's latencies and final value.
    let heights: BTreeSet<i64> = transcripts
        .iter()
        .flat_map(|t| t.received.iter().skip(1).map(|(h, _)| *h))
        .collect();
    let mut times = HashMap::new();
    for height in heights {
        times.insert(height, block_time_ns(&channel, height).await?);
    }
    let mut finals = Vec::new();
    for address in addresses.iter() {
        finals.push(all_balances(&channel, address, final_height).await?);
    }
    let changed: Vec<bool> = (0..plan.accounts).map(|a| a < plan.changing).collect();
    let mut records = Vec::new();
    let mut frame_bytes = 0;
    let mut frames = 0;
    for t in &transcripts {
        frame_bytes += t.frame_bytes;
        frames += t.received.len() as u64;
        let increasing = t.received.windows(2).all(|w| w[0].0 < w[1].0);
        let updated = t.received.len() > 1 || !changed[t.account];
        let right = t.last.as_ref() == Some(&finals[t.account]);
        let live: Vec<&(i64, u128)> = t
            .received
            .iter()
            .skip(1)
            .filter(|(h, _)| *h > start_height)
            .collect();
        records.push(ClientRecord {
            latencies_us: live
                .iter()
                .map(|(h, at)| crate::report::latency_us(times[h], *at))
                .collect(),
            messages: live.len() as u64,
            complete: increasing && updated && right,
        });
    }
    let (rss_before, rss_after, cpu) = match (before, start, end) {
        (Some(b), Some(s), Some(e)) => (b.rss_kib, s.rss_kib, e.cpu - s.cpu),
        _ => (0, 0, Duration::ZERO),
    };
    Ok(Row::new(RowInput {
        system: "streamd",
        records: &records,
        window,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        cpu,
        frame_bytes: (frame_bytes / frames.max(1)) as usize,
    }))
}

fn chunks(total: usize, size: usize) -> Vec<usize> {
    (0..total.div_ceil(size))
        .map(|i| size.min(total - i * size))
        .collect()
}

/// `AllBalances` of `address` at `height`.
async fn all_balances(channel: &Channel, address: &str, height: i64) -> Result<Balances> {
    let mut request = tonic::Request::new(QueryAllBalancesRequest {
        address: address.to_owned(),
        pagination: None,
        resolve_denom: false,
    });
    request
        .metadata_mut()
        .insert("x-cosmos-block-height", height.to_string().parse()?);
    let response = BankClient::new(channel.clone())
        .all_balances(request)
        .await
        .with_context(|| format!("AllBalances {address} at {height}"))?;
    Ok(response
        .into_inner()
        .balances
        .into_iter()
        .map(|c| (c.denom, c.amount))
        .collect())
}
