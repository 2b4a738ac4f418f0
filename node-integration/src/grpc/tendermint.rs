//! `cosmos.base.tendermint.v1beta1.Service`: GetLatestBlock and GetBlockByHeight. Under
//! CometBFT they answer CometBFT's block (its RPC's `/block`) at the heights streamd has
//! committed; on the dev chain, the producer's block.

use crate::app::Block as NodeBlock;
use crate::node::{Node, VersionError};
use crate::state::timestamp;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::{
    Block as SdkBlock, GetBlockByHeightRequest, GetBlockByHeightResponse, GetLatestBlockRequest,
    GetLatestBlockResponse, Header as SdkHeader,
};
use stream_proto::cosmos::base::tendermint::v1beta1::service_server::{Service, ServiceServer};
use tendermint_proto::types::{Block, BlockId, Data, Header, PartSetHeader};
use tendermint_proto::version::Consensus;
use tonic::{Request, Response, Status};

struct BlockService(Node);

/// The service.
pub fn service(node: Node) -> ServiceServer<impl Service> {
    ServiceServer::new(BlockService(node))
}

/// Block id, CometBFT block and SDK block of a committed height.
fn parts(node: &Node, b: &NodeBlock) -> (BlockId, Block, SdkBlock) {
    let id = BlockId {
        hash: b.hash.to_vec(),
        part_set_header: Some(PartSetHeader {
            total: 1,
            hash: b.hash.to_vec(),
        }),
    };
    let version = Some(Consensus { block: 11, app: 0 });
    let data = Some(Data { txs: b.txs.clone() });
    let header = Header {
        version,
        chain_id: node.chain_id().into(),
        height: b.height,
        time: Some(timestamp(b.time)),
        ..Default::default()
    };
    let sdk_header = SdkHeader {
        version,
        chain_id: node.chain_id().into(),
        height: b.height,
        time: Some(timestamp(b.time)),
        ..Default::default()
    };
    (
        id,
        Block {
            header: Some(header),
            data: data.clone(),
            evidence: None,
            last_commit: None,
        },
        SdkBlock {
            header: Some(sdk_header),
            data,
            evidence: None,
            last_commit: None,
        },
    )
}

/// How long a block query waits for CometBFT's RPC before answering with streamd's record.
const COMET_RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// CometBFT's block at `b`'s height (header, last commit, evidence) as the SDK serves it;
/// `None` on the dev chain, or when CometBFT's RPC does not answer (streamd's own record of
/// the block then answers: same hash, height, time and txs, fewer header fields).
async fn comet_parts(node: &Node, b: &NodeBlock) -> Option<(BlockId, Block, SdkBlock)> {
    use tendermint_rpc::Client;
    let rpc = node.comet_rpc()?;
    let height = tendermint::block::Height::try_from(b.height).ok()?;
    let r = match tokio::time::timeout(COMET_RPC_TIMEOUT, rpc.block(height)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::warn!(height = b.height, error = %e, "CometBFT RPC /block failed");
            return None;
        }
        Err(_) => {
            tracing::warn!(height = b.height, "CometBFT RPC /block timed out");
            return None;
        }
    };
    let id = BlockId::from(r.block_id);
    let block = Block::from(r.block);
    let h = block.header.clone()?;
    let valcons = format!("{}valcons", node.params().prefixes.account);
    let proposer = if h.proposer_address.is_empty() {
        String::new()
    } else {
        crate::address::Addr(h.proposer_address.clone()).to_bech32(&valcons)
    };
    let sdk = SdkBlock {
        header: Some(SdkHeader {
            version: h.version,
            chain_id: h.chain_id,
            height: h.height,
            time: h.time,
            last_block_id: h.last_block_id,
            last_commit_hash: h.last_commit_hash,
            data_hash: h.data_hash,
            validators_hash: h.validators_hash,
            next_validators_hash: h.next_validators_hash,
            consensus_hash: h.consensus_hash,
            app_hash: h.app_hash,
            last_results_hash: h.last_results_hash,
            evidence_hash: h.evidence_hash,
            proposer_address: proposer,
        }),
        data: block.data.clone(),
        evidence: block.evidence.clone(),
        last_commit: block.last_commit.clone(),
    };
    Some((id, block, sdk))
}

/// [`comet_parts`] under CometBFT, else [`parts`].
async fn block_parts(node: &Node, b: &NodeBlock) -> (BlockId, Block, SdkBlock) {
    match comet_parts(node, b).await {
        Some(p) => p,
        None => parts(node, b),
    }
}

#[tonic::async_trait]
impl Service for BlockService {
    async fn get_latest_block(
        &self,
        _req: Request<GetLatestBlockRequest>,
    ) -> Result<Response<GetLatestBlockResponse>, Status> {
        let b = self
            .0
            .block(None)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (id, block, sdk) = block_parts(&self.0, &b).await;
        Ok(super::at_block_height(
            b.height,
            GetLatestBlockResponse {
                block_id: Some(id),
                block: Some(block),
                sdk_block: Some(sdk),
            },
        ))
    }

    async fn get_block_by_height(
        &self,
        req: Request<GetBlockByHeightRequest>,
    ) -> Result<Response<GetBlockByHeightResponse>, Status> {
        let h = req.get_ref().height;
        if h <= 0 {
            return Err(Status::invalid_argument(format!(
                "invalid height {h}: must be positive"
            )));
        }
        let b = self.0.block(Some(h)).map_err(|e| match e {
            // Kept within the node's tx bounds, like a CometBFT block store with pruning.
            VersionError::Pruned { .. } => Status::not_found(format!(
                "{e}; blocks are kept up to {} MiB of txs",
                crate::node::KEPT_TX_BYTES >> 20
            )),
            _ => Status::invalid_argument(e.to_string()),
        })?;
        let (id, block, sdk) = block_parts(&self.0, &b).await;
        Ok(super::at_block_height(
            b.height,
            GetBlockByHeightResponse {
                block_id: Some(id),
                block: Some(block),
                sdk_block: Some(sdk),
            },
        ))
    }
}
