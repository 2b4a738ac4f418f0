//! Ours: N subscriptions to `bank/balances` over WebSocket path routes, `/ws` and gRPC, on
//! a node with blocks in which the subscribed accounts change (dev accounts, or each
//! subscription's own address); latency from each block's header time to each client's
//! receipt; the node's memory per transport and its commit hook's cost.

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

use futures_util::{StreamExt, TryStreamExt};

use crate::node::{self, block_time_ns, channel, latest_height};
use crate::report::{ClientRecord, Row, RowInput};
use crate::subscriber::{Balances, Kind, Transcript};
use crate::{process, scrape, traffic};

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
    /// HTTP/2 connections the gRPC streams are spread over (round robin).
    pub grpc_conns: usize,
    /// Distinct dev accounts the subscriptions watch (1..=3); subscription i watches i mod this.
    pub accounts: usize,
    /// How many of those accounts change per block.
    pub changing: usize,
    /// Every subscription watches an address of its own instead ([`traffic::own_address`]),
    /// `changing_fraction` of them receiving a send in every block.
    pub own_accounts: bool,
    pub changing_fraction: f64,
    pub duration: Duration,
}

impl Plan {
    fn total(&self) -> usize {
        self.ws + self.mux + self.grpc
    }

    /// Watched addresses, and how many of them change in every block.
    fn watched(&self) -> Result<(Vec<String>, usize)> {
        if self.own_accounts {
            if !(0.0..=1.0).contains(&self.changing_fraction) {
                bail!("--changing-fraction must be from 0 to 1");
            }
            let addresses = (0..self.total())
                .map(|i| Ok(traffic::own_address(i)?.to_string()))
                .collect::<Result<Vec<_>>>()?;
            let per_block = (self.changing_fraction * self.total() as f64).ceil() as usize;
            return Ok((addresses, per_block));
        }
        if !(1..=traffic::SENDERS.len()).contains(&self.accounts) || self.changing > self.accounts {
            bail!("--accounts must be 1 to 3 and --changing at most --accounts");
        }
        let addresses = traffic::SENDERS[..self.accounts]
            .iter()
            .map(|name| Ok(traffic::DevKey::new(name)?.address.to_string()))
            .collect::<Result<Vec<_>>>()?;
        Ok((addresses, self.changing))
    }

    /// The address index subscription `i` watches.
    fn account_of(&self, i: usize) -> usize {
        if self.own_accounts {
            i
        } else {
            i % self.accounts
        }
    }
}

