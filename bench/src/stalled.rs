//! Subscribers that never read: M WebSocket path-route clients of the busy account that
//! subscribe and then never read a byte (each with a 4 KiB receive buffer, so its window
//! fills within seconds). Compares the node's block interval with them against the same
//! node idle (same traffic, no subscribers), and reports the node's memory growth.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::TcpSocket;
use tokio::sync::watch;

use crate::node::{Node, block_time_ns, channel, latest_height};
use crate::raw::{Clients, Ws, small_buffers};
use crate::report::median;
use crate::{process, scrape, traffic};

/// A never-reading client's receive buffer, bytes (the kernel may round it).
const RECEIVE_BUFFER: u32 = 4096;

/// One run's figures.
#[derive(Debug, Clone)]
pub struct StalledRow {
    /// Never-reading clients.
    pub clients: usize,
    /// Mean block interval without subscribers, ms.
    pub idle_interval_ms: f64,
    /// Mean block interval with the never-reading clients, ms.
    pub stalled_interval_ms: f64,
    /// The node's largest RSS during the stalled window minus its RSS before the clients,
    /// per client, KiB.
    pub rss_growth_kib: f64,
    /// Clients the node had closed by the end of the window (write timeout).
    pub closed_by_node: usize,
}

/// Starts a node of its own and measures it idle, then with `clients` never-reading clients,
/// each for `duration`.
pub async fn run(
    bin: &Path,
    block_time: &str,
    clients: usize,
    duration: Duration,
) -> Result<StalledRow> {
    let node = Node::start(bin, block_time).await?;
    let pid = node.pid();
    let channel = channel(node.grpc);
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = tokio::spawn(traffic::drive(
        channel.clone(),
        &traffic::SENDERS[..1],
        stop_rx,
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle, _) = interval(&channel, duration, pid).await?;
    let rss_before = process::rss_kib(pid)?;
    let alice = traffic::DevKey::new("alice")?.address.to_string();
    let url = format!("ws://{}/ws/subscribe/bank/balances/{alice}", node.api);
    let api = node.api;
    let held = Clients::open(clients, |_| never_reading(api, url.clone())).await?;
    let (stalled, rss_max) = interval(&channel, duration, pid).await?;
    let open = scrape::metrics(api)
        .await
        .ok()
        .and_then(|m| scrape::gauge(&m, "stream_connections"))
        .unwrap_or(f64::NAN);
    let _ = stop_tx.send(true);
    driver.await??;
    drop(held);
    drop(node);
    Ok(StalledRow {
        clients,
        idle_interval_ms: idle,
        stalled_interval_ms: stalled,
        rss_growth_kib: rss_max.saturating_sub(rss_before) as f64 / clients.max(1) as f64,
        closed_by_node: clients.saturating_sub(open as usize),
    })
}

/// The mean block interval over `duration` (from the blocks' header times), ms, and the
/// node's largest RSS meanwhile (sampled every 250 ms), KiB.
async fn interval(
    channel: &tonic::transport::Channel,
    duration: Duration,
    pid: u32,
) -> Result<(f64, u64)> {
    let first = latest_height(channel).await?;
    let end = tokio::time::Instant::now() + duration;
    let mut rss_max = 0;
    while tokio::time::Instant::now() < end {
        rss_max = rss_max.max(process::rss_kib(pid)?);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let last = latest_height(channel).await?;
    let span = block_time_ns(channel, last).await? - block_time_ns(channel, first).await?;
    let blocks = (last - first).max(1) as f64;
    Ok((span as f64 / 1e6 / blocks, rss_max))
}

/// A client that completes the upgrade (the node has its subscription then) and never reads.
async fn never_reading(api: SocketAddr, url: String) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
    let tcp = socket.connect(api).await.context("connect")?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        url,
        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        Some(small_buffers()),
    )
    .await
    .context("WebSocket handshake")?;
    Ok(ws)
}

/// The table of several runs' medians.
pub fn table(runs: &[StalledRow]) -> String {
    let m = |f: fn(&StalledRow) -> f64| median(runs.iter().map(f));
    let (idle, stalled) = (m(|r| r.idle_interval_ms), m(|r| r.stalled_interval_ms));
    format!(
        "| never-reading clients | idle block interval ms | with them ms | change | RSS growth/client KiB | closed by the node (write timeout) |\n\
         |---|---|---|---|---|---|\n\
         | {} | {idle:.2} | {stalled:.2} | {:+.2}% | {:.1} | {:.0} |",
        runs[0].clients,
        (stalled / idle - 1.0) * 100.0,
        m(|r| r.rss_growth_kib),
        m(|r| r.closed_by_node as f64),
    )
}
