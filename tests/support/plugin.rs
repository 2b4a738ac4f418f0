//! ADR-038 plugin mode in the harness: `streamd plugin` loaded by a node as a Go Cosmos SDK
//! node loads it (`app.toml` `[streaming.abci]`, `COSMOS_SDK_ABCI`), and the plugin run
//! directly as a host would start it (magic cookie, protocol versions).

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// The environment go-plugin's host gives a plugin (Cosmos SDK's "abci" handshake).
pub const PLUGIN_ENV: [(&str, &str); 4] = [
    (
        "ABCI_LISTENER_PLUGIN",
        "ef78114d-7bdf-411c-868f-347c99a78345",
    ),
    ("PLUGIN_MIN_PORT", "10000"),
    ("PLUGIN_MAX_PORT", "25000"),
    ("PLUGIN_PROTOCOL_VERSIONS", "1"),
];

/// The `streamd plugin` command line for a node whose home is `home`, with the node's gRPC
/// at `node_grpc`, serving on `grpc` and `api`.
pub fn plugin_command(
    home: &Path,
    node_grpc: SocketAddr,
    grpc: SocketAddr,
    api: SocketAddr,
) -> String {
    format!(
        "{} plugin --home {} --grpc.address {grpc} --api.address tcp://{api} --node-grpc http://{node_grpc}",
        super::streamd_bin(),
        home.display()
    )
}

/// Configures `home` and the node's `command` so that the node loads `streamd plugin`
/// (bank and staking stores, stop the node on error), serving on `grpc` and `api`.
pub fn configure_host(
    home: &Path,
    command: &mut Command,
    node_grpc: SocketAddr,
    grpc: SocketAddr,
    api: SocketAddr,
) {
    let app = home.join("config").join("app.toml");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&app)
        .expect("open app.toml");
    writeln!(
        f,
        "\n[streaming.abci]\nkeys = [\"bank\", \"staking\"]\nplugin = \"abci\"\nstop-node-on-err = true"
    )
    .expect("write app.toml");
    command.env(
        "COSMOS_SDK_ABCI",
        plugin_command(home, node_grpc, grpc, api),
    );
}

/// `streamd plugin` started by the test as a host starts it: the handshake environment,
/// stdout and stderr piped to the test (which holds them open, as a live host does).
pub struct PluginProcess {
    /// The plugin process (or the `sh` running it).
    pub child: std::process::Child,
    /// The plugin's stdout after the handshake line; dropping it is what a dead host does.
    pub stdout: Option<std::process::ChildStdout>,
    /// The plugin's stderr lines so far (read by a thread).
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The first stdout line, bytes as written.
    pub handshake: Vec<u8>,
    /// The address in the handshake line.
    pub addr: SocketAddr,
    /// Where the plugin serves `juno.stream.v1` and the WebSocket routes.
    pub grpc: SocketAddr,
    /// See `grpc`.
    pub api: SocketAddr,
}

impl PluginProcess {
    /// Starts `streamd plugin` for the node in `home` whose gRPC is `node_grpc`, with the
    /// host's environment plus `env`; returns once the first stdout line is in, or the
    /// process's exit and stderr if it ended first.
    pub fn start(
        home: &Path,
        node_grpc: SocketAddr,
        env: &[(&str, &str)],
    ) -> Result<PluginProcess, (std::process::ExitStatus, String, Vec<u8>)> {
        use std::io::Read;
        let [grpc, api] = super::free_ports();
        let mut child = Command::new(super::streamd_bin())
            .args([
                "plugin",
                "--home",
                home.to_str().expect("UTF-8 home"),
                "--grpc.address",
                &grpc.to_string(),
                "--api.address",
                &format!("tcp://{api}"),
                "--node-grpc",
                &format!("http://{node_grpc}"),
            ])
            .envs(PLUGIN_ENV)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn streamd plugin");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = child.stdout.take().expect("piped stdout");
        // Byte by byte, so nothing after the first line is consumed.
        let mut handshake = Vec::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 {
            handshake.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        if !handshake.ends_with(b"\n") {
            let status = child.wait().expect("wait for the plugin");
            std::thread::sleep(std::time::Duration::from_millis(100));
            let text = stderr.lock().unwrap().clone();
            return Err((status, text, handshake));
        }
        let line = String::from_utf8_lossy(&handshake).to_string();
        let addr = line
            .trim_end()
            .split('|')
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in the handshake line {line:?}"));
        Ok(PluginProcess {
            child,
            stdout: Some(stdout),
            stderr,
            handshake,
            addr,
            grpc,
            api,
        })
    }

    /// A channel to the plugin's host-facing gRPC port.
    pub fn host_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("valid URL")
            .connect_lazy()
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("poll the plugin") {
                return Some(s);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether process `pid` has ended (gone, or a zombie waiting for its parent).
pub fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
    }
}

/// The child processes of `pid`, forked by any of its threads (a Go host forks from
/// whichever thread runs `os/exec`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .flat_map(|task| {
            std::fs::read_to_string(task.path().join("children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Waits up to `within` for process `pid` to end; how long it took, or `None` if it still
/// ran (it is then killed, so a failing test leaves nothing behind).
pub fn wait_ended(pid: u32, within: std::time::Duration) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while !process_ended(pid) {
        if start.elapsed() >= within {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Some(start.elapsed())
}
