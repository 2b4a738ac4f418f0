//! streamd as an ADR-038 host: loads a streaming plugin exactly as a Cosmos SDK v0.50 node
//! does (`app.toml` `[streaming.abci]` `keys`, `plugin = "abci"`, `stop-node-on-err`; the
//! command in `COSMOS_SDK_ABCI` run with `sh -c`; go-plugin's magic cookie and handshake
//! line), then calls `ListenFinalizeBlock` and `ListenCommit` synchronously after every
//! commit with the block's change set filtered by `keys`. It lets the tests run both modes,
//! in-process and plugin, on one chain.

use crate::config::Home;
use crate::node::Node;
use anyhow::{Context, anyhow, bail};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};
use stream_abci_listener::{BlockCommit, CommitListener};
use stream_proto::adr038::cosmos::store::streaming::abci::abci_listener_service_client::AbciListenerServiceClient;
use stream_proto::adr038::cosmos::store::streaming::abci::{
    ListenCommitRequest, ListenFinalizeBlockRequest,
};
use stream_proto::adr038::cosmos::store::v1beta1::StoreKvPair;
use stream_proto::adr038::grpc::health::v1::HealthCheckRequest;
use stream_proto::adr038::grpc::health::v1::health_check_response::ServingStatus;
use stream_proto::adr038::grpc::health::v1::health_client::HealthClient;
use stream_proto::adr038::tendermint::abci::{
    RequestFinalizeBlock, ResponseCommit, ResponseFinalizeBlock,
};
use tonic::transport::Channel;

/// go-plugin's handshake values for the SDK's "abci" plugin type.
const MAGIC_COOKIE: (&str, &str) = (
    "ABCI_LISTENER_PLUGIN",
    "ef78114d-7bdf-411c-868f-347c99a78345",
);
/// go-plugin's default port range and our protocol versions, passed as the Go host does.
const PLUGIN_ENV: [(&str, &str); 3] = [
    ("PLUGIN_MIN_PORT", "10000"),
    ("PLUGIN_MAX_PORT", "25000"),
    ("PLUGIN_PROTOCOL_VERSIONS", "1"),
];
/// go-plugin's default start timeout: the handshake line must come within it.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// `[streaming.abci]` of app.toml.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StreamingAbci {
    /// Store keys whose writes are streamed (`"*"` = every store).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Plugin name; its command is in `COSMOS_SDK_<NAME>`.
    #[serde(default)]
    pub plugin: String,
    /// Stop the node when a call to the plugin fails.
    #[serde(default)]
    pub stop_node_on_err: bool,
}

impl StreamingAbci {
    /// `[streaming.abci]` of an app.toml text, if it configures a plugin.
    pub fn from_app_toml(text: &str) -> Result<Option<StreamingAbci>, String> {
        #[derive(serde::Deserialize)]
        struct App {
            #[serde(default)]
            streaming: Option<Streaming>,
        }
        #[derive(serde::Deserialize)]
        struct Streaming {
            #[serde(default)]
            abci: Option<StreamingAbci>,
        }
        let app: App = toml::from_str(text).map_err(|e| e.to_string())?;
        Ok(app
            .streaming
            .and_then(|s| s.abci)
            .filter(|a| !a.keys.is_empty() && !a.plugin.is_empty()))
    }

    /// Whether writes to `store` are streamed.
    fn streams(&self, store: &str) -> bool {
        self.keys.iter().any(|k| k == "*" || k == store)
    }

    /// The environment variable holding the plugin's command (the SDK's naming).
    pub fn command_var(&self) -> String {
        format!("COSMOS_SDK_{}", self.plugin.to_uppercase())
    }
}

/// The address in a go-plugin handshake line `core|app|network|address|protocol[|cert]`.
pub fn parse_handshake(line: &str) -> Result<String, String> {
    let parts: Vec<&str> = line.trim_end_matches(['\r', '\n']).split('|').collect();
    if parts.len() < 5 {
        return Err(format!("unrecognised handshake line {line:?}"));
    }
    if parts[0] != "1" {
        return Err(format!(
            "incompatible core API version with plugin: {}",
            parts[0]
        ));
    }
    if parts[1] != "1" {
        return Err(format!(
            "incompatible plugin protocol version {}; the host speaks 1",
            parts[1]
        ));
    }
    if parts[2] != "tcp" {
        return Err(format!(
            "unsupported plugin network {:?}; streamd dials tcp",
            parts[2]
        ));
    }
    if parts[4] != "grpc" {
        return Err(format!(
            "unsupported plugin protocol {:?}; expected grpc",
            parts[4]
        ));
    }
    Ok(parts[3].to_owned())
}

