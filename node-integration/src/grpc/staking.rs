//! `cosmos.staking.v1beta1.Query`: validators, delegations, unbonding delegations, params.

use super::{at_height, invalid, paginate, version};
use crate::address::Addr;
use crate::node::Node;
use crate::state::{keys, parse_uint, staking};
use crate::store::MultiStore;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, DelegationResponse, QueryDelegationRequest, QueryDelegationResponse,
    QueryDelegatorDelegationsRequest, QueryDelegatorDelegationsResponse,
    QueryDelegatorUnbondingDelegationsRequest, QueryDelegatorUnbondingDelegationsResponse,
    QueryParamsRequest, QueryParamsResponse, QueryUnbondingDelegationRequest,
    QueryUnbondingDelegationResponse, QueryValidatorRequest, QueryValidatorResponse,
    QueryValidatorsRequest, QueryValidatorsResponse,
};
use stream_proto::cosmos::staking::v1beta1::query_server::{Query, QueryServer};
use tonic::{Request, Response, Status};

struct StakingQuery(Node);

/// The service.
pub fn service(node: Node) -> QueryServer<impl Query> {
    QueryServer::new(StakingQuery(node))
}

impl StakingQuery {
    fn acc(&self, field: &'static str, s: &str) -> Result<Addr, Status> {
        self.0.params().prefixes.account(field, s).map_err(invalid)
    }
    fn val(&self, field: &'static str, s: &str) -> Result<Addr, Status> {
        self.0
            .params()
            .prefixes
            .validator(field, s)
            .map_err(invalid)
    }

    /// A DelegationResponse: the delegation and its value in tokens at the validator's rate.
    fn response(
        &self,
        state: &MultiStore,
        val: &Addr,
        d: Delegation,
    ) -> Result<DelegationResponse, Status> {
        let shares = parse_uint(&d.shares).unwrap_or_default();
        let v = staking::validator(state, val).ok_or_else(|| {
            Status::internal(format!(
                "delegation to a missing validator {}",
                d.validator_address
            ))
        })?;
        let amount = staking::delegation_balance(&v, &shares).map_err(|e| {
            Status::internal(format!(
                "balance of the delegation of {} to {}: {e}",
                d.delegator_address, d.validator_address
            ))
        })?;
        Ok(DelegationResponse {
            delegation: Some(d),
            balance: Some(Coin {
                denom: self.0.params().bond_denom.clone(),
                amount: amount.to_string(),
            }),
        })
    }
}

#[tonic::async_trait]
impl Query for StakingQuery {
    async fn params(
        &self,
        _: Request<QueryParamsRequest>,
    ) -> Result<Response<QueryParamsResponse>, Status> {
        let p = self.0.params();
        Ok(Response::new(QueryParamsResponse {
            params: Some(cosmos_sdk_proto::cosmos::staking::v1beta1::Params {
                unbonding_time: Some(tendermint_proto::google::protobuf::Duration {
                    seconds: p.unbonding_time.as_secs() as i64,
                    nanos: p.unbonding_time.subsec_nanos() as i32,
                }),
                max_validators: 100,
                max_entries: p.max_entries as u32,
                historical_entries: 10000,
                bond_denom: p.bond_denom.clone(),
                // LegacyDec wire form of 0 (the SDK default).
                min_commission_rate: "0".into(),
            }),
        }))
    }

