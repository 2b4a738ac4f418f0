//! The standard Cosmos SDK queries' answer for a stream's key at a committed height
//! (`x-cosmos-block-height`), shaped as a [`StreamValue`], so that every stream message can
//! be compared with what a user would read from the node at the message's height.

use cosmos_sdk_proto::cosmos::bank::v1beta1::{QueryAllBalancesRequest, QueryBalanceRequest};
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    QueryDelegationRequest, QueryDelegatorDelegationsRequest,
    QueryDelegatorUnbondingDelegationsRequest, QueryUnbondingDelegationRequest,
};
use stream_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use stream_proto::cosmos::staking::v1beta1::query_client::QueryClient as StakingClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use super::{Recorder, StreamKey, StreamMessage, StreamValue};
use crate::support::TestNode;
use crate::support::queries::{HEIGHT_HEADER, answered_height};

/// A node the standard queries can be asked of: streamd, or a Go node (simd).
pub trait QueryNode: Sync {
    /// `cosmos.bank.v1beta1.Query`.
    fn bank_client(&self) -> BankClient<Channel>;
    /// `cosmos.staking.v1beta1.Query`.
    fn staking_client(&self) -> StakingClient<Channel>;
}

impl QueryNode for TestNode {
    fn bank_client(&self) -> BankClient<Channel> {
        self.bank()
    }
    fn staking_client(&self) -> StakingClient<Channel> {
        self.staking()
    }
}

impl<N: QueryNode + Send> QueryNode for std::sync::Arc<N> {
    fn bank_client(&self) -> BankClient<Channel> {
        (**self).bank_client()
    }
    fn staking_client(&self) -> StakingClient<Channel> {
        (**self).staking_client()
    }
}

fn at<T>(message: T, height: i64) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        HEIGHT_HEADER,
        height.to_string().parse().expect("ASCII metadata"),
    );
    request
}

/// The answer, checked to be given at `height` (the response header echoes it); `None` for
/// NOT_FOUND; any other error fails the test.
fn answer<T>(result: Result<Response<T>, Status>, height: i64, what: &str) -> Option<T> {
    let response = match result {
        Ok(response) => response,
        Err(status) if status.code() == Code::NotFound => return None,
        Err(status) => panic!("{what}: {status:?}"),
    };
    assert_eq!(
        answered_height(&response),
        Some(height),
        "{what}: {HEIGHT_HEADER} of the answer must echo the requested height"
    );
    Some(response.into_inner())
}

/// Like [`answer`] for queries that always have an answer.
fn required<T>(result: Result<Response<T>, Status>, height: i64, what: &str) -> T {
    answer(result, height, what).unwrap_or_else(|| panic!("{what}: NOT_FOUND"))
}

/// What the standard queries answer for `key` at committed height `height`.
pub async fn standard_value(node: &impl QueryNode, key: &StreamKey, height: i64) -> StreamValue {
    let what = format!("standard query for {key:?} at height {height}");
    match key.clone() {
        StreamKey::Balance { address, denom } => {
            let request = QueryBalanceRequest { address, denom };
            let response = required(
                node.bank_client().balance(at(request, height)).await,
                height,
                &what,
            );
            StreamValue::Balance(response.balance.expect("Balance answers with a coin"))
        }
        StreamKey::AllBalances { address } => {
            let request = QueryAllBalancesRequest {
                address,
                pagination: None,
                resolve_denom: false,
            };
            let response = required(
                node.bank_client().all_balances(at(request, height)).await,
                height,
                &what,
            );
            StreamValue::AllBalances(response.balances)
        }
        StreamKey::Delegations { delegator } => {
            let request = QueryDelegatorDelegationsRequest {
                delegator_addr: delegator,
                pagination: None,
            };
            let response = required(
                node.staking_client()
                    .delegator_delegations(at(request, height))
                    .await,
                height,
                &what,
            );
            StreamValue::Delegations(response.delegation_responses)
        }
        StreamKey::Delegation {
            delegator,
            validator,
        } => {
            let request = QueryDelegationRequest {
                delegator_addr: delegator,
                validator_addr: validator,
            };
            let response = answer(
                node.staking_client().delegation(at(request, height)).await,
                height,
                &what,
            );
            StreamValue::Delegation(response.map(|r| {
                r.delegation_response
                    .expect("Delegation answers with a delegation_response")
            }))
        }
        StreamKey::UnbondingDelegations { delegator } => {
            let request = QueryDelegatorUnbondingDelegationsRequest {
                delegator_addr: delegator,
                pagination: None,
            };
            let response = required(
                node.staking_client()
                    .delegator_unbonding_delegations(at(request, height))
                    .await,
                height,
                &what,
            );
            StreamValue::UnbondingDelegations(response.unbonding_responses)
        }
        StreamKey::UnbondingDelegation {
            delegator,
            validator,
        } => {
            let request = QueryUnbondingDelegationRequest {
                delegator_addr: delegator,
                validator_addr: validator,
            };
            let response = answer(
                node.staking_client()
                    .unbonding_delegation(at(request, height))
                    .await,
                height,
                &what,
            );
            StreamValue::UnbondingDelegation(response.map(|r| {
                r.unbond
                    .expect("UnbondingDelegation answers with an unbond")
            }))
        }
    }
}

/// Asserts `message` of the stream for `key` is at a committed height (at most the node's
/// latest) and carries exactly what the standard queries answer at that height.
pub async fn assert_committed(node: &TestNode, key: &StreamKey, message: &StreamMessage) {
    let latest = node.height().await;
    assert!(
        message.height <= latest,
        "{} {key:?}: message at height {} but the latest committed height is {latest}",
        key.rpc(),
        message.height
    );
    let expected = standard_value(node, key, message.height).await;
    assert_eq!(
        message.value,
        expected,
        "{} {key:?}: message at height {} differs from the standard query at that height",
        key.rpc(),
        message.height
    );
}

/// Takes the next message of `recorder` and asserts it is exactly `value` at `height`, and
/// what the standard queries answer at that height. A message at any other height first
/// (a missed change, or one for a block that changed nothing the stream follows) fails.
pub async fn expect_message(
    node: &TestNode,
    recorder: &mut Recorder,
    height: i64,
    value: StreamValue,
) -> StreamMessage {
    let message = recorder.next().await;
    let key = recorder.key.clone();
    assert_eq!(
        message,
        StreamMessage { height, value },
        "{} {key:?}: expected the message for height {height}",
        key.rpc()
    );
    assert_committed(node, &key, &message).await;
    message
}