/// Runs the plan against the node at `grpc`/`api` whose process is `pid`.
pub async fn run(plan: &Plan, grpc: SocketAddr, api: SocketAddr, pid: Option<u32>) -> Result<Row> {
    let channel = channel(grpc);
    let (addresses, changing) = plan.watched()?;
    let addresses = Arc::new(addresses);
    // Streams spread over several HTTP/2 connections: a Channel is one connection.
    let grpc_channels: Vec<Channel> = (0..plan.grpc_conns.max(1))
        .map(|_| node::channel(grpc))
        .collect();
    let before = pid.map(process::Usage::of).transpose()?;

    // Traffic stops first; readers a few blocks later, once the last change reached them.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (read_stop_tx, read_stop_rx) = watch::channel(false);
    let mut tasks: JoinSet<Result<Vec<Transcript>>> = JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let gate = Arc::new(Semaphore::new(CONNECT_PARALLELISM));
    let mut index = 0;
    let mut grpc_index = 0;
    let mut spawn = |kind: Kind, count: usize, tasks: &mut JoinSet<_>| {
        let first = index;
        index += count;
        let accounts: Vec<usize> = (first..first + count).map(|i| plan.account_of(i)).collect();
        let channel = match kind {
            Kind::Grpc => {
                grpc_index += 1;
                grpc_channels[grpc_index % grpc_channels.len()].clone()
            }
            _ => channel.clone(),
        };
        let (addresses, stop, ready, gate) = (
            addresses.clone(),
            read_stop_rx.clone(),
            ready_tx.clone(),
            gate.clone(),
        );
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await?;
            let conn = kind.connect(api, &channel, &addresses, &accounts).await?;
            drop(permit);
            conn.read(stop, ready, accounts.len()).await
        });
    };
    // One transport after the other, so the node's memory can be told apart per transport.
    let mut rss_by_transport = Vec::new();
    let mut rss_mark = before.map(|b| b.rss_kib);
    let mut ready = 0;
    for (kind, count) in [
        (Kind::Path, plan.ws),
        (Kind::Mux, plan.mux),
        (Kind::Grpc, plan.grpc),
    ] {
        if count == 0 {
            continue;
        }
        match kind {
            Kind::Mux => {
                for chunk in chunks(count, MUX_PER_CONNECTION) {
                    spawn(kind, chunk, &mut tasks);
                }
            }
            _ => {
                for _ in 0..count {
                    spawn(kind, 1, &mut tasks);
                }
            }
        }
        // Every subscription reports once its snapshot has arrived; a task that ends first failed.
        let target = ready + count;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while ready < target {
            tokio::select! {
                n = ready_rx.recv() => ready += n.unwrap_or(0),
                Some(done) = tasks.join_next() => {
                    done??;
                    bail!("a subscription ended before the run started");
                }
                _ = tokio::time::sleep_until(deadline) => {
                    bail!("only {ready} of {target} subscriptions had their snapshot after 120 s")
                }
            }
        }
        // Give the node a moment to settle its memory after the burst of subscribes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let (Some(pid), Some(mark)) = (pid, rss_mark) {
            let now = process::rss_kib(pid)?;
            rss_by_transport.push((kind.label(), now.saturating_sub(mark) as f64 / count as f64));
            rss_mark = Some(now);
        }
    }
    drop(ready_tx);
    let start = pid.map(process::Usage::of).transpose()?;
    let hook_before = scrape::metrics(api).await.ok();
    let start_height = latest_height(&channel).await?;
    let window_start = Instant::now();

    let driver = if plan.own_accounts {
        let targets = (0..plan.total())
            .map(traffic::own_address)
            .collect::<Result<Vec<_>>>()?;
        tokio::spawn(traffic::drive_fanout(
            channel.clone(),
            targets,
            changing,
            stop_rx.clone(),
        ))
    } else {
        let senders = &traffic::SENDERS[..changing];
        let total = addresses.len();
        let driven = traffic::drive(channel.clone(), senders, stop_rx.clone());
        tokio::spawn(async move {
            let sent = driven.await?;
            anyhow::Ok((sent, (0..total).map(|a| a < changing).collect()))
        })
    };
    tokio::time::sleep(plan.duration).await;
    // Stop traffic, then let the last change reach everyone.
    let end = pid.map(process::Usage::of).transpose()?;
    let hook_after = scrape::metrics(api).await.ok();
    let window = window_start.elapsed();
    let _ = stop_tx.send(true);
    let (sent, changed) = driver.await??;
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
    let finals = final_balances(&channel, &addresses, final_height).await?;
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
    let mut row = Row::new(RowInput {
        system: "streamd",
        records: &records,
        window,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        cpu,
        frame_bytes: (frame_bytes / frames.max(1)) as usize,
    });
    row.rss_by_transport = rss_by_transport;
    if let (Some(b), Some(a)) = (hook_before, hook_after) {
        let hook =
            scrape::Buckets::of(&a, HOOK_METRIC).since(&scrape::Buckets::of(&b, HOOK_METRIC));
        if let (Some(p50), Some(p99)) = (hook.quantile(0.5), hook.quantile(0.99)) {
            row.hook_us = Some([p50 * 1e6, p99 * 1e6]);
        }
    }
    Ok(row)
}

/// The commit hook's histogram in the node's metrics.
const HOOK_METRIC: &str = "stream_commit_hook_seconds";

/// `AllBalances` of every address at `height`, a few queries at a time.
async fn final_balances(
    channel: &Channel,
    addresses: &[String],
    height: i64,
) -> Result<Vec<Balances>> {
    let queries = addresses
        .iter()
        .map(|address| all_balances(channel, address, height));
    futures_util::stream::iter(queries)
        .buffered(CONNECT_PARALLELISM)
        .try_collect()
        .await
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
