//! From a block's raw store writes to typed [`StateChange`]s: routing by store, and
//! decoding a whole block without letting one bad write stop the rest.

use std::time::SystemTime;

use crate::change::StateChange;
use crate::commit::{BlockCommit, StoreKVPair};
use crate::error::{DecodeError, Site};
use crate::{bank, staking};

/// Decodes one store write.
///
/// `Ok(None)` means the write is to a key we do not stream (another store, an index, the
/// supply, a queue): ignoring it is correct, not an error. Never panics, whatever the bytes.
pub fn decode_pair(pair: &StoreKVPair) -> Result<Option<StateChange>, DecodeError> {
    match pair.store_key.as_str() {
        bank::STORE => bank::decode(pair),
        staking::STORE => staking::decode(pair),
        _ => Ok(None),
    }
}

/// A block's change set, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedBlock {
    /// Height of the committed block.
    pub height: i64,
    /// Block time from the block header.
    pub time: SystemTime,
    /// The streamed changes, in change-set order.
    pub changes: Vec<StateChange>,
    /// Writes on streamed keys that did not decode, in change-set order. Already logged;
    /// kept so the caller can count them.
    pub errors: Vec<DecodeError>,
}

/// Decodes every write of a block, in change-set order.
///
/// A write that does not decode is logged with `tracing::warn!` (height, store, key, reason)
/// and collected in [`DecodedBlock::errors`]; the other writes still decode, because one
/// malformed value must not hide every other change of the block. Never panics.
pub fn decode_block(commit: &BlockCommit) -> DecodedBlock {
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for pair in &commit.changes {
        match decode_pair(pair) {
            Ok(Some(change)) => changes.push(change),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    height = commit.height,
                    store = error.store(),
                    key = error.key_hex(),
                    reason = %error,
                    "skipping a committed store write that does not decode"
                );
                errors.push(error);
            }
        }
    }
    DecodedBlock {
        height: commit.height,
        time: commit.time,
        changes,
        errors,
    }
}

/// The value of a set, or `None` for a deletion.
///
/// Every key we stream carries a non-empty value when set, so an empty one is an error
/// rather than a silent zero.
pub(crate) fn written_value<'p>(
    site: Site<'_>,
    pair: &'p StoreKVPair,
) -> Result<Option<&'p [u8]>, DecodeError> {
    if pair.delete {
        return Ok(None);
    }
    if pair.value.is_empty() {
        return Err(site.missing_value());
    }
    Ok(Some(&pair.value))
}

#[cfg(test)]
mod tests;
