//! `streamd testnet init-files`: the homes of an N-validator network on loopback, each a real
//! CometBFT home (`cometbft init`) that streamd shares, with one genesis whose staking
//! validators are the nodes' consensus keys (the Cosmos SDK's `testnet init-files` and
//! `collect-gentxs` in one step).

use crate::comet_home::{self, GenesisValidatorEntry, set_toml};
use crate::config::default_app_toml;
use crate::genesis::{DEV_SELF_DELEGATION, Genesis};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

/// `streamd testnet ...`.
#[derive(Debug, Subcommand)]
pub enum TestnetCommand {
    /// Write N node homes (node0, node1, ...) for a loopback network.
    InitFiles(InitFilesArgs),
}

/// `streamd testnet init-files` arguments.
#[derive(Debug, Args)]
pub struct InitFilesArgs {
    /// Number of validators (one node each).
    #[arg(long = "v", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=8))]
    validators: u8,
    /// Directory that receives node0, node1, ...
    #[arg(long, default_value = "./testnet")]
    output_dir: PathBuf,
    /// Chain id.
    #[arg(long, default_value = "streamd-testnet-1")]
    chain_id: String,
    /// The CometBFT v0.38 binary (`cometbft init` writes each home's keys and config.toml).
    #[arg(long, default_value = "cometbft")]
    cometbft: PathBuf,
    /// CometBFT `[consensus] timeout_commit`.
    #[arg(long, default_value = "300ms")]
    timeout_commit: humantime::Duration,
    /// x/staking unbonding time.
    #[arg(long, default_value = "60s")]
    unbonding_time: humantime::Duration,
    /// First port; node i uses base + 10 i + 0..5 (ABCI, RPC, P2P, gRPC, API). Without it
    /// every port is a free one the system picks.
    #[arg(long)]
    base_port: Option<u16>,
}

/// A node's loopback ports.
struct Ports {
    abci: u16,
    rpc: u16,
    p2p: u16,
    grpc: u16,
    api: u16,
}

impl Ports {
    fn pick(base: Option<u16>, node: u16, held: &mut Vec<TcpListener>) -> anyhow::Result<Ports> {
        let mut next = |offset: u16| -> anyhow::Result<u16> {
            match base {
                Some(b) => b
                    .checked_add(10 * node + offset)
                    .context("--base-port too high for this many nodes"),
                None => {
                    // Held until every port is chosen, so no two are the same.
                    let l = TcpListener::bind("127.0.0.1:0").context("cannot pick a free port")?;
                    let port = l.local_addr()?.port();
                    held.push(l);
                    Ok(port)
                }
            }
        };
        Ok(Ports {
            abci: next(0)?,
            rpc: next(1)?,
            p2p: next(2)?,
            grpc: next(3)?,
            api: next(4)?,
        })
    }
}

/// Runs `streamd testnet init-files`; prints one line per node with its home and addresses.
pub fn run(cmd: TestnetCommand) -> anyhow::Result<ExitCode> {
    let TestnetCommand::InitFiles(a) = cmd;
    let n = u16::from(a.validators);
    let mut held = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..n {
        let home = a.output_dir.join(format!("node{i}"));
        if home.join("config").join("genesis.json").exists() {
            bail!(
                "{} is already a node home; remove {} or choose another --output-dir",
                home.display(),
                a.output_dir.display()
            );
        }
        cometbft_init(&a.cometbft, &home)?;
        let keys = comet_home::read_keys(&home)?;
        let ports = Ports::pick(a.base_port, i, &mut held)?;
        nodes.push((home, keys, ports));
    }
    drop(held);

    let consensus_keys: Vec<String> = nodes
        .iter()
        .map(|(_, k, _)| k.consensus_pubkey.clone())
        .collect();
    let genesis = Genesis::testnet(
        &a.chain_id,
        a.unbonding_time.into(),
        SystemTime::now(),
        &consensus_keys,
    );
    let power = DEV_SELF_DELEGATION / crate::app::POWER_REDUCTION;
    let entries: Vec<_> = nodes
        .iter()
        .enumerate()
        .map(|(i, (_, keys, _))| GenesisValidatorEntry {
            keys,
            name: crate::keys::TESTNET_VALIDATOR_KEYS[i].into(),
            power,
        })
        .collect();
    let genesis_json =
        comet_home::comet_genesis(&comet_home::genesis_path(&nodes[0].0), &genesis, &entries)?;
    let peers: Vec<String> = nodes
        .iter()
        .map(|(_, k, p)| format!("{}@127.0.0.1:{}", k.node_id, p.p2p))
        .collect();
    for (i, (home, _, ports)) in nodes.iter().enumerate() {
        let others: Vec<&str> = peers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| p.as_str())
            .collect();
        write_config(home, i, ports, &others.join(","), a.timeout_commit.into())?;
        write(&comet_home::genesis_path(home), &genesis_json)?;
        let app = set_toml(
            &default_app_toml(),
            "grpc",
            "address",
            &format!("\"127.0.0.1:{}\"", ports.grpc),
        )?;
        let app = set_toml(
            &app,
            "api",
            "address",
            &format!("\"tcp://127.0.0.1:{}\"", ports.api),
        )?;
        write(&home.join("config").join("app.toml"), &app)?;
        println!(
            "node{i} home={} abci=127.0.0.1:{} rpc=127.0.0.1:{} p2p=127.0.0.1:{} grpc=127.0.0.1:{} api=127.0.0.1:{}",
            home.display(),
            ports.abci,
            ports.rpc,
            ports.p2p,
            ports.grpc,
            ports.api
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cometbft_init(cometbft: &Path, home: &Path) -> anyhow::Result<()> {
    let out = Command::new(cometbft)
        .arg("init")
        .arg("--home")
        .arg(home)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} (install CometBFT v0.38: go install \
                 github.com/cometbft/cometbft/cmd/cometbft@v0.38.26, or pass --cometbft)",
                cometbft.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "{} init --home {} failed ({}): {}",
            cometbft.display(),
            home.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Edits CometBFT's own config.toml for a loopback network node.
fn write_config(
    home: &Path,
    index: usize,
    ports: &Ports,
    peers: &str,
    timeout_commit: std::time::Duration,
) -> anyhow::Result<()> {
    let path = home.join("config").join("config.toml");
    let mut text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let q = |s: String| format!("\"{s}\"");
    let edits = [
        ("", "moniker", q(format!("node{index}"))),
        (
            "",
            "proxy_app",
            q(format!("tcp://127.0.0.1:{}", ports.abci)),
        ),
        ("rpc", "laddr", q(format!("tcp://127.0.0.1:{}", ports.rpc))),
        ("p2p", "laddr", q(format!("tcp://127.0.0.1:{}", ports.p2p))),
        ("p2p", "persistent_peers", q(peers.to_owned())),
        ("p2p", "addr_book_strict", "false".to_owned()),
        ("p2p", "allow_duplicate_ip", "true".to_owned()),
        (
            "consensus",
            "timeout_commit",
            q(format!("{}ms", timeout_commit.as_millis())),
        ),
        // A dead validator's turn to propose costs the network this long (default 3 s).
        ("consensus", "timeout_propose", q("1s".to_owned())),
    ];
    for (section, key, value) in edits {
        text = set_toml(&text, section, key, &value)
            .with_context(|| format!("editing {}", path.display()))?;
    }
    write(&path, &text)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
