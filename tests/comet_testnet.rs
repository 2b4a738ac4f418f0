//! Four validators under real CometBFT v0.38 (`streamd testnet init-files --v 4`, each node a
//! `streamd start --with-comet=false` plus a `cometbft start`), with simulated traffic
//! submitted through node3's CometBFT:
//!
//! 1. the same subscriptions (`since_height` H0) on every node carry identical values at
//!    identical heights, and each streamd's app hash (CometBFT's `/abci_info`) is the one the
//!    network's headers carry;
//! 2. node0 is SIGKILLed while clients over gRPC, WebSocket path routes and `/ws` stream from
//!    it; the chain goes on, each client resumes on another node with `since_height`, and the
//!    gap checker finds no missed change and no duplicate across the switch, held against the
//!    surviving nodes' standard queries at every height;
//! 3. node0 restarts: CometBFT replays its blocks into the new streamd, which reaches the
//!    network's app hash and serves streams again (a resume from before the kill included).

mod gap_support;
mod stream_support;
mod support;
mod ws_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest;
use gap_support::behaviour::DRAIN;
use gap_support::checker::{Stats, check_all};
use gap_support::history;
use gap_support::target::universe;
use gap_support::timeline::Timeline;
use gap_support::transcript::{End, Received, Segment, Start, Transcript, Transport};
use gap_support::transport::{Addrs, Conn, Incoming};
use serde_json::Value as Json;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient;
use stream_support::StreamKey;
use support::comet::{NodeAddrs, init_files};
use support::{TestNode, TestNodeOptions};
use tonic::transport::Channel;

const NODES: usize = 4;
/// Simulated transactions per block, submitted by node3 (never killed) through its CometBFT.
const TRAFFIC: &str = "10";
/// CometBFT `timeout_commit`.
const TIMEOUT_COMMIT: &str = "300ms";
/// How long the identical-streams clients follow every node.
const ALIKE_FOR: Duration = Duration::from_secs(6);
/// How long the failover clients stream from the surviving nodes after the kill.
const AFTER_KILL: Duration = Duration::from_secs(8);
/// How long a node may lag the height another node gave a client before a resume from it
/// counts as refused (a validator commits a block some milliseconds after another).
const BEHIND: Duration = Duration::from_secs(10);

