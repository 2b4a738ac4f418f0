//! NATS on the same fan-out: a `nats-server` with WebSocket enabled, one subject per
//! subscriber, a publisher that publishes one message per subject per tick, and subscribers
//! speaking the NATS text protocol over WebSocket.
//!
//! The protocol subset used (docs.nats.io, "Client Protocol"): the server opens with
//! `INFO {json}\r\n`; a client sends `CONNECT {json}\r\n`, `SUB <subject> <sid>\r\n`,
//! `PUB <subject> <bytes>\r\n<payload>\r\n`, answers `PING\r\n` with `PONG\r\n`, and
//! receives `MSG <subject> <sid> <bytes>\r\n<payload>\r\n`. Over WebSocket the same bytes
//! travel in binary frames whose boundaries need not match the protocol's lines.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::process;
use crate::raw::{Clients, Ws, connect};
use crate::report::{Row, RowInput, now_ns};
use crate::stamp::{self, Tally};

/// CONNECT options: no +OK acknowledgements, no strict checks.
const CONNECT: &str = "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"lang\":\"rust\",\"version\":\"0\"}\r\n";

/// Subject of subscriber `i`.
fn subject(i: usize) -> String {
    format!("bench.{i}")
}

/// One parsed server operation.
#[derive(Debug, PartialEq)]
enum Op {
    /// A delivered message's payload.
    Msg(Vec<u8>),
    Ping,
    Pong,
    /// INFO, +OK, -ERR and anything else: (the line).
    Other(String),
}

/// Splits a byte stream into server operations (a tiny line parser; payloads by length).
#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete operation, if the buffer holds one.
    fn next(&mut self) -> Result<Option<Op>> {
        let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&self.buf[..end])?.to_owned();
        if let Some(args) = line.strip_prefix("MSG ") {
            // MSG <subject> <sid> [reply-to] <#bytes>
            let size: usize = args
                .split_whitespace()
                .last()
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("bad MSG line {line:?}"))?;
            let start = end + 2;
            if self.buf.len() < start + size + 2 {
                return Ok(None);
            }
            let payload = self.buf[start..start + size].to_vec();
            self.buf.drain(..start + size + 2);
            return Ok(Some(Op::Msg(payload)));
        }
        self.buf.drain(..end + 2);
        Ok(Some(match line.as_str() {
            "PING" => Op::Ping,
            "PONG" => Op::Pong,
            _ => Op::Other(line),
        }))
    }
}

/// Connects to the WebSocket port, subscribes to `subject` and waits for the server's PONG
/// (so the subscription is registered before publishing starts).
async fn subscribe(url: String, subject: String) -> Result<(Ws, Parser)> {
    let mut ws = connect(url).await?;
    let setup = format!("{CONNECT}SUB {subject} 1\r\nPING\r\n");
    ws.send(Message::binary(setup.into_bytes())).await?;
    let mut parser = Parser::default();
    loop {
        while let Some(op) = parser.next()? {
            match op {
                Op::Pong => return Ok((ws, parser)),
                Op::Other(line) if line.starts_with("-ERR") => bail!("nats-server: {line}"),
                _ => {}
            }
        }
        match ws
            .next()
            .await
            .context("nats-server closed the WebSocket")??
        {
            Message::Binary(b) => parser.push(&b),
            Message::Text(t) => parser.push(t.as_bytes()),
            _ => {}
        }
    }
}

