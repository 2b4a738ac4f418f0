//! End-to-end, both modes on one chain: streamd runs the stream module in-process and loads
//! `streamd plugin` as its ADR-038 streaming plugin (app.toml `[streaming.abci]`,
//! `COSMOS_SDK_ABCI`, as a Go Cosmos SDK node loads it). The same transactions (bank send,
//! delegate, unbond, redelegate) must give the same messages on both: the same response
//! messages, byte for byte as the servers framed them, at the same heights, each equal to
//! the standard queries at its height, and the same WebSocket frames.

mod stream_support;
mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use stream_support::raw::open_raw;
use stream_support::{Recorder, StreamKey, StreamMessage, assert_committed};
use support::accounts::address;
use support::{TestNode, TestNodeOptions};
use tonic::transport::{Channel, Endpoint};

/// How long the plugin may take to find its host and serve.
const PLUGIN_START: Duration = Duration::from_secs(30);

/// Every raw message until the stream has been quiet for a second.
async fn drain_raw(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
        out.push(m);
    }
    out
}

fn channel(addr: std::net::SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid URL")
        .connect_lazy()
}

/// Opens `key` on the plugin, retrying while the plugin is still looking for its host.
async fn open_on_plugin(node: &TestNode, key: &StreamKey) -> Recorder {
    let deadline = Instant::now() + PLUGIN_START;
    loop {
        match Recorder::open(channel(node.plugin_grpc_addr()), key).await {
            Ok(r) => return r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => node.fail(&format!("the plugin does not serve {key:?}: {e}")),
        }
    }
}

/// Every message until the stream has been quiet for a second.
async fn drain(recorder: &mut Recorder) -> Vec<StreamMessage> {
    let mut out = Vec::new();
    while let Some(m) = recorder.next_within(Duration::from_secs(1)).await {
        out.push(m);
    }
    out
}

