//! Client commands (`tx ...`, `dev slash`): sign with the dev keyring, talk to a node over
//! gRPC, print one JSON line.

use super::HomeArg;
use crate::address::Bech32Prefixes;
use crate::config::NodeConfig;
use crate::keys::DevKey;
use crate::state::bank::parse_coin;
use crate::tx::{sign, to_any};
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use cosmos_sdk_proto::cosmos::auth::v1beta1::{BaseAccount, ModuleAccount, QueryAccountRequest};
use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    MsgBeginRedelegate, MsgCancelUnbondingDelegation, MsgDelegate, MsgUndelegate,
};
use cosmos_sdk_proto::cosmos::tx::v1beta1::{BroadcastMode, BroadcastTxRequest, GetTxRequest};
use prost::Message;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use stream_proto::cosmos::auth::v1beta1::query_client::QueryClient as AuthClient;
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient as BlockClient;
use stream_proto::cosmos::tx::v1beta1::service_client::ServiceClient as TxClient;
use stream_proto::streamd::dev::v1::SlashRequest;
use stream_proto::streamd::dev::v1::dev_client::DevClient;
use tendermint_proto::google::protobuf::Any;
use tonic::transport::Channel;

/// Re-signs after an "account sequence mismatch" at most this often.
const SEQUENCE_RETRIES: usize = 5;

/// How long `--wait` waits for a tx to be committed.
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which node to talk to.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    #[command(flatten)]
    home: HomeArg,
    /// gRPC endpoint of the node, e.g. http://127.0.0.1:9090 [default: the [grpc] address in
    /// --home's app.toml].
    #[arg(long, value_name = "URL")]
    node: Option<String>,
}

/// Options shared by every `tx` command.
#[derive(Debug, Clone, Args)]
pub struct TxOpts {
    #[command(flatten)]
    conn: Connection,
    /// Return once the tx is in a committed block, with that block's height and result.
    #[arg(long)]
    wait: bool,
    /// Transaction memo.
    #[arg(long, default_value = "")]
    memo: String,
}

/// `tx bank ...`.
#[derive(Debug, Subcommand)]
pub enum BankTx {
    /// Send coins: FROM (dev key) TO (key name or juno1 address) AMOUNT (e.g. 1000ujuno).
    Send {
        /// Dev key name.
        from: String,
        /// Recipient.
        to: String,
        /// Coins, e.g. 1000ujuno.
        amount: String,
        #[command(flatten)]
        opts: TxOpts,
    },
}

/// `tx staking ...`.
#[derive(Debug, Subcommand)]
pub enum StakingTx {
    /// Delegate AMOUNT from FROM to VALIDATOR.
    Delegate {
        /// Dev key name.
        from: String,
        /// junovaloper1... or validator1 / validator2.
        validator: String,
        /// e.g. 1000ujuno.
        amount: String,
        #[command(flatten)]
        opts: TxOpts,
    },
    /// Undelegate AMOUNT (tokens) of FROM's delegation to VALIDATOR.
    Unbond {
        /// Dev key name.
        from: String,
        /// junovaloper1... or validator1 / validator2.
        validator: String,
        /// e.g. 1000ujuno.
        amount: String,
        #[command(flatten)]
        opts: TxOpts,
    },
    /// Move AMOUNT of FROM's delegation from SRC_VALIDATOR to DST_VALIDATOR.
    Redelegate {
        /// Dev key name.
        from: String,
        /// Source validator.
        src_validator: String,
        /// Destination validator.
        dst_validator: String,
        /// e.g. 1000ujuno.
        amount: String,
        #[command(flatten)]
        opts: TxOpts,
    },
    /// Cancel AMOUNT of the unbonding entry created at CREATION_HEIGHT (re-delegates it).
    CancelUnbond {
        /// Dev key name.
        from: String,
        /// junovaloper1... or validator1 / validator2.
        validator: String,
        /// e.g. 1000ujuno.
        amount: String,
        /// Height of the unbonding entry.
        creation_height: i64,
        #[command(flatten)]
        opts: TxOpts,
    },
}

fn key(name: &str) -> anyhow::Result<DevKey> {
    DevKey::get(name).with_context(|| {
        format!(
            "no dev key named {name:?}; dev keys: {}",
            crate::keys::DEV_KEYS.join(", ")
        )
    })
}

