//! The six things a subscription can follow, each with its value type, its gRPC request and
//! its WebSocket route, and the decoding of both wires into the same Rust values (the Cosmos
//! SDK's protobuf types, as the gRPC stream carries them).

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use serde_json::Value as Json;
use stream_proto::cosmos_sdk_proto::Timestamp;
use stream_proto::cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use stream_proto::cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, DelegationResponse, UnbondingDelegation, UnbondingDelegationEntry,
};
use stream_proto::juno::stream::v1::query_client::QueryClient;
use stream_proto::juno::stream::v1::*;
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;

/// A stream of `(height, value)` as a transport decodes it.
pub(crate) type Values<V, E> = BoxStream<'static, Result<(i64, V), E>>;

/// What a subscription follows.
pub(crate) trait Topic: Send + Sync + 'static {
    /// The value each update carries.
    type Value: Send + 'static;

    /// For logs: `balance(juno1...,ujuno)`.
    fn describe(&self) -> String;

    /// The WebSocket path route, `/ws/subscribe/...`, without `since_height`.
    fn ws_path(&self) -> String;

    /// Opens the gRPC stream with `since_height` = `since` (0: snapshot first), through
    /// `call`'s client and with its metadata.
    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Self::Value, Status>, Status>>;

    /// Decodes one WebSocket update (`{..., "height": H}`).
    fn from_json(json: Json) -> Result<(i64, Self::Value), String>;
}

/// `StreamBalance`: one denom of an account ("0" when absent).
pub(crate) struct Balance {
    pub address: String,
    pub denom: String,
}

/// `StreamAllBalances`: every denom of an account.
pub(crate) struct Balances {
    pub address: String,
}

/// `StreamDelegation`: one delegation (`None` when absent or removed).
pub(crate) struct OneDelegation {
    pub delegator: String,
    pub validator: String,
}

/// `StreamDelegations`: every delegation of a delegator.
pub(crate) struct Delegations {
    pub delegator: String,
}

/// `StreamUnbondingDelegation`: one unbonding delegation (`None` when absent or completed).
pub(crate) struct OneUnbonding {
    pub delegator: String,
    pub validator: String,
}

/// `StreamUnbondingDelegations`: every unbonding delegation of a delegator.
pub(crate) struct Unbondings {
    pub delegator: String,
}

/// What a gRPC stream is opened with: a client on the attempt's connection, and the
/// `authorization` metadata (`Bearer <JWT>`) for a node with token auth.
pub(crate) struct GrpcCall {
    pub client: QueryClient<Channel>,
    pub authorization: Option<AsciiMetadataValue>,
}

/// Calls one RPC (with the call's metadata) and maps each response to `(height, value)`.
macro_rules! grpc_stream {
    ($call:ident, $method:ident, $request:expr, |$r:ident| $value:expr) => {{
        let GrpcCall {
            mut client,
            authorization,
        } = $call;
        let mut request = tonic::Request::new($request);
        if let Some(value) = authorization {
            request.metadata_mut().insert("authorization", value);
        }
        Box::pin(async move {
            let stream = client.$method(request).await?.into_inner();
            let values: Values<_, Status> = stream.map_ok(move |$r| ($r.height, $value)).boxed();
            Ok(values)
        })
    }};
}

impl Topic for Balance {
    type Value = Coin;

    fn describe(&self) -> String {
        format!("balance({},{})", self.address, self.denom)
    }

    fn ws_path(&self) -> String {
        format!(
            "/ws/subscribe/bank/balance/{}/{}",
            segment(&self.address),
            segment(&self.denom)
        )
    }

    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Coin, Status>, Status>> {
        let request = StreamBalanceRequest {
            address: self.address.clone(),
            denom: self.denom.clone(),
            since_height: since,
        };
        let denom = self.denom.clone();
        grpc_stream!(call, stream_balance, request, |r| r.balance.unwrap_or(
            Coin {
                denom: denom.clone(),
                amount: "0".into(),
            }
        ))
    }

    fn from_json(json: Json) -> Result<(i64, Coin), String> {
        Ok((height(&json)?, coin(&json)?))
    }
}

impl Topic for Balances {
    type Value = Vec<Coin>;

    fn describe(&self) -> String {
        format!("balances({})", self.address)
    }

    fn ws_path(&self) -> String {
        format!("/ws/subscribe/bank/balances/{}", segment(&self.address))
    }

    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Vec<Coin>, Status>, Status>> {
        let request = StreamAllBalancesRequest {
            address: self.address.clone(),
            since_height: since,
        };
        grpc_stream!(call, stream_all_balances, request, |r| r.balances)
    }

    fn from_json(json: Json) -> Result<(i64, Vec<Coin>), String> {
        Ok((height(&json)?, list(&json, "balances", coin)?))
    }
}

impl Topic for OneDelegation {
    type Value = Option<DelegationResponse>;

    fn describe(&self) -> String {
        format!("delegation({},{})", self.delegator, self.validator)
    }

