//! Non-negative Cosmos numbers: `math.Int`, `LegacyDec` and the staking share exchange rate.
//!
//! Everything we stream is non-negative (balances, tokens, shares), so both types sit on
//! [`num_bigint::BigUint`]: a sign the chain never writes cannot be represented.

mod dec;
mod int;
mod shares;

pub use dec::Dec;
pub use int::Int;
pub use shares::tokens_from_shares;

use num_bigint::BigUint;

/// Why a string is not a non-negative Cosmos number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseNumberError {
    /// Nothing to parse.
    #[error("empty number")]
    Empty,
    /// A byte other than `0`-`9` (signs, spaces and `_` separators included).
    #[error("byte 0x{byte:02x} at position {position} is not a decimal digit")]
    NotADigit {
        /// Zero-based offset of the byte in the input.
        position: usize,
        /// The offending byte.
        byte: u8,
    },
    /// A decimal string starting with `.`.
    #[error("no digits before the decimal point")]
    EmptyIntegerPart,
    /// A decimal string ending with `.`.
    #[error("no digits after the decimal point")]
    EmptyFractionalPart,
    /// More fractional digits than `LegacyDec` carries, which would silently lose precision.
    #[error("{digits} fractional digits, at most 18 are allowed")]
    TooManyFractionalDigits {
        /// How many fractional digits the input had.
        digits: usize,
    },
}

/// Parses ASCII decimal digits into a [`BigUint`].
///
/// `offset` is added to reported positions so a fragment of a larger string (the fraction
/// of a decimal) points at the right byte. We check the bytes ourselves because
/// `BigUint::from_str` also accepts `+` and `_`, which the chain never writes.
fn parse_digits(digits: &[u8], offset: usize) -> Result<BigUint, ParseNumberError> {
    if digits.is_empty() {
        return Err(ParseNumberError::Empty);
    }
    if let Some(position) = digits.iter().position(|b| !b.is_ascii_digit()) {
        return Err(ParseNumberError::NotADigit {
            position: offset + position,
            byte: digits[position],
        });
    }
    // Cannot fail on a non-empty run of ASCII digits; the error keeps this panic-free anyway.
    BigUint::parse_bytes(digits, 10).ok_or(ParseNumberError::Empty)
}

/// 10^18: the fixed-point scale of `LegacyDec`.
fn precision() -> BigUint {
    BigUint::from(10u64.pow(Dec::DECIMAL_PLACES))
}
