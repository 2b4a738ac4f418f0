//! The WebSocket JSON of each value (DESIGN.md 4.2): the original module's shapes plus
//! `"height"`, shares as 18-place decimals, amounts as integer strings.

use crate::value::{Coin, DelegationValue, UnbondingValue, Value};
use serde_json::{Value as Json, json};
use std::time::{Duration, UNIX_EPOCH};
use stream_abci_listener::UnbondingEntry;

fn coin(c: &Coin) -> Json {
    json!({"denom": c.denom, "amount": c.amount.to_string()})
}

fn delegation(d: &DelegationValue) -> Json {
    json!({
        "delegation": {
            "delegator_address": d.delegator,
            "validator_address": d.validator,
            "shares": d.shares.to_string(),
        },
        "balance": coin(&d.balance),
    })
}

/// Seconds in 400 Gregorian years: the calendar repeats after them, to the day.
const GREGORIAN_CYCLE_SECONDS: u64 = 146_097 * 86_400;

/// RFC 3339 in UTC; nine fractional digits when the time has a fractional second, none
/// otherwise. The decoder admits the protobuf range (years 1 to 9999); a time before 1970,
/// which the formatter cannot take, is moved 2000 years (five cycles) later and its year
/// moved back in the text.
fn time(t: std::time::SystemTime) -> String {
    let (cycles, shifted) = if t < UNIX_EPOCH {
        (5, t + Duration::from_secs(5 * GREGORIAN_CYCLE_SECONDS))
    } else {
        (0, t)
    };
    let since = shifted.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let text = if since.subsec_nanos() == 0 {
        humantime::format_rfc3339_seconds(shifted).to_string()
    } else {
        humantime::format_rfc3339_nanos(shifted).to_string()
    };
    if cycles == 0 {
        return text;
    }
    // "YYYY-..." with 1970 <= YYYY < 4000 here.
    let year: u32 = text[..4].parse().expect("a four-digit year");
    format!("{:04}{}", year - 400 * cycles, &text[4..])
}

fn entry(e: &UnbondingEntry) -> Json {
    json!({
        "creation_height": e.creation_height,
        "completion_time": time(e.completion_time),
        "initial_balance": e.initial_balance.to_string(),
        "balance": e.balance.to_string(),
        "unbonding_id": e.unbonding_id,
        "unbonding_on_hold_ref_count": e.unbonding_on_hold_ref_count,
    })
}

fn unbonding(u: &UnbondingValue) -> Json {
    json!({
        "delegator_address": u.delegator,
        "validator_address": u.validator,
        "entries": u.entries.iter().map(entry).collect::<Vec<_>>(),
    })
}

