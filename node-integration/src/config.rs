//! The node home: `config/config.toml` (CometBFT), `config/app.toml` (Cosmos SDK) and
//! `config/genesis.json`, parsed once at startup into typed structs.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration problem, naming the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// File missing or unreadable.
    #[error("cannot read {path}: {source} (run `streamd init --home {home}` first?)")]
    Read {
        /// The file.
        path: PathBuf,
        /// The node home.
        home: String,
        /// I/O error.
        source: std::io::Error,
    },
    /// TOML/JSON syntax or type error; the message carries the key and position.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A value that parses but is not acceptable.
    #[error("{path}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Dotted key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Paths inside a node home.
#[derive(Debug, Clone)]
pub struct Home(pub PathBuf);

impl Home {
    /// `config/config.toml`.
    pub fn config_toml(&self) -> PathBuf {
        self.0.join("config").join("config.toml")
    }
    /// `config/app.toml`.
    pub fn app_toml(&self) -> PathBuf {
        self.0.join("config").join("app.toml")
    }
    /// `config/genesis.json`.
    pub fn genesis(&self) -> PathBuf {
        self.0.join("config").join("genesis.json")
    }
    /// Reads a file of the home, with an error that names it.
    pub fn read(&self, path: &Path) -> Result<String, ConfigError> {
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            home: self.0.display().to_string(),
            source,
        })
    }
}

/// The parts of CometBFT's `config.toml` the node and the stream module read.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct CometConfig {
    /// `[rpc]`.
    #[serde(default)]
    pub rpc: RpcSection,
    /// `[mempool]`.
    #[serde(default)]
    pub mempool: MempoolSection,
}

/// CometBFT's largest block (`block.max_bytes`, the default consensus parameter): the dev
/// producer fills blocks up to it, so no tx may be larger.
pub const MAX_BLOCK_BYTES: u64 = 22_020_096;

/// CometBFT `[mempool]` limits, checked on the raw tx bytes before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct MempoolSection {
    /// Transactions the mempool holds at most (CometBFT default 5000).
    #[serde(default = "default_mempool_size")]
    pub size: u64,
    /// Total bytes of the transactions in the mempool at most (default 1 GiB).
    #[serde(default = "default_max_txs_bytes")]
    pub max_txs_bytes: u64,
    /// Largest transaction accepted, in bytes (default 1 MiB).
    #[serde(default = "default_max_tx_bytes")]
    pub max_tx_bytes: u64,
}

fn default_mempool_size() -> u64 {
    5000
}
fn default_max_txs_bytes() -> u64 {
    1_073_741_824
}
fn default_max_tx_bytes() -> u64 {
    1_048_576
}

impl Default for MempoolSection {
    fn default() -> Self {
        Self {
            size: default_mempool_size(),
            max_txs_bytes: default_max_txs_bytes(),
            max_tx_bytes: default_max_tx_bytes(),
        }
    }
}

impl MempoolSection {
    /// Checks the values make a usable mempool; the error names the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.size == 0 {
            return Err(("mempool.size", "must be at least 1 (default 5000)".into()));
        }
        if self.max_tx_bytes == 0 || self.max_tx_bytes > MAX_BLOCK_BYTES {
            return Err((
                "mempool.max_tx_bytes",
                format!(
                    "{} is not in 1..={MAX_BLOCK_BYTES} (the largest block; default 1048576)",
                    self.max_tx_bytes
                ),
            ));
        }
        if self.max_txs_bytes < self.max_tx_bytes {
            return Err((
                "mempool.max_txs_bytes",
                format!(
                    "{} is smaller than max_tx_bytes ({}); default 1073741824",
                    self.max_txs_bytes, self.max_tx_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// CometBFT `[rpc]` limits, applied by the stream module to its connections.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RpcSection {
    /// CometBFT's RPC listen address; under CometBFT, BroadcastTx forwards there.
    #[serde(default = "default_rpc_laddr")]
    pub laddr: String,
    /// Maximum simultaneous connections; 0 = unlimited (CometBFT's definition).
    #[serde(default = "default_max_open_connections")]
    pub max_open_connections: u32,
    /// Maximum subscriptions per client.
    #[serde(default = "default_max_subscriptions_per_client")]
    pub max_subscriptions_per_client: u32,
}

fn default_rpc_laddr() -> String {
    "tcp://127.0.0.1:26657".into()
}
fn default_max_open_connections() -> u32 {
    900
}
fn default_max_subscriptions_per_client() -> u32 {
    5
}

impl Default for RpcSection {
    fn default() -> Self {
        Self {
            laddr: default_rpc_laddr(),
            max_open_connections: default_max_open_connections(),
            max_subscriptions_per_client: default_max_subscriptions_per_client(),
        }
    }
}

/// The parts of the Cosmos SDK `app.toml` the node reads.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct AppConfig {
    /// `[grpc]`.
    #[serde(default)]
    pub grpc: GrpcSection,
    /// `[api]`.
    #[serde(default)]
    pub api: ApiSection,
    /// `[telemetry]`.
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// `[stream]`: the stream module's own table, interpreted by the module.
    #[serde(default)]
    pub stream: toml::Table,
}

/// `[grpc]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct GrpcSection {
    /// Serve gRPC at all.
    #[serde(default = "yes")]
    pub enable: bool,
    /// `host:port`.
    #[serde(default = "default_grpc_address")]
    pub address: String,
}

impl Default for GrpcSection {
    fn default() -> Self {
        Self {
            enable: true,
            address: default_grpc_address(),
        }
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ApiSection {
    /// Serve the API port at all.
    #[serde(default = "yes")]
    pub enable: bool,
    /// `tcp://host:port`.
    #[serde(default = "default_api_address")]
    pub address: String,
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            enable: true,
            address: default_api_address(),
        }
    }
}

/// `[telemetry]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TelemetrySection {
    /// Serve Prometheus metrics on the API port.
    #[serde(default)]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}
fn default_grpc_address() -> String {
    "0.0.0.0:9090".into()
}
fn default_api_address() -> String {
    "tcp://0.0.0.0:1317".into()
}

/// Everything read from a home at startup.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// config.toml.
    pub comet: CometConfig,
    /// app.toml.
    pub app: AppConfig,
}