    fn ws_path(&self) -> String {
        format!(
            "/ws/subscribe/staking/delegation/{}/{}",
            segment(&self.delegator),
            segment(&self.validator)
        )
    }

    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Self::Value, Status>, Status>> {
        let request = StreamDelegationRequest {
            delegator_address: self.delegator.clone(),
            validator_address: self.validator.clone(),
            since_height: since,
        };
        grpc_stream!(call, stream_delegation, request, |r| r
            .delegation
            .filter(|_| r.found))
    }

    fn from_json(json: Json) -> Result<(i64, Self::Value), String> {
        let value = if found(&json)? {
            Some(delegation_response(&json)?)
        } else {
            None
        };
        Ok((height(&json)?, value))
    }
}

impl Topic for Delegations {
    type Value = Vec<DelegationResponse>;

    fn describe(&self) -> String {
        format!("delegations({})", self.delegator)
    }

    fn ws_path(&self) -> String {
        format!(
            "/ws/subscribe/staking/delegations/{}",
            segment(&self.delegator)
        )
    }

    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Self::Value, Status>, Status>> {
        let request = StreamDelegationsRequest {
            delegator_address: self.delegator.clone(),
            since_height: since,
        };
        grpc_stream!(call, stream_delegations, request, |r| r.delegations)
    }

    fn from_json(json: Json) -> Result<(i64, Self::Value), String> {
        Ok((
            height(&json)?,
            list(&json, "delegations", delegation_response)?,
        ))
    }
}

impl Topic for OneUnbonding {
    type Value = Option<UnbondingDelegation>;

    fn describe(&self) -> String {
        format!(
            "unbonding_delegation({},{})",
            self.delegator, self.validator
        )
    }

    fn ws_path(&self) -> String {
        format!(
            "/ws/subscribe/staking/unbonding-delegation/{}/{}",
            segment(&self.delegator),
            segment(&self.validator)
        )
    }

    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Self::Value, Status>, Status>> {
        let request = StreamUnbondingDelegationRequest {
            delegator_address: self.delegator.clone(),
            validator_address: self.validator.clone(),
            since_height: since,
        };
        grpc_stream!(call, stream_unbonding_delegation, request, |r| r
            .delegation
            .filter(|_| r.found))
    }

    fn from_json(json: Json) -> Result<(i64, Self::Value), String> {
        let value = if found(&json)? {
            Some(unbonding(field(&json, "unbonding_delegation")?)?)
        } else {
            None
        };
        Ok((height(&json)?, value))
    }
}

impl Topic for Unbondings {
    type Value = Vec<UnbondingDelegation>;

    fn describe(&self) -> String {
        format!("unbonding_delegations({})", self.delegator)
    }

    fn ws_path(&self) -> String {
        format!(
            "/ws/subscribe/staking/unbonding-delegations/{}",
            segment(&self.delegator)
        )
    }

    fn grpc(
        &self,
        call: GrpcCall,
        since: i64,
    ) -> BoxFuture<'static, Result<Values<Self::Value, Status>, Status>> {
        let request = StreamUnbondingDelegationsRequest {
            delegator_address: self.delegator.clone(),
            since_height: since,
        };
        grpc_stream!(call, stream_unbonding_delegations, request, |r| r
            .delegations)
    }

    fn from_json(json: Json) -> Result<(i64, Self::Value), String> {
        Ok((
            height(&json)?,
            list(&json, "unbonding_delegations", unbonding)?,
        ))
    }
}

/// A path segment, percent-encoded (denoms such as `ibc/...` hold a slash).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn field<'a>(json: &'a Json, name: &str) -> Result<&'a Json, String> {
    json.get(name)
        .ok_or_else(|| format!("update without {name:?}: {json}"))
}

fn string(json: &Json, name: &str) -> Result<String, String> {
    field(json, name)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{name:?} is not a string: {json}"))
}

fn integer(json: &Json, name: &str) -> Result<i64, String> {
    field(json, name)?
        .as_i64()
        .ok_or_else(|| format!("{name:?} is not an integer: {json}"))
}

fn height(json: &Json) -> Result<i64, String> {
    integer(json, "height")
}

fn found(json: &Json) -> Result<bool, String> {
    field(json, "found")?
        .as_bool()
        .ok_or_else(|| format!("\"found\" is not a boolean: {json}"))
}

fn list<T>(
    json: &Json,
    name: &str,
    item: fn(&Json) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    field(json, name)?
        .as_array()
        .ok_or_else(|| format!("{name:?} is not a list: {json}"))?
        .iter()
        .map(item)
        .collect()
}

fn coin(json: &Json) -> Result<Coin, String> {
    Ok(Coin {
        denom: string(json, "denom")?,
        amount: string(json, "amount")?,
    })
}