/// One committed block for the plugin, and where to report the outcome.
struct Call {
    commit: Arc<BlockCommit>,
    done: mpsc::SyncSender<Result<(), String>>,
}

/// The running plugin: its process and the thread that calls it.
pub struct PluginHost {
    /// Kept (never waited for, never killed): like the SDK's host, streamd leaves the plugin
    /// to notice its death.
    _child: Child,
}

/// The node's commit listener that calls the plugin.
struct HostListener {
    config: StreamingAbci,
    calls: mpsc::SyncSender<Call>,
}

impl CommitListener for HostListener {
    fn on_commit(&self, commit: Arc<BlockCommit>) {
        let commit = if commit
            .changes
            .iter()
            .all(|c| self.config.streams(&c.store_key))
        {
            commit
        } else {
            Arc::new(BlockCommit {
                height: commit.height,
                time: commit.time,
                changes: commit
                    .changes
                    .iter()
                    .filter(|c| self.config.streams(&c.store_key))
                    .cloned()
                    .collect(),
            })
        };
        let height = commit.height;
        let (done, result) = mpsc::sync_channel(1);
        let outcome = self
            .calls
            .send(Call { commit, done })
            .map_err(|_| "the plugin's caller has stopped".to_owned())
            .and_then(|()| {
                result
                    .recv()
                    .unwrap_or_else(|_| Err("the plugin's caller has stopped".to_owned()))
            });
        if let Err(e) = outcome {
            if self.config.stop_node_on_err {
                eprintln!(
                    "streamd: streaming plugin failed at height {height}: {e}; stopping (stop-node-on-err)"
                );
                std::process::exit(1);
            }
            tracing::error!(height, error = %e, "streaming plugin call failed");
        }
    }
}

impl PluginHost {
    /// Starts the plugin configured in `home`'s app.toml, if any, and registers its listener
    /// on `node` (from the next commit on).
    pub fn load(node: &Node, home: &Home) -> anyhow::Result<Option<PluginHost>> {
        let path = home.app_toml();
        let text = home.read(&path)?;
        let Some(config) = StreamingAbci::from_app_toml(&text)
            .map_err(|e| anyhow!("{}: [streaming.abci]: {e}", path.display()))?
        else {
            return Ok(None);
        };
        let var = config.command_var();
        let command = std::env::var(&var).unwrap_or_default();
        if command.trim().is_empty() {
            bail!(
                "{}: [streaming.abci] plugin = {:?}, but {var} is empty: set it to the plugin's \
                 command, e.g. {var}=\"streamd plugin --home <node home>\"",
                path.display(),
                config.plugin
            );
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .env(MAGIC_COOKIE.0, MAGIC_COOKIE.1)
            .envs(PLUGIN_ENV)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run the streaming plugin `sh -c {command:?}`"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        forward_stderr(stderr);
        let addr =
            read_handshake(stdout).map_err(|e| anyhow!("streaming plugin {command:?}: {e}"))?;
        let calls = start_caller(&addr).map_err(|e| anyhow!("streaming plugin at {addr}: {e}"))?;
        tracing::info!(plugin = %config.plugin, %addr, keys = ?config.keys, "streaming plugin loaded");
        node.add_listener(Arc::new(HostListener { config, calls }));
        Ok(Some(PluginHost { _child: child }))
    }
}

/// The plugin's stderr, line by line, into ours (go-plugin logs it through the host).
fn forward_stderr(stderr: impl Read + Send + 'static) {
    let _ = std::thread::Builder::new()
        .name("plugin-stderr".into())
        .spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("plugin: {line}");
            }
        });
}

/// Reads the first stdout line (within [`START_TIMEOUT`]); the rest of stdout is drained,
/// so the pipe stays open for as long as streamd runs.
fn read_handshake(stdout: impl Read + Send + 'static) -> Result<String, String> {
    let (tx, rx) = mpsc::channel();
    let _ = std::thread::Builder::new()
        .name("plugin-stdout".into())
        .spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let first = match reader.read_line(&mut line) {
                Ok(0) => {
                    Err("the plugin exited before the handshake (see its stderr above)".into())
                }
                Ok(_) => parse_handshake(&line),
                Err(e) => Err(format!("cannot read the plugin's stdout: {e}")),
            };
            let _ = tx.send(first);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                tracing::debug!(line, "plugin stdout");
            }
        });
    rx.recv_timeout(START_TIMEOUT)
        .map_err(|_| format!("no handshake line within {START_TIMEOUT:?}"))?
}

