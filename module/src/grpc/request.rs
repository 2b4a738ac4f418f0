//! The six RPCs' requests as typed subscriptions: each request names its key through the
//! shared checks of `chain`, so every RPC refuses a bad field with the same words.

use crate::chain::{Chain, RequestError, start_from};
use crate::handle::Start;
use crate::key::SubscriptionKey;
use stream_proto::juno::stream::v1::*;
use tonic::Status;

/// A request of one of the six RPCs: the key its fields name and its `since_height`.
pub(crate) trait StreamRequest {
    /// Field 10: 0 = snapshot first, N > 0 = every change after height N.
    fn since_height(&self) -> i64;

    /// The key the request's fields name, each field checked by the shared rules of `chain`.
    fn key(&self, chain: &Chain) -> Result<SubscriptionKey, RequestError>;
}

/// Checks a request's fields: where its subscription starts and what it follows.
pub(crate) fn parse_request(
    chain: &Chain,
    request: &impl StreamRequest,
) -> Result<(Start, SubscriptionKey), RequestError> {
    start_from(request.since_height()).and_then(|start| Ok((start, request.key(chain)?)))
}

/// The one place a refused request becomes a gRPC status: `INVALID_ARGUMENT`, with a message
/// that names the field.
pub(crate) fn invalid_argument(e: RequestError) -> Status {
    Status::invalid_argument(e.to_string())
}

impl StreamRequest for StreamBalanceRequest {
    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn key(&self, c: &Chain) -> Result<SubscriptionKey, RequestError> {
        Ok(SubscriptionKey::Balance {
            address: c.account("address", &self.address)?,
            denom: c.denom(&self.denom)?,
        })
    }
}

impl StreamRequest for StreamAllBalancesRequest {
    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn key(&self, c: &Chain) -> Result<SubscriptionKey, RequestError> {
        Ok(SubscriptionKey::Balances {
            address: c.account("address", &self.address)?,
        })
    }
}

impl StreamRequest for StreamDelegationsRequest {
    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn key(&self, c: &Chain) -> Result<SubscriptionKey, RequestError> {
        Ok(SubscriptionKey::Delegations {
            delegator: c.account("delegator_address", &self.delegator_address)?,
        })
    }
}

impl StreamRequest for StreamDelegationRequest {
    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn key(&self, c: &Chain) -> Result<SubscriptionKey, RequestError> {
        Ok(SubscriptionKey::Delegation {
            delegator: c.account("delegator_address", &self.delegator_address)?,
            validator: c.validator("validator_address", &self.validator_address)?,
        })
    }
}

impl StreamRequest for StreamUnbondingDelegationsRequest {
    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn key(&self, c: &Chain) -> Result<SubscriptionKey, RequestError> {
        Ok(SubscriptionKey::UnbondingDelegations {
            delegator: c.account("delegator_address", &self.delegator_address)?,
        })
    }
}

impl StreamRequest for StreamUnbondingDelegationRequest {
    fn since_height(&self) -> i64 {
        self.since_height
    }

    fn key(&self, c: &Chain) -> Result<SubscriptionKey, RequestError> {
        Ok(SubscriptionKey::UnbondingDelegation {
            delegator: c.account("delegator_address", &self.delegator_address)?,
            validator: c.validator("validator_address", &self.validator_address)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_abci_listener::Address;

    use crate::fuzzing::chain as juno;

    fn refusal(r: &impl StreamRequest) -> (tonic::Code, String) {
        let status = invalid_argument(parse_request(&juno(), r).expect_err("refused"));
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
