//! `cosmos.bank.v1beta1.Query`: Balance and AllBalances.

use super::{at_height, invalid, paginate, version};
use crate::node::Node;
use crate::state::{bank, keys};
use cosmos_sdk_proto::cosmos::bank::v1beta1::{
    QueryAllBalancesRequest, QueryAllBalancesResponse, QueryBalanceRequest, QueryBalanceResponse,
};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use stream_proto::cosmos::bank::v1beta1::query_server::{Query, QueryServer};
use tonic::{Request, Response, Status};

struct BankQuery(Node);

/// The service.
pub fn service(node: Node) -> QueryServer<impl Query> {
    QueryServer::new(BankQuery(node))
}

#[tonic::async_trait]
impl Query for BankQuery {
    async fn balance(
        &self,
        req: Request<QueryBalanceRequest>,
    ) -> Result<Response<QueryBalanceResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.get_ref();
        let addr = self
            .0
            .params()
            .prefixes
            .account("address", &r.address)
            .map_err(invalid)?;
        bank::validate_denom(&r.denom).map_err(invalid)?;
        let amount = bank::balance(&v.state, &addr, &r.denom);
        Ok(at_height(
            &v,
            QueryBalanceResponse {
                balance: Some(Coin {
                    denom: r.denom.clone(),
                    amount: amount.to_string(),
                }),
            },
        ))
    }

    async fn all_balances(
        &self,
        req: Request<QueryAllBalancesRequest>,
    ) -> Result<Response<QueryAllBalancesResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.into_inner();
        let addr = self
            .0
            .params()
            .prefixes
            .account("address", &r.address)
            .map_err(invalid)?;
        let items = bank::all_balances(&v.state, &addr)
            .into_iter()
            .map(|c| (keys::balance(&addr, &c.denom), c))
            .collect();
        let (balances, pagination) = paginate(items, r.pagination)?;
        Ok(at_height(
            &v,
            QueryAllBalancesResponse {
                balances,
                pagination,
            },
        ))
    }
}