/// Measures `nats-server` (the binary at `bin`) with `n` WebSocket subscribers.
pub async fn run(
    bin: &Path,
    n: usize,
    tick: Duration,
    frame_size: usize,
    duration: Duration,
) -> Result<Row> {
    let dir = tempfile::Builder::new()
        .prefix("stream-bench-nats-")
        .tempdir()?;
    let client = crate::node::free_port()?;
    let websocket = crate::node::free_port()?;
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:{}\"\nwebsocket {{\n  listen: \"127.0.0.1:{}\"\n  no_tls: true\n}}\n",
            client.port(),
            websocket.port()
        ),
    )?;
    let mut server = tokio::process::Command::new(bin)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("nats.log"))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawn {}", bin.display()))?;
    let pid = server.id().context("nats-server has no pid")?;
    let mut publisher = connect_publisher(client).await?;
    let before = process::Usage::of(pid)?;
    let url = format!("ws://{websocket}/");
    let subscribers = Clients::open(n, |i| subscribe(url.clone(), subject(i))).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = JoinSet::new();
    for (mut ws, mut parser) in subscribers {
        let mut stop = stop_rx.clone();
        readers.spawn(async move {
            let mut tally = Tally::new();
            loop {
                while let Some(op) = parser.next()? {
                    match op {
                        Op::Msg(payload) => tally.add(&payload, now_ns())?,
                        Op::Ping => ws.send(Message::binary(&b"PONG\r\n"[..])).await?,
                        _ => {}
                    }
                }
                let frame = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    f = ws.next() => f,
                };
                match frame {
                    Some(Ok(Message::Binary(b))) => parser.push(&b),
                    Some(Ok(Message::Text(t))) => parser.push(t.as_bytes()),
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
    let mut ticker = tokio::time::interval(tick);
    let ticks = (duration.as_secs_f64() / tick.as_secs_f64()).round() as u64;
    let subjects: Vec<String> = (0..n).map(subject).collect();
    for seq in 1..=ticks {
        ticker.tick().await;
        let payload = stamp::frame(seq, now_ns(), frame_size);
        let mut batch = Vec::with_capacity(n * (payload.len() + 32));
        for s in &subjects {
            batch.extend_from_slice(format!("PUB {s} {}\r\n", payload.len()).as_bytes());
            batch.extend_from_slice(payload.as_bytes());
            batch.extend_from_slice(b"\r\n");
        }
        publisher.write_all(&batch).await?;
        publisher.flush().await?;
    }
    // The last tick's interval belongs to the window too.
    tokio::time::sleep(duration.saturating_sub(window_start.elapsed())).await;
    let end = process::Usage::of(pid)?;
    let window = window_start.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = stop_tx.send(true);
    let mut records = Vec::new();
    while let Some(done) = readers.join_next().await {
        records.push(done??.finish(ticks));
    }
    let _ = server.kill().await;
    Ok(Row::new(RowInput {
        system: "NATS",
        records: &records,
        window,
        rss_before_kib: before.rss_kib,
        rss_after_kib: start.rss_kib,
        cpu: end.cpu - start.cpu,
        frame_bytes: frame_size,
    }))
}

/// The publisher's plain TCP connection, after INFO and CONNECT; retries until the server
/// listens.
async fn connect_publisher(addr: SocketAddr) -> Result<BufReader<TcpStream>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match TcpStream::connect(addr).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => bail!("nats-server does not listen on {addr}: {e}"),
        }
    };
    let mut stream = BufReader::new(stream);
    let mut info = String::new();
    stream.read_line(&mut info).await?;
    if !info.starts_with("INFO ") {
        bail!("nats-server greeted with {info:?}");
    }
    stream.get_mut().write_all(CONNECT.as_bytes()).await?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operations_split_across_frames() {
        let mut p = Parser::default();
        p.push(b"INFO {\"a\":1}\r\nPING\r\nMSG bench.1 1 5\r\nhel");
        assert_eq!(p.next().unwrap(), Some(Op::Other("INFO {\"a\":1}".into())));
        assert_eq!(p.next().unwrap(), Some(Op::Ping));
        assert_eq!(p.next().unwrap(), None);
        p.push(b"lo\r\nMSG bench.1 1 reply 2\r\nhi\r\n");
        assert_eq!(p.next().unwrap(), Some(Op::Msg(b"hello".to_vec())));
        assert_eq!(p.next().unwrap(), Some(Op::Msg(b"hi".to_vec())));
        assert_eq!(p.next().unwrap(), None);
    }
}
