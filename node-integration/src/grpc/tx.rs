//! `cosmos.tx.v1beta1.Service`: BroadcastTx (CheckTx, then the mempool; under CometBFT,
//! forwarded to its RPC) and GetTx.

use crate::app::TxOutcome;
use crate::node::{Node, TxRecord};
use cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{
    AuthInfo, BroadcastMode, BroadcastTxRequest, BroadcastTxResponse, GetTxRequest, GetTxResponse,
    Tx, TxBody, TxRaw,
};
use prost::{Message, Name};
use stream_proto::cosmos::tx::v1beta1::service_server::{Service, ServiceServer};
use tendermint_proto::google::protobuf::Any;
use tonic::{Request, Response, Status};

struct TxService(Node);

/// The service.
pub fn service(node: Node) -> ServiceServer<impl Service> {
    ServiceServer::new(TxService(node))
}

fn response(outcome: &TxOutcome, height: i64) -> TxResponse {
    TxResponse {
        height,
        txhash: outcome.hash.clone(),
        codespace: outcome.codespace.into(),
        code: outcome.code,
        raw_log: outcome.log.clone(),
        ..Default::default()
    }
}

/// Decodes stored tx bytes into the `Tx` GetTx returns (they passed decoding before).
fn full_tx(bytes: &[u8]) -> Option<Tx> {
    let raw = TxRaw::decode(bytes).ok()?;
    Some(Tx {
        body: TxBody::decode(raw.body_bytes.as_slice()).ok(),
        auth_info: AuthInfo::decode(raw.auth_info_bytes.as_slice()).ok(),
        signatures: raw.signatures,
    })
}

fn committed_response(r: &TxRecord) -> GetTxResponse {
    let tx = full_tx(&r.bytes);
    let mut resp = response(&r.outcome, r.height);
    resp.timestamp = humantime::format_rfc3339_seconds(r.time).to_string();
    resp.tx = tx.as_ref().map(|t| Any {
        type_url: Tx::type_url(),
        value: t.encode_to_vec(),
    });
    GetTxResponse {
        tx,
        tx_response: Some(resp),
    }
}

#[tonic::async_trait]
impl Service for TxService {
    async fn broadcast_tx(
        &self,
        req: Request<BroadcastTxRequest>,
    ) -> Result<Response<BroadcastTxResponse>, Status> {
        let r = req.into_inner();
        match BroadcastMode::try_from(r.mode) {
            Ok(BroadcastMode::Sync) | Ok(BroadcastMode::Async) => {}
            Ok(BroadcastMode::Block) => {
                return Err(Status::invalid_argument(
                    "BROADCAST_MODE_BLOCK was removed in Cosmos SDK v0.47; use BROADCAST_MODE_SYNC and poll GetTx",
                ));
            }
            _ => {
                return Err(Status::invalid_argument(
                    "invalid broadcast mode: use BROADCAST_MODE_SYNC or BROADCAST_MODE_ASYNC",
                ));
            }
        }
        if r.tx_bytes.is_empty() {
            return Err(Status::invalid_argument("invalid empty tx"));
        }
        let sync = r.mode == BroadcastMode::Sync as i32;
        let outcome = self
            .0
            .submit(r.tx_bytes, sync)
            .await
            .map_err(Status::unavailable)?;
        Ok(Response::new(BroadcastTxResponse {
            tx_response: Some(response(&outcome, 0)),
        }))
    }

    async fn get_tx(&self, req: Request<GetTxRequest>) -> Result<Response<GetTxResponse>, Status> {
        let hash = &req.get_ref().hash;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(format!(
                "invalid tx hash {hash:?}: expected 64 hex characters"
            )));
        }
        let record = self.0.tx(hash).ok_or_else(|| {
            let kept = match self.0.oldest_kept_block() {
                Some(h) => format!("from height {h} on"),
                None => "none yet".to_owned(),
            };
            Status::not_found(format!(
                "tx not found: {hash} (not committed, or no longer kept: the node keeps the txs of its latest blocks, at most {} txs and {} MiB, {kept})",
                crate::node::KEPT_TX_RESULTS,
                crate::node::KEPT_TX_BYTES >> 20
            ))
        })?;
        Ok(Response::new(committed_response(&record)))
    }
}