fn account_addr(p: &Bech32Prefixes, s: &str) -> anyhow::Result<String> {
    match DevKey::get(s) {
        Some(k) => Ok(p.acc(&k.address)),
        None => Ok(p.acc(&p.account("recipient", s)?)),
    }
}

fn validator_addr(p: &Bech32Prefixes, s: &str) -> anyhow::Result<String> {
    match DevKey::get(s) {
        Some(k) => Ok(p.val(&k.address)),
        None => Ok(p.val(&p.validator("validator", s)?)),
    }
}

fn coin(s: &str) -> anyhow::Result<Coin> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let c = Coin {
        amount: s[..split].to_string(),
        denom: s[split..].to_string(),
    };
    parse_coin(&c).map_err(|e| anyhow!("amount {s:?}: {e}; write it like 1000ujuno"))?;
    Ok(c)
}

impl Connection {
    fn url(&self) -> anyhow::Result<String> {
        if let Some(n) = &self.node {
            return Ok(n.clone());
        }
        let home = self.home.home();
        if !home.app_toml().exists() {
            return Ok("http://127.0.0.1:9090".into());
        }
        let cfg = NodeConfig::load(&home)?;
        let mut addr = cfg.grpc_address(&home)?;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Ok(format!("http://{addr}"))
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        let url = self.url()?;
        tonic::transport::Endpoint::from_shared(url.clone())
            .with_context(|| format!("invalid --node {url:?}"))?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot reach the node's gRPC endpoint at {url} (is `streamd start` running? see --node)"))
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs `tx bank ...`.
pub fn run_bank(tx: BankTx) -> anyhow::Result<ExitCode> {
    let p = Bech32Prefixes::default();
    match tx {
        BankTx::Send {
            from,
            to,
            amount,
            opts,
        } => {
            let k = key(&from)?;
            let msg = MsgSend {
                from_address: p.acc(&k.address),
                to_address: account_addr(&p, &to)?,
                amount: vec![coin(&amount)?],
            };
            submit(&k, to_any(&msg), &opts)
        }
    }
}

/// Runs `tx staking ...`.
pub fn run_staking(tx: StakingTx) -> anyhow::Result<ExitCode> {
    let p = Bech32Prefixes::default();
    let (k, msg, opts) = match tx {
        StakingTx::Delegate {
            from,
            validator,
            amount,
            opts,
        } => {
            let k = key(&from)?;
            let m = MsgDelegate {
                delegator_address: p.acc(&k.address),
                validator_address: validator_addr(&p, &validator)?,
                amount: Some(coin(&amount)?),
            };
            (k, to_any(&m), opts)
        }
        StakingTx::Unbond {
            from,
            validator,
            amount,
            opts,
        } => {
            let k = key(&from)?;
            let m = MsgUndelegate {
                delegator_address: p.acc(&k.address),
                validator_address: validator_addr(&p, &validator)?,
                amount: Some(coin(&amount)?),
            };
            (k, to_any(&m), opts)
        }
        StakingTx::Redelegate {
            from,
            src_validator,
            dst_validator,
            amount,
            opts,
        } => {
            let k = key(&from)?;
            let m = MsgBeginRedelegate {
                delegator_address: p.acc(&k.address),
                validator_src_address: validator_addr(&p, &src_validator)?,
                validator_dst_address: validator_addr(&p, &dst_validator)?,
                amount: Some(coin(&amount)?),
            };
            (k, to_any(&m), opts)
        }
        StakingTx::CancelUnbond {
            from,
            validator,
            amount,
            creation_height,
            opts,
        } => {
            let k = key(&from)?;
            let m = MsgCancelUnbondingDelegation {
                delegator_address: p.acc(&k.address),
                validator_address: validator_addr(&p, &validator)?,
                amount: Some(coin(&amount)?),
                creation_height,
            };
            (k, to_any(&m), opts)
        }
    };
    submit(&k, msg, &opts)
}

/// Account number and sequence of `addr` as the node sees them.
pub async fn account_numbers(channel: Channel, addr: &str) -> anyhow::Result<(u64, u64)> {
    let resp = AuthClient::new(channel)
        .account(QueryAccountRequest {
            address: addr.into(),
        })
        .await
        .map_err(|s| anyhow!("account query for {addr}: {}", s.message()))?
        .into_inner();
    let any: Any = resp.account.context("account query returned no account")?;
    let base = match any.type_url.as_str() {
        crate::state::auth::BASE_ACCOUNT => BaseAccount::decode(any.value.as_slice())?,
        crate::state::auth::MODULE_ACCOUNT => ModuleAccount::decode(any.value.as_slice())?
            .base_account
            .unwrap_or_default(),
        other => bail!("unexpected account type {other}"),
    };
    Ok((base.account_number, base.sequence))
}

fn submit(k: &DevKey, msg: Any, opts: &TxOpts) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async {
        let channel = opts.conn.channel().await?;
        let chain_id = BlockClient::new(channel.clone())
            .get_latest_block(GetLatestBlockRequest {})
            .await
            .map_err(|s| anyhow!("GetLatestBlock: {}", s.message()))?
            .into_inner()
            .sdk_block
            .and_then(|b| b.header)
            .map(|h| h.chain_id)
            .context("the node returned no block header")?;
        let from = Bech32Prefixes::default().acc(&k.address);
        let (number, mut sequence) = account_numbers(channel.clone(), &from).await?;
        let mut client = TxClient::new(channel);
        let mut attempts = 0;
        let resp = loop {
            let bytes = sign(
                k,
                &chain_id,
                number,
                sequence,
                vec![msg.clone()],
                &opts.memo,
            )
            .map_err(|e| anyhow!("signing failed: {e}"))?;
            let resp = client
                .broadcast_tx(BroadcastTxRequest {
                    tx_bytes: bytes,
                    mode: BroadcastMode::Sync as i32,
                })
                .await
                .map_err(|s| anyhow!("BroadcastTx: {}", s.message()))?
                .into_inner()
                .tx_response
                .context("BroadcastTx returned no tx_response")?;
            // The committed sequence lags when the account has txs in the mempool (for example
            // under --simulate): take the sequence CheckTx expects and sign again.
            match expected_sequence(&resp) {
                Some(expected) if attempts < SEQUENCE_RETRIES => {
                    attempts += 1;
                    sequence = expected;
                }
                _ => break resp,
            }
        };
        let mut result = resp;
        if result.code == 0 && opts.wait {
            let start = Instant::now();
            result = loop {
                match client
                    .get_tx(GetTxRequest {
                        hash: result.txhash.clone(),
                    })
                    .await
                {
                    Ok(r) => {
                        break r
                            .into_inner()
                            .tx_response
                            .context("GetTx returned no tx_response")?;
                    }
                    Err(s)
                        if s.code() == tonic::Code::NotFound && start.elapsed() < WAIT_TIMEOUT =>
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(s) => bail!("waiting for tx {}: {}", result.txhash, s.message()),
                }
            };
        }
        println!(
            "{}",
            serde_json::json!({
                "txhash": result.txhash,
                "code": result.code,
                "codespace": result.codespace,
                "raw_log": result.raw_log,
                "height": result.height,
            })
        );
        Ok(if result.code == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// The sequence a code-32 CheckTx result asks for ("expected N, got M").
fn expected_sequence(r: &cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse) -> Option<u64> {
    if r.code != 32 || r.codespace != "sdk" {
        return None;
    }
    let rest = r.raw_log.split("expected ").nth(1)?;
    rest.split(',').next()?.trim().parse().ok()
}

/// Runs `dev slash`.
pub fn run_slash(validator: &str, fraction: &str, conn: &Connection) -> anyhow::Result<ExitCode> {
    let p = Bech32Prefixes::default();
    let validator_address = validator_addr(&p, validator)?;
    runtime()?.block_on(async {
        let r = DevClient::new(conn.channel().await?)
            .slash(SlashRequest {
                validator_address,
                fraction: fraction.into(),
            })
            .await
            .map_err(|s| anyhow!("slash: {}", s.message()))?
            .into_inner();
        println!(
            "{}",
            serde_json::json!({"height": r.height, "burned": r.burned, "tokens": r.tokens})
        );
        Ok(ExitCode::SUCCESS)
    })
}