/// The JSON text of `value` at `height`.
pub fn render(height: i64, value: &Value) -> String {
    let v = match value {
        Value::Balance(c) => {
            json!({"denom": c.denom, "amount": c.amount.to_string(), "height": height})
        }
        Value::Balances(cs) => {
            json!({"balances": cs.iter().map(coin).collect::<Vec<_>>(), "height": height})
        }
        Value::Delegation(Some(d)) => {
            let mut v = delegation(d);
            v["found"] = json!(true);
            v["height"] = json!(height);
            v
        }
        Value::Delegation(None) => {
            json!({"delegation": null, "balance": null, "found": false, "height": height})
        }
        Value::Delegations(ds) => {
            json!({"delegations": ds.iter().map(delegation).collect::<Vec<_>>(), "height": height})
        }
        Value::UnbondingDelegation(u) => json!({
            "unbonding_delegation": u.as_ref().map(unbonding),
            "found": u.is_some(),
            "height": height,
        }),
        Value::UnbondingDelegations(us) => json!({
            "unbonding_delegations": us.iter().map(unbonding).collect::<Vec<_>>(),
            "height": height,
        }),
    };
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use stream_abci_listener::{Dec, Int};

    fn c(d: &str, a: u64) -> Coin {
        Coin {
            denom: d.into(),
            amount: Int::from(a),
        }
    }

    #[test]
    fn shapes_match_the_design() {
        assert_eq!(
            render(42, &Value::Balance(c("ujuno", 1000000))),
            r#"{"denom":"ujuno","amount":"1000000","height":42}"#
        );
        assert_eq!(
            render(42, &Value::Balances(vec![c("uatom", 5), c("ujuno", 7)])),
            r#"{"balances":[{"denom":"uatom","amount":"5"},{"denom":"ujuno","amount":"7"}],"height":42}"#
        );
        let d = DelegationValue {
            delegator: "juno1d".into(),
            validator: "junovaloper1v".into(),
            shares: Dec::from_int(&Int::from(1_000_000u64)),
            balance: c("ujuno", 1000000),
        };
        let v: Json =
            serde_json::from_str(&render(42, &Value::Delegation(Some(d.clone())))).unwrap();
        assert_eq!(
            v,
            json!({"delegation":{"delegator_address":"juno1d","validator_address":"junovaloper1v","shares":"1000000.000000000000000000"},
                   "balance":{"denom":"ujuno","amount":"1000000"},"found":true,"height":42})
        );
        let v: Json = serde_json::from_str(&render(43, &Value::Delegation(None))).unwrap();
        assert_eq!(
            v,
            json!({"delegation":null,"balance":null,"found":false,"height":43})
        );
        let v: Json = serde_json::from_str(&render(44, &Value::Delegations(vec![d]))).unwrap();
        assert_eq!(
            v["delegations"][0]["delegation"]["shares"],
            "1000000.000000000000000000"
        );
        let u = UnbondingValue {
            delegator: "juno1d".into(),
            validator: "junovaloper1v".into(),
            entries: vec![UnbondingEntry {
                creation_height: 100,
                completion_time: UNIX_EPOCH + Duration::from_secs(1704164645),
                initial_balance: Int::from(500u64),
                balance: Int::from(500u64),
                unbonding_id: 7,
                unbonding_on_hold_ref_count: 0,
            }],
        };
        let v: Json =
            serde_json::from_str(&render(45, &Value::UnbondingDelegation(Some(u.clone()))))
                .unwrap();
        assert_eq!(
            v,
            json!({"unbonding_delegation":{"delegator_address":"juno1d","validator_address":"junovaloper1v","entries":[
                {"creation_height":100,"completion_time":"2024-01-02T03:04:05Z","initial_balance":"500","balance":"500","unbonding_id":7,"unbonding_on_hold_ref_count":0}]},
                "found":true,"height":45})
        );
        let v: Json =
            serde_json::from_str(&render(46, &Value::UnbondingDelegations(vec![u]))).unwrap();
        assert_eq!(
            v["unbonding_delegations"][0]["entries"][0]["unbonding_id"],
            7
        );
        let v: Json = serde_json::from_str(&render(47, &Value::UnbondingDelegation(None))).unwrap();
        assert_eq!(
            v,
            json!({"unbonding_delegation":null,"found":false,"height":47})
        );
        assert!(time(SystemTime::UNIX_EPOCH + Duration::new(1, 5)).ends_with(".000000005Z"));
    }

    /// Found by reading for the decode_pair fuzz target: the decoder admits completion times
    /// from year 1 (protobuf's range), and the formatter panicked on any time before 1970.
    #[test]
    fn times_before_1970_render_instead_of_panicking() {
        let before = |secs: u64, nanos: u32| UNIX_EPOCH - Duration::new(secs, nanos);
        assert_eq!(time(before(1, 0)), "1969-12-31T23:59:59Z");
        assert_eq!(time(before(0, 1)), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(time(before(62_135_596_800, 0)), "0001-01-01T00:00:00Z");
        // 1900 is not a leap year, 1600 is.
        assert_eq!(time(before(2_203_891_200, 0)), "1900-03-01T00:00:00Z");
        assert_eq!(time(before(11_670_998_400, 0)), "1600-02-29T00:00:00Z");
        let latest = UNIX_EPOCH + Duration::new(253_402_300_799, 999_999_999);
        assert_eq!(time(latest), "9999-12-31T23:59:59.999999999Z");
    }
}