/// The keys CometBFT v0.38 (with v0.37's older names) knows in the `config.toml` tables the
/// node reads, and the Cosmos SDK v0.50 knows in `app.toml`'s: anything else is most likely a
/// typo that silently leaves a default in force, so it is warned about at startup.
const KNOWN_KEYS: [(&str, &str, &[&str]); 4] = [
    (
        "config.toml",
        "rpc",
        &[
            "laddr",
            "cors_allowed_origins",
            "cors_allowed_methods",
            "cors_allowed_headers",
            "grpc_laddr",
            "grpc_max_open_connections",
            "unsafe",
            "max_open_connections",
            "max_subscription_clients",
            "max_subscriptions_per_client",
            "experimental_subscription_buffer_size",
            "experimental_websocket_write_buffer_size",
            "experimental_close_on_slow_client",
            "timeout_broadcast_tx_commit",
            "max_request_batch_size",
            "max_body_bytes",
            "max_header_bytes",
            "tls_cert_file",
            "tls_key_file",
            "pprof_laddr",
        ],
    ),
    (
        "config.toml",
        "mempool",
        &[
            "type",
            "version",
            "recheck",
            "broadcast",
            "wal_dir",
            "size",
            "max_txs_bytes",
            "cache_size",
            "keep-invalid-txs-in-cache",
            "max_tx_bytes",
            "max_batch_bytes",
            "ttl-duration",
            "ttl-num-blocks",
            "recheck_timeout",
            "experimental_max_gossip_connections_to_persistent_peers",
            "experimental_max_gossip_connections_to_non_persistent_peers",
        ],
    ),
    (
        "app.toml",
        "api",
        &[
            "enable",
            "swagger",
            "address",
            "max-open-connections",
            "rpc-read-timeout",
            "rpc-write-timeout",
            "rpc-max-body-bytes",
            "enabled-unsafe-cors",
        ],
    ),
    (
        "app.toml",
        "grpc",
        &[
            "enable",
            "address",
            "max-recv-msg-size",
            "max-send-msg-size",
        ],
    ),
];

/// `file: [table] key` for every key of the tables in `KNOWN_KEYS` that `text` (the
/// content of `file`) has and CometBFT / the Cosmos SDK do not know.
pub fn unknown_keys(file: &str, text: &str) -> Vec<String> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new(); // parse errors are reported by the typed parse
    };
    let mut unknown = Vec::new();
    for (in_file, table, known) in KNOWN_KEYS {
        if in_file != file {
            continue;
        }
        let Some(toml::Value::Table(t)) = doc.get(table) else {
            continue;
        };
        unknown.extend(
            t.keys()
                .filter(|k| !known.contains(&k.as_str()))
                .map(|k| format!("{file}: [{table}] {k}")),
        );
    }
    unknown
}

