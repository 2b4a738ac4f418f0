//! End-to-end harness: runs the real `streamd` binary on free loopback ports in a temporary
//! home and gives tests gRPC clients, the CLI and a few waiting helpers.
//!
//! One `TestNode` per test keeps tests independent; `TestNodeOptions` says how it starts
//! (block time, unbonding time, simulated traffic, `[rpc]` and `[stream]` settings). The
//! node's stderr goes to a log file in the temporary home; when a test panics, the log is
//! printed and the home is kept.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod accounts;
pub mod cli;
pub mod comet;
pub mod dec;
pub mod options;
pub mod plugin;
pub mod queries;
pub mod simd;
pub mod staking;
pub mod tools;
pub mod tx;

#[allow(unused_imports)] // each test binary uses a different part of the harness
pub use cli::{TxOutcome, parse_tx_output, stderr, stdout, streamd, streamd_bin};
pub use options::TestNodeOptions;

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use stream_proto::cosmos::auth::v1beta1::query_client::QueryClient as AuthClient;
use stream_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient as TendermintClient;
use stream_proto::cosmos::staking::v1beta1::query_client::QueryClient as StakingClient;
use stream_proto::cosmos::tx::v1beta1::service_client::ServiceClient as TxClient;
use stream_proto::streamd::dev::v1::dev_client::DevClient;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};

/// How long a node may take from `start` to its first block.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for any single wait on the chain (a height, a tx).
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `streamd` with its own home; killed on drop.
pub struct TestNode {
    /// Temporary directory holding `home/` and the node's logs; kept if a test fails.
    dir: Option<TempDir>,
    home: PathBuf,
    log: PathBuf,
    child: Child,
    grpc: SocketAddr,
    api: SocketAddr,
    channel: Channel,
    options: TestNodeOptions,
    /// The ADR-038 plugin's gRPC and API addresses, when it is loaded.
    plugin: Option<[SocketAddr; 2]>,
    /// CometBFT and its log, when this test binary runs its nodes under CometBFT
    /// ([`comet::under_comet`]).
    cometbft: Option<(Child, PathBuf)>,
    /// Under CometBFT, the network's other validator (the dev genesis has two), which must
    /// run for blocks to be committed.
    peers: Vec<comet::CometNode>,
    /// CometBFT's RPC address, under CometBFT.
    comet_rpc: Option<SocketAddr>,
}

impl TestNode {
    /// Starts a node with default options (200 ms blocks, 3 s unbonding).
    pub async fn start_default() -> TestNode {
        TestNode::start(TestNodeOptions::default()).await
    }

