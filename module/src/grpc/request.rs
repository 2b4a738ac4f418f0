//! The six RPCs' requests: each names its stream type and hands its fields to the request
//! edge's one parser (`edge::subscription_key`), so every transport refuses a bad field with
//! the same words.

use crate::chain::{Chain, RequestError, start_from};
use crate::edge::{Naming, Param, StreamType, subscription_key};
use crate::handle::Start;
use crate::key::SubscriptionKey;
use stream_proto::juno::stream::v1::*;

/// A request of one of the six RPCs: its stream type, its fields and its `since_height`.
pub(crate) trait StreamRequest {
    /// The stream type the RPC serves.
    const STREAM: StreamType;

    /// Field 10: 0 = snapshot first, N > 0 = every change after height N.
    fn since_height(&self) -> i64;

    /// The field holding `param` (`None`: the RPC has no such field).
    fn param(&self, param: Param) -> Option<&str>;
}

/// Checks a request's fields: where its subscription starts and what it follows.
pub(crate) fn parse_request<R: StreamRequest>(
    chain: &Chain,
    request: &R,
) -> Result<(Start, SubscriptionKey), RequestError> {
    let start = start_from(request.since_height())?;
    let key = subscription_key(chain, R::STREAM, Naming::Grpc, |p| request.param(p))?;
    Ok((start, key))
}

impl StreamRequest for StreamBalanceRequest {
    const STREAM: StreamType = StreamType::Balance;

    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn param(&self, param: Param) -> Option<&str> {
        match param {
            Param::Address => Some(&self.address),
            Param::Denom => Some(&self.denom),
            _ => None,
        }
    }
}

impl StreamRequest for StreamAllBalancesRequest {
    const STREAM: StreamType = StreamType::Balances;

    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn param(&self, param: Param) -> Option<&str> {
        (param == Param::Address).then_some(&self.address)
    }
}

impl StreamRequest for StreamDelegationsRequest {
    const STREAM: StreamType = StreamType::Delegations;

    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn param(&self, param: Param) -> Option<&str> {
        (param == Param::Delegator).then_some(&self.delegator_address)
    }
}

impl StreamRequest for StreamDelegationRequest {
    const STREAM: StreamType = StreamType::Delegation;

    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn param(&self, param: Param) -> Option<&str> {
        match param {
            Param::Delegator => Some(&self.delegator_address),
            Param::Validator => Some(&self.validator_address),
            _ => None,
        }
    }
}

impl StreamRequest for StreamUnbondingDelegationsRequest {
    const STREAM: StreamType = StreamType::UnbondingDelegations;

    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn param(&self, param: Param) -> Option<&str> {
        (param == Param::Delegator).then_some(&self.delegator_address)
    }
}

impl StreamRequest for StreamUnbondingDelegationRequest {
    const STREAM: StreamType = StreamType::UnbondingDelegation;

    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn param(&self, param: Param) -> Option<&str> {
        match param {
            Param::Delegator => Some(&self.delegator_address),
            Param::Validator => Some(&self.validator_address),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_abci_listener::Address;

    use crate::fuzzing::chain as juno;

    fn refusal<R: StreamRequest>(r: &R) -> (tonic::Code, String) {
        let status =
            crate::edge::Refusal::Request(parse_request(&juno(), r).expect_err("refused")).grpc();
        (status.code(), status.message().to_string())
    }

    #[test]
    fn refusals_are_invalid_argument_naming_the_field() {
        let alice = Address::new(vec![9; 20]).unwrap().to_bech32("juno");
        let valoper = Address::new(vec![9; 20]).unwrap().to_bech32("junovaloper");
        let (code, message) = refusal(&StreamBalanceRequest {
            address: alice.clone(),
            denom: "ujuno".into(),
            since_height: -1,
        });
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.starts_with("since_height must be 0"), "{message}");
        let (code, message) = refusal(&StreamDelegationRequest {
            delegator_address: alice.clone(),
            validator_address: alice.clone(),
            since_height: 0,
        });
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.starts_with("validator_address \""), "{message}");
        let (_, message) = refusal(&StreamUnbondingDelegationsRequest {
            delegator_address: String::new(),
            since_height: 0,
        });
        assert_eq!(
            message,
            "delegator_address is empty; expected a juno1... address"
        );
        let (start, key) = parse_request(
            &juno(),
            &StreamDelegationRequest {
                delegator_address: alice,
                validator_address: valoper,
                since_height: 9,
            },
        )
        .unwrap();
        assert_eq!(start, Start::Since(9));
        assert_eq!(
            key,
            SubscriptionKey::Delegation {
                delegator: Address::new(vec![9; 20]).unwrap(),
                validator: Address::new(vec![9; 20]).unwrap(),
            }
        );
    }
}
