//! `cosmos.base.tendermint.v1beta1.Service`: GetLatestBlock and GetBlockByHeight.

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
        let (id, block, sdk) = parts(&self.0, &b);
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
        let (id, block, sdk) = parts(&self.0, &b);
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
