//! The streamd side's subscribers: `bank/balances` over a WebSocket path route, the
//! multiplexed `/ws` or gRPC, each reading into a [`Transcript`] until told to stop.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use stream_proto::juno::stream::v1::StreamAllBalancesRequest;
use stream_proto::juno::stream::v1::query_client::QueryClient as StreamClient;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::Channel;

use crate::raw::{Ws, connect};
use crate::report::now_ns;

/// Balances as `(denom, amount)` pairs in the order the node sends them.
pub type Balances = Vec<(String, String)>;

/// One subscription's transcript: (height, receipt ns) and the values in order.
#[derive(Default)]
pub struct Transcript {
    /// Index of the watched account.
    pub account: usize,
    /// Height of every message and when it was read, ns since the Unix epoch.
    pub received: Vec<(i64, u128)>,
    /// The last value received.
    pub last: Option<Balances>,
    /// Bytes of every message received.
    pub frame_bytes: u64,
}

/// The transports a subscription can use.
#[derive(Clone, Copy)]
pub enum Kind {
    /// `/ws/subscribe/bank/balances/{address}`: one subscription per connection.
    Path,
    /// `/ws` with several `bank/balances` subscribe messages on one connection.
    Mux,
    /// gRPC `StreamAllBalances` on the shared channel.
    Grpc,
}

/// An open subscription (or, for `/ws`, several) before its first message.
pub enum Connection {
    Ws(Ws, Vec<usize>, bool),
    Grpc(
        tonic::Streaming<stream_proto::juno::stream::v1::StreamAllBalancesResponse>,
        usize,
    ),
}

impl Kind {
    /// The transport's name in the report.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Path => "WebSocket path route",
            Kind::Mux => "/ws",
            Kind::Grpc => "gRPC",
        }
    }

    pub async fn connect(
        self,
        api: SocketAddr,
        channel: &Channel,
        addresses: &[String],
        accounts: &[usize],
    ) -> Result<Connection> {
        match self {
            Kind::Path => {
                let url = format!(
                    "ws://{api}/ws/subscribe/bank/balances/{}",
                    addresses[accounts[0]]
                );
                let ws = connect(url).await?;
                Ok(Connection::Ws(ws, accounts.to_vec(), false))
            }
            Kind::Mux => {
                let mut ws = connect(format!("ws://{api}/ws")).await?;
                for (id, account) in accounts.iter().enumerate() {
                    let request = serde_json::json!({
                        "id": id, "method": "subscribe", "stream": "bank/balances",
                        "params": {"address": addresses[*account]},
                    });
                    ws.send(Message::text(request.to_string())).await?;
                }
                Ok(Connection::Ws(ws, accounts.to_vec(), true))
            }
            Kind::Grpc => {
                let stream = StreamClient::new(channel.clone())
                    .stream_all_balances(StreamAllBalancesRequest {
                        address: addresses[accounts[0]].clone(),
                        since_height: 0,
                    })
                    .await?
                    .into_inner();
                Ok(Connection::Grpc(stream, accounts[0]))
            }
        }
    }
}

impl Connection {
    /// Reads until `stop`; sends `subs` on `ready` once every subscription had a message.
    pub async fn read(
        self,
        mut stop: watch::Receiver<bool>,
        ready: tokio::sync::mpsc::UnboundedSender<usize>,
        subs: usize,
    ) -> Result<Vec<Transcript>> {
        match self {
            Connection::Grpc(mut stream, account) => {
                let mut t = Transcript {
                    account,
                    ..Transcript::default()
                };
                loop {
                    let message = tokio::select! {
                        _ = stop.wait_for(|s| *s) => break,
                        m = stream.message() => m?,
                    };
                    let Some(m) = message else {
                        bail!("gRPC stream ended")
                    };
                    let at = now_ns();
                    if t.received.is_empty() {
                        let _ = ready.send(1);
                    }
                    t.received.push((m.height, at));
                    t.frame_bytes += prost::Message::encoded_len(&m) as u64;
                    t.last = Some(
                        m.balances
                            .into_iter()
                            .map(|c| (c.denom, c.amount))
                            .collect(),
                    );
                }
                Ok(vec![t])
            }
            Connection::Ws(mut ws, accounts, mux) => {
                let mut ts: Vec<Transcript> = accounts
                    .iter()
                    .map(|&account| Transcript {
                        account,
                        ..Transcript::default()
                    })
                    .collect();
                // `/ws` names subscriptions "s1", "s2"... in reply to ids 0, 1...
                let mut by_name: HashMap<String, usize> = HashMap::new();
                let mut started = 0;
                loop {
                    let frame = tokio::select! {
                        _ = stop.wait_for(|s| *s) => break,
                        f = ws.next() => f,
                    };
                    let text = match frame.context("WebSocket closed")?? {
                        Message::Text(text) => text,
                        Message::Close(c) => bail!("WebSocket closed by the node: {c:?}"),
                        _ => continue,
                    };
                    let at = now_ns();
                    let value: serde_json::Value = serde_json::from_str(&text)?;
                    let (slot, data) = if mux {
                        if let (Some(id), Some(name)) = (
                            value["id"].as_u64(),
                            value["result"]["subscription"].as_str(),
                        ) {
                            by_name.insert(name.to_owned(), id as usize);
                            continue;
                        }
                        let name = value["subscription"]
                            .as_str()
                            .context("/ws message without subscription")?;
                        let slot = *by_name.get(name).context("update before subscribe reply")?;
                        (slot, &value["data"])
                    } else {
                        (0, &value)
                    };
                    let t = &mut ts[slot];
                    if t.received.is_empty() {
                        started += 1;
                        if started == subs {
                            let _ = ready.send(subs);
                        }
                    }
                    let height = data["height"].as_i64().context("update without height")?;
                    t.received.push((height, at));
                    t.frame_bytes += text.len() as u64;
                    t.last = Some(balances(&data["balances"])?);
                }
                let _ = ws.close(None).await;
                Ok(ts)
            }
        }
    }
}

fn balances(value: &serde_json::Value) -> Result<Balances> {
    value
        .as_array()
        .context("balances is not an array")?
        .iter()
        .map(|c| {
            Ok((
                c["denom"]
                    .as_str()
                    .context("coin without denom")?
                    .to_owned(),
                c["amount"]
                    .as_str()
                    .context("coin without amount")?
                    .to_owned(),
            ))
        })
        .collect()
}
