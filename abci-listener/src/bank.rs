//! The bank store: balances (`0x02 | len | address | denom`) decode; supply, the denom
//! index and everything else are not streamed.

use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use prost::Message;

use crate::change::StateChange;
use crate::commit::StoreKVPair;
use crate::decode::written_value;
use crate::error::{DecodeError, Site};
use crate::key::KeyReader;
use crate::math::Int;

/// `StoreKVPair.store_key` of the bank module.
pub(crate) const STORE: &str = "bank";

/// `BalancesPrefix`: `0x02 | len | address | denom`, value the amount.
const BALANCES_PREFIX: u8 = 0x02;

/// Decodes one bank write; `Ok(None)` for keys we do not stream.
pub(crate) fn decode(pair: &StoreKVPair) -> Result<Option<StateChange>, DecodeError> {
    if pair.key.first() != Some(&BALANCES_PREFIX) {
        return Ok(None);
    }
    let site = Site {
        store: STORE,
        key: &pair.key,
    };
    let mut reader = KeyReader::after_prefix(site);
    let address = reader.address("address")?;
    let denom = denom(site, reader.into_rest())?;
    // The bank module deletes a key whose balance reaches zero instead of storing "0".
    let amount = match written_value(site, pair)? {
        Some(value) => amount(site, value)?,
        None => Int::zero(),
    };
    Ok(Some(StateChange::Balance {
        address,
        denom,
        amount,
    }))
}

/// The denom, the rest of a balance key, checked against the Cosmos denom rule
/// `[a-zA-Z][a-zA-Z0-9/:._-]{2,127}`.
fn denom(site: Site<'_>, bytes: &[u8]) -> Result<String, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::EmptyDenom {
            store: site.store,
            key: site.key_hex(),
        });
    }
    let denom = std::str::from_utf8(bytes).map_err(|_| DecodeError::NonUtf8Denom {
        store: site.store,
        key: site.key_hex(),
    })?;
    let reason = validate_denom(denom).err();
    match reason {
        None => Ok(denom.to_owned()),
        Some(reason) => Err(DecodeError::InvalidDenom {
            store: site.store,
            key: site.key_hex(),
            denom: denom.to_owned(),
            reason,
        }),
    }
}

/// Checks a denom against the Cosmos SDK rule `[a-zA-Z][a-zA-Z0-9/:._-]{2,127}`; the error
/// says which part of the rule is broken.
pub fn validate_denom(denom: &str) -> Result<(), &'static str> {
    if !denom.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Err("must start with a letter")
    } else if !denom.chars().all(is_denom_char) {
        Err("may only contain letters, digits and / : . _ -")
    } else if !(3..=128).contains(&denom.len()) {
        Err("must be 3 to 128 characters long")
    } else {
        Ok(())
    }
}

fn is_denom_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '.' | '_' | '-')
}

/// A balance value: the ASCII integer v0.50 writes, or the `Coin` protobuf that older
/// versions wrote and that stays in the store until the balance changes.
fn amount(site: Site<'_>, value: &[u8]) -> Result<Int, DecodeError> {
    // Text first: printable text can also parse as a protobuf of unknown fields (" 5" is a
    // varint field 4), and a meaningful `Coin` never is printable text, because its field
    // tags (0x0a, 0x12) are control characters. Text that is not digits is a bad number.
    if is_printable_text(value) {
        return parse_amount(site, value);
    }
    match Coin::decode(value) {
        Ok(coin) => parse_amount(site, coin.amount.as_bytes()),
        Err(reason) => Err(site.protobuf("cosmos.base.v1beta1.Coin", reason)),
    }
}

fn is_printable_text(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|text| !text.chars().any(char::is_control))
}

fn parse_amount(site: Site<'_>, text: &[u8]) -> Result<Int, DecodeError> {
    Int::from_ascii_digits(text).map_err(|reason| site.bad_number("amount", text, reason))
}

#[cfg(test)]
mod tests;
