//! The command line: `init`, `start`, `keys`, `tx` and `dev`.

mod client;
mod start;
mod testnet;

use crate::address::Bech32Prefixes;
use crate::config::{Home, default_app_toml, default_config_toml};
use crate::genesis::Genesis;
use crate::keys::DevKey;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

/// A Cosmos-SDK-compatible dev node with the stream module.
#[derive(Debug, Parser)]
#[command(name = "streamd", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: `text` (human-readable) or `json` (one object per line:
    /// timestamp, level, target, fields).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (`info`, `debug`, `stream_module=debug,info`, ...); the `RUST_LOG`
    /// environment variable is used when this is not given [default: info].
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a node home: config/config.toml, config/app.toml and a dev genesis.
    Init(InitArgs),
    /// Run the chain.
    Start(start::StartArgs),
    /// Show the dev keyring.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sign a transaction with a dev key and broadcast it.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Dev-chain controls.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Run as the ADR-038 streaming plugin of a Go Cosmos SDK node (started by the node).
    #[cfg(feature = "stream")]
    Plugin(crate::plugin::PluginArgs),
    /// A multi-validator network under CometBFT (`scripts/testnet` runs it).
    #[command(subcommand)]
    Testnet(testnet::TestnetCommand),
}

/// `--home`.
#[derive(Debug, Clone, Args)]
pub struct HomeArg {
    /// Node home directory [default: ~/.streamd].
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
}

impl HomeArg {
    /// The home to use.
    pub fn home(&self) -> Home {
        Home(self.home.clone().unwrap_or_else(default_home))
    }
}

/// `~/.streamd`.
pub fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".streamd")
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    home: HomeArg,
    /// Chain id.
    #[arg(long, default_value = "streamd-dev-1")]
    chain_id: String,
    /// x/staking unbonding time (e.g. 30s, 10m, 21days).
    #[arg(long, default_value = "60s")]
    unbonding_time: humantime::Duration,
    /// Replace an existing genesis and config.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List dev keys: NAME ADDRESS.
    List(HomeArg),
    /// Show one dev key.
    Show {
        /// Key name (alice, bob, carol, validator1, validator2).
        name: String,
        /// Print the address only.
        #[arg(short = 'a', long = "address")]
        address: bool,
        /// Address kind: acc (juno1...) or val (junovaloper1...).
        #[arg(long, default_value = "acc", value_parser = ["acc", "val"])]
        bech: String,
        #[command(flatten)]
        home: HomeArg,
    },
}

#[derive(Debug, Subcommand)]
enum TxCommand {
    /// x/bank transactions.
    #[command(subcommand)]
    Bank(client::BankTx),
    /// x/staking transactions.
    #[command(subcommand)]
    Staking(client::StakingTx),
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Slash a validator by a fraction of its tokens (e.g. 0.1); delegations keep their shares.
    Slash {
        /// Validator: junovaloper1... or a validator key name.
        validator: String,
        /// Fraction in (0, 1].
        fraction: String,
        #[command(flatten)]
        conn: client::Connection,
    },
}

/// Sets up logging to stderr: `--log-level`, else `RUST_LOG`, else `info`; text or JSON.
pub fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match &cli.log_level {
        Some(level) => {
            EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("--log-level {level:?}: {e}"))?
        }
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(a) => {
            init_home(
                &a.home.home(),
                &a.chain_id,
                a.unbonding_time.into(),
                a.overwrite,
            )?;
            println!(
                "initialised {} (chain id {})",
                a.home.home().0.display(),
                a.chain_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Start(a) => start::run(a),
        Command::Testnet(c) => testnet::run(c),
        Command::Keys(KeysCommand::List(_)) => {
            let p = Bech32Prefixes::default();
            for k in DevKey::all() {
                println!("{} {}", k.name, p.acc(&k.address));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys(KeysCommand::Show {
            name,
            address,
            bech,
            ..
        }) => {
            let k = DevKey::get(&name).with_context(|| {
                format!(
                    "no dev key named {name:?}; dev keys: {}",
                    crate::keys::DEV_KEYS.join(", ")
                )
            })?;
            let p = Bech32Prefixes::default();
            let addr = if bech == "val" {
                p.val(&k.address)
            } else {
                p.acc(&k.address)
            };
            if address {
                println!("{addr}");
            } else {
                println!("name: {}\naddress: {addr}", k.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Tx(TxCommand::Bank(tx)) => client::run_bank(tx),
        Command::Tx(TxCommand::Staking(tx)) => client::run_staking(tx),
        Command::Dev(DevCommand::Slash {
            validator,
            fraction,
            conn,
        }) => client::run_slash(&validator, &fraction, &conn),
        #[cfg(feature = "stream")]
        Command::Plugin(a) => crate::plugin::run(a),
    }
}

/// Writes config.toml, app.toml and a dev genesis into `home`.
pub fn init_home(
    home: &Home,
    chain_id: &str,
    unbonding_time: std::time::Duration,
    overwrite: bool,
) -> anyhow::Result<()> {
    if home.genesis().exists() && !overwrite {
        bail!(
            "{} already exists; use --overwrite to replace it, or another --home",
            home.genesis().display()
        );
    }
    if unbonding_time.is_zero() {
        bail!("--unbonding-time must be positive");
    }
    let dir = home.0.join("config");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let genesis = Genesis::dev(chain_id, unbonding_time, SystemTime::now());
    let write = |path: PathBuf, text: String| {
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    write(home.config_toml(), default_config_toml("streamd"))?;
    write(home.app_toml(), default_app_toml())?;
    write(
        home.genesis(),
        serde_json::to_string_pretty(&genesis)? + "\n",
    )?;
    Ok(())
}
