//! `TestNodeOptions`: how a test node is started, i.e. the flags of `streamd init` and
//! `streamd start`, and the edits of the new home's `config.toml` and `app.toml` in between.

use std::net::SocketAddr;
use std::path::Path;

/// How to start a node. Build it from [`TestNodeOptions::default`] (or
/// [`TestNodeOptions::slow_unbonding`]) with struct-update syntax or the setters below.
#[derive(Clone, Debug)]
pub struct TestNodeOptions {
    /// `streamd start --block-time`.
    pub block_time: &'static str,
    /// `streamd init --unbonding-time`.
    pub unbonding_time: &'static str,
    /// `streamd start --simulate TXS_PER_BLOCK`.
    pub simulate: Option<u32>,
    /// Write the chosen ports into `app.toml` instead of passing `--grpc.address` and
    /// `--api.address`, so that `start` and the CLI's `--node` default read them from there.
    pub ports_in_app_toml: bool,
    /// `config/config.toml` `[rpc]` keys set before start (`max_open_connections`,
    /// `max_subscriptions_per_client`): the stream limits CometBFT's config names.
    pub rpc: Vec<(&'static str, i64)>,
    /// `config/app.toml` `[stream]` keys set before start (WebSocket timeouts, message size,
    /// allowed origins, trusted proxies).
    pub stream: Vec<(&'static str, toml::Value)>,
    /// Further `streamd` flags, placed before `start` (e.g. `--log-format json`).
    pub global_flags: Vec<&'static str>,
    /// Load `streamd plugin` as the node's ADR-038 streaming plugin (`app.toml`
    /// `[streaming.abci]`, `COSMOS_SDK_ABCI`), serving on ports of its own: both modes on
    /// one chain.
    pub plugin: bool,
}

impl Default for TestNodeOptions {
    fn default() -> Self {
        TestNodeOptions {
            block_time: "200ms",
            unbonding_time: "3s",
            simulate: None,
            ports_in_app_toml: false,
            rpc: Vec::new(),
            // Tests open many connections from one loopback address within seconds; the
            // connect-rate test sets its own rate.
            stream: vec![("connect_rate", "0".into())],
            global_flags: Vec::new(),
            plugin: false,
        }
    }
}

impl TestNodeOptions {
    /// Default options but 60 s unbonding (what `streamd init` writes by default), so that
    /// unbonding entries outlive the test.
    pub fn slow_unbonding() -> Self {
        TestNodeOptions {
            unbonding_time: "60s",
            ..TestNodeOptions::default()
        }
    }

    /// Sets `[rpc] key = value` in `config.toml`.
    pub fn rpc(mut self, key: &'static str, value: i64) -> Self {
        self.rpc.push((key, value));
        self
    }

    /// Sets `[stream] key = value` in `app.toml`.
    pub fn stream(mut self, key: &'static str, value: impl Into<toml::Value>) -> Self {
        self.stream.push((key, value.into()));
        self
    }

    /// Adds `streamd` flags before `start`.
    pub fn global_flags(mut self, flags: &[&'static str]) -> Self {
        self.global_flags.extend_from_slice(flags);
        self
    }

    /// Loads `streamd plugin` as the node's streaming plugin (see [`TestNodeOptions::plugin`]).
    pub fn with_plugin(mut self) -> Self {
        self.plugin = true;
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

    /// Writes these options' settings into HOME's `config.toml` and `app.toml` (between
    /// `streamd init` and `streamd start`); the node will listen on `grpc` and `api`.
    pub fn configure_home(&self, home: &Path, grpc: SocketAddr, api: SocketAddr) {
        let config = home.join("config");
        let rpc = self.rpc.iter().map(|(k, v)| (*k, toml::Value::Integer(*v)));
        set_keys(&config.join("config.toml"), "rpc", rpc);
        let app = config.join("app.toml");
        if self.ports_in_app_toml {
            set_keys(&app, "grpc", [("address", grpc.to_string().into())]);
            set_keys(&app, "api", [("address", format!("tcp://{api}").into())]);
        }
        set_keys(&app, "stream", self.stream.iter().cloned());
    }

    /// The arguments of `streamd start` for a node in `home` listening on `grpc` and `api`.
    pub(super) fn start_args(&self, home: &str, grpc: SocketAddr, api: SocketAddr) -> Vec<String> {
        let mut args = self
            .global_flags
            .iter()
            .copied()
            .chain(["start", "--home", home, "--block-time", self.block_time])
            .map(str::to_owned)
            .collect::<Vec<_>>();
        if let Some(txs) = self.simulate {
            args.extend(["--simulate".to_owned(), txs.to_string()]);
        }
        if !self.ports_in_app_toml {
            args.extend([
                "--grpc.address".to_owned(),
                grpc.to_string(),
                "--api.address".to_owned(),
                format!("tcp://{api}"),
            ]);
        }
        args
    }
}

/// Sets `[section] KEY = VALUE` for each of `entries` in the TOML file at `path`. The section
/// must exist (`streamd init` writes every one the tests edit); no entries leave the file
/// exactly as `init` wrote it.
fn set_keys(
    path: &Path,
    section: &str,
    entries: impl IntoIterator<Item = (&'static str, toml::Value)>,
) {
    let mut entries = entries.into_iter().peekable();
    if entries.peek().is_none() {
        return;
    }
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut table: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    let keys = table
        .get_mut(section)
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("{} has no [{section}] table", path.display()));
    for (key, value) in entries {
        keys.insert(key.to_owned(), value);
    }
    std::fs::write(path, toml::to_string(&table).expect("TOML encodes"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
