//! A `streamd` of the benchmark's own: `streamd init` into a temporary home, free loopback
//! ports and unlimited stream limits written into the home, then `streamd start`.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient;
use tonic::transport::{Channel, Endpoint};

/// How long the node may take from `start` to its first block.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running node the benchmark started; killed on drop, its home removed with it.
pub struct Node {
    /// Home and log; removed on drop.
    _dir: tempfile::TempDir,
    child: Child,
    /// gRPC port address.
    pub grpc: SocketAddr,
    /// API (WebSocket) port address.
    pub api: SocketAddr,
}

impl Node {
    /// Starts `streamd` (the binary at `bin`) with blocks every `block_time`.
    pub async fn start(bin: &Path, block_time: &str) -> Result<Node> {
        let dir = tempfile::Builder::new().prefix("stream-bench-").tempdir()?;
        let home = dir.path().join("home");
        let init = Command::new(bin)
            .args(["init", "--home"])
            .arg(&home)
            .output()
            .with_context(|| format!("run {} init", bin.display()))?;
        if !init.status.success() {
            bail!(
                "streamd init failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        let grpc = free_port()?;
        let api = free_port()?;
        let config = home.join("config");
        // The benchmark opens thousands of streams from one IP: no connection or per-client limit.
        set_keys(
            &config.join("config.toml"),
            "rpc",
            &[
                ("max_open_connections", 0.into()),
                ("max_subscriptions_per_client", 0.into()),
            ],
        )?;
        let app = config.join("app.toml");
        set_keys(&app, "grpc", &[("address", grpc.to_string().into())])?;
        set_keys(&app, "api", &[("address", format!("tcp://{api}").into())])?;
        // ... nor a connect rate.
        set_keys(&app, "stream", &[("connect_rate", "0".into())])?;
        let log = dir.path().join("streamd.log");
        let child = Command::new(bin)
            .args(["start", "--home"])
            .arg(&home)
            .args(["--block-time", block_time])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("spawn {} start", bin.display()))?;
        let mut node = Node {
            _dir: dir,
            child,
            grpc,
            api,
        };
        node.wait_for_first_block().await?;
        Ok(node)
    }

    /// The node's process id (for `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_for_first_block(&mut self) -> Result<()> {
        let channel = channel(self.grpc);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("streamd start exited early with {status}");
            }
            if latest_height(&channel).await.unwrap_or(0) >= 1 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("streamd made no block within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A lazily connecting gRPC channel to `addr`.
pub fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address makes a valid URL")
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

/// Height of the latest committed block.
pub async fn latest_height(channel: &Channel) -> Result<i64> {
    use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest;
    let block = ServiceClient::new(channel.clone())
        .get_latest_block(GetLatestBlockRequest {})
        .await?
        .into_inner();
    block
        .sdk_block
        .and_then(|b| b.header)
        .map(|h| h.height)
        .or_else(|| block.block.and_then(|b| b.header).map(|h| h.height))
        .context("GetLatestBlock carries no header")
}

/// Header time of block `height`, nanoseconds since the Unix epoch.
pub async fn block_time_ns(channel: &Channel, height: i64) -> Result<u128> {
    use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetBlockByHeightRequest;
    let block = ServiceClient::new(channel.clone())
        .get_block_by_height(GetBlockByHeightRequest { height })
        .await
        .with_context(|| format!("GetBlockByHeight {height}"))?
        .into_inner();
    let time = block
        .sdk_block
        .and_then(|b| b.header)
        .and_then(|h| h.time)
        .or_else(|| block.block.and_then(|b| b.header).and_then(|h| h.time))
        .with_context(|| format!("block {height} has no header time"))?;
    Ok(time.seconds as u128 * 1_000_000_000 + time.nanos as u128)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Sets `[section] key = value` in the TOML file at `path` (the section must exist).
fn set_keys(path: &PathBuf, section: &str, entries: &[(&str, toml::Value)]) -> Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    let keys = table
        .get_mut(section)
        .and_then(toml::Value::as_table_mut)
        .with_context(|| format!("{} has no [{section}]", path.display()))?;
    for (key, value) in entries {
        keys.insert((*key).to_owned(), value.clone());
    }
    std::fs::write(path, toml::to_string(&table)?)?;
    Ok(())
}
