//! The exact JSON each WebSocket stream must carry at a height (DESIGN.md 4.2), built from
//! the standard Cosmos SDK queries at that height (`x-cosmos-block-height`): amounts as
//! integer strings, shares as 18-place decimals, completion times as RFC 3339 UTC.

use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    DelegationResponse, QueryDelegatorDelegationsRequest, UnbondingDelegation,
};
use serde_json::{Value as Json, json};
use tonic::Code;

use crate::support::TestNode;
use crate::support::queries::{At, HEIGHT_HEADER, time_of};

/// A stream as the WebSocket API names it: the path route and the `/ws` stream + params.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsStream {
    /// `bank/balance/{address}/{denom}`.
    Balance { address: String, denom: String },
    /// `bank/balances/{address}`.
    Balances { address: String },
    /// `staking/delegations/{delegator}`.
    Delegations { delegator: String },
    /// `staking/delegation/{delegator}/{validator}`.
    Delegation {
        delegator: String,
        validator: String,
    },
    /// `staking/unbonding-delegations/{delegator}`.
    UnbondingDelegations { delegator: String },
    /// `staking/unbonding-delegation/{delegator}/{validator}`.
    UnbondingDelegation {
        delegator: String,
        validator: String,
    },
}

impl WsStream {
    /// The `/ws` stream name.
    pub fn name(&self) -> &'static str {
        match self {
            WsStream::Balance { .. } => "bank/balance",
            WsStream::Balances { .. } => "bank/balances",
            WsStream::Delegations { .. } => "staking/delegations",
            WsStream::Delegation { .. } => "staking/delegation",
            WsStream::UnbondingDelegations { .. } => "staking/unbonding-delegations",
            WsStream::UnbondingDelegation { .. } => "staking/unbonding-delegation",
        }
    }

    /// `/ws/subscribe/<name>/<params...>`.
    pub fn path(&self) -> String {
        let params = match self {
            WsStream::Balance { address, denom } => format!("{address}/{denom}"),
            WsStream::Balances { address } => address.clone(),
            WsStream::Delegations { delegator } | WsStream::UnbondingDelegations { delegator } => {
                delegator.clone()
            }
            WsStream::Delegation {
                delegator,
                validator,
            }
            | WsStream::UnbondingDelegation {
                delegator,
                validator,
            } => format!("{delegator}/{validator}"),
        };
        format!("/ws/subscribe/{}/{params}", self.name())
    }

    /// The `/ws` subscribe `params` object.
    pub fn params(&self) -> Json {
        match self {
            WsStream::Balance { address, denom } => json!({"address": address, "denom": denom}),
            WsStream::Balances { address } => json!({"address": address}),
            WsStream::Delegations { delegator } | WsStream::UnbondingDelegations { delegator } => {
                json!({"delegator": delegator})
            }
            WsStream::Delegation {
                delegator,
                validator,
            }
            | WsStream::UnbondingDelegation {
                delegator,
                validator,
            } => json!({"delegator": delegator, "validator": validator}),
        }
    }

    /// A `/ws` subscribe request with `id`.
    pub fn subscribe(&self, id: u64) -> Json {
        json!({"id": id, "method": "subscribe", "stream": self.name(), "params": self.params()})
    }

    /// The value the stream must carry at `height`, from the standard queries.
    pub async fn expected(&self, node: &TestNode, height: i64) -> Json {
        let at = At::Height(height);
        match self {
            WsStream::Balance { address, denom } => {
                let amount = node.balance(address, denom, at).await;
                json!({"denom": denom, "amount": amount.to_string(), "height": height})
            }
            WsStream::Balances { address } => {
                let balances: Vec<Json> = node
                    .all_balances(address, at)
                    .await
                    .into_iter()
                    .map(|(denom, amount)| json!({"denom": denom, "amount": amount.to_string()}))
                    .collect();
                json!({"balances": balances, "height": height})
            }
            WsStream::Delegation {
                delegator,
                validator,
            } => match node.delegation(delegator, validator, at).await {
                Ok(d) => {
                    let mut v = delegation_json(&d);
                    v["found"] = json!(true);
                    v["height"] = json!(height);
                    v
                }
                Err(s) if s.code() == Code::NotFound => {
                    json!({"delegation": null, "balance": null, "found": false, "height": height})
                }
                Err(s) => panic!("Delegation {delegator} {validator} at {height}: {s}"),
            },
            WsStream::Delegations { delegator } => {
                let mut request = tonic::Request::new(QueryDelegatorDelegationsRequest {
                    delegator_addr: delegator.clone(),
                    pagination: None,
                });
                request.metadata_mut().insert(
                    HEIGHT_HEADER,
                    height.to_string().parse().expect("ASCII metadata"),
                );
                let list: Vec<Json> = node
                    .staking()
                    .delegator_delegations(request)
                    .await
                    .unwrap_or_else(|s| panic!("DelegatorDelegations at {height}: {s}"))
                    .into_inner()
                    .delegation_responses
                    .iter()
                    .map(delegation_json)
                    .collect();
                json!({"delegations": list, "height": height})
            }
            WsStream::UnbondingDelegation {
                delegator,
                validator,
            } => match node.unbonding(delegator, validator, at).await {
                Ok(u) => {
                    json!({"unbonding_delegation": unbonding_json(&u), "found": true, "height": height})
                }
                Err(s) if s.code() == Code::NotFound => {
                    json!({"unbonding_delegation": null, "found": false, "height": height})
                }
                Err(s) => panic!("UnbondingDelegation {delegator} {validator} at {height}: {s}"),
            },
            WsStream::UnbondingDelegations { delegator } => {
                let list: Vec<Json> = node
                    .delegator_unbondings(delegator, at)
                    .await
                    .iter()
                    .map(unbonding_json)
                    .collect();
                json!({"unbonding_delegations": list, "height": height})
            }
        }
    }
}

