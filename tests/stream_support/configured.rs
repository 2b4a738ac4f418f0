//! `ConfiguredNode`: a `streamd` started from the harness's building blocks (`streamd init`,
//! an edit of `config/config.toml`, `streamd start` on free loopback ports) for the tests the
//! shared `TestNode` cannot host: custom CometBFT `[rpc]` limits, and SIGTERM to the node's
//! own process id.

use std::fs::File;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient;
use tempfile::TempDir;
use tonic::transport::Channel;

use super::client_channel;
use crate::support::{stderr, streamd, streamd_bin};

/// How long a node may take from `start` to its first block.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `streamd` with a custom `config.toml`; killed on drop (log printed and home
/// kept when the test fails).
pub struct ConfiguredNode {
    dir: Option<TempDir>,
    log: PathBuf,
    child: Child,
    grpc: SocketAddr,
}

impl ConfiguredNode {
    /// `streamd init`, then `[rpc] KEY = VALUE` for each of `rpc` in `config/config.toml`,
    /// then `streamd start --block-time 200ms` on free loopback ports; returns once the node
    /// has committed a block.
    pub async fn start(rpc: &[(&str, i64)]) -> ConfiguredNode {
        let dir = tempfile::Builder::new()
            .prefix("streamd-e2e-stream-")
            .tempdir()
            .expect("create temp dir");
        let home = dir.path().join("home");
        let home_str = home.to_str().expect("UTF-8 temp path").to_owned();
        let init = streamd(&["init", "--home", &home_str]);
        assert!(
            init.status.success(),
            "streamd init failed ({}):\n{}",
            init.status,
            stderr(&init)
        );

        let config = home.join("config").join("config.toml");
        let text = std::fs::read_to_string(&config).expect("read config.toml");
        let mut table: toml::Table = text.parse().expect("config.toml is TOML");
        let section = table
            .get_mut("rpc")
            .and_then(toml::Value::as_table_mut)
            .expect("config.toml has an [rpc] table");
        for (key, value) in rpc {
            section.insert((*key).to_owned(), toml::Value::Integer(*value));
        }
        std::fs::write(&config, toml::to_string(&table).expect("TOML encodes"))
            .expect("write config.toml");

        let [grpc, api] = free_ports();
        let log = dir.path().join("streamd.log");
        let child = Command::new(streamd_bin())
            .args(["start", "--home", &home_str, "--block-time", "200ms"])
            .args(["--grpc.address", &grpc.to_string()])
            .args(["--api.address", &format!("tcp://{api}")])
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("streamd.stdout")).expect("stdout file"))
            .stderr(File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", streamd_bin()));
        let mut node = ConfiguredNode {
            dir: Some(dir),
            log,
            child,
            grpc,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while node.try_height().await.unwrap_or(0) < 1 {
            if let Some(status) = node.child.try_wait().expect("poll child") {
                panic!("streamd start exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "no block on {grpc} within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        node
    }

    /// `HOST:PORT` of the gRPC server.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    /// A new HTTP/2 connection to the node from loopback address 127.0.0.`client`.
    pub fn channel_from(&self, client: u8) -> Channel {
        client_channel(self.grpc, client)
    }

    /// The latest committed height, or `None` if the node does not answer.
    pub async fn try_height(&self) -> Option<i64> {
        let mut client = ServiceClient::new(client_channel(self.grpc, 1));
        let block = client
            .get_latest_block(GetLatestBlockRequest {})
            .await
            .ok()?
            .into_inner();
        block.sdk_block?.header.map(|h| h.height)
    }

    /// Sends SIGTERM to the node process (by its process id).
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed: {status}");
    }

    /// Waits (bounded) for the node process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "streamd did not exit within {within:?} of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's log (stderr).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no log: {e}>"))
    }
}

impl Drop for ConfiguredNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let dir = self.dir.take().map(TempDir::keep);
            eprintln!(
                "--- streamd log ({}) ---\n{}\n--- end of streamd log; home kept at {dir:?} ---",
                self.log.display(),
                self.log_text(),
            );
        }
    }
}

/// Distinct loopback ports nothing listens on right now.
fn free_ports<const N: usize>() -> [SocketAddr; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local address"))
}

/// The loopback address 127.0.0.`client`.
pub fn loopback(client: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, client])
}
