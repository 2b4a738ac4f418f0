//! Hostile transactions and the measurements the hostile tests make on a running node: block
//! cadence from the node's own block times, and the node process's resident memory.

#![allow(dead_code)] // not every helper is used by every test binary

use std::time::{Duration, Instant};

use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::GetLatestBlockRequest;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{AuthInfo, TxBody, TxRaw};
use prost::{Message, Name};
use stream_proto::cosmos::base::tendermint::v1beta1::service_client::ServiceClient as TendermintClient;

use crate::support::TestNode;
use crate::support::accounts::{BOND_DENOM, address};
use crate::support::tx::{GAS_LIMIT, Signer};

/// `/cosmos.bank.v1beta1.MsgSend` of `amount` (any decimal string) ujuno, alice to bob.
pub fn send_with_amount(amount: String) -> cosmrs::Any {
    let msg = MsgSend {
        from_address: address("alice"),
        to_address: address("bob"),
        amount: vec![Coin {
            denom: BOND_DENOM.to_owned(),
            amount,
        }],
    };
    cosmrs::Any {
        type_url: MsgSend::type_url(),
        value: msg.encode_to_vec(),
    }
}

/// A TxRaw carrying `msgs` with no signer info and no signature: decoding is all a node
/// can do with it, which is what the amount attack targets.
pub fn unsigned(msgs: Vec<cosmrs::Any>) -> Vec<u8> {
    let body = TxBody {
        messages: msgs,
        ..Default::default()
    };
    TxRaw {
        body_bytes: body.encode_to_vec(),
        auth_info_bytes: AuthInfo::default().encode_to_vec(),
        signatures: Vec::new(),
    }
    .encode_to_vec()
}

/// A correctly signed, fee-less send of 1ujuno from alice whose body carries `padding`
/// bytes in a non-critical extension option (which the SDK accepts and ignores), so the tx
/// is about `padding` bytes long.
pub fn padded_send(signer: &Signer, padding: usize) -> Vec<u8> {
    let body = cosmrs::tx::Body {
        messages: vec![send_with_amount("1".to_owned())],
        memo: String::new(),
        timeout_height: 0u32.into(),
        extension_options: Vec::new(),
        non_critical_extension_options: vec![cosmrs::Any {
            type_url: "/streamd.test.Padding".to_owned(),
            value: vec![b'p'; padding],
        }],
    };
    let fee = cosmrs::tx::Fee {
        amount: vec![],
        gas_limit: GAS_LIMIT,
        payer: None,
        granter: None,
    };
    let auth_info = cosmrs::tx::SignerInfo::single_direct(Some(signer.public_key), signer.sequence)
        .auth_info(fee);
    let chain_id = crate::support::accounts::CHAIN_ID
        .parse()
        .expect("valid chain id");
    cosmrs::tx::SignDoc::new(&body, &auth_info, &chain_id, signer.account_number)
        .expect("sign doc encodes")
        .sign(&signer.key)
        .expect("signing succeeds")
        .to_bytes()
        .expect("TxRaw encodes")
}

/// Block times seen over a window: heights and header times of every block committed in it,
/// read with `GetLatestBlock` (with a decoding limit large enough for blocks of big txs).
pub struct Cadence {
    /// (height, block time in seconds since the epoch), in height order, no duplicates.
    pub blocks: Vec<(i64, f64)>,
}

impl Cadence {
    /// Samples the latest block every 20 ms for `window`.
    pub async fn sample(node: &TestNode, window: Duration) -> Cadence {
        let mut client =
            TendermintClient::new(node.channel()).max_decoding_message_size(usize::MAX);
        let end = Instant::now() + window;
        let mut blocks: Vec<(i64, f64)> = Vec::new();
        while Instant::now() < end {
            if let Ok(r) = client.get_latest_block(GetLatestBlockRequest {}).await {
                let header = r.into_inner().sdk_block.and_then(|b| b.header);
                if let Some(h) = header {
                    let t = h.time.expect("block time");
                    let time = t.seconds as f64 + t.nanos as f64 / 1e9;
                    if blocks.last().is_none_or(|(last, _)| *last < h.height) {
                        blocks.push((h.height, time));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Cadence { blocks }
    }

    /// Blocks committed within the window (the first sample is the block before it).
    pub fn produced(&self) -> i64 {
        match (self.blocks.first(), self.blocks.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0,
        }
    }

    /// The longest time between consecutive sampled blocks, in seconds.
    pub fn max_interval(&self) -> f64 {
        self.blocks
            .windows(2)
            .map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0) as f64)
            .fold(0.0, f64::max)
    }
}