    async fn validators(
        &self,
        req: Request<QueryValidatorsRequest>,
    ) -> Result<Response<QueryValidatorsResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.into_inner();
        let status = match r.status.as_str() {
            "" => None,
            "BOND_STATUS_UNSPECIFIED" => Some(0),
            "BOND_STATUS_UNBONDED" => Some(1),
            "BOND_STATUS_UNBONDING" => Some(2),
            "BOND_STATUS_BONDED" => Some(3),
            other => {
                return Err(Status::invalid_argument(format!(
                    "invalid validator status {other}"
                )));
            }
        };
        let items = staking::validators(&v.state)
            .into_iter()
            .filter(|val| status.is_none_or(|s| val.status == s))
            .filter_map(|val| {
                let addr = self
                    .0
                    .params()
                    .prefixes
                    .validator("operator_address", &val.operator_address)
                    .ok()?;
                Some((keys::validator(&addr), val))
            })
            .collect();
        let (validators, pagination) = paginate(items, r.pagination)?;
        Ok(at_height(
            &v,
            QueryValidatorsResponse {
                validators,
                pagination,
            },
        ))
    }

    async fn validator(
        &self,
        req: Request<QueryValidatorRequest>,
    ) -> Result<Response<QueryValidatorResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.get_ref();
        let val = self.val("validator_addr", &r.validator_addr)?;
        let validator = staking::validator(&v.state, &val).ok_or_else(|| {
            Status::not_found(format!("validator {} not found", r.validator_addr))
        })?;
        Ok(at_height(
            &v,
            QueryValidatorResponse {
                validator: Some(validator),
            },
        ))
    }

    async fn delegation(
        &self,
        req: Request<QueryDelegationRequest>,
    ) -> Result<Response<QueryDelegationResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.get_ref();
        let del = self.acc("delegator_addr", &r.delegator_addr)?;
        let val = self.val("validator_addr", &r.validator_addr)?;
        let d = staking::delegation(&v.state, &del, &val).ok_or_else(|| {
            Status::not_found(format!(
                "delegation with delegator {} not found for validator {}",
                r.delegator_addr, r.validator_addr
            ))
        })?;
        Ok(at_height(
            &v,
            QueryDelegationResponse {
                delegation_response: Some(self.response(&v.state, &val, d)?),
            },
        ))
    }

    async fn unbonding_delegation(
        &self,
        req: Request<QueryUnbondingDelegationRequest>,
    ) -> Result<Response<QueryUnbondingDelegationResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.get_ref();
        let del = self.acc("delegator_addr", &r.delegator_addr)?;
        let val = self.val("validator_addr", &r.validator_addr)?;
        let ubd = staking::unbonding(&v.state, &del, &val).ok_or_else(|| {
            Status::not_found(format!(
                "unbonding delegation with delegator {} not found for validator {}",
                r.delegator_addr, r.validator_addr
            ))
        })?;
        Ok(at_height(
            &v,
            QueryUnbondingDelegationResponse { unbond: Some(ubd) },
        ))
    }

    async fn delegator_delegations(
        &self,
        req: Request<QueryDelegatorDelegationsRequest>,
    ) -> Result<Response<QueryDelegatorDelegationsResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.into_inner();
        let del = self.acc("delegator_addr", &r.delegator_addr)?;
        let items = staking::delegations(&v.state, &del)
            .into_iter()
            .map(|(val, d)| {
                Ok((
                    keys::delegation(&del, &val),
                    self.response(&v.state, &val, d)?,
                ))
            })
            .collect::<Result<_, Status>>()?;
        let (delegation_responses, pagination) = paginate(items, r.pagination)?;
        Ok(at_height(
            &v,
            QueryDelegatorDelegationsResponse {
                delegation_responses,
                pagination,
            },
        ))
    }

    async fn delegator_unbonding_delegations(
        &self,
        req: Request<QueryDelegatorUnbondingDelegationsRequest>,
    ) -> Result<Response<QueryDelegatorUnbondingDelegationsResponse>, Status> {
        let v = version(&self.0, &req)?;
        let r = req.into_inner();
        let del = self.acc("delegator_addr", &r.delegator_addr)?;
        let items = staking::unbondings(&v.state, &del)
            .into_iter()
            .enumerate()
            .map(|(i, u)| ((i as u64).to_be_bytes().to_vec(), u))
            .collect();
        let (unbonding_responses, pagination) = paginate(items, r.pagination)?;
        Ok(at_height(
            &v,
            QueryDelegatorUnbondingDelegationsResponse {
                unbonding_responses,
                pagination,
            },
        ))
    }
}
