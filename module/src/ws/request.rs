//! Turning WebSocket requests into subscription keys, and finding the client's address.

use crate::chain::{Chain, RequestError};
use crate::config::WebSocketConfig;
use crate::handle::Start;
use crate::key::SubscriptionKey;
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

/// Stream names, as in the paths `/ws/subscribe/<stream>/...` and `/ws` `"stream"` fields.
pub const STREAMS: [&str; 6] = [
    "bank/balance",
    "bank/balances",
    "staking/delegations",
    "staking/delegation",
    "staking/unbonding-delegations",
    "staking/unbonding-delegation",
];

/// Builds the key of `stream` from its parameters (`address`, `denom`, `delegator`,
/// `validator`), checked.
pub fn parse_stream<'a>(
    chain: &Chain,
    stream: &str,
    param: impl Fn(&str) -> Option<&'a str>,
) -> Result<SubscriptionKey, RequestError> {
    let p = |k: &str| param(k).unwrap_or("");
    Ok(match stream {
        "bank/balance" => SubscriptionKey::Balance {
            address: chain.account("address", p("address"))?,
            denom: chain.denom(p("denom"))?,
        },
        "bank/balances" => SubscriptionKey::Balances {
            address: chain.account("address", p("address"))?,
        },
        "staking/delegations" => SubscriptionKey::Delegations {
            delegator: chain.account("delegator", p("delegator"))?,
        },
        "staking/delegation" => SubscriptionKey::Delegation {
            delegator: chain.account("delegator", p("delegator"))?,
            validator: chain.validator("validator", p("validator"))?,
        },
        "staking/unbonding-delegations" => SubscriptionKey::UnbondingDelegations {
            delegator: chain.account("delegator", p("delegator"))?,
        },
        "staking/unbonding-delegation" => SubscriptionKey::UnbondingDelegation {
            delegator: chain.account("delegator", p("delegator"))?,
            validator: chain.validator("validator", p("validator"))?,
        },
        _ => return Err(RequestError::UnknownStream(stream.to_string())),
    })
}

/// A textual `since_height` (absent or empty = none) with the gRPC rule.
pub(crate) fn start_from(v: Option<&str>) -> Result<Start, RequestError> {
    match v.map(str::trim) {
        None | Some("") => Ok(Start::Snapshot),
        Some(s) => crate::chain::start_from(
            s.parse()
                .map_err(|_| RequestError::SinceHeight(s.to_string()))?,
        ),
    }
}

/// The client's IP: the TCP peer, or, when the peer is a trusted proxy, the right-most
/// `X-Forwarded-For` address that is not itself a trusted proxy.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, config: &WebSocketConfig) -> IpAddr {
    let peer = peer.ip();
    if !config.trusts(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !config.trusts(*ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let cfg = WebSocketConfig {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..WebSocketConfig::default()
        };
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8, 10.0.0.2".parse().unwrap(),
        );
        assert_eq!(
            client_ip("10.0.0.1:5000".parse().unwrap(), &h, &cfg),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("9.9.9.9:5000".parse().unwrap(), &h, &cfg),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("10.0.0.1:5000".parse().unwrap(), &HeaderMap::new(), &cfg),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn streams_parse_and_name_their_missing_fields() {
        let chain = crate::fuzzing::chain();
        let e = parse_stream(&chain, "staking/delegation", |_| None).unwrap_err();
        assert!(e.to_string().starts_with("delegator is empty"), "{e}");
        assert!(matches!(
            parse_stream(&chain, "bank/nope", |_| None),
            Err(RequestError::UnknownStream(_))
        ));
    }
}