/// Text frames of a WebSocket path route until it has been quiet for a second.
async fn ws_frames(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = frame {
            out.push(t.to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_and_in_process_module_stream_the_same_messages() {
    let node = TestNode::start(
        TestNodeOptions {
            unbonding_time: "60s",
            ..TestNodeOptions::default()
        }
        // 26 streams from one client IP; the plugin reads the same config.toml.
        .rpc("max_subscriptions_per_client", 0)
        .with_plugin(),
    )
    .await;
    let mut keys: Vec<StreamKey> = StreamKey::all_six("alice", "validator1").into();
    keys.extend(StreamKey::all_six("bob", "validator2"));
    keys.push(StreamKey::delegation("alice", "validator2"));

    let mut plugin = Vec::new();
    for key in &keys {
        plugin.push(open_on_plugin(&node, key).await);
    }
    let mut in_process = Vec::new();
    for key in &keys {
        in_process.push(Recorder::start(node.channel(), key).await);
    }
    // The same keys again, as raw bytes.
    let mut raw = Vec::new();
    for key in &keys {
        let plugin = open_raw(channel(node.plugin_grpc_addr()), key)
            .await
            .expect("raw stream on the plugin");
        let module = open_raw(node.channel(), key)
            .await
            .expect("raw stream on the node");
        raw.push((plugin, module));
    }
    let alice = address("alice");
    let route = format!("/ws/subscribe/bank/balances/{alice}");
    let (mut ws_plugin, _) =
        tokio_tungstenite::connect_async(format!("ws://{}{route}", node.plugin_api_addr()))
            .await
            .expect("WebSocket to the plugin");
    let (mut ws_node, _) =
        tokio_tungstenite::connect_async(format!("ws://{}{route}", node.api_addr()))
            .await
            .expect("WebSocket to the node");
    // Both snapshots are in before the first transaction.
    for r in plugin.iter_mut().chain(in_process.iter_mut()) {
        r.next().await;
    }
    for (p, n) in &mut raw {
        p.recv().await.expect("a snapshot from the plugin");
        n.recv().await.expect("a snapshot from the node");
    }
    let first_ws = (
        ws_frames(&mut ws_plugin).await,
        ws_frames(&mut ws_node).await,
    );
    assert_eq!((first_ws.0.len(), first_ws.1.len()), (1, 1), "{first_ws:?}");

    let mut heights = Vec::new();
    for tx in [
        &["bank", "send", "alice", "bob", "1000ujuno"][..],
        &["staking", "delegate", "alice", "validator1", "5000000ujuno"],
        &["staking", "delegate", "bob", "validator2", "7000000ujuno"],
        &["staking", "unbond", "alice", "validator1", "1000000ujuno"],
        &[
            "staking",
            "redelegate",
            "alice",
            "validator1",
            "validator2",
            "1000000ujuno",
        ],
        &["bank", "send", "bob", "alice", "2500ujuno"],
    ] {
        heights.push(node.tx_ok(tx).await.height);
    }
    node.wait_for_height(heights.last().unwrap() + 2).await;

    // Everything has arrived by now; each drain ends after a quiet second, all at once.
    let decoded =
        futures_util::future::join_all(plugin.iter_mut().chain(in_process.iter_mut()).map(drain))
            .await;
    let (decoded_plugin, decoded_node) = decoded.split_at(keys.len());
    let mut compared = 0;
    for ((key, from_plugin), from_node) in keys.iter().zip(decoded_plugin).zip(decoded_node) {
        assert!(
            !from_node.is_empty() || key_is_quiet(key),
            "{key:?}: no update in-process"
        );
        assert_eq!(
            from_plugin,
            from_node,
            "{} {key:?}: the plugin and the in-process module disagree",
            key.rpc()
        );
        for m in from_plugin {
            assert!(
                heights.contains(&m.height),
                "{key:?}: message at a height with no tx: {m:?}"
            );
            assert_committed(&node, key, m).await;
        }
        compared += from_plugin.len();
    }
    assert!(compared >= 12, "only {compared} updates compared");
    let raw = futures_util::future::join_all(
        raw.iter_mut()
            .map(|(p, n)| async { (drain_raw(p).await, drain_raw(n).await) }),
    )
    .await;
    let mut raw_compared = 0;
    for (key, (from_plugin, from_node)) in keys.iter().zip(raw) {
        assert_eq!(
            from_plugin,
            from_node,
            "{} {key:?}: the response bytes differ between the plugin and the module",
            key.rpc()
        );
        raw_compared += from_plugin.len();
    }
    assert_eq!(
        raw_compared, compared,
        "the raw streams saw the decoded ones' updates"
    );

    let (p, n) = (
        ws_frames(&mut ws_plugin).await,
        ws_frames(&mut ws_node).await,
    );
    assert_eq!(
        p, n,
        "WebSocket frames differ between the plugin and the module"
    );
    assert!(
        p.len() >= 2,
        "alice's balances changed at least twice: {p:?}"
    );
}

/// Streams that no transaction of the test touches.
fn key_is_quiet(key: &StreamKey) -> bool {
    matches!(
        key,
        StreamKey::UnbondingDelegations { delegator } | StreamKey::UnbondingDelegation { delegator, .. }
            if *delegator == address("bob")
    )
}

/// The README's commands against the plugin ("Use with an existing Cosmos SDK node"): grpcurl
/// by reflection and websocat, on the plugin's own ports.
#[tokio::test(flavor = "multi_thread")]
async fn readme_grpcurl_and_websocat_commands_work_against_the_plugin() {
    use support::tools::{GRPCURL, WEBSOCAT};
    use tokio::io::AsyncBufReadExt;
    let (grpcurl, websocat) = (GRPCURL.require(), WEBSOCAT.require());
    let node = TestNode::start(TestNodeOptions::default().with_plugin()).await;
    let alice = address("alice");
    open_on_plugin(&node, &StreamKey::balance("alice", "ujuno")).await;
    let plugin = node.plugin_grpc_addr().to_string();

    let list = tokio::process::Command::new(&grpcurl)
        .args(["-plaintext", &plugin, "list"])
        .output()
        .await
        .expect("run grpcurl");
    let services = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        services.lines().any(|l| l == "juno.stream.v1.Query"),
        "grpcurl list: {services}"
    );

    // The stream runs until -max-time; its first message is the snapshot.
    let data = serde_json::json!({"address": alice, "denom": "ujuno"}).to_string();
    let out = tokio::process::Command::new(&grpcurl)
        .args(["-plaintext", "-max-time", "3", "-d", &data, &plugin])
        .arg("juno.stream.v1.Query/StreamBalance")
        .output()
        .await
        .expect("run grpcurl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let first: serde_json::Value = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            panic!(
                "no message from grpcurl: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .expect("JSON");
    assert_eq!(first["balance"]["denom"], "ujuno", "{first}");
    assert!(
        first["height"]
            .as_str()
            .is_some_and(|h| h.parse::<i64>().unwrap() > 0),
        "{first}"
    );

    let url = format!(
        "ws://{}/ws/subscribe/bank/balances/{alice}",
        node.plugin_api_addr()
    );
    let mut child = tokio::process::Command::new(&websocat)
        .arg(&url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run websocat");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("a line from websocat in time")
        .expect("read websocat")
        .expect("websocat printed a line");
    let frame: serde_json::Value = serde_json::from_str(&line).expect("JSON frame");
    assert!(
        frame["balances"].as_array().is_some_and(|b| !b.is_empty()),
        "{frame}"
    );
    assert!(frame["height"].as_i64().is_some_and(|h| h > 0), "{frame}");
}
