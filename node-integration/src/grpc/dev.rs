//! `streamd.dev.v1.Dev`: dev-chain controls (slashing).

use super::invalid;
use crate::app::DevOp;
use crate::node::Node;
use crate::state::{dec_one, parse_uint};
use num_bigint::BigUint;
use num_traits::Zero;
use stream_proto::streamd::dev::v1::dev_server::{Dev, DevServer};
use stream_proto::streamd::dev::v1::{SlashRequest, SlashResponse};
use tonic::{Request, Response, Status};

struct DevService(Node);

/// The service.
pub fn service(node: Node) -> DevServer<impl Dev> {
    DevServer::new(DevService(node))
}

/// Parses a decimal fraction in (0, 1] into LegacyDec raw form (x 10^18).
pub fn parse_fraction(s: &str) -> Result<BigUint, String> {
    let err = || {
        format!(
            "fraction {s:?} must be a decimal in (0, 1] with at most 18 decimal places, e.g. \"0.1\""
        )
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || frac.len() > 18 || (!frac.is_empty() && parse_uint(frac).is_none()) {
        return Err(err());
    }
    let int = parse_uint(int).ok_or_else(err)?;
    let frac_raw = if frac.is_empty() {
        BigUint::zero()
    } else {
        parse_uint(&format!("{frac:0<18}")).ok_or_else(err)?
    };
    let raw = int * dec_one() + frac_raw;
    if raw.is_zero() || raw > dec_one() {
        return Err(err());
    }
    Ok(raw)
}

#[tonic::async_trait]
impl Dev for DevService {
    async fn slash(&self, req: Request<SlashRequest>) -> Result<Response<SlashResponse>, Status> {
        let r = req.into_inner();
        let validator = self
            .0
            .params()
            .prefixes
            .validator("validator_address", &r.validator_address)
            .map_err(invalid)?;
        let fraction_raw = parse_fraction(&r.fraction).map_err(invalid)?;
        if self.0.is_comet() {
            return Err(Status::failed_precondition(
                "dev operations exist only on the dev chain (streamd start without CometBFT)",
            ));
        }
        let (height, outcome) = self
            .0
            .dev_op(DevOp::Slash {
                validator,
                fraction_raw,
            })
            .await
            .ok_or_else(|| Status::unavailable("the node is shutting down"))?;
        let (burned, tokens) = outcome.map_err(|e| Status::failed_precondition(e.log))?;
        Ok(Response::new(SlashResponse {
            height,
            burned: burned.to_string(),
            tokens: tokens.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions() {
        assert_eq!(
            parse_fraction("0.1").unwrap(),
            dec_one() / BigUint::from(10u32)
        );
        assert_eq!(parse_fraction("1").unwrap(), dec_one());
        for bad in ["0", "1.1", "-0.1", "abc", ".5", "0.1234567890123456789", ""] {
            assert!(parse_fraction(bad).is_err(), "{bad}");
        }
    }
}
