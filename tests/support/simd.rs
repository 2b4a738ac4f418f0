//! A one-validator chain of the real Go node `simd` (Cosmos SDK v0.50) with `streamd plugin`
//! loaded as its ADR-038 streaming plugin, on free loopback ports in a temporary home:
//! `simd init`, genesis accounts, gentx, `start` with `[streaming.abci]` and
//! `COSMOS_SDK_ABCI`. Transactions go through simd's own CLI.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use stream_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient as TendermintClient;
use stream_proto::cosmos::staking::v1beta1::query_client::QueryClient as StakingClient;
use stream_proto::cosmos::tx::v1beta1::service_client::ServiceClient as TxClient;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint};

use super::tools::SIMD;

/// The chain id of the test chain.
pub const CHAIN_ID: &str = "stream-simd-1";
/// simd's bond denom.
pub const DENOM: &str = "stake";
/// Genesis balance of every key.
pub const GENESIS: u128 = 100_000_000_000;

/// A running simd with the plugin; killed on drop (the plugin follows it).
pub struct SimdNode {
    dir: Option<TempDir>,
    home: PathBuf,
    log: PathBuf,
    child: Child,
    /// simd's gRPC server (standard queries).
    pub grpc: SocketAddr,
    /// CometBFT RPC (`--node` of simd's CLI).
    pub rpc: SocketAddr,
    /// The plugin's `juno.stream.v1` port.
    pub plugin_grpc: SocketAddr,
    /// The plugin's WebSocket port.
    pub plugin_api: SocketAddr,
    channel: Channel,
}

