//! Standard Cosmos SDK queries against the node, at the latest height or at a given one
//! (`x-cosmos-block-height`), returning the values a user would read.

use std::time::Duration;

use cosmos_sdk_proto::cosmos::auth::v1beta1::{BaseAccount, QueryAccountRequest};
use cosmos_sdk_proto::cosmos::bank::v1beta1::{QueryAllBalancesRequest, QueryBalanceRequest};
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::{
    GetBlockByHeightRequest, GetLatestBlockRequest,
};
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    DelegationResponse, QueryDelegationRequest, QueryDelegatorUnbondingDelegationsRequest,
    QueryUnbondingDelegationRequest, QueryValidatorRequest, QueryValidatorsRequest,
    UnbondingDelegation, Validator,
};
use prost::Message;
use tonic::{Request, Response, Status};

use super::TestNode;
use super::accounts::int;

/// gRPC metadata key that selects (request) and reports (response) the query height.
pub const HEIGHT_HEADER: &str = "x-cosmos-block-height";

/// Which state a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The latest committed state (no height header).
    Latest,
    /// The state committed at this height.
    Height(i64),
}

/// A block time, ordered, as carried by protobuf Timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

impl Time {
    /// This time plus `d`.
    pub fn plus(self, d: Duration) -> Time {
        let total = self.nanos as i64 + d.subsec_nanos() as i64;
        Time {
            seconds: self.seconds + d.as_secs() as i64 + total / 1_000_000_000,
            nanos: (total % 1_000_000_000) as i32,
        }
    }
}

/// Height and time of one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockInfo {
    /// Block height.
    pub height: i64,
    /// Block header time.
    pub time: Time,
}

fn request<T>(message: T, at: At) -> Request<T> {
    let mut request = Request::new(message);
    if let At::Height(h) = at {
        request.metadata_mut().insert(
            HEIGHT_HEADER,
            h.to_string().parse().expect("ASCII metadata"),
        );
    }
    request
}

/// The height a query response says it answered at (`x-cosmos-block-height`).
pub fn answered_height<T>(response: &Response<T>) -> Option<i64> {
    response.metadata().get(HEIGHT_HEADER).map(|v| {
        v.to_str()
            .expect("ASCII height")
            .parse()
            .expect("integer height")
    })
}

/// Unwraps a response, checking that it answered at the requested height.
fn at_height<T>(response: Response<T>, at: At, what: &str) -> T {
    if let At::Height(h) = at {
        assert_eq!(
            answered_height(&response),
            Some(h),
            "{what}: response header {HEIGHT_HEADER} must echo the requested height"
        );
    }
    response.into_inner()
}

impl TestNode {
    /// Height and time of the latest committed block.
    pub async fn latest_block(&self) -> Result<BlockInfo, Status> {
        let r = self
            .tendermint()
            .get_latest_block(GetLatestBlockRequest {})
            .await?
            .into_inner();
        Ok(block_info(
            r.sdk_block.and_then(|b| b.header),
            r.block.and_then(|b| b.header),
        ))
    }

    /// Height of the latest committed block.
    pub async fn height(&self) -> i64 {
        self.latest_block()
            .await
            .unwrap_or_else(|s| self.fail(&format!("GetLatestBlock: {s}")))
            .height
    }

    /// Height and time of block `height`.
    pub async fn block(&self, height: i64) -> BlockInfo {
        let r = self
            .tendermint()
            .get_block_by_height(GetBlockByHeightRequest { height })
            .await
            .unwrap_or_else(|s| panic!("GetBlockByHeight {height}: {s}"))
            .into_inner();
        let info = block_info(
            r.sdk_block.and_then(|b| b.header),
            r.block.and_then(|b| b.header),
        );
        assert_eq!(
            info.height, height,
            "GetBlockByHeight returned another block"
        );
        info
    }

    /// The raw txs (TxRaw bytes) of block `height`, in block order.
    pub async fn block_txs(&self, height: i64) -> Vec<Vec<u8>> {
        let r = self
            .tendermint()
            .get_block_by_height(GetBlockByHeightRequest { height })
            .await
            .unwrap_or_else(|s| panic!("GetBlockByHeight {height}: {s}"))
            .into_inner();
        let data = match (r.sdk_block, r.block) {
            (Some(b), _) => b.data,
            (None, Some(b)) => b.data,
            (None, None) => panic!("GetBlockByHeight {height} returned no block"),
        };
        data.map(|d| d.txs).unwrap_or_default()
    }

    /// Balance of `denom` held by `address` (0 when the account holds none).
    pub async fn balance(&self, address: &str, denom: &str, at: At) -> u128 {
        self.try_balance(address, denom, at)
            .await
            .unwrap_or_else(|s| panic!("Balance {address} {denom}: {s}"))
    }

    /// `Balance` as the node answers it, errors included.
    pub async fn try_balance(&self, address: &str, denom: &str, at: At) -> Result<u128, Status> {
        let message = QueryBalanceRequest {
            address: address.to_owned(),
            denom: denom.to_owned(),
        };
        let response = self.bank().balance(request(message, at)).await?;
        let coin = at_height(response, at, "Balance")
            .balance
            .expect("Balance answers with a coin, zero included");
        assert_eq!(coin.denom, denom, "Balance answered another denom");
        Ok(int("balance.amount", &coin.amount))
    }