fn delegation_response(json: &Json) -> Result<DelegationResponse, String> {
    let d = field(json, "delegation")?;
    Ok(DelegationResponse {
        delegation: Some(Delegation {
            delegator_address: string(d, "delegator_address")?,
            validator_address: string(d, "validator_address")?,
            shares: dec_wire(&string(d, "shares")?)?,
        }),
        balance: Some(coin(field(json, "balance")?)?),
    })
}

fn unbonding(json: &Json) -> Result<UnbondingDelegation, String> {
    Ok(UnbondingDelegation {
        delegator_address: string(json, "delegator_address")?,
        validator_address: string(json, "validator_address")?,
        entries: list(json, "entries", unbonding_entry)?,
    })
}

fn unbonding_entry(json: &Json) -> Result<UnbondingDelegationEntry, String> {
    let time = string(json, "completion_time")?;
    let at = humantime::parse_rfc3339(&time)
        .map_err(|e| format!("completion_time {time:?}: {e}"))?
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("completion_time {time:?} is before 1970"))?;
    Ok(UnbondingDelegationEntry {
        creation_height: integer(json, "creation_height")?,
        completion_time: Some(Timestamp {
            seconds: at.as_secs() as i64,
            nanos: at.subsec_nanos() as i32,
        }),
        initial_balance: string(json, "initial_balance")?,
        balance: string(json, "balance")?,
        unbonding_id: field(json, "unbonding_id")?
            .as_u64()
            .ok_or_else(|| format!("\"unbonding_id\" is not an integer: {json}"))?,
        unbonding_on_hold_ref_count: integer(json, "unbonding_on_hold_ref_count")?,
    })
}

/// An 18-place decimal ("5000.000000000000000000", the WebSocket form) as the gRPC wire form
/// of a `LegacyDec`: the integer value x 10^18 ("5000000000000000000000").
pub(crate) fn dec_wire(decimal: &str) -> Result<String, String> {
    let bad = || format!("{decimal:?} is not a decimal with at most 18 places");
    let (whole, fraction) = decimal.split_once('.').unwrap_or((decimal, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 18 {
        return Err(bad());
    }
    let joined = format!("{whole}{fraction:0<18}");
    let trimmed = joined.trim_start_matches('0');
    Ok(if trimmed.is_empty() { "0" } else { trimmed }.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_become_the_wire_integer() {
        assert_eq!(
            dec_wire("5000.000000000000000000").unwrap(),
            "5000000000000000000000"
        );
        assert_eq!(dec_wire("0.000000000000000001").unwrap(), "1");
        assert_eq!(dec_wire("0.000000000000000000").unwrap(), "0");
        assert_eq!(dec_wire("12").unwrap(), "12000000000000000000");
        assert!(dec_wire("1.0000000000000000001").is_err());
        assert!(dec_wire("-1.0").is_err());
        assert!(dec_wire(".5").is_err());
    }

    #[test]
    fn websocket_updates_decode_into_the_grpc_types() {
        let (h, c) = Balance::from_json(json!({"denom":"ujuno","amount":"7","height":28})).unwrap();
        assert_eq!((h, c.denom.as_str(), c.amount.as_str()), (28, "ujuno", "7"));

        let d = json!({"delegation":{"delegator_address":"juno1a","validator_address":"junovaloper1b",
            "shares":"5000.000000000000000000"},"balance":{"denom":"ujuno","amount":"5000"},
            "found":true,"height":30});
        let (h, v) = OneDelegation::from_json(d).unwrap();
        let v = v.unwrap();
        assert_eq!(h, 30);
        assert_eq!(v.delegation.unwrap().shares, "5000000000000000000000");
        assert_eq!(v.balance.unwrap().amount, "5000");
        let gone = json!({"delegation":null,"balance":null,"found":false,"height":31});
        assert_eq!(OneDelegation::from_json(gone).unwrap(), (31, None));

        let u = json!({"unbonding_delegations":[{"delegator_address":"juno1a",
            "validator_address":"junovaloper1b","entries":[{"creation_height":31,
            "completion_time":"2026-11-23T07:24:31.258011211Z","initial_balance":"5000",
            "balance":"5000","unbonding_id":2,"unbonding_on_hold_ref_count":0}]}],"height":31});
        let (_, u) = Unbondings::from_json(u).unwrap();
        let e = &u[0].entries[0];
        assert_eq!((e.creation_height, e.unbonding_id), (31, 2));
        let t = e.completion_time.unwrap();
        assert_eq!((t.seconds, t.nanos), (1_795_418_671, 258_011_211));
        let none = json!({"unbonding_delegation":null,"found":false,"height":36});
        assert_eq!(OneUnbonding::from_json(none).unwrap(), (36, None));
        assert!(Balances::from_json(json!({"balances":[]})).is_err());
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        let b = Balance {
            address: "juno1abc".into(),
            denom: "ibc/27A6".into(),
        };
        assert_eq!(
            b.ws_path(),
            "/ws/subscribe/bank/balance/juno1abc/ibc%2F27A6"
        );
    }
}
