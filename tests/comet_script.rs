//! `scripts/testnet 2`: prints one line per node once every node has committed a block, a
//! transaction sent through one node is in the other's blocks (CometBFT's block, as
//! `GetBlockByHeight` answers it), and SIGTERM stops every process the script started.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetBlockByHeightRequest;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient;
use support::comet::parse_node_line;
use support::streamd_bin;
use support::tools::COMETBFT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_runs_a_network_and_stops_it_on_sigterm() {
    let dir = tempfile::Builder::new()
        .prefix("streamd-testnet-script-")
        .tempdir()
        .expect("temp dir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root");
    let mut script = Command::new(root.join("scripts/testnet"))
        .args(["2", "--dir"])
        .arg(dir.path().join("net"))
        .args(["--chain-id", support::accounts::CHAIN_ID])
        .env("STREAMD", streamd_bin())
        .env("STREAM_COMETBFT", COMETBFT.require())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/testnet");
    let stdout = script.stdout.take().expect("stdout");
    let guard = StopOnPanic(script.id());
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(2)
            .map(|l| l.expect("UTF-8 line"))
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(90), lines)
        .await
        .expect("two node lines within 90 s")
        .expect("reader");
    let nodes: Vec<_> = lines.iter().map(|l| parse_line(l)).collect();
    for (i, (line, n)) in lines.iter().zip(&nodes).enumerate() {
        assert_eq!(n.index, i, "{line}");
        assert_eq!(
            *line,
            format!(
                "node{i} home={} grpc={} api={} rpc={}",
                n.home.display(),
                n.grpc,
                n.api,
                n.rpc
            )
        );
    }

    // A transaction through node1 is in node0's blocks too, and node0 streams it.
    let send = Command::new(streamd_bin())
        .args(["tx", "bank", "send", "alice", "bob", "1234ujuno", "--wait"])
        .arg("--home")
        .arg(&nodes[1].home)
        .output()
        .expect("streamd tx");
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&send.stdout).expect("tx JSON");
    let height = out["height"].as_i64().expect("height");
    let mut node0 = ServiceClient::new(
        tonic::transport::Endpoint::from_shared(format!("http://{}", nodes[0].grpc))
            .expect("URL")
            .connect_lazy(),
    );
    // node1 answered once it committed the block; node0 may commit it a moment later.
    let deadline = Instant::now() + Duration::from_secs(30);
    let block = loop {
        match node0
            .get_block_by_height(GetBlockByHeightRequest { height })
            .await
        {
            Ok(r) => break r.into_inner(),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(s) => panic!("node0 has no block {height} after 30 s: {s}"),
        }
    };
    let sdk = block.sdk_block.expect("sdk_block");
    let txs = sdk.data.map(|d| d.txs.len());
    assert_eq!(
        txs,
        Some(1),
        "node0's block {height} holds the tx sent through node1"
    );
    // It is CometBFT's block: the header it signed, and its last commit.
    let header = sdk.header.expect("header");
    assert!(
        header.proposer_address.starts_with("junovalcons1"),
        "{header:?}"
    );
    assert_eq!(header.app_hash.len(), 32, "{header:?}");
    assert!(
        block.block.and_then(|b| b.last_commit).is_some(),
        "CometBFT's last commit"
    );

    std::mem::forget(guard);
    // SIGTERM to the script stops everything it started.
    let pid = script.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = script.try_wait().expect("poll") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "scripts/testnet still runs 15 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(143), "exit status after SIGTERM");
    for n in &nodes {
        for addr in [n.grpc, n.api, n.rpc] {
            assert!(
                closed(addr),
                "{addr} still listens after the script stopped"
            );
        }
    }
}

/// SIGTERMs the script (by process id) when the test fails before it does.
struct StopOnPanic(u32);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.to_string()])
            .status();
    }
}

fn parse_line(line: &str) -> support::comet::NodeAddrs {
    // The script's line has no abci= (streamd's ABCI port is internal to the node).
    let with_abci = format!("{line} abci=127.0.0.1:1 p2p=127.0.0.1:1");
    parse_node_line(&with_abci)
}

fn closed(addr: SocketAddr) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