impl NodeConfig {
    /// Loads and validates config.toml and app.toml of `home`; warns about keys of the
    /// tables it reads that CometBFT / the Cosmos SDK do not know.
    pub fn load(home: &Home) -> Result<NodeConfig, ConfigError> {
        for (name, path) in [
            ("config.toml", home.config_toml()),
            ("app.toml", home.app_toml()),
        ] {
            for key in unknown_keys(name, &home.read(&path)?) {
                tracing::warn!(
                    "{key} is not a key CometBFT or the Cosmos SDK knows (a typo?); it is ignored"
                );
            }
        }
        let comet: CometConfig = parse_toml(home, &home.config_toml())?;
        let app: AppConfig = parse_toml(home, &home.app_toml())?;
        let cfg = NodeConfig { comet, app };
        cfg.comet
            .mempool
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: home.config_toml(),
                key,
                message,
            })?;
        cfg.grpc_address(home)?;
        cfg.api_address(home)?;
        Ok(cfg)
    }

    /// The gRPC listen address.
    pub fn grpc_address(&self, home: &Home) -> Result<SocketAddr, ConfigError> {
        parse_grpc_address(&self.app.grpc.address).map_err(|message| ConfigError::Invalid {
            path: home.app_toml(),
            key: "grpc.address",
            message,
        })
    }

    /// The API listen address (`tcp://host:port` in app.toml).
    pub fn api_address(&self, home: &Home) -> Result<SocketAddr, ConfigError> {
        parse_api_address(&self.app.api.address).map_err(|message| ConfigError::Invalid {
            path: home.app_toml(),
            key: "api.address",
            message,
        })
    }
}

/// Parses `host:port` (the `[grpc] address` form).
pub fn parse_grpc_address(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|e| {
        format!("{s:?} is not host:port with a numeric IP ({e}); e.g. \"0.0.0.0:9090\"")
    })
}

/// Parses `tcp://host:port` (the `[api] address` form).
pub fn parse_api_address(s: &str) -> Result<SocketAddr, String> {
    let rest = s
        .strip_prefix("tcp://")
        .ok_or_else(|| format!("{s:?} must start with tcp://; e.g. \"tcp://0.0.0.0:1317\""))?;
    rest.parse()
        .map_err(|e| format!("{s:?} is not tcp://host:port with a numeric IP ({e})"))
}

