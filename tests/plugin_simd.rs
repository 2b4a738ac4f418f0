//! End-to-end against the real Go node: a one-validator `simd` chain (Cosmos SDK v0.50)
//! loads `streamd plugin` through ADR-038 (`[streaming.abci]`, `COSMOS_SDK_ABCI`), and
//! `simd tx bank send`, `tx staking create-validator`, `delegate`, `unbond` and
//! `redelegate` must show on the plugin's ports exactly as simd's own queries answer at
//! every height the streams report (prefix `cosmos`, denom `stake`): the six gRPC streams
//! and the six WebSocket path routes. Then `kill -9` of simd ends the plugin within 2 s.

mod stream_support;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use stream_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use stream_proto::cosmos::staking::v1beta1::query_client::QueryClient as StakingClient;
use stream_support::standard::QueryNode;
use stream_support::{Recorder, StreamKey, StreamMessage, StreamValue, standard_value};
use support::plugin::{children, wait_ended};
use support::simd::{DENOM, SimdNode};
use tonic::transport::{Channel, Endpoint};

impl QueryNode for SimdNode {
    fn bank_client(&self) -> BankClient<Channel> {
        self.bank()
    }
    fn staking_client(&self) -> StakingClient<Channel> {
        self.staking()
    }
}

/// Opens `key` on the plugin, retrying while the plugin waits for simd's gRPC server.
async fn open(node: &SimdNode, key: &StreamKey) -> Recorder {
    let channel = Endpoint::from_shared(format!("http://{}", node.plugin_grpc))
        .expect("URL")
        .connect_lazy();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Recorder::open(channel.clone(), key).await {
            Ok(r) => return r,
            Err(e) if Instant::now() > deadline => {
                node.fail(&format!("the plugin does not stream {key:?}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Every message until the stream has been quiet for 1.5 s.
async fn drain(recorder: &mut Recorder) -> Vec<StreamMessage> {
    let mut out = Vec::new();
    while let Some(m) = recorder.next_within(Duration::from_millis(1500)).await {
        out.push(m);
    }
    out
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// JSON frames of a WebSocket route until it has been quiet for 1.5 s.
async fn ws_frames(ws: &mut Ws) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_millis(1500), ws.next()).await
    {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            out.push(serde_json::from_str(&t).expect("JSON frame"));
        }
    }
    out
}

/// A consensus public key for a second validator (from a throwaway `simd init`).
fn consensus_pubkey(dir: &std::path::Path) -> String {
    let home = dir.join("second-validator");
    let h = home.to_str().unwrap();
    let bin = SimdNode::bin();
    let init = std::process::Command::new(&bin)
        .args(["init", "second", "--home", h])
        .output()
        .expect("simd init");
    assert!(init.status.success());
    let out = std::process::Command::new(&bin)
        .args(["comet", "show-validator", "--home", h])
        .output()
        .expect("simd comet show-validator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The plugin process under simd (`sh -c` is simd's child; dash does not exec).
fn plugin_pid(host: u32) -> Option<u32> {
    let cmdline =
        |p: u32| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
    children(host).into_iter().find_map(|sh| {
        if cmdline(sh).contains("\0plugin\0") {
            return Some(sh);
        }
        children(sh)
            .into_iter()
            .find(|p| cmdline(*p).contains("\0plugin\0"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_streams_of_a_real_simd_match_its_queries() {
    let mut node = SimdNode::start().await;
    let (alice, bob) = (node.address("alice", "acc"), node.address("bob", "acc"));
    let (val, bobval) = (node.address("val", "val"), node.address("bob", "val"));
    assert!(alice.starts_with("cosmos1") && val.starts_with("cosmosvaloper1"));

    let keys = vec![
        StreamKey::Balance {
            address: alice.clone(),
            denom: DENOM.into(),
        },
        StreamKey::AllBalances {
            address: alice.clone(),
        },
        StreamKey::Delegations {
            delegator: alice.clone(),
        },
        StreamKey::Delegation {
            delegator: alice.clone(),
            validator: val.clone(),
        },
        StreamKey::Delegation {
            delegator: alice.clone(),
            validator: bobval.clone(),
        },
        StreamKey::UnbondingDelegations {
            delegator: alice.clone(),
        },
        StreamKey::UnbondingDelegation {
            delegator: alice.clone(),
            validator: val.clone(),
        },
        StreamKey::AllBalances {
            address: bob.clone(),
        },
        StreamKey::Delegations {
            delegator: bob.clone(),
        },
    ];
    let mut streams = Vec::new();
    for key in &keys {
        streams.push(open(&node, key).await);
    }
    let routes = [
        format!("bank/balance/{alice}/{DENOM}"),
        format!("bank/balances/{alice}"),
        format!("staking/delegations/{alice}"),
        format!("staking/delegation/{alice}/{val}"),
        format!("staking/unbonding-delegations/{alice}"),
        format!("staking/unbonding-delegation/{alice}/{val}"),
    ];
    let mut sockets = Vec::new();
    for route in &routes {
        let url = format!("ws://{}/ws/subscribe/{route}", node.plugin_api);
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .unwrap_or_else(|e| node.fail(&format!("WebSocket {url}: {e}")));
        sockets.push(ws);
    }
    // And the multiplexed endpoint: two subscriptions on one /ws connection.
    let (mut mux, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", node.plugin_api))
        .await
        .unwrap_or_else(|e| node.fail(&format!("WebSocket /ws: {e}")));
    for (id, stream, params) in [
        (1, "bank/balances", serde_json::json!({"address": alice})),
        (
            2,
            "staking/delegations",
            serde_json::json!({"delegator": alice}),
        ),
    ] {
        let request = serde_json::json!({"id": id, "method": "subscribe", "stream": stream, "params": params});
        futures_util::SinkExt::send(
            &mut mux,
            tokio_tungstenite::tungstenite::Message::Text(request.to_string().into()),
        )
        .await
        .expect("send a /ws subscribe");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let validator_json = dir.path().join("validator.json");
    let pubkey = consensus_pubkey(dir.path());
    std::fs::write(
        &validator_json,
        format!(
            r#"{{"pubkey": {pubkey}, "amount": "1000000{DENOM}", "moniker": "bob",
               "commission-rate": "0.1", "commission-max-rate": "0.2",
               "commission-max-change-rate": "0.01", "min-self-delegation": "1"}}"#
        ),
    )
    .unwrap();

    let mut heights = Vec::new();
    heights.push(
        node.tx(
            "alice",
            &["bank", "send", &alice, &bob, &format!("1000{DENOM}")],
        )
        .await,
    );
    heights.push(
        node.tx(
            "bob",
            &[
                "staking",
                "create-validator",
                validator_json.to_str().unwrap(),
            ],
        )
        .await,
    );
    heights.push(
        node.tx(
            "alice",
            &["staking", "delegate", &val, &format!("5000000{DENOM}")],
        )
        .await,
    );
    heights.push(
        node.tx(
            "bob",
            &["bank", "send", &bob, &alice, &format!("2500{DENOM}")],
        )
        .await,
    );
    heights.push(
        node.tx(
            "alice",
            &["staking", "unbond", &val, &format!("1000000{DENOM}")],
        )
        .await,
    );
    heights.push(
        node.tx(
            "alice",
            &[
                "staking",
                "redelegate",
                &val,
                &bobval,
                &format!("1000000{DENOM}"),
            ],
        )
        .await,
    );
    let last = *heights.last().unwrap();
    node.wait_for_height(last + 2).await;
    eprintln!("transactions at heights {heights:?}");

    // Heights of every key's messages after its snapshot, by key index.
    let mut changed_at: Vec<Vec<i64>> = Vec::new();
    for (key, recorder) in keys.iter().zip(&mut streams) {
        let mut messages = recorder.received().to_vec();
        messages.extend(drain(recorder).await);
        assert!(
            messages.len() >= 2,
            "{} {key:?}: snapshot and at least one change expected, got {messages:?}",
            key.rpc()
        );
        for pair in messages.windows(2) {
            assert!(
                pair[0].height < pair[1].height,
                "{key:?}: heights must increase: {messages:?}"
            );
        }
        for m in &messages {
            let expected = standard_value(&node, key, m.height).await;
            assert_eq!(
                m.value,
                expected,
                "{} {key:?} at height {}: the plugin differs from simd's query",
                key.rpc(),
                m.height
            );
        }
        // The final value is simd's value now.
        // CometBFT's latest block may not be committed by the app yet: ask one below.
        let now = node.height().await - 1;
        assert_eq!(
            messages.last().unwrap().value,
            standard_value(&node, key, now).await,
            "{key:?}: final value"
        );
        changed_at.push(messages[1..].iter().map(|m| m.height).collect());
    }

    // WebSocket: after the snapshot, frames at exactly the heights of the gRPC stream of the
    // same key; values checked against simd on the balance and delegation routes.
    let route_keys = [0, 1, 2, 3, 5, 6];
    let mut route_frames = Vec::new();
    for ((route, ws), k) in routes.iter().zip(&mut sockets).zip(route_keys) {
        let frames = ws_frames(ws).await;
        let heights: Vec<i64> = frames[1..]
            .iter()
            .filter_map(|f| f["height"].as_i64())
            .collect();
        assert_eq!(
            heights, changed_at[k],
            "{route}: WebSocket heights differ from {:?}'s gRPC stream",
            keys[k]
        );
        route_frames.push(frames.clone());
        assert!(
            frames.len() >= 2,
            "{route}: snapshot and at least one change expected: {frames:?}"
        );
        for f in &frames {
            let h = f["height"]
                .as_i64()
                .unwrap_or_else(|| panic!("{route}: no height in {f}"));
            if route.starts_with("bank/balance/") {
                let expected = standard_value(&node, &keys[0], h).await;
                let StreamValue::Balance(c) = expected else {
                    unreachable!()
                };
                assert_eq!(
                    (f["denom"].as_str(), f["amount"].as_str()),
                    (Some(c.denom.as_str()), Some(c.amount.as_str())),
                    "{route} at {h}"
                );
            }
            if route.starts_with("staking/delegation/") {
                let expected = standard_value(&node, &keys[3], h).await;
                let StreamValue::Delegation(d) = expected else {
                    unreachable!()
                };
                assert_eq!(
                    f["found"].as_bool(),
                    Some(d.is_some()),
                    "{route} at {h}: {f}"
                );
                if let Some(d) = d {
                    assert_eq!(
                        f["balance"]["amount"].as_str(),
                        d.balance.as_ref().map(|b| b.amount.as_str()),
                        "{route} at {h}"
                    );
                }
            }
        }
    }
    // /ws: each subscription's data frames are the path route's frames after the snapshot.
    let mut by_subscription: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    let mut names: BTreeMap<i64, String> = BTreeMap::new();
    for f in ws_frames(&mut mux).await {
        if let Some(id) = f["id"].as_i64() {
            let name = f["result"]["subscription"]
                .as_str()
                .unwrap_or_else(|| panic!("/ws subscribe refused: {f}"));
            names.insert(id, name.to_owned());
        } else if let Some(s) = f["subscription"].as_str() {
            by_subscription
                .entry(s.to_owned())
                .or_default()
                .push(f["data"].clone());
        }
    }
    for (id, route) in [(1, 1), (2, 2)] {
        let data = &by_subscription[&names[&id]];
        assert_eq!(
            data[1..],
            route_frames[route][1..],
            "/ws subscription {id} and the path route {} differ",
            routes[route]
        );
    }
    eprintln!("changes per key after the snapshot: {changed_at:?}");

    // kill -9 of the host: the plugin (a grandchild, through sh -c) is gone within 2 s.
    let pid = plugin_pid(node.pid()).unwrap_or_else(|| node.fail("no plugin process under simd"));
    node.kill_9();
    let took = wait_ended(pid, Duration::from_secs(2))
        .unwrap_or_else(|| panic!("the plugin (pid {pid}) still ran 2 s after kill -9 of simd"));
    eprintln!("plugin ended {took:?} after kill -9 of simd");
}
