//! What a subscription follows, named for every transport (a `StreamKey` for gRPC, a
//! `WsStream` for the WebSocket routes and `/ws`), and the one canonical form its values are
//! compared in: the WebSocket JSON without `"height"`. gRPC messages and the standard
//! queries' answers are rendered into that form (shares as 18-place decimals, completion
//! times as RFC 3339), so one equality serves all three sources.

use cosmos_sdk_proto::cosmos::staking::v1beta1::DelegationResponse;
use serde_json::{Value as Json, json};

use crate::stream_support::{StreamKey, StreamValue};
use crate::support::accounts::{ATOM_DENOM, BOND_DENOM, VALIDATORS};
use crate::ws_support::expected::{WsStream, dec18, unbonding_json};

/// The streams the gap checker's clients pick from: everything the simulation moves (the
/// three users' balances, delegations and unbondings, which slashes and maturities also
/// move) and a validator's self-delegation (moved by slashes only).
pub fn universe() -> Vec<StreamKey> {
    let mut keys = Vec::new();
    for user in ["alice", "bob", "carol"] {
        keys.push(StreamKey::balance(user, BOND_DENOM));
        keys.push(StreamKey::balance(user, ATOM_DENOM));
        keys.push(StreamKey::all_balances(user));
        keys.push(StreamKey::delegations(user));
        keys.push(StreamKey::unbonding_delegations(user));
        for v in VALIDATORS {
            keys.push(StreamKey::delegation(user, v));
            keys.push(StreamKey::unbonding_delegation(user, v));
        }
    }
    keys.push(StreamKey::delegations("validator1"));
    keys.push(StreamKey::delegation("validator2", "validator2"));
    keys
}

/// The WebSocket name of `key`.
pub fn ws_stream(key: &StreamKey) -> WsStream {
    match key.clone() {
        StreamKey::Balance { address, denom } => WsStream::Balance { address, denom },
        StreamKey::AllBalances { address } => WsStream::Balances { address },
        StreamKey::Delegations { delegator } => WsStream::Delegations { delegator },
        StreamKey::Delegation {
            delegator,
            validator,
        } => WsStream::Delegation {
            delegator,
            validator,
        },
        StreamKey::UnbondingDelegations { delegator } => {
            WsStream::UnbondingDelegations { delegator }
        }
        StreamKey::UnbondingDelegation {
            delegator,
            validator,
        } => WsStream::UnbondingDelegation {
            delegator,
            validator,
        },
    }
}

/// A short name for reports: `StreamBalance(alice…,ujuno)`.
pub fn short(key: &StreamKey) -> String {
    let cut = |s: &str| s.chars().skip(5).take(6).collect::<String>();
    match key {
        StreamKey::Balance { address, denom } => format!("balance({},{denom})", cut(address)),
        StreamKey::AllBalances { address } => format!("balances({})", cut(address)),
        StreamKey::Delegations { delegator } => format!("delegations({})", cut(delegator)),
        StreamKey::Delegation {
            delegator,
            validator,
        } => format!("delegation({},{})", cut(delegator), cut(&validator[7..])),
        StreamKey::UnbondingDelegations { delegator } => {
            format!("unbondings({})", cut(delegator))
        }
        StreamKey::UnbondingDelegation {
            delegator,
            validator,
        } => format!("unbonding({},{})", cut(delegator), cut(&validator[7..])),
    }
}

/// `value` in the canonical form.
pub fn canonical(value: &StreamValue) -> Json {
    match value {
        StreamValue::Balance(c) => json!({"denom": c.denom, "amount": c.amount}),
        StreamValue::AllBalances(cs) => {
            let list: Vec<Json> = cs
                .iter()
                .map(|c| json!({"denom": c.denom, "amount": c.amount}))
                .collect();
            json!({ "balances": list })
        }
        StreamValue::Delegations(ds) => {
            let list: Vec<Json> = ds.iter().map(delegation).collect();
            json!({ "delegations": list })
        }
        StreamValue::Delegation(Some(d)) => {
            let mut v = delegation(d);
            v["found"] = json!(true);
            v
        }
        StreamValue::Delegation(None) => {
            json!({"delegation": null, "balance": null, "found": false})
        }
        StreamValue::UnbondingDelegations(us) => {
            let list: Vec<Json> = us.iter().map(unbonding_json).collect();
            json!({ "unbonding_delegations": list })
        }
        StreamValue::UnbondingDelegation(Some(u)) => {
            json!({"unbonding_delegation": unbonding_json(u), "found": true})
        }
        StreamValue::UnbondingDelegation(None) => {
            json!({"unbonding_delegation": null, "found": false})
        }
    }
}

/// Splits a WebSocket update into its height and canonical value; `Err` names what is wrong.
pub fn from_ws(mut data: Json) -> Result<(i64, Json), String> {
    let Some(object) = data.as_object_mut() else {
        return Err(format!("update is not a JSON object: {data}"));
    };
    let height = object
        .remove("height")
        .and_then(|h| h.as_i64())
        .ok_or_else(|| "update without an integer \"height\"".to_string())?;
    Ok((height, data))
}

fn delegation(d: &DelegationResponse) -> Json {
    let delegation = d.delegation.as_ref();
    let balance = d.balance.as_ref();
    json!({
        "delegation": delegation.map(|d| json!({
            "delegator_address": d.delegator_address,
            "validator_address": d.validator_address,
            "shares": dec18(&d.shares),
        })),
        "balance": balance.map(|b| json!({"denom": b.denom, "amount": b.amount})),
    })
}
