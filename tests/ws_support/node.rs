//! `WsNode`: a `streamd` started from the harness's building blocks (`streamd init`, edits of
//! `config/config.toml` `[rpc]` and `config/app.toml` `[stream]`, `streamd start` on free
//! loopback ports) for the tests the shared `TestNode` cannot host: small limits, short
//! WebSocket timeouts, allowed origins, and SIGTERM to the node's own process.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cosmos_sdk_proto::cosmos::bank::v1beta1::QueryBalanceRequest;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest;
use stream_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};

use crate::support::{TxOutcome, parse_tx_output, stderr, streamd, streamd_bin};

/// How long a node may take from `start` to its first block.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What to write into the new home before `streamd start`.
#[derive(Clone, Debug, Default)]
pub struct WsNodeConfig {
    /// `config/config.toml` `[rpc]` keys (`max_open_connections`, `max_subscriptions_per_client`).
    pub rpc: Vec<(&'static str, i64)>,
    /// `config/app.toml` `[stream]` keys.
    pub stream: Vec<(&'static str, toml::Value)>,
    /// `streamd start --simulate TXS_PER_BLOCK`.
    pub simulate: Option<u32>,
}

impl WsNodeConfig {
    /// Sets `[rpc] key = value`.
    pub fn rpc(mut self, key: &'static str, value: i64) -> Self {
        self.rpc.push((key, value));
        self
    }

    /// Sets `[stream] key = value`.
    pub fn stream(mut self, key: &'static str, value: impl Into<toml::Value>) -> Self {
        self.stream.push((key, value.into()));
        self
    }

    /// Built-in traffic: `txs` simulated transactions per block.
    pub fn simulate(mut self, txs: u32) -> Self {
        self.simulate = Some(txs);
        self
    }

    /// Short WebSocket timeouts so that silent clients are found within seconds:
    /// ping every 500 ms, close after 2 s of silence, 2 s write deadline.
    pub fn short_timeouts(self) -> Self {
        self.stream("ping_interval", "500ms")
            .stream("idle_timeout", "2s")
            .stream("write_timeout", "2s")
    }
}

/// A running `streamd` with a customised home; killed on drop (log printed and home kept
/// when the test fails).
pub struct WsNode {
    dir: Option<TempDir>,
    home: PathBuf,
    log: PathBuf,
    child: Child,
    grpc: SocketAddr,
    api: SocketAddr,
    channel: Channel,
}

impl WsNode {
    /// `streamd init`, the edits of `config`, then `streamd start --block-time 200ms` on free
    /// loopback ports; returns once the node has committed a block.
    pub async fn start(config: WsNodeConfig) -> WsNode {
        let dir = tempfile::Builder::new()
            .prefix("streamd-e2e-ws-")
            .tempdir()
            .expect("create temp dir");
        let home = dir.path().join("home");
        let home_str = home.to_str().expect("UTF-8 temp path").to_owned();
        let init = streamd(&["init", "--home", &home_str, "--unbonding-time", "60s"]);
        assert!(
            init.status.success(),
            "streamd init failed ({}):\n{}",
            init.status,
            stderr(&init)
        );
        edit_table(&home.join("config").join("config.toml"), "rpc", |t| {
            for (key, value) in &config.rpc {
                t.insert((*key).to_owned(), toml::Value::Integer(*value));
            }
        });
        edit_table(&home.join("config").join("app.toml"), "stream", |t| {
            for (key, value) in &config.stream {
                t.insert((*key).to_owned(), value.clone());
            }
        });

        let [grpc, api] = free_ports();
        let log = dir.path().join("streamd.log");
        let child = Command::new(streamd_bin())
            .args(["start", "--home", &home_str, "--block-time", "200ms"])
            .args(
                config
                    .simulate
                    .map(|n| vec!["--simulate".to_owned(), n.to_string()])
                    .unwrap_or_default(),
            )
            .args(["--grpc.address", &grpc.to_string()])
            .args(["--api.address", &format!("tcp://{api}")])
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("streamd.stdout")).expect("stdout file"))
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", streamd_bin()));
        let channel = Endpoint::from_shared(format!("http://{grpc}"))
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        let mut node = WsNode {
            dir: Some(dir),
            home,
            log,
            child,
            grpc,
            api,
            channel,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while node.try_height().await.unwrap_or(0) < 1 {
            if let Some(status) = node.child.try_wait().expect("poll child") {
                node.fail(&format!("streamd start exited early with {status}"));
            }
            if Instant::now() >= deadline {
                node.fail(&format!("no block on {grpc} within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node
    }

    /// `HOST:PORT` of the API (HTTP/WebSocket) server.
    pub fn api_addr(&self) -> SocketAddr {
        self.api
    }

    /// `HOST:PORT` of the gRPC server.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// A gRPC channel to the node from 127.0.0.1 (cheap to clone).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The node's home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Panics with `message` and the node's log.
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\n--- streamd log ({}) ---\n{}",
            self.log.display(),
            self.log_text()
        );
    }

    /// The last lines the node has written to stderr.
    pub fn log_text(&self) -> String {
        const TAIL_LINES: usize = 100;
        match std::fs::read_to_string(&self.log) {
            Ok(text) => {
                let lines: Vec<&str> = text.lines().collect();
                let skip = lines.len().saturating_sub(TAIL_LINES);
                format!("[{skip} earlier lines]\n{}", lines[skip..].join("\n"))
            }
            Err(e) => format!("<no log: {e}>"),
        }
    }

    /// The latest committed height, or `None` if the node does not answer.
    pub async fn try_height(&self) -> Option<i64> {
        let block = ServiceClient::new(self.channel())
            .get_latest_block(GetLatestBlockRequest {})
            .await
            .ok()?
            .into_inner();
        block.sdk_block?.header.map(|h| h.height)
    }

    /// The latest committed height.
    pub async fn height(&self) -> i64 {
        match self.try_height().await {
            Some(h) => h,
            None => self.fail("GetLatestBlock failed"),
        }
    }

    /// `cosmos.bank.v1beta1.Query/Balance` of `address` in `denom` at `height`.
    pub async fn balance_at(&self, address: &str, denom: &str, height: i64) -> String {
        let mut request = tonic::Request::new(QueryBalanceRequest {
            address: address.to_owned(),
            denom: denom.to_owned(),
        });
        request.metadata_mut().insert(
            crate::support::queries::HEIGHT_HEADER,
            height.to_string().parse().expect("ASCII metadata"),
        );
        BankClient::new(self.channel())
            .balance(request)
            .await
            .unwrap_or_else(|s| panic!("Balance {address} {denom} at {height}: {s}"))
            .into_inner()
            .balance
            .expect("Balance answers with a coin")
            .amount
    }

    /// `streamd tx ARGS --wait --home HOME --node URL`; requires code 0.
    pub async fn tx_ok(&self, args: &[&str]) -> TxOutcome {
        let outcome = self.tx(args).await;
        assert_eq!(outcome.code, 0, "streamd tx {args:?} failed: {outcome:?}");
        outcome
    }

    /// `streamd tx ARGS --wait --home HOME --node URL`: the committed result, whatever its code.
    pub async fn tx(&self, args: &[&str]) -> TxOutcome {
        let mut full = vec!["tx"];
        full.extend_from_slice(args);
        full.push("--wait");
        let output = tokio::process::Command::new(streamd_bin())
            .args(&full)
            .arg("--home")
            .arg(&self.home)
            .arg("--node")
            .arg(format!("http://{}", self.grpc))
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run streamd {full:?}: {e}"));
        let outcome = parse_tx_output(&full, &output);
        assert!(
            outcome.height > 0,
            "streamd {full:?} must report the block height: {outcome:?}"
        );
        outcome
    }

    /// Sends SIGTERM to the node process (by its process id).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits (bounded) for the node process to exit; returns its status.
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

impl Drop for WsNode {
    fn drop(&mut self) {
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

/// Applies `edit` to table `[section]` of the TOML file at `path` (created if absent).
fn edit_table(path: &Path, section: &str, edit: impl FnOnce(&mut toml::Table)) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    let entry = table
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    edit(
        entry
            .as_table_mut()
            .unwrap_or_else(|| panic!("[{section}] of {} is not a table", path.display())),
    );
    std::fs::write(path, toml::to_string(&table).expect("TOML encodes"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Distinct loopback ports nothing listens on right now.
fn free_ports<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address"))
}