fn run(bin: &Path, args: &[&str]) -> Output {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run simd {args:?}: {e}"));
    assert!(
        out.status.success(),
        "simd {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Sets `[section] key = value` (dotted sections allowed) in a TOML file.
fn set(path: &Path, edits: &[(&str, &str, toml::Value)]) {
    let mut doc: toml::Table = std::fs::read_to_string(path)
        .expect("read TOML")
        .parse()
        .expect("parse TOML");
    for (section, key, value) in edits {
        let mut table = &mut doc;
        for part in section.split('.') {
            table = table
                .entry(part.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a table");
        }
        table.insert((*key).to_owned(), value.clone());
    }
    std::fs::write(path, toml::to_string(&doc).expect("TOML")).expect("write TOML");
}

impl SimdNode {
    /// simd's binary (fails the test, saying how to get it, when it is missing).
    pub fn bin() -> PathBuf {
        SIMD.require()
    }

    /// Initialises a one-validator chain (keys `val`, `alice`, `bob`, each with
    /// [`GENESIS`] stake; `val` bonds a tenth) and starts simd with the plugin.
    pub async fn start() -> SimdNode {
        let bin = Self::bin();
        let dir = tempfile::Builder::new()
            .prefix("simd-e2e-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("home");
        let h = home.to_str().expect("UTF-8").to_owned();
        let kr = ["--keyring-backend", "test", "--home", &h];
        run(&bin, &["init", "e2e", "--chain-id", CHAIN_ID, "--home", &h]);
        for key in ["val", "alice", "bob"] {
            run(
                &bin,
                &[&["keys", "add", key, "--output", "json"][..], &kr].concat(),
            );
            let coins = format!("{GENESIS}{DENOM}");
            run(
                &bin,
                &[&["genesis", "add-genesis-account", key, &coins][..], &kr].concat(),
            );
        }
        let bonded = format!("{}{DENOM}", GENESIS / 10);
        run(
            &bin,
            &[
                &["genesis", "gentx", "val", &bonded, "--chain-id", CHAIN_ID][..],
                &kr,
            ]
            .concat(),
        );
        run(&bin, &["genesis", "collect-gentxs", "--home", &h]);

        let [grpc, rpc, p2p, abci, plugin_grpc, plugin_api] = super::free_ports();
        let config = home.join("config");
        let s = |v: String| toml::Value::String(v);
        set(
            &config.join("config.toml"),
            &[
                ("", "proxy_app", s(format!("tcp://{abci}"))),
                ("rpc", "laddr", s(format!("tcp://{rpc}"))),
                ("rpc", "pprof_laddr", s(String::new())),
                // The plugin reads its stream limits here too: 0 = no per-client cap.
                (
                    "rpc",
                    "max_subscriptions_per_client",
                    toml::Value::Integer(0),
                ),
                ("p2p", "laddr", s(format!("tcp://{p2p}"))),
                ("consensus", "timeout_commit", s("300ms".into())),
            ],
        );
        set(
            &config.join("app.toml"),
            &[
                ("grpc", "address", s(grpc.to_string())),
                ("api", "enable", toml::Value::Boolean(false)),
                ("grpc-web", "enable", toml::Value::Boolean(false)),
                (
                    "streaming.abci",
                    "keys",
                    toml::Value::Array(vec![s("bank".into()), s("staking".into())]),
                ),
                ("streaming.abci", "plugin", s("abci".into())),
                (
                    "streaming.abci",
                    "stop-node-on-err",
                    toml::Value::Boolean(true),
                ),
            ],
        );
        let plugin = format!(
            "{} plugin --home {h} --grpc.address {plugin_grpc} --api.address tcp://{plugin_api}",
            super::streamd_bin()
        );
        let log = dir.path().join("simd.log");
        let child = Command::new(&bin)
            .args(["start", "--home", &h])
            .env("COSMOS_SDK_ABCI", plugin)
            .stdin(Stdio::null())
            .stdout(File::create(&log).expect("log file"))
            .stderr(File::create(dir.path().join("simd.stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn simd start");
        let channel = Endpoint::from_shared(format!("http://{grpc}"))
            .expect("URL")
            .connect_lazy();
        let mut node = SimdNode {
            dir: Some(dir),
            home,
            log,
            child,
            grpc,
            rpc,
            plugin_grpc,
            plugin_api,
            channel,
        };
        node.wait_for_height(2).await;
        node
    }

    /// Panics with `message` and simd's logs (the home is kept).
    pub fn fail(&self, message: &str) -> ! {
        panic!("{message}\n--- simd log (tail) ---\n{}", self.log_tail())
    }

    fn log_tail(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        if let Some(dir) = &self.dir {
            text += &std::fs::read_to_string(dir.path().join("simd.stderr")).unwrap_or_default();
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The home (keyring, config).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// simd's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `cosmos.bank.v1beta1.Query` on simd.
    pub fn bank(&self) -> BankClient<Channel> {
        BankClient::new(self.channel.clone())
    }

    /// `cosmos.staking.v1beta1.Query` on simd.
    pub fn staking(&self) -> StakingClient<Channel> {
        StakingClient::new(self.channel.clone())
    }

    /// The latest committed height.
    pub async fn height(&self) -> i64 {
        TendermintClient::new(self.channel.clone())
            .get_latest_block(
                cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest {},
            )
            .await
            .map(|r| {
                r.into_inner()
                    .sdk_block
                    .and_then(|b| b.header)
                    .map(|h| h.height)
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Waits until `height` is committed (bounded).
    pub async fn wait_for_height(&mut self, height: i64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.height().await < height {
            if let Some(status) = self.child.try_wait().expect("poll simd") {
                self.fail(&format!("simd exited with {status}"));
            }
            if Instant::now() > deadline {
                self.fail(&format!("no height {height} within 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `simd keys show NAME -a [--bech val]`.
    pub fn address(&self, name: &str, bech: &str) -> String {
        let h = self.home.to_str().unwrap();
        let out = run(
            &Self::bin(),
            &[
                "keys",
                "show",
                name,
                "-a",
                "--bech",
                bech,
                "--keyring-backend",
                "test",
                "--home",
                h,
            ],
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// `simd tx ARGS --from FROM`, then waits for its block; returns the block height.
    pub async fn tx(&self, from: &str, args: &[&str]) -> i64 {
        let h = self.home.to_str().unwrap();
        let node = format!("tcp://{}", self.rpc);
        let mut full = vec!["tx"];
        full.extend_from_slice(args);
        full.extend([
            "--from",
            from,
            "--chain-id",
            CHAIN_ID,
            "--keyring-backend",
            "test",
            "--home",
            h,
            "--node",
            &node,
            "--gas",
            "500000",
            "--yes",
            "--output",
            "json",
        ]);
        let out = run(&Self::bin(), &full);
        let sent: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            self.fail(&format!(
                "simd {full:?}: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            ))
        });
        assert_eq!(sent["code"], 0, "simd {full:?}: {sent}");
        let hash = sent["txhash"].as_str().expect("txhash").to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = TxClient::new(self.channel.clone())
                .get_tx(cosmos_sdk_proto::cosmos::tx::v1beta1::GetTxRequest { hash: hash.clone() })
                .await;
            if let Ok(r) = r
                && let Some(resp) = r.into_inner().tx_response
            {
                assert_eq!(
                    resp.code, 0,
                    "simd {full:?} failed in its block: {}",
                    resp.raw_log
                );
                return resp.height;
            }
            if Instant::now() > deadline {
                self.fail(&format!("tx {hash} ({full:?}) not in a block within 30 s"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills simd with SIGKILL (the plugin is left to notice).
    pub fn kill_9(&self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

impl Drop for SimdNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- simd log (tail) ---\n{}", self.log_tail());
            if let Some(dir) = self.dir.take() {
                eprintln!("home kept at {}", dir.keep().display());
            }
        }
    }
}