fn parse_toml<T: serde::de::DeserializeOwned>(home: &Home, path: &Path) -> Result<T, ConfigError> {
    let text = home.read(path)?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// config.toml as `streamd init` writes it.
pub fn default_config_toml(moniker: &str) -> String {
    format!(
        r#"# CometBFT configuration (the subset streamd reads; other CometBFT keys are ignored).
moniker = "{moniker}"

#######################################################
###       RPC Server Configuration Options          ###
#######################################################
[rpc]

# Maximum number of simultaneous connections (including WebSocket).
# The stream module applies it to its WebSocket connections and gRPC streams.
# 0 - unlimited.
max_open_connections = 900

# Maximum number of unique queries a given client can /subscribe to.
# The stream module applies it per client IP.
max_subscriptions_per_client = 5

#######################################################
###          Mempool Configuration Option          ###
#######################################################
[mempool]

# Maximum number of transactions in the mempool (a full mempool refuses with code 20).
size = 5000

# Limit the total size of all txs in the mempool.
# This only accounts for raw transactions (e.g. given 1MB transactions and
# max_txs_bytes=5MB, mempool will only accept 5 transactions).
max_txs_bytes = 1073741824

# Maximum size of a single transaction (at most the largest block, 22020096).
# streamd checks it on the raw bytes in BroadcastTx, before decoding: code 21.
max_tx_bytes = 1048576
"#
    )
}

/// app.toml as `streamd init` writes it.
pub fn default_app_toml() -> String {
    r#"# Cosmos SDK application configuration (the subset streamd reads).

###############################################################################
###                           API Configuration                             ###
###############################################################################
[api]
# Serve the API port (WebSocket streams and /metrics of the stream module).
enable = true
address = "tcp://0.0.0.0:1317"

###############################################################################
###                           gRPC Configuration                            ###
###############################################################################
[grpc]
enable = true
address = "0.0.0.0:9090"

###############################################################################
###                         Telemetry Configuration                         ###
###############################################################################
[telemetry]
enabled = true

###############################################################################
###                          Stream module                                  ###
###############################################################################
[stream]
enable = true
# New connections (WebSocket, SSE, gRPC streams) each client (its IP; with [stream.auth], its
# token's subject) may open: "N/s", "N/min" or "N/h", with up to connect_burst at once; "0" =
# unlimited. Over it: HTTP 429 + Retry-After, gRPC RESOURCE_EXHAUSTED.
connect_rate = "120/min"
connect_burst = 60

# Token auth, off while this table is commented out: every stream then needs a JWT
# (`Authorization: Bearer <JWT>`, gRPC metadata `authorization`, or `?token=<JWT>`). The
# token's `sub` is the client that max_subscriptions_per_client and connect_rate count; an
# optional `stream` claim narrows it: {"types": ["bank/balances"], "addresses": ["juno1..."]}.
# Paths are relative to the node's home.
# [stream.auth]
# algorithm = "HS256"                    # or "RS256" / "EdDSA" with public_key_file
# secret_file = "config/stream-jwt.key"  # HS256: at least 32 bytes
# public_key_file = "config/stream-jwt.pem"
# audience = "stream"                    # optional: tokens must carry this aud
# issuer = "https://auth.example"        # optional: tokens must carry this iss
# leeway = "5s"                          # clock skew allowed on exp / nbf
"#
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_absent_keys_default() {
        let c: CometConfig = toml::from_str(&default_config_toml("x")).unwrap();
        assert_eq!(c.rpc.max_open_connections, 900);
        assert_eq!(c.rpc.max_subscriptions_per_client, 5);
        let c: CometConfig = toml::from_str("[rpc]\n").unwrap();
        assert_eq!(c.rpc.max_open_connections, 900);
        let a: AppConfig = toml::from_str(&default_app_toml()).unwrap();
        assert_eq!(parse_grpc_address(&a.grpc.address).unwrap().port(), 9090);
        assert_eq!(parse_api_address(&a.api.address).unwrap().port(), 1317);
        assert!(a.telemetry.enabled);
    }

    #[test]
    fn mempool_keys_default_as_cometbft_and_bad_values_name_the_key() {
        let c: CometConfig = toml::from_str(&default_config_toml("x")).unwrap();
        assert_eq!(c.mempool, MempoolSection::default());
        assert_eq!(
            (
                c.mempool.size,
                c.mempool.max_txs_bytes,
                c.mempool.max_tx_bytes
            ),
            (5000, 1_073_741_824, 1_048_576)
        );
        let c: CometConfig = toml::from_str("[mempool]\nmax_tx_bytes = 2048\n").unwrap();
        assert_eq!((c.mempool.size, c.mempool.max_tx_bytes), (5000, 2048));
        assert!(c.mempool.validate().is_ok());

        let bad = |text: &str| {
            let c: CometConfig = toml::from_str(text).unwrap();
            c.mempool.validate().unwrap_err()
        };
        assert_eq!(bad("[mempool]\nsize = 0\n").0, "mempool.size");
        assert_eq!(
            bad("[mempool]\nmax_tx_bytes = 0\n").0,
            "mempool.max_tx_bytes"
        );
        assert_eq!(
            bad("[mempool]\nmax_tx_bytes = 22020097\n").0,
            "mempool.max_tx_bytes"
        );
        let (key, message) = bad("[mempool]\nmax_txs_bytes = 1000\n");
        assert_eq!(key, "mempool.max_txs_bytes");
        assert!(
            message.contains("smaller than max_tx_bytes (1048576)"),
            "{message}"
        );
        // CometBFT writes these as integers; a negative one is a type error naming the key.
        let e = toml::from_str::<CometConfig>("[mempool]\nsize = -1\n").unwrap_err();
        assert!(e.to_string().contains("size"), "{e}");
    }

    #[test]
    fn a_bad_mempool_value_stops_loading_naming_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home(dir.path().to_owned());
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let config = default_config_toml("x").replace("size = 5000", "size = 0");
        std::fs::write(home.config_toml(), config).unwrap();
        std::fs::write(home.app_toml(), default_app_toml()).unwrap();
        let e = NodeConfig::load(&home).unwrap_err().to_string();
        assert!(
            e.contains("config.toml: key `mempool.size`: must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_of_the_tables_read_are_named() {
        let config = "[rpc]\nmax_open_connections = 5\nmax_open_conections = 9\n\
                      [mempool]\nsize = 1\nmax_tx_byte = 2\n[p2p]\nwhatever = 1\n";
        assert_eq!(
            unknown_keys("config.toml", config),
            [
                "config.toml: [rpc] max_open_conections",
                "config.toml: [mempool] max_tx_byte"
            ]
        );
        let app = "[api]\nenable = true\nswagger = false\nadress = \"x\"\n[grpc]\nenable = true\n";
        assert_eq!(unknown_keys("app.toml", app), ["app.toml: [api] adress"]);
        assert!(unknown_keys("config.toml", &default_config_toml("m")).is_empty());
        assert!(unknown_keys("app.toml", &default_app_toml()).is_empty());
    }

    #[test]
    fn bad_addresses_say_what_to_write() {
        assert!(
            parse_api_address("0.0.0.0:1317")
                .unwrap_err()
                .contains("tcp://")
        );
        assert!(parse_grpc_address("localhost").is_err());
    }
}