/// Connects to the plugin, checks its health, and calls it for each queued block on a thread
/// of its own (the node's commit path may run on any runtime, or none).
fn start_caller(addr: &str) -> Result<mpsc::SyncSender<Call>, String> {
    let (calls, queue) = mpsc::sync_channel::<Call>(0);
    let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
    let url = format!("http://{addr}");
    std::thread::Builder::new()
        .name("plugin-caller".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                let channel = match connect(&url).await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut client = AbciListenerServiceClient::new(channel)
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX);
                while let Ok(call) = queue.recv() {
                    let result = deliver(&mut client, &call.commit).await;
                    let _ = call.done.send(result);
                }
            });
        })
        .map_err(|e| e.to_string())?;
    ready
        .recv()
        .unwrap_or_else(|_| Err("the plugin's caller failed to start".into()))?;
    Ok(calls)
}

async fn connect(url: &str) -> Result<Channel, String> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .map_err(|e| format!("health check: {e}"))?
        .into_inner();
    if health.status != ServingStatus::Serving as i32 {
        return Err(format!(
            "health check: service \"plugin\" reports status {}",
            health.status
        ));
    }
    Ok(channel)
}

/// `ListenFinalizeBlock` then `ListenCommit` for one block, as the SDK's baseapp calls them.
async fn deliver(
    client: &mut AbciListenerServiceClient<Channel>,
    commit: &BlockCommit,
) -> Result<(), String> {
    let time = commit
        .time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| prost_types::Timestamp {
            seconds: d.as_secs() as i64,
            nanos: d.subsec_nanos() as i32,
        })
        .ok();
    client
        .listen_finalize_block(ListenFinalizeBlockRequest {
            req: Some(RequestFinalizeBlock {
                height: commit.height,
                time,
            }),
            res: Some(ResponseFinalizeBlock::default()),
        })
        .await
        .map_err(|e| format!("ListenFinalizeBlock: {e}"))?;
    client
        .listen_commit(ListenCommitRequest {
            block_height: commit.height,
            res: Some(ResponseCommit::default()),
            change_set: commit
                .changes
                .iter()
                .map(|c| StoreKvPair {
                    store_key: c.store_key.clone(),
                    delete: c.delete,
                    key: c.key.clone(),
                    value: c.value.clone(),
                })
                .collect(),
        })
        .await
        .map_err(|e| format!("ListenCommit: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_abci_is_read_as_the_sdk_names_it() {
        let text = "[streaming.abci]\nkeys = [\"bank\", \"staking\"]\nplugin = \"abci\"\nstop-node-on-err = true\n";
        let c = StreamingAbci::from_app_toml(text).unwrap().unwrap();
        assert_eq!(c.keys, ["bank", "staking"]);
        assert!(c.stop_node_on_err);
        assert_eq!(c.command_var(), "COSMOS_SDK_ABCI");
        assert!(c.streams("bank") && !c.streams("acc"));
        // No keys: streaming is off, as in the SDK.
        let off = "[streaming.abci]\nkeys = []\nplugin = \"abci\"\n";
        assert_eq!(StreamingAbci::from_app_toml(off).unwrap(), None);
        assert_eq!(StreamingAbci::from_app_toml("[grpc]\n").unwrap(), None);
    }

    #[test]
    fn handshake_lines_are_parsed_as_go_plugin_does() {
        assert_eq!(
            parse_handshake("1|1|tcp|127.0.0.1:4000|grpc\n").unwrap(),
            "127.0.0.1:4000"
        );
        assert_eq!(
            parse_handshake("1|1|tcp|127.0.0.1:4000|grpc|\n").unwrap(),
            "127.0.0.1:4000"
        );
        assert!(parse_handshake("2|1|tcp|127.0.0.1:4000|grpc").is_err());
        assert!(parse_handshake("1|2|tcp|127.0.0.1:4000|grpc").is_err());
        assert!(parse_handshake("1|1|tcp|127.0.0.1:4000|netrpc").is_err());
        assert!(parse_handshake("hello").is_err());
    }
}