fn addrs(n: &NodeAddrs) -> Addrs {
    Addrs {
        grpc: n.grpc,
        api: n.api,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_stream_alike_survive_a_lost_node_and_replay_it_back() {
    let began = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("streamd-comet-testnet-")
        .tempdir()
        .expect("temp dir");
    let net = init_files(&dir.path().join("net"), NODES, "20s", TIMEOUT_COMMIT);
    let no_limits = TestNodeOptions::default()
        .rpc("max_open_connections", 0)
        .rpc("max_subscriptions_per_client", 0);
    let extra = |i: usize| -> Vec<String> {
        if i == NODES - 1 {
            vec!["--simulate".into(), TRAFFIC.into()]
        } else {
            Vec::new()
        }
    };
    let mut nodes: Vec<Option<TestNode>> = Vec::new();
    for a in &net {
        no_limits.configure_home(&a.home, a.grpc, a.api);
        nodes.push(Some(TestNode::spawn_comet(a, dir.path(), &extra(a.index))));
    }
    for n in nodes.iter_mut().flatten() {
        n.wait_until_serving().await;
    }
    println!(
        "4 validators up after {:.1} s",
        began.elapsed().as_secs_f64()
    );
    let guard = FailureLogs(dir.path().to_owned());

    // Heights: the highest any node answers, sampled continuously (a message from a node a
    // block ahead of another is still from a committed height).
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let channels: Vec<Channel> = nodes.iter().flatten().map(|n| n.channel()).collect();
    let sampler = tokio::spawn(sample_max(channels, timeline.clone(), stop_rx.clone()));
    let node1 = nodes[1].as_ref().expect("node1");
    node1.wait_for_height(4).await;

    // Failover clients start on node0 now and stream until it dies.
    // When node0 was killed (None before).
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(None::<Instant>);
    let keys = universe();
    let transports = [Transport::Grpc, Transport::WsPath, Transport::WsMux];
    let mut failover = Vec::new();
    for (client, key) in keys.iter().enumerate() {
        let transport = transports[client % 3];
        let to = &net[1 + client % (NODES - 1)];
        failover.push(tokio::spawn(failover_client(
            client,
            transport,
            key.clone(),
            addrs(&net[0]),
            addrs(to),
            killed_rx.clone(),
            timeline.clone(),
        )));
    }

    // 1. Identical streams on every node, from the same since_height.
    let h0 = node1.height().await;
    let alike: Vec<_> = net
        .iter()
        .map(|a| tokio::spawn(follow_all(addrs(a), keys.clone(), h0, ALIKE_FOR)))
        .collect();
    let mut per_node = Vec::new();
    for task in alike {
        per_node.push(task.await.expect("identical-streams client"));
    }
    let common = per_node.iter().map(|(h, _)| *h).min().expect("nodes");
    let mut compared = 0;
    for key in &keys {
        let reference: Vec<(i64, Json)> = upto(&per_node[0].1[key], common);
        for (i, (_, streams)) in per_node.iter().enumerate().skip(1) {
            let other = upto(&streams[key], common);
            assert_eq!(
                other, reference,
                "node{i} streamed {key:?} differently from node0 (heights {h0}..={common})"
            );
        }
        compared += reference.len();
    }
    assert!(
        compared > keys.len(),
        "too little traffic to compare: {compared} messages over {} streams",
        keys.len()
    );
    println!(
        "identical streams: {} streams x {NODES} nodes, heights {h0}..={common}, {compared} \
         messages per node",
        keys.len()
    );
    for n in nodes.iter().flatten() {
        assert_app_hash_is_the_networks(n, net[1].rpc).await;
    }
    assert_abci_query_is_the_grpc_answer(nodes[2].as_ref().expect("node2"), node1).await;

    // 2. Lose node0.
    let kill_height = node1.height().await;
    killed_tx
        .send(Some(Instant::now()))
        .expect("clients listen");
    drop(nodes[0].take()); // SIGKILL to its CometBFT and streamd
    println!("killed node0 at height {kill_height}");
    let mut transcripts = Vec::new();
    for task in failover {
        transcripts.push(task.await.expect("failover client"));
    }
    // The chain goes on with 3 of 4 validators (a round node0 should propose waits for
    // timeout_propose).
    let node1 = nodes[1].as_ref().expect("node1");
    node1.wait_for_height(kill_height + 5).await;
    let ranges = history::needed(&transcripts);
    let standard = history::query(node1, &ranges).await;
    let snapshot = timeline.lock().expect("timeline").clone();
    let mut stats = Stats::default();
    let mut violations = check_all(&transcripts, &standard, &snapshot, &mut stats);
    // Held against every surviving node's queries, not only node1's.
    for n in nodes.iter().flatten().skip(1) {
        let theirs = history::query(n, &ranges).await;
        violations.extend(check_all(
            &transcripts,
            &theirs,
            &snapshot,
            &mut Stats::default(),
        ));
    }
    let switched = transcripts
        .iter()
        .filter(|t| t.segments.len() == 2 && matches!(t.segments[1].start, Start::Since(_)))
        .count();
    println!(
        "failover: {} clients, {switched} resumed on another node with since_height; {} \
         messages checked over heights {:?}..={:?}; violations: {}",
        transcripts.len(),
        stats.messages,
        stats.lowest,
        stats.highest,
        violations.len()
    );
    for v in violations.iter().take(20) {
        println!("  VIOLATION {}: {}", v.at, v.what);
    }
    assert!(violations.is_empty(), "{} violations", violations.len());
    assert_eq!(
        switched,
        transcripts.len(),
        "every client had a message from node0 and resumed elsewhere"
    );

    // 3. Restart node0: CometBFT replays its block store into a fresh streamd.
    let restarted_at = Instant::now();
    let mut node0 = TestNode::spawn_comet(&net[0], dir.path(), &[]);
    node0.wait_until_serving().await;
    let target = node1.height().await;
    node0.wait_for_height(target).await;
    println!(
        "node0 restarted and caught up to height {target} in {:.1} s",
        restarted_at.elapsed().as_secs_f64()
    );
    assert_app_hash_is_the_networks(&node0, net[1].rpc).await;
    // Its streams serve again: a resume from before the kill, and a fresh snapshot.
    let resumed = follow_all(addrs(&net[0]), keys.clone(), kill_height - 3, DRAIN).await;
    let reference = follow_all(addrs(&net[1]), keys.clone(), kill_height - 3, DRAIN).await;
    let common = resumed.0.min(reference.0);
    for key in &keys {
        assert_eq!(
            upto(&resumed.1[key], common),
            upto(&reference.1[key], common),
            "restarted node0 streamed {key:?} differently from node1"
        );
    }
    let _ = stop_tx.send(true);
    sampler.await.expect("sampler");
    guard.pass();
    println!("total {:.1} s", began.elapsed().as_secs_f64());
}

/// Messages up to `height`, as (height, value).
fn upto(messages: &[(i64, Json)], height: i64) -> Vec<(i64, Json)> {
    messages
        .iter()
        .filter(|(h, _)| *h <= height)
        .cloned()
        .collect()
}

/// Follows every key over gRPC from `since_height` for `run`, then reads for [`DRAIN`] more;
/// returns the node's height when `run` ended and each key's messages. Everything up to that
/// height has been delivered by then.
async fn follow_all(
    addrs: Addrs,
    keys: Vec<StreamKey>,
    since: i64,
    run: Duration,
) -> (i64, BTreeMap<StreamKey, Vec<(i64, Json)>>) {
    let stop_at = Instant::now() + run;
    let tasks: Vec<_> = keys
        .into_iter()
        .map(|key| {
            tokio::spawn(async move {
                let mut conn = Conn::connect(Transport::Grpc, addrs, false)
                    .await
                    .expect("gRPC connection");
                // `since` is another node's height: this one may not have streamed it yet.
                conn.subscribe_behind(0, &key, Start::Since(since), BEHIND)
                    .await
                    .unwrap_or_else(|e| panic!("{key:?} since {since} refused: {e:?}"));
                let mut got = Vec::new();
                let until = stop_at + DRAIN;
                while let Ok(event) = tokio::time::timeout_at(until.into(), conn.next()).await {
                    match event {
                        Incoming::Update { height, value, .. } => got.push((height, value)),
                        other => panic!("{key:?}: stream ended: {other:?}"),
                    }
                }
                (key, got)
            })
        })
        .collect();
    tokio::time::sleep_until(stop_at.into()).await;
    let height = latest(&mut ServiceClient::new(channel(addrs.grpc))).await;
    let mut out = BTreeMap::new();
    for t in tasks {
        let (key, got) = t.await.expect("follower");
        out.insert(key, got);
    }
    (height.expect("node answers its height"), out)
}

fn channel(grpc: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .expect("valid URL")
        .connect_timeout(Duration::from_secs(1))
        .connect_lazy()
}

async fn latest(client: &mut ServiceClient<Channel>) -> Option<i64> {
    let r = tokio::time::timeout(
        Duration::from_millis(500),
        client.get_latest_block(GetLatestBlockRequest {}),
    )
    .await
    .ok()?
    .ok()?;
    r.into_inner()
        .sdk_block
        .and_then(|b| b.header)
        .map(|h| h.height)
}

/// Records the highest height any node answers, every 20 ms, until `stop`.
async fn sample_max(
    channels: Vec<Channel>,
    timeline: Arc<Mutex<Timeline>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut clients: Vec<_> = channels.into_iter().map(ServiceClient::new).collect();
    loop {
        let sent = Instant::now();
        let heights = futures_util::future::join_all(clients.iter_mut().map(latest)).await;
        if let Some(h) = heights.into_iter().flatten().max() {
            timeline.lock().expect("timeline").record(sent, h);
        }
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client that streams `key` from node0 (no `since_height`) until node0 dies, then
/// resumes on `to` with `since_height` = the last height it received, for [`AFTER_KILL`]
/// after the kill plus the drain.
#[allow(clippy::too_many_arguments)]
async fn failover_client(
    client: usize,
    transport: Transport,
    key: StreamKey,
    from: Addrs,
    to: Addrs,
    killed: tokio::sync::watch::Receiver<Option<Instant>>,
    timeline: Arc<Mutex<Timeline>>,
) -> Transcript {
    let mut t = Transcript::new(client, transport, "failover", key.clone());
    let mut conn = Conn::connect(transport, from, false)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", transport.name()));
    conn.subscribe(0, &key, Start::Snapshot)
        .await
        .unwrap_or_else(|e| panic!("{key:?} on node0 refused: {e:?}"));
    let mut segment = Segment {
        start: Start::Snapshot,
        messages: Vec::new(),
        end: End::Killed,
    };
    // The node dies while the client reads: its connection breaks.
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let event = tokio::time::timeout_at(give_up.into(), conn.next())
            .await
            .unwrap_or_else(|_| panic!("{key:?}: node0's stream did not break within 60 s"));
        match event {
            Incoming::Update { height, value, .. } => segment.messages.push(Received {
                height,
                value,
                at: Instant::now(),
            }),
            // Before the kill, an end is the stream's own (the checker judges it); after
            // it, it is the node's death.
            Incoming::Ended { error, .. } => {
                if killed.borrow().is_none() {
                    segment.end = End::Error(error);
                }
                break;
            }
            Incoming::Closed(how) | Incoming::Dropped(how) => {
                if killed.borrow().is_none() {
                    segment.end = End::Silent(how);
                }
                break;
            }
        }
    }
    let start = segment
        .messages
        .last()
        .map_or(Start::Snapshot, |m| Start::Since(m.height));
    t.segments.push(segment);
    drop(conn);
    let stop_at = killed.borrow().unwrap_or_else(Instant::now) + AFTER_KILL;
    let mut conn = Conn::connect(transport, to, false)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", transport.name()));
    conn.subscribe_behind(0, &key, start, BEHIND)
        .await
        .unwrap_or_else(|e| panic!("{key:?} resume {start:?} on another node refused: {e:?}"));
    let mut segment = Segment {
        start,
        messages: Vec::new(),
        end: End::Killed,
    };
    let mut draining: Option<(Instant, i64)> = None;
    loop {
        let deadline = draining.map_or(stop_at, |(d, _)| d);
        match tokio::time::timeout_at(deadline.into(), conn.next()).await {
            Err(_) => match draining {
                Some((_, stop_height)) => {
                    segment.end = End::Stopped { stop_height };
                    break;
                }
                None => {
                    let h = timeline.lock().expect("timeline").latest().unwrap_or(0);
                    draining = Some((Instant::now() + DRAIN, h));
                }
            },
            Ok(Incoming::Update { height, value, .. }) => segment.messages.push(Received {
                height,
                value,
                at: Instant::now(),
            }),
            Ok(Incoming::Ended { error, .. }) => {
                segment.end = End::Error(error);
                break;
            }
            Ok(Incoming::Closed(how) | Incoming::Dropped(how)) => {
                segment.end = End::Silent(how);
                break;
            }
        }
    }
    t.segments.push(segment);
    conn.close().await;
    t
}

/// GET `path` on a CometBFT RPC; the JSON `result`.
async fn rpc(addr: SocketAddr, path: &str) -> Json {
    let r = ws_support::http::get(addr, path).await;
    assert_eq!(r.status, 200, "GET {path} on {addr}: {r:?}");
    r.json()["result"].clone()
}

/// The node's streamd reports (ABCI Info, through its CometBFT's `/abci_info`) the app hash
/// that the network's next header (from `network_rpc`) carries for the same height.
async fn assert_app_hash_is_the_networks(node: &TestNode, network_rpc: SocketAddr) {
    let own = node.comet_rpc().expect("a CometBFT node");
    let info = rpc(own, "/abci_info").await;
    let height: i64 = info["response"]["last_block_height"]
        .as_str()
        .and_then(|h| h.parse().ok())
        .unwrap_or_else(|| panic!("no last_block_height in {info}"));
    let hash = base64::engine::general_purpose::STANDARD
        .decode(
            info["response"]["last_block_app_hash"]
                .as_str()
                .unwrap_or(""),
        )
        .expect("base64 app hash");
    assert_eq!(hash.len(), 32, "streamd's app hash at {height}: {info}");
    // The app hash after height h is in header h + 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    let header = loop {
        let r = ws_support::http::get(network_rpc, &format!("/block?height={}", height + 1)).await;
        if r.status == 200 && r.json().get("result").is_some() {
            break r.json()["result"]["block"]["header"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no block {} on the network",
            height + 1
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        header["app_hash"].as_str().unwrap_or(""),
        hex::encode_upper(&hash),
        "{}'s streamd app hash at height {height} is not the network's",
        node.grpc_addr()
    );
}

/// ABCI `Query` on a gRPC path (through CometBFT's `/abci_query`) answers what the gRPC port
/// answers at the same height.
async fn assert_abci_query_is_the_grpc_answer(on: &TestNode, grpc: &TestNode) {
    use cosmos_sdk_proto::cosmos::bank::v1beta1::{QueryBalanceRequest, QueryBalanceResponse};
    use prost::Message;
    let alice = support::accounts::address("alice");
    let request = QueryBalanceRequest {
        address: alice.clone(),
        denom: "ujuno".into(),
    };
    // A height both nodes have committed.
    let height = on.height().await.min(grpc.height().await) - 1;
    let rpc_addr = on.comet_rpc().expect("a CometBFT node");
    let path = format!(
        "/abci_query?path=%22/cosmos.bank.v1beta1.Query/Balance%22&data=0x{}&height={height}",
        hex::encode(request.encode_to_vec())
    );
    let answer = rpc(rpc_addr, &path).await;
    let r = &answer["response"];
    assert_eq!(r["code"], 0, "{answer}");
    assert_eq!(r["height"], height.to_string(), "{answer}");
    let value = base64::engine::general_purpose::STANDARD
        .decode(r["value"].as_str().expect("value"))
        .expect("base64");
    let balance = QueryBalanceResponse::decode(value.as_slice()).expect("QueryBalanceResponse");
    let amount: u128 = balance
        .balance
        .expect("coin")
        .amount
        .parse()
        .expect("amount");
    let expected = grpc
        .balance(&alice, "ujuno", support::queries::At::Height(height))
        .await;
    assert_eq!(amount, expected, "ABCI query vs gRPC at height {height}");
    let unknown = rpc(
        rpc_addr,
        "/abci_query?path=%22/nope.v1.Query/Nope%22&data=0x",
    )
    .await;
    assert_eq!(unknown["response"]["code"], 6, "{unknown}");
}

/// Prints every node's log tail if the test fails.
struct FailureLogs(std::path::PathBuf);

impl FailureLogs {
    fn pass(self) {
        std::mem::forget(self);
    }
}

impl Drop for FailureLogs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for i in 0..NODES {
            for what in ["streamd", "cometbft"] {
                let p = self.0.join(format!("node{i}-{what}.log"));
                eprintln!("--- {} ---\n{}", p.display(), support::comet::tail(&p));
            }
        }
    }
}
