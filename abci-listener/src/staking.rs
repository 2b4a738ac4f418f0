//! The staking store: validators (`0x21`), delegations (`0x31`) and unbonding delegations
//! (`0x32`) decode; indexes, redelegations and queues are not streamed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cosmos_sdk_proto::Timestamp;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, UnbondingDelegation, UnbondingDelegationEntry, Validator,
};
use prost::Message;

use crate::change::{StateChange, UnbondingEntry, ValidatorTokens};
use crate::commit::StoreKVPair;
use crate::decode::written_value;
use crate::error::{DecodeError, Site};
use crate::key::KeyReader;
use crate::math::{Dec, Int};

/// `StoreKVPair.store_key` of the staking module.
pub(crate) const STORE: &str = "staking";

/// `ValidatorsKey`: `0x21 | len | operator`, value `Validator`.
const VALIDATORS_PREFIX: u8 = 0x21;
/// `DelegationKey`: `0x31 | len | delegator | len | validator`, value `Delegation`.
const DELEGATIONS_PREFIX: u8 = 0x31;
/// `UnbondingDelegationKey`: `0x32 | len | delegator | len | validator`, value
/// `UnbondingDelegation`.
const UNBONDING_DELEGATIONS_PREFIX: u8 = 0x32;

/// Decodes one staking write; `Ok(None)` for keys we do not stream.
pub(crate) fn decode(pair: &StoreKVPair) -> Result<Option<StateChange>, DecodeError> {
    let site = Site {
        store: STORE,
        key: &pair.key,
    };
    match pair.key.first() {
        Some(&VALIDATORS_PREFIX) => validator(site, pair).map(Some),
        Some(&DELEGATIONS_PREFIX) => delegation(site, pair).map(Some),
        Some(&UNBONDING_DELEGATIONS_PREFIX) => unbonding_delegation(site, pair).map(Some),
        // Indexes (0x33, 0x34-0x36), redelegations, queues (0x41, 0x42), params and the
        // rest: their effects reach clients through the records above.
        _ => Ok(None),
    }
}

fn validator(site: Site<'_>, pair: &StoreKVPair) -> Result<StateChange, DecodeError> {
    let mut reader = KeyReader::after_prefix(site);
    let operator = reader.address("operator address")?;
    reader.finish("operator address")?;
    let value = match written_value(site, pair)? {
        None => None,
        Some(bytes) => {
            let validator = Validator::decode(bytes)
                .map_err(|reason| site.protobuf("cosmos.staking.v1beta1.Validator", reason))?;
            Some(ValidatorTokens {
                tokens: int(site, "tokens", &validator.tokens)?,
                delegator_shares: dec(site, "delegator_shares", &validator.delegator_shares)?,
            })
        }
    };
    Ok(StateChange::Validator { operator, value })
}

fn delegation(site: Site<'_>, pair: &StoreKVPair) -> Result<StateChange, DecodeError> {
    let mut reader = KeyReader::after_prefix(site);
    let delegator = reader.address("delegator address")?;
    let validator = reader.address("validator address")?;
    reader.finish("validator address")?;
    // The key's addresses are authoritative; the value repeats them as bech32, unchecked.
    let shares = match written_value(site, pair)? {
        None => None,
        Some(bytes) => {
            let delegation = Delegation::decode(bytes)
                .map_err(|reason| site.protobuf("cosmos.staking.v1beta1.Delegation", reason))?;
            Some(dec(site, "shares", &delegation.shares)?)
        }
    };
    Ok(StateChange::Delegation {
        delegator,
        validator,
        shares,
    })
}

fn unbonding_delegation(site: Site<'_>, pair: &StoreKVPair) -> Result<StateChange, DecodeError> {
    let mut reader = KeyReader::after_prefix(site);
    let delegator = reader.address("delegator address")?;
    let validator = reader.address("validator address")?;
    reader.finish("validator address")?;
    let entries = match written_value(site, pair)? {
        None => None,
        Some(bytes) => {
            let record = UnbondingDelegation::decode(bytes).map_err(|reason| {
                site.protobuf("cosmos.staking.v1beta1.UnbondingDelegation", reason)
            })?;
            let entries = record
                .entries
                .iter()
                .map(|entry| unbonding_entry(site, entry))
                .collect::<Result<Vec<_>, _>>()?;
            Some(entries)
        }
    };
    Ok(StateChange::UnbondingDelegation {
        delegator,
        validator,
        entries,
    })
}

fn unbonding_entry(
    site: Site<'_>,
    entry: &UnbondingDelegationEntry,
) -> Result<UnbondingEntry, DecodeError> {
    let completion_time = entry
        .completion_time
        .as_ref()
        .ok_or_else(|| site.missing_field("completion_time"))?;
    Ok(UnbondingEntry {
        creation_height: entry.creation_height,
        completion_time: system_time(site, "completion_time", completion_time)?,
        initial_balance: int(site, "initial_balance", &entry.initial_balance)?,
        balance: int(site, "balance", &entry.balance)?,
        unbonding_id: entry.unbonding_id,
        unbonding_on_hold_ref_count: entry.unbonding_on_hold_ref_count,
    })
}

fn int(site: Site<'_>, field: &'static str, text: &str) -> Result<Int, DecodeError> {
    text.parse()
        .map_err(|reason| site.bad_number(field, text.as_bytes(), reason))
}

fn dec(site: Site<'_>, field: &'static str, text: &str) -> Result<Dec, DecodeError> {
    Dec::from_wire(text).map_err(|reason| site.bad_number(field, text.as_bytes(), reason))
}

/// Earliest instant a protobuf `Timestamp` may hold: 0001-01-01T00:00:00Z.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
/// Latest whole second a protobuf `Timestamp` may hold: 9999-12-31T23:59:59Z.
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;

/// Converts a protobuf `Timestamp`, rejecting values the protobuf spec rules out (and so
/// any that `SystemTime` arithmetic could overflow on).
fn system_time(
    site: Site<'_>,
    field: &'static str,
    timestamp: &Timestamp,
) -> Result<SystemTime, DecodeError> {
    let bad = || DecodeError::BadTimestamp {
        store: site.store,
        key: site.key_hex(),
        field,
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
    };
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or_else(bad)?;
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&timestamp.seconds) {
        return Err(bad());
    }
    let whole_seconds = Duration::from_secs(timestamp.seconds.unsigned_abs());
    let seconds = if timestamp.seconds >= 0 {
        UNIX_EPOCH.checked_add(whole_seconds)
    } else {
        UNIX_EPOCH.checked_sub(whole_seconds)
    };
    seconds
        .and_then(|time| time.checked_add(Duration::from_nanos(u64::from(nanos))))
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests;
