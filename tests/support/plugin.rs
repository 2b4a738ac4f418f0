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