    /// Every balance of `address` as (denom, amount), in the order the node returns them.
    pub async fn all_balances(&self, address: &str, at: At) -> Vec<(String, u128)> {
        let message = QueryAllBalancesRequest {
            address: address.to_owned(),
            pagination: None,
            resolve_denom: false,
        };
        let response = self
            .bank()
            .all_balances(request(message, at))
            .await
            .unwrap_or_else(|s| panic!("AllBalances {address}: {s}"));
        at_height(response, at, "AllBalances")
            .balances
            .into_iter()
            .map(|c| (c.denom, int("balances.amount", &c.amount)))
            .collect()
    }

    /// The `BaseAccount` stored for `address`.
    pub async fn account(&self, address: &str) -> Result<BaseAccount, Status> {
        let any = self
            .auth()
            .account(QueryAccountRequest {
                address: address.to_owned(),
            })
            .await?
            .into_inner()
            .account
            .expect("Account answers with an account");
        assert_eq!(any.type_url, "/cosmos.auth.v1beta1.BaseAccount");
        Ok(BaseAccount::decode(any.value.as_slice()).expect("BaseAccount decodes"))
    }

    /// Validator `valoper`.
    pub async fn validator(&self, valoper: &str, at: At) -> Validator {
        self.try_validator(valoper, at)
            .await
            .unwrap_or_else(|s| panic!("Validator {valoper}: {s}"))
    }

    /// `Validator` as the node answers it, errors included.
    pub async fn try_validator(&self, valoper: &str, at: At) -> Result<Validator, Status> {
        let message = QueryValidatorRequest {
            validator_addr: valoper.to_owned(),
        };
        let response = self.staking().validator(request(message, at)).await?;
        Ok(at_height(response, at, "Validator")
            .validator
            .expect("Validator answers with a validator"))
    }

    /// Every validator (all statuses).
    pub async fn validators(&self, at: At) -> Vec<Validator> {
        let message = QueryValidatorsRequest {
            status: String::new(),
            pagination: None,
        };
        let response = self
            .staking()
            .validators(request(message, at))
            .await
            .unwrap_or_else(|s| panic!("Validators: {s}"));
        at_height(response, at, "Validators").validators
    }

    /// Delegation of `delegator` to `valoper` (NotFound when there is none).
    pub async fn delegation(
        &self,
        delegator: &str,
        valoper: &str,
        at: At,
    ) -> Result<DelegationResponse, Status> {
        let message = QueryDelegationRequest {
            delegator_addr: delegator.to_owned(),
            validator_addr: valoper.to_owned(),
        };
        let response = self.staking().delegation(request(message, at)).await?;
        Ok(at_height(response, at, "Delegation")
            .delegation_response
            .expect("Delegation answers with a delegation_response"))
    }

    /// Unbonding delegation of `delegator` from `valoper` (NotFound when there is none).
    pub async fn unbonding(
        &self,
        delegator: &str,
        valoper: &str,
        at: At,
    ) -> Result<UnbondingDelegation, Status> {
        let message = QueryUnbondingDelegationRequest {
            delegator_addr: delegator.to_owned(),
            validator_addr: valoper.to_owned(),
        };
        let response = self
            .staking()
            .unbonding_delegation(request(message, at))
            .await?;
        Ok(at_height(response, at, "UnbondingDelegation")
            .unbond
            .expect("UnbondingDelegation answers with an unbond"))
    }

    /// Every unbonding delegation of `delegator`.
    pub async fn delegator_unbondings(&self, delegator: &str, at: At) -> Vec<UnbondingDelegation> {
        let message = QueryDelegatorUnbondingDelegationsRequest {
            delegator_addr: delegator.to_owned(),
            pagination: None,
        };
        let response = self
            .staking()
            .delegator_unbonding_delegations(request(message, at))
            .await
            .unwrap_or_else(|s| panic!("DelegatorUnbondingDelegations {delegator}: {s}"));
        at_height(response, at, "DelegatorUnbondingDelegations").unbonding_responses
    }
}

fn block_info(
    sdk: Option<cosmos_sdk_proto::cosmos::base::tendermint::v1beta1::Header>,
    comet: Option<cosmos_sdk_proto::tendermint::types::Header>,
) -> BlockInfo {
    // Nodes fill `sdk_block` (SDK >= 0.47) and the deprecated `block`; either will do.
    let (height, time) = match (sdk, comet) {
        (Some(h), _) => (h.height, h.time),
        (None, Some(h)) => (h.height, h.time),
        (None, None) => panic!("block response carries no header"),
    };
    let time = time.expect("block header has a time");
    BlockInfo {
        height,
        time: Time {
            seconds: time.seconds,
            nanos: time.nanos,
        },
    }
}

/// Time of a protobuf Timestamp field (e.g. an unbonding entry's `completion_time`).
pub fn time_of(
    timestamp: &Option<cosmos_sdk_proto::tendermint::google::protobuf::Timestamp>,
) -> Time {
    let t = timestamp.as_ref().expect("timestamp is set");
    Time {
        seconds: t.seconds,
        nanos: t.nanos,
    }
}