    /// `streamd init` into a fresh temporary home, the edits of `options` to its
    /// `config.toml` and `app.toml`, then `streamd start` on free loopback ports; returns once
    /// the node answers `GetLatestBlock` with height >= 1.
    pub async fn start(options: TestNodeOptions) -> TestNode {
        let dir = tempfile::Builder::new()
            .prefix("streamd-e2e-")
            .tempdir()
            .expect("create temp dir");
        if comet::under_comet() {
            return TestNode::start_under_comet(dir, options).await;
        }
        let home = dir.path().join("home");
        let home_str = home.to_str().expect("UTF-8 temp path").to_owned();

        let init = streamd(&[
            "init",
            "--home",
            &home_str,
            "--unbonding-time",
            options.unbonding_time,
        ]);
        assert!(
            init.status.success(),
            "streamd init failed ({}):\n{}",
            init.status,
            stderr(&init)
        );

        let [grpc, api] = free_ports();
        options.configure_home(&home, grpc, api);
        let plugin = options.plugin.then(free_ports::<2>);

        let log = dir.path().join("streamd.log");
        let mut command = Command::new(streamd_bin());
        if let Some([plugin_grpc, plugin_api]) = plugin {
            plugin::configure_host(&home, &mut command, grpc, plugin_grpc, plugin_api);
        }
        let child = command
            .args(options.start_args(&home_str, grpc, api))
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("streamd.stdout")).expect("stdout file"))
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", streamd_bin()));

        let mut node = TestNode::connect(dir, home, log, child, None, plugin, grpc, api, options);
        node.wait_until_serving().await;
        node
    }

    /// [`TestNode::start`] under CometBFT: the dev genesis's two validators as a two-node
    /// `streamd testnet init-files` network (`timeout_commit` = the options' block time); the
    /// test talks to node0, whose home gets the options' edits.
    async fn start_under_comet(dir: TempDir, options: TestNodeOptions) -> TestNode {
        let net = dir.path().join("net");
        let mut nodes = comet::init_files(&net, 2, options.unbonding_time, options.block_time);
        let addrs = nodes.remove(0);
        let peers = nodes
            .iter()
            .map(|a| comet::CometNode::start(a, dir.path(), &[]))
            .collect();
        let (grpc, api) = (addrs.grpc, addrs.api);
        options.configure_home(&addrs.home, grpc, api);
        let home_str = addrs.home.to_str().expect("UTF-8 temp path").to_owned();
        let mut extra = options.start_args(&home_str, grpc, api);
        extra.drain(..3); // "start --home HOME": spawn() passes its own
        let (child, cometbft, log, cometbft_log) = comet::spawn(&addrs, dir.path(), &extra);
        let home = addrs.home.clone();
        let mut node = TestNode::connect(
            dir,
            home,
            log,
            child,
            Some((cometbft, cometbft_log)),
            None,
            grpc,
            api,
            options,
        );
        node.peers = peers;
        node.comet_rpc = Some(addrs.rpc);
        node.wait_until_serving().await;
        node
    }

    #[allow(clippy::too_many_arguments)]
    fn connect(
        dir: TempDir,
        home: PathBuf,
        log: PathBuf,
        child: Child,
        cometbft: Option<(Child, PathBuf)>,
        plugin: Option<[SocketAddr; 2]>,
        grpc: SocketAddr,
        api: SocketAddr,
        options: TestNodeOptions,
    ) -> TestNode {
        let channel = Endpoint::from_shared(format!("http://{grpc}"))
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        TestNode {
            dir: Some(dir),
            home,
            log,
            child,
            grpc,
            api,
            channel,
            options,
            plugin,
            cometbft,
            peers: Vec::new(),
            comet_rpc: None,
        }
    }

    /// One node of a CometBFT network written by [`comet::init_files`]: spawns its streamd
    /// (`start --with-comet=false` plus `extra`) and CometBFT, logging into `logs`. Does not
    /// wait for blocks, since a network commits none until more than 2/3 of its validators
    /// run: call [`TestNode::wait_until_serving`] once they all are spawned. Dropping the node
    /// SIGKILLs both processes.
    pub fn spawn_comet(addrs: &comet::NodeAddrs, logs: &Path, extra: &[String]) -> TestNode {
        let (child, cometbft, log, cometbft_log) = comet::spawn(addrs, logs, extra);
        let mut node = TestNode {
            dir: None,
            home: addrs.home.clone(),
            log,
            child,
            grpc: addrs.grpc,
            api: addrs.api,
            channel: Endpoint::from_shared(format!("http://{}", addrs.grpc))
                .expect("valid URL")
                .connect_timeout(Duration::from_secs(1))
                .connect_lazy(),
            options: TestNodeOptions::default(),
            cometbft: Some((cometbft, cometbft_log)),
            peers: Vec::new(),
            comet_rpc: None,
            plugin: None,
        };
        node.comet_rpc = Some(addrs.rpc);
        node
    }

    /// CometBFT's RPC address, when the node runs under CometBFT.
    pub fn comet_rpc(&self) -> Option<SocketAddr> {
        self.comet_rpc
    }

    /// Waits (bounded) until the node answers `GetLatestBlock` with height >= 1.
    pub async fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                self.fail(&format!("streamd start exited early with {status}"));
            }
            match self.latest_block().await {
                Ok(block) if block.height >= 1 => return,
                _ if Instant::now() >= deadline => self.fail(&format!(
                    "no block with height >= 1 on {} within {START_TIMEOUT:?}",
                    self.grpc
                )),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Panics with `message` and the node's log (the log is also printed on drop).
    pub fn fail(&self, message: &str) -> ! {
        let cometbft = match &self.cometbft {
            Some((_, log)) => format!(
                "\n--- cometbft log ({}) ---\n{}",
                log.display(),
                comet::tail(log)
            ),
            None => String::new(),
        };
        panic!(
            "{message}\n--- streamd log ({}) ---\n{}{cometbft}",
            self.log.display(),
            self.log_text()
        );
    }

    /// The last lines the node has written to stderr (enough to see why it failed).
    pub fn log_text(&self) -> String {
        const TAIL_LINES: usize = 200;
        match std::fs::read_to_string(&self.log) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                let skip = lines.len().saturating_sub(TAIL_LINES);
                let tail = lines[skip..].join("\n");
                if skip > 0 {
                    format!("[... {skip} earlier lines ...]\n{tail}")
                } else {
                    tail
                }
            }
            Err(e) => format!("<no log: {e}>"),
        }
    }

    /// The node's home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The options this node was started with.
    pub fn options(&self) -> &TestNodeOptions {
        &self.options
    }

    /// The ADR-038 plugin's gRPC address (`TestNodeOptions::with_plugin`).
    pub fn plugin_grpc_addr(&self) -> SocketAddr {
        self.plugin
            .expect("the node was started without the plugin")[0]
    }

    /// The ADR-038 plugin's API (WebSocket) address.
    pub fn plugin_api_addr(&self) -> SocketAddr {
        self.plugin
            .expect("the node was started without the plugin")[1]
    }

    /// `HOST:PORT` of the gRPC server.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// `HOST:PORT` of the API (HTTP/WebSocket) server.
    pub fn api_addr(&self) -> SocketAddr {
        self.api
    }

    /// `http://HOST:PORT` of the gRPC server, as `--node` takes it.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// A gRPC channel to the node from 127.0.0.1 (cheap to clone).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A new HTTP/2 connection to the node from loopback address 127.0.0.`client` (see
    /// [`client_channel`]).
    pub fn channel_from(&self, client: u8) -> Channel {
        client_channel(self.grpc, client)
    }

    /// `cosmos.bank.v1beta1.Query` client.
    pub fn bank(&self) -> BankClient<Channel> {
        BankClient::new(self.channel())
    }

    /// `cosmos.staking.v1beta1.Query` client.
    pub fn staking(&self) -> StakingClient<Channel> {
        StakingClient::new(self.channel())
    }

    /// `cosmos.auth.v1beta1.Query` client.
    pub fn auth(&self) -> AuthClient<Channel> {
        AuthClient::new(self.channel())
    }

    /// `cosmos.tx.v1beta1.Service` client.
    pub fn tx_service(&self) -> TxClient<Channel> {
        TxClient::new(self.channel())
    }

    /// `cosmos.base.tendermint.v1beta1.Service` client.
    pub fn tendermint(&self) -> TendermintClient<Channel> {
        TendermintClient::new(self.channel())
    }

    /// `streamd.dev.v1.Dev` client.
    pub fn dev(&self) -> DevClient<Channel> {
        DevClient::new(self.channel())
    }

    /// Waits (bounded) until the latest block height is at least `height`.
    pub async fn wait_for_height(&self, height: i64) {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let now = self.height().await;
            if now >= height {
                return;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "height {height} not reached within {WAIT_TIMEOUT:?} (at {now})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the latest block's time is at least `time`; returns that block.
    pub async fn wait_for_time(&self, time: queries::Time) -> queries::BlockInfo {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let block = self
                .latest_block()
                .await
                .unwrap_or_else(|s| self.fail(&format!("GetLatestBlock: {s}")));
            if block.time >= time {
                return block;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "block time {time:?} not reached; latest {block:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's resident memory (`VmRSS` of /proc/<pid>/status), bytes.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_else(|e| self.fail(&format!("read /proc/<pid>/status: {e}")));
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| self.fail("no VmRSS in /proc/<pid>/status"));
        kib * 1024
    }

    /// Sends SIGTERM to the node process (by its process id), as an operator stopping it.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Waits (bounded by `within`) for the node process to exit; returns its status.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("streamd did not exit within {within:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some((cometbft, _)) = &mut self.cometbft {
            let _ = cometbft.kill();
            let _ = cometbft.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let dir = self.dir.take().map(TempDir::keep);
            eprintln!(
                "--- streamd log ({}) ---\n{}\n--- end of streamd log; home kept at {:?} ---",
                self.log.display(),
                self.log_text(),
                dir
            );
        }
    }
}

/// Distinct loopback ports nothing listens on right now (held together while picking, so
/// they differ).
pub fn free_ports<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address"))
}

/// Loopback address `127.0.0.N`: every test client picks its own, so that the node's
/// per-client-IP limits can be exercised from one machine.
pub fn loopback(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// A lazily connected HTTP/2 connection to `grpc` from loopback address 127.0.0.`client`:
/// the node counts `max_subscriptions_per_client` by client IP (5 by default), so tests that
/// hold more streams than that spread them over several "clients".
pub fn client_channel(grpc: SocketAddr, client: u8) -> Channel {
    Endpoint::from_shared(format!("http://{grpc}"))
        .expect("valid URL")
        .local_address(Some(loopback(client)))
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}