/// `{"delegation":{...},"balance":{...}}` of a standard `DelegationResponse`.
fn delegation_json(d: &DelegationResponse) -> Json {
    let delegation = d.delegation.as_ref().expect("delegation set");
    let balance = d.balance.as_ref().expect("balance set");
    json!({
        "delegation": {
            "delegator_address": delegation.delegator_address,
            "validator_address": delegation.validator_address,
            "shares": dec18(&delegation.shares),
        },
        "balance": {"denom": balance.denom, "amount": balance.amount},
    })
}

/// The JSON of a standard `UnbondingDelegation`.
pub fn unbonding_json(u: &UnbondingDelegation) -> Json {
    let entries: Vec<Json> = u
        .entries
        .iter()
        .map(|e| {
            let t = time_of(&e.completion_time);
            json!({
                "creation_height": e.creation_height,
                "completion_time": rfc3339(t.seconds, t.nanos),
                "initial_balance": e.initial_balance,
                "balance": e.balance,
                "unbonding_id": e.unbonding_id,
                "unbonding_on_hold_ref_count": e.unbonding_on_hold_ref_count,
            })
        })
        .collect();
    json!({
        "delegator_address": u.delegator_address,
        "validator_address": u.validator_address,
        "entries": entries,
    })
}

/// A `LegacyDec` wire value (ASCII integer of value x 10^18) as the 18-place decimal string
/// the WebSocket JSON carries: "5000000000000000000000" -> "5000.000000000000000000".
pub fn dec18(raw: &str) -> String {
    assert!(
        !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()),
        "not a LegacyDec wire value: {raw:?}"
    );
    let padded = format!("{raw:0>19}");
    let (whole, fraction) = padded.split_at(padded.len() - 18);
    let whole = whole.trim_start_matches('0');
    format!("{}.{fraction}", if whole.is_empty() { "0" } else { whole })
}

/// RFC 3339 in UTC: whole seconds when `nanos` is 0, else 9 fractional digits
/// ("2026-11-23T07:24:31.258011211Z"), as DESIGN.md's example shows.
pub fn rfc3339(seconds: i64, nanos: i32) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let time = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if nanos == 0 {
        format!("{time}Z")
    } else {
        format!("{time}.{nanos:09}Z")
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
