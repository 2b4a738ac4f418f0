//! The traffic ours is measured under, real signed transactions through `BroadcastTx`
//! after every committed block: either the chosen dev accounts each send 1 ujuno to
//! validator1 ([`drive`]), so each of their balances changes in every block, or alice sends
//! 1 ujuno to each of a rotating share of the subscribers' own addresses ([`drive_fanout`]).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use cosmos_sdk_proto::cosmos::auth::v1beta1::{BaseAccount, QueryAccountRequest};
use cosmos_sdk_proto::cosmos::tx::v1beta1::{BroadcastMode, BroadcastTxRequest};
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::{Body, Fee, Msg, SignDoc, SignerInfo};
use cosmrs::{AccountId, Coin};
use prost::Message;
use sha2::{Digest, Sha256};
use stream_proto::cosmos::auth::v1beta1::query_client::QueryClient as AuthClient;
use stream_proto::cosmos::tx::v1beta1::service_client::ServiceClient as TxClient;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::node::latest_height;

/// The dev accounts that can send (their genesis balances pay for hours of 1 ujuno sends).
pub static SENDERS: [&str; 3] = ["alice", "bob", "carol"];
/// Chain id `streamd init` writes.
const CHAIN_ID: &str = "streamd-dev-1";
/// Gas limit of every tx; the dev chain charges no fee.
const GAS_LIMIT: u64 = 200_000;
/// Sends in one fan-out transaction (about 100 bytes each, far below the 1 MiB tx bound).
const SENDS_PER_TX: usize = 500;

