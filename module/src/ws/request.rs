//! What the API port's requests say beyond their stream: a textual `since_height`, and the
//! client's address.

use crate::chain::RequestError;
use crate::config::WebSocketConfig;
use crate::handle::Start;
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

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
}
