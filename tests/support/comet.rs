//! streamd under real CometBFT v0.38 in tests: `streamd testnet init-files` writes the homes,
//! then each node is a `streamd start --with-comet=false` plus a `cometbft start` on the same
//! home, on free loopback ports.
//!
//! A test binary whose name starts with `comet_` (e.g. `comet_stream_bank`, built from the
//! same source as `e2e_stream_bank`) runs every `TestNode` of the harness this way, so the
//! dev-chain tests' exact expectations hold against CometBFT unchanged.

use super::tools::COMETBFT;
use super::{stderr, streamd_bin};
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this test binary runs its nodes under CometBFT (its name starts with `comet_`).
pub fn under_comet() -> bool {
    env!("CARGO_CRATE_NAME").starts_with("comet_")
}

/// One node's home and addresses, as `streamd testnet init-files` printed them.
#[derive(Clone, Debug)]
pub struct NodeAddrs {
    /// Node index.
    pub index: usize,
    /// The home streamd and CometBFT share.
    pub home: PathBuf,
    /// streamd's ABCI listener (CometBFT's `proxy_app`).
    pub abci: SocketAddr,
    /// CometBFT's RPC.
    pub rpc: SocketAddr,
    /// streamd's gRPC port.
    pub grpc: SocketAddr,
    /// streamd's API port.
    pub api: SocketAddr,
}

/// `streamd testnet init-files --v N` into `dir` (free ports), with the dev chain's chain id
/// (the tests' signer signs for it); one entry per node.
pub fn init_files(
    dir: &Path,
    validators: usize,
    unbonding_time: &str,
    timeout_commit: &str,
) -> Vec<NodeAddrs> {
    let cometbft = COMETBFT.require();
    let out = Command::new(streamd_bin())
        .args(["testnet", "init-files", "--v", &validators.to_string()])
        .arg("--output-dir")
        .arg(dir)
        .arg("--cometbft")
        .arg(&cometbft)
        .args(["--unbonding-time", unbonding_time])
        .args(["--timeout-commit", timeout_commit])
        .args(["--chain-id", super::accounts::CHAIN_ID])
        .stdin(Stdio::null())
        .output()
        .expect("run streamd testnet init-files");
    assert!(
        out.status.success(),
        "streamd testnet init-files failed ({}):\n{}",
        out.status,
        stderr(&out)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    let nodes: Vec<NodeAddrs> = text.lines().map(parse_node_line).collect();
    assert_eq!(nodes.len(), validators, "one line per node:\n{text}");
    nodes
}

/// `node<i> home=<dir> abci=<addr> rpc=<addr> p2p=<addr> grpc=<addr> api=<addr>`.
pub fn parse_node_line(line: &str) -> NodeAddrs {
    let mut words = line.split_whitespace();
    let index = words
        .next()
        .and_then(|w| w.strip_prefix("node"))
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("not a node line: {line:?}"));
    let field = |name: &str| -> String {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
            .to_owned()
    };
    let addr = |name: &str| -> SocketAddr {
        field(name)
            .parse()
            .unwrap_or_else(|e| panic!("{name} in {line:?}: {e}"))
    };
    NodeAddrs {
        index,
        home: PathBuf::from(field("home")),
        abci: addr("abci"),
        rpc: addr("rpc"),
        grpc: addr("grpc"),
        api: addr("api"),
    }
}

/// How long streamd may take to listen for ABCI.
const ABCI_TIMEOUT: Duration = Duration::from_secs(30);

/// A running node: streamd and its CometBFT. Both are killed (SIGKILL, by process id) on drop.
pub struct CometNode {
    /// Addresses.
    pub addrs: NodeAddrs,
    /// streamd (ABCI application, gRPC and API ports).
    pub streamd: Child,
    /// CometBFT.
    pub cometbft: Child,
    /// streamd's stderr.
    pub streamd_log: PathBuf,
    /// CometBFT's output.
    pub cometbft_log: PathBuf,
}

impl CometNode {
    /// Starts streamd (`start --with-comet=false` plus `extra` arguments), waits until it
    /// listens for ABCI, then starts CometBFT on the same home. Logs go to `logs` (appended,
    /// so a restarted node keeps its history).
    pub fn start(addrs: &NodeAddrs, logs: &Path, extra: &[String]) -> CometNode {
        let (streamd, cometbft, streamd_log, cometbft_log) = spawn(addrs, logs, extra);
        CometNode {
            addrs: addrs.clone(),
            streamd,
            cometbft,
            streamd_log,
            cometbft_log,
        }
    }

    /// SIGKILLs CometBFT and streamd (by process id) and reaps them.
    pub fn kill(&mut self) {
        let _ = self.cometbft.kill();
        let _ = self.streamd.kill();
        let _ = self.cometbft.wait();
        let _ = self.streamd.wait();
    }

    /// The last lines of both logs.
    pub fn logs(&self) -> String {
        format!(
            "--- node{i} streamd ({}) ---\n{}\n--- node{i} cometbft ({}) ---\n{}",
            self.streamd_log.display(),
            tail(&self.streamd_log),
            self.cometbft_log.display(),
            tail(&self.cometbft_log),
            i = self.addrs.index
        )
    }
}

/// Spawns a node's streamd, waits for its ABCI port, then spawns its CometBFT; returns both
/// processes and their log files (streamd's, CometBFT's).
pub fn spawn(addrs: &NodeAddrs, logs: &Path, extra: &[String]) -> (Child, Child, PathBuf, PathBuf) {
    let streamd_log = logs.join(format!("node{}-streamd.log", addrs.index));
    let cometbft_log = logs.join(format!("node{}-cometbft.log", addrs.index));
    let append = |p: &Path| {
        File::options()
            .create(true)
            .append(true)
            .open(p)
            .expect("log file")
    };
    let home = addrs.home.to_str().expect("UTF-8 home").to_owned();
    let mut streamd = Command::new(streamd_bin())
        .args(["start", "--home", &home, "--with-comet=false", "--address"])
        .arg(format!("tcp://{}", addrs.abci))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(append(&streamd_log))
        .stderr(append(&streamd_log))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", streamd_bin()));
    let deadline = Instant::now() + ABCI_TIMEOUT;
    while TcpStream::connect_timeout(&addrs.abci, Duration::from_millis(200)).is_err() {
        if let Some(status) = streamd.try_wait().expect("poll streamd") {
            panic!(
                "streamd exited early with {status}:\n{}",
                std::fs::read_to_string(&streamd_log).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            let _ = streamd.kill();
            panic!(
                "streamd did not listen for ABCI on {} within {ABCI_TIMEOUT:?}",
                addrs.abci
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cometbft = Command::new(COMETBFT.require())
        .args(["start", "--home", &home])
        .stdin(Stdio::null())
        .stdout(append(&cometbft_log))
        .stderr(append(&cometbft_log))
        .spawn()
        .expect("spawn cometbft");
    (streamd, cometbft, streamd_log, cometbft_log)
}

impl Drop for CometNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last lines of a log file.
pub fn tail(path: &Path) -> String {
    const LINES: usize = 60;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<no log: {e}>"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}
