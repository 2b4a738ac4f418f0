//! The raw fan-out limit: a minimal WebSocket server (`stream-bench raw-server`) that
//! writes one pre-encoded frame, shared by every connection, to each connection per tick;
//! and the run that measures it with N clients.
//!
//! The server is controlled over stdin: `start <count>` publishes `count` ticks (the first
//! at once), then prints `last <seq>` (the last frame published) on stdout. Each connection holds only the newest
//! frame (a `watch` channel), as our outbox holds only the newest value.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::process;
use crate::report::{Row, RowInput, now_ns};
use crate::stamp::{self, Tally};

/// WebSocket buffers of the raw server and of every benchmark client: 4 KiB to read into,
/// and frames written straight to the socket. tungstenite's defaults (128 KiB each way) would
/// make the reference, and the generator's own memory at 10,000 clients, mostly buffer.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// A WebSocket client connection to `url` with [`small_buffers`].
pub async fn connect(url: String) -> Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(small_buffers()), true)
        .await
        .context("WebSocket connect")?;
    Ok(ws)
}

/// A benchmark client's WebSocket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Serves `port` until stdin closes.
pub async fn serve(port: u16, tick: Duration, frame_size: usize) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let (frames, _) = watch::channel(Utf8Bytes::from_static(""));
    let frames = Arc::new(frames);
    let accept = {
        let frames = frames.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let mut rx = frames.subscribe();
                rx.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut ws) =
                        tokio_tungstenite::accept_async_with_config(socket, Some(small_buffers()))
                            .await
                    else {
                        return;
                    };
                    loop {
                        tokio::select! {
                            changed = rx.changed() => {
                                if changed.is_err() { return; }
                                let frame = rx.borrow_and_update().clone();
                                if ws.send(Message::Text(frame)).await.is_err() { return; }
                            }
                            incoming = ws.next() => match incoming {
                                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                                _ => {}
                            },
                        }
                    }
                });
            }
        })
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut ticker = tokio::time::interval(tick);
    let mut seq = 0u64;
    let mut last = 0u64;
    let mut stdout = tokio::io::stdout();
    stdout.write_all(b"ready\n").await?;
    stdout.flush().await?;
    loop {
        tokio::select! {
            _ = ticker.tick(), if seq < last => {
                seq += 1;
                frames.send_replace(stamp::frame(seq, now_ns(), frame_size).into());
                if seq == last {
                    stdout.write_all(format!("last {seq}\n").as_bytes()).await?;
                    stdout.flush().await?;
                }
            }
            line = lines.next_line() => match line?.as_deref().map(|l| l.split_once(' ')) {
                Some(Some(("start", count))) => {
                    last = seq + count.parse::<u64>().context("start <count>")?;
                    ticker.reset_immediately();
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    accept.abort();
    Ok(())
}

/// Measures the raw server with `n` WebSocket clients.
pub async fn run(n: usize, tick: Duration, frame_size: usize, duration: Duration) -> Result<Row> {
    let port = crate::node::free_port()?.port();
    let mut server = tokio::process::Command::new(std::env::current_exe()?)
        .args(["raw-server", "--port", &port.to_string()])
        .args(["--tick", &humantime::format_duration(tick).to_string()])
        .args(["--frame-size", &frame_size.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("spawn stream-bench raw-server")?;
    let pid = server.id().context("raw-server has no pid")?;
    let mut control = server.stdin.take().context("raw-server stdin")?;
    let mut replies = BufReader::new(server.stdout.take().context("raw-server stdout")?).lines();
    if replies.next_line().await?.as_deref() != Some("ready") {
        bail!("raw-server did not start");
    }
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let url = format!("ws://{addr}/");
    let before = process::Usage::of(pid)?;
    let clients = Clients::open(n, |_| connect(url.clone())).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = JoinSet::new();
    for mut ws in clients {
        let mut stop = stop_rx.clone();
        readers.spawn(async move {
            let mut tally = Tally::new();
            loop {
                let frame = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    f = ws.next() => f,
                };
                match frame {
                    Some(Ok(Message::Text(text))) => tally.add(text.as_bytes(), now_ns())?,
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
            let _ = ws.close(None).await;
            anyhow::Ok(tally)
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start = process::Usage::of(pid)?;
    let window_start = Instant::now();
    let ticks = (duration.as_secs_f64() / tick.as_secs_f64()).round() as u64;
    control
        .write_all(format!("start {ticks}\n").as_bytes())
        .await?;
    tokio::time::sleep(duration).await;
    let end = process::Usage::of(pid)?;
    let window = window_start.elapsed();
    let last = replies.next_line().await?.context("raw-server ended")?;
    let final_seq: u64 = last
        .strip_prefix("last ")
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("raw-server said {last:?}"))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop_tx.send(true);
    let mut records = Vec::new();
    while let Some(done) = readers.join_next().await {
        records.push(done??.finish(final_seq));
    }
    drop(control);
    let _ = server.kill().await;
    Ok(Row::new(RowInput {
        system: "raw",
        records: &records,
        window,
        rss_before_kib: before.rss_kib,
        rss_after_kib: start.rss_kib,
        cpu: end.cpu - start.cpu,
        frame_bytes: frame_size,
    }))
}

/// Opens `n` client connections, at most 64 handshakes at a time.
pub struct Clients;

impl Clients {
    /// Runs `connect(i)` for every client; fails on the first error.
    pub async fn open<T, F, Fut>(n: usize, connect: F) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(usize) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let gate = Arc::new(Semaphore::new(64));
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let gate = gate.clone();
            let fut = connect(i);
            tasks.spawn(async move {
                let _permit = gate.acquire_owned().await?;
                fut.await
            });
        }
        let mut out = Vec::with_capacity(n);
        while let Some(done) = tasks.join_next().await {
            out.push(done??);
        }
        Ok(out)
    }
}
