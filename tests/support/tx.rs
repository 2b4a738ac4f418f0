//! Raw Cosmos SDK transactions built and signed in the test (TxRaw, SIGN_MODE_DIRECT),
//! including deliberately broken ones, and the BroadcastTx/GetTx round trip.

use std::time::{Duration, Instant};

use cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{BroadcastMode, BroadcastTxRequest, GetTxRequest};
use cosmrs::crypto::PublicKey;
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::{Body, Fee, Msg, SignDoc, SignerInfo};
use cosmrs::{AccountId, Any, Coin};
use sha2::{Digest, Sha256};
use tonic::Status;

use super::TestNode;
use super::accounts::{self, CHAIN_ID};

/// Gas limit on every test tx; the dev chain charges no fee.
pub const GAS_LIMIT: u64 = 200_000;

/// Who signs a tx and with which account state.
pub struct Signer {
    /// Key that produces the signature.
    pub key: SigningKey,
    /// Public key announced in the tx's SignerInfo (normally `key`'s own).
    pub public_key: PublicKey,
    /// Account number the signature commits to.
    pub account_number: u64,
    /// Sequence announced and signed.
    pub sequence: u64,
}

impl Signer {
    /// Dev key `name` signing as itself.
    pub fn dev(name: &str, account_number: u64, sequence: u64) -> Self {
        let key = accounts::signing_key(name);
        Signer {
            public_key: key.public_key(),
            key,
            account_number,
            sequence,
        }
    }
}

/// Encodes `msgs` into a TxRaw signed by `signer` (SIGN_MODE_DIRECT, no fee), with `memo`.
pub fn sign(signer: &Signer, msgs: Vec<Any>, memo: &str) -> Vec<u8> {
    sign_for_chain(signer, msgs, memo, CHAIN_ID)
}

/// Like [`sign`], but the signature commits to `chain_id`.
pub fn sign_for_chain(signer: &Signer, msgs: Vec<Any>, memo: &str, chain_id: &str) -> Vec<u8> {
    let body = Body::new(msgs, memo, 0u32);
    let fee = Fee {
        amount: vec![],
        gas_limit: GAS_LIMIT,
        payer: None,
        granter: None,
    };
    let auth_info =
        SignerInfo::single_direct(Some(signer.public_key), signer.sequence).auth_info(fee);
    let chain_id = chain_id.parse().expect("valid chain id");
    SignDoc::new(&body, &auth_info, &chain_id, signer.account_number)
        .expect("sign doc encodes")
        .sign(&signer.key)
        .expect("signing succeeds")
        .to_bytes()
        .expect("TxRaw encodes")
}

/// `/cosmos.bank.v1beta1.MsgSend` of `amount` `denom` from `from` to `to` (bech32).
pub fn msg_send(from: &str, to: &str, amount: u128, denom: &str) -> Any {
    cosmrs::bank::MsgSend {
        from_address: account(from),
        to_address: account(to),
        amount: vec![coin(amount, denom)],
    }
    .to_any()
    .expect("MsgSend encodes")
}

/// `/cosmos.staking.v1beta1.MsgDelegate` of `amount` ujuno.
pub fn msg_delegate(delegator: &str, validator: &str, amount: u128) -> Any {
    cosmrs::staking::MsgDelegate {
        delegator_address: account(delegator),
        validator_address: account(validator),
        amount: coin(amount, accounts::BOND_DENOM),
    }
    .to_any()
    .expect("MsgDelegate encodes")
}

fn account(bech32: &str) -> AccountId {
    bech32
        .parse()
        .unwrap_or_else(|e| panic!("{bech32} is not bech32: {e}"))
}

fn coin(amount: u128, denom: &str) -> Coin {
    Coin {
        denom: denom.parse().expect("valid denom"),
        amount,
    }
}

/// The tx hash a node reports for `tx_bytes`: upper-case hex SHA-256 of the TxRaw bytes.
pub fn tx_hash(tx_bytes: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(tx_bytes))
}

impl TestNode {
    /// Account number and current sequence of dev key `name`, then a signer for it.
    pub async fn signer(&self, name: &str) -> Signer {
        let account = self
            .account(&accounts::address(name))
            .await
            .unwrap_or_else(|s| panic!("account of {name}: {s}"));
        Signer::dev(name, account.account_number, account.sequence)
    }

    /// `BroadcastTx` in SYNC mode; returns the CheckTx result.
    pub async fn broadcast(&self, tx_bytes: Vec<u8>) -> TxResponse {
        self.tx_service()
            .broadcast_tx(BroadcastTxRequest {
                tx_bytes,
                mode: BroadcastMode::Sync as i32,
            })
            .await
            .unwrap_or_else(|s| panic!("BroadcastTx failed at the gRPC level: {s}"))
            .into_inner()
            .tx_response
            .expect("BroadcastTx answers with a tx_response")
    }

    /// `GetTx` for `hash`: NotFound until the tx is in a committed block.
    pub async fn get_tx(&self, hash: &str) -> Result<TxResponse, Status> {
        let response = self
            .tx_service()
            .get_tx(GetTxRequest {
                hash: hash.to_owned(),
            })
            .await?
            .into_inner();
        Ok(response
            .tx_response
            .expect("GetTx answers with a tx_response"))
    }

    /// Polls `GetTx` until the tx is committed (bounded), and returns its block result.
    pub async fn wait_tx(&self, hash: &str) -> TxResponse {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.get_tx(hash).await {
                Ok(response) => return response,
                Err(status) if status.code() == tonic::Code::NotFound => {}
                Err(status) => panic!("GetTx {hash}: {status}"),
            }
            assert!(
                Instant::now() < deadline,
                "tx {hash} was not committed within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Broadcasts `tx_bytes`, asserts CheckTx accepted it, waits for its block and returns
    /// the block result.
    pub async fn submit(&self, tx_bytes: Vec<u8>) -> TxResponse {
        let hash = tx_hash(&tx_bytes);
        let check = self.broadcast(tx_bytes).await;
        assert_eq!(
            (check.code, check.codespace.as_str(), check.txhash.as_str()),
            (0, "", hash.as_str()),
            "CheckTx rejected the tx: {}",
            check.raw_log
        );
        self.wait_tx(&hash).await
    }
}
