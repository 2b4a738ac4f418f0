//! `cosmos.auth.v1beta1.Query`: Account, Bech32Prefix.

use super::{at_height, invalid, version};
use crate::node::Node;
use crate::state::auth;
use cosmos_sdk_proto::cosmos::auth::v1beta1::{
    Bech32PrefixRequest, Bech32PrefixResponse, QueryAccountRequest, QueryAccountResponse,
};
use stream_proto::cosmos::auth::v1beta1::query_server::{Query, QueryServer};
use tonic::{Request, Response, Status};

struct AuthQuery(Node);

/// The service.
pub fn service(node: Node) -> QueryServer<impl Query> {
    QueryServer::new(AuthQuery(node))
}

#[tonic::async_trait]
impl Query for AuthQuery {
    async fn account(
        &self,
        req: Request<QueryAccountRequest>,
    ) -> Result<Response<QueryAccountResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.get_ref();
        let addr = self
            .0
            .params()
            .prefixes
            .account("address", &r.address)
            .map_err(invalid)?;
        let acc = auth::account(&v.state, &addr)
            .ok_or_else(|| Status::not_found(format!("account {} not found", r.address)))?;
        Ok(at_height(
            &v,
            QueryAccountResponse {
                account: Some(acc.any),
            },
        ))
    }

    async fn bech32_prefix(
        &self,
        _: Request<Bech32PrefixRequest>,
    ) -> Result<Response<Bech32PrefixResponse>, Status> {
        Ok(Response::new(Bech32PrefixResponse {
            bech32_prefix: self.0.params().prefixes.account.clone(),
        }))
    }
}