/// The address of subscriber `i` in `--own-accounts` runs: 20 bytes of
/// SHA-256("stream-bench/own/" + i), an account nobody holds a key for (it only receives).
pub fn own_address(i: usize) -> Result<AccountId> {
    let hash = Sha256::digest(format!("stream-bench/own/{i}").as_bytes());
    AccountId::new("juno", &hash[..20]).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A dev key: secret = SHA-256("streamd-dev-key/" + name), as the node derives it.
pub struct DevKey {
    key: SigningKey,
    /// `juno1...` address.
    pub address: AccountId,
}

impl DevKey {
    /// Dev key `name`.
    pub fn new(name: &str) -> Result<DevKey> {
        let secret = Sha256::digest(format!("streamd-dev-key/{name}").as_bytes());
        let key = SigningKey::from_slice(&secret).map_err(|e| anyhow::anyhow!("{e}"))?;
        let address = key
            .public_key()
            .account_id("juno")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(DevKey { key, address })
    }
}

/// A sender with the account number and next sequence its signatures commit to.
struct Sender {
    key: DevKey,
    account_number: u64,
    sequence: u64,
}

/// Sends from `senders` after every new height until `stop` turns true; returns the number
/// of transactions CheckTx accepted.
pub async fn drive(channel: Channel, senders: &[&str], stop: watch::Receiver<bool>) -> Result<u64> {
    let recipient = DevKey::new("validator1")?.address;
    let mut accounts = Vec::new();
    for name in senders {
        let key = DevKey::new(name)?;
        let (account_number, sequence) = account(&channel, &key.address).await?;
        accounts.push(Sender {
            key,
            account_number,
            sequence,
        });
    }
    let mut tx_client = TxClient::new(channel.clone());
    let mut last = latest_height(&channel).await?;
    let mut accepted = 0;
    while !*stop.borrow() {
        let height = latest_height(&channel).await?;
        if height == last {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        last = height;
        for sender in &mut accounts {
            if send(
                &channel,
                &mut tx_client,
                sender,
                std::slice::from_ref(&recipient),
            )
            .await?
            {
                accepted += 1;
            }
        }
    }
    Ok(accepted)
}

/// After every new height until `stop`, alice sends 1 ujuno to each of the next `per_block`
/// of `targets` (round robin). Returns the sends CheckTx accepted and, per target, whether
/// it was sent to.
pub async fn drive_fanout(
    channel: Channel,
    targets: Vec<AccountId>,
    per_block: usize,
    stop: watch::Receiver<bool>,
) -> Result<(u64, Vec<bool>)> {
    let key = DevKey::new("alice")?;
    let (account_number, sequence) = account(&channel, &key.address).await?;
    let mut alice = Sender {
        key,
        account_number,
        sequence,
    };
    let mut tx_client = TxClient::new(channel.clone());
    let mut touched = vec![false; targets.len()];
    let mut next = 0;
    let mut last = latest_height(&channel).await?;
    let mut accepted = 0;
    while !*stop.borrow() {
        let height = latest_height(&channel).await?;
        if height == last {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        last = height;
        let chosen: Vec<usize> = (0..per_block.min(targets.len()))
            .map(|k| (next + k) % targets.len())
            .collect();
        next = (next + chosen.len()) % targets.len().max(1);
        for batch in chosen.chunks(SENDS_PER_TX) {
            let to: Vec<AccountId> = batch.iter().map(|&i| targets[i].clone()).collect();
            if send(&channel, &mut tx_client, &mut alice, &to).await? {
                accepted += batch.len() as u64;
                for &i in batch {
                    touched[i] = true;
                }
            }
        }
    }
    Ok((accepted, touched))
}

/// One transaction from `sender` sending 1 ujuno to each of `recipients`; true when
/// CheckTx accepted it.
async fn send(
    channel: &Channel,
    tx_client: &mut TxClient<Channel>,
    sender: &mut Sender,
    recipients: &[AccountId],
) -> Result<bool> {
    let tx_bytes = sign_send(sender, recipients)?;
    let response = tx_client
        .broadcast_tx(BroadcastTxRequest {
            tx_bytes,
            mode: BroadcastMode::Sync as i32,
        })
        .await?
        .into_inner()
        .tx_response
        .context("BroadcastTx without tx_response")?;
    if response.code == 0 {
        sender.sequence += 1;
        Ok(true)
    } else {
        // A refused tx (e.g. a sequence mismatch) leaves the sequence where the node has it.
        let (_, sequence) = account(channel, &sender.key.address).await?;
        sender.sequence = sequence;
        Ok(false)
    }
}

fn sign_send(sender: &Sender, recipients: &[AccountId]) -> Result<Vec<u8>> {
    let denom: cosmrs::Denom = "ujuno".parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let msgs = recipients
        .iter()
        .map(|to| {
            cosmrs::bank::MsgSend {
                from_address: sender.key.address.clone(),
                to_address: to.clone(),
                amount: vec![Coin {
                    denom: denom.clone(),
                    amount: 1,
                }],
            }
            .to_any()
            .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let body = Body::new(msgs, "", 0u32);
    let fee = Fee {
        amount: vec![],
        gas_limit: GAS_LIMIT,
        payer: None,
        granter: None,
    };
    let auth_info = SignerInfo::single_direct(Some(sender.key.key.public_key()), sender.sequence)
        .auth_info(fee);
    let chain_id = CHAIN_ID.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    SignDoc::new(&body, &auth_info, &chain_id, sender.account_number)
        .and_then(|doc| doc.sign(&sender.key.key))
        .and_then(|raw| raw.to_bytes())
        .map_err(|e| anyhow::anyhow!("sign MsgSend: {e}"))
}

/// Account number and sequence of `address`.
async fn account(channel: &Channel, address: &AccountId) -> Result<(u64, u64)> {
    let any = AuthClient::new(channel.clone())
        .account(QueryAccountRequest {
            address: address.to_string(),
        })
        .await?
        .into_inner()
        .account
        .context("Account answers without an account")?;
    if any.type_url != "/cosmos.auth.v1beta1.BaseAccount" {
        bail!("{address} is a {}, not a BaseAccount", any.type_url);
    }
    let account = BaseAccount::decode(any.value.as_slice())?;
    Ok((account.account_number, account.sequence))
}
