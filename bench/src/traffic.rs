//! The traffic ours is measured under: after every committed block, the chosen dev
//! accounts each send 1 ujuno to validator1 (a real signed transaction through
//! `BroadcastTx`), so each of their balances changes in every block.

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
            let tx_bytes = sign_send(sender, &recipient)?;
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
                accepted += 1;
            } else {
                // A refused tx (e.g. a sequence mismatch) leaves the sequence where the node has it.
                let (_, sequence) = account(&channel, &sender.key.address).await?;
                sender.sequence = sequence;
            }
        }
    }
    Ok(accepted)
}

fn sign_send(sender: &Sender, recipient: &AccountId) -> Result<Vec<u8>> {
    let msg = cosmrs::bank::MsgSend {
        from_address: sender.key.address.clone(),
        to_address: recipient.clone(),
        amount: vec![Coin {
            denom: "ujuno".parse().map_err(|e| anyhow::anyhow!("{e}"))?,
            amount: 1,
        }],
    }
    .to_any()
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let body = Body::new(vec![msg], "", 0u32);
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
