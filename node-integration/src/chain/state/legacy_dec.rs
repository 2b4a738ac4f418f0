//! The Cosmos SDK's `LegacyDec` (cosmossdk.io/math): an 18-decimal fixed-point number kept
//! as the integer `value x 10^18`, with the SDK's rounding in each operation.
//!
//! The node's x/staking (share issuance, undelegation, slashing) and its standard queries
//! (`DelegationResponse.balance`) compute with this type. It is written from the SDK's
//! definitions, separately from the stream module's decoder, so that the end-to-end tests
//! that compare streamed balances with the standard queries compare two implementations
//! rather than one function with itself.
//!
//! What each operation does to the raw integers (`a`, `b` raw values, `i` an `Int`):
//! - `MulInt`: `a x i`, exact.
//! - `Mul`: `a x b`, then 18 digits chopped with banker's rounding (`chopPrecisionAndRound`).
//! - `Quo`: `a x 10^36`, integer division by `b` (truncating), then 18 digits chopped with
//!   banker's rounding: the quotient is rounded, half to even, to 18 decimal places.
//! - `QuoInt`: `a / i`, truncating.
//! - `TruncateInt`: `a / 10^18`, truncating.
//!
//! A result outside `LegacyDec`'s range (|raw| <= 2^256 x 10^18 - 1) panics in the SDK
//! ("Int overflow"), as does a division by zero; here both are errors.

use num_bigint::BigUint;
use num_traits::Zero;

/// Decimal places of a `LegacyDec`.
const PRECISION: u32 = 18;

/// Why a `LegacyDec` operation has no result (the SDK panics in both cases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecError {
    /// The result is larger than 2^256 x 10^18 - 1 (raw), the SDK's "Int overflow".
    #[error("decimal out of range (Int overflow)")]
    Overflow,
    /// Division by a zero `LegacyDec` or `Int`.
    #[error("division by zero")]
    DivisionByZero,
}

/// A non-negative `LegacyDec`: the raw integer `value x 10^18`, exactly as the store holds it
/// (`"1000000000000000000"` is 1.0).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LegacyDec {
    raw: BigUint,
}

/// 10^18: one whole unit in raw form.
fn unit() -> BigUint {
    BigUint::from(10u32).pow(PRECISION)
}

/// The largest raw value the SDK accepts: 2^256 x 10^18 - 1.
fn max_raw() -> BigUint {
    (BigUint::from(1u32) << 256u32) * unit() - 1u32
}

/// `chopPrecisionAndRound`: drops 18 decimal digits, rounding half to even.
fn chop_and_round(value: &BigUint) -> BigUint {
    let unit = unit();
    let half = &unit / 2u32; // 5 x 10^17
    let (quotient, remainder) = (value / &unit, value % &unit);
    let round_up = match remainder.cmp(&half) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Greater => true,
        // A tie goes to the even neighbour.
        std::cmp::Ordering::Equal => quotient.bit(0),
    };
    if round_up { quotient + 1u32 } else { quotient }
}

impl LegacyDec {
    /// The `LegacyDec` with raw value `raw` (value x 10^18).
    pub fn from_raw(raw: BigUint) -> LegacyDec {
        LegacyDec { raw }
    }

    /// `LegacyNewDecFromInt`: the whole number `int`.
    pub fn from_int(int: &BigUint) -> LegacyDec {
        LegacyDec { raw: int * unit() }
    }

    /// Parses the store's form: the ASCII decimal integer of the raw value.
    pub fn parse_raw(text: &str) -> Option<LegacyDec> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        BigUint::parse_bytes(text.as_bytes(), 10).map(LegacyDec::from_raw)
    }

    /// The raw value (value x 10^18).
    pub fn raw(&self) -> &BigUint {
        &self.raw
    }

    /// Whether this is 0.
    pub fn is_zero(&self) -> bool {
        self.raw.is_zero()
    }

    fn checked(raw: BigUint) -> Result<LegacyDec, DecError> {
        if raw > max_raw() {
            return Err(DecError::Overflow);
        }
        Ok(LegacyDec { raw })
    }

    /// `MulInt`: `self x int`, exact.
    pub fn mul_int(&self, int: &BigUint) -> Result<LegacyDec, DecError> {
        LegacyDec::checked(&self.raw * int)
    }

    /// `Mul`: `self x other`, rounded half to even to 18 decimal places.
    pub fn mul(&self, other: &LegacyDec) -> Result<LegacyDec, DecError> {
        LegacyDec::checked(chop_and_round(&(&self.raw * &other.raw)))
    }

    /// `Quo`: `self / other`, the truncated 36-place quotient rounded half to even to 18
    /// decimal places.
    pub fn quo(&self, other: &LegacyDec) -> Result<LegacyDec, DecError> {
        if other.raw.is_zero() {
            return Err(DecError::DivisionByZero);
        }
        let unit = unit();
        let widened = &self.raw * &unit * &unit;
        LegacyDec::checked(chop_and_round(&(widened / &other.raw)))
    }

    /// `QuoInt`: `self / int`, truncated to 18 decimal places.
    pub fn quo_int(&self, int: &BigUint) -> Result<LegacyDec, DecError> {
        if int.is_zero() {
            return Err(DecError::DivisionByZero);
        }
        Ok(LegacyDec {
            raw: &self.raw / int,
        })
    }

    /// `TruncateInt`: the whole part (never out of `Int`'s 256 bits: the range check on every
    /// result keeps raw values below 2^256 x 10^18).
    pub fn truncate_int(&self) -> BigUint {
        &self.raw / unit()
    }
}

impl std::fmt::Display for LegacyDec {
    /// The store's form: the raw integer.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

#[cfg(test)]
mod tests;
