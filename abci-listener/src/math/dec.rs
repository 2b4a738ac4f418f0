//! [`Dec`]: Cosmos `LegacyDec`, a fixed-point number with 18 decimal places.

use std::fmt;

use num_bigint::BigUint;
use num_traits::Zero;

use super::{Int, ParseNumberError, parse_digits, precision};

/// Fractional digits of a `LegacyDec`, as a `usize` for string work.
const PLACES: usize = Dec::DECIMAL_PLACES as usize;

/// A non-negative Cosmos `LegacyDec` (delegation shares, validator delegator shares).
///
/// Held as the integer value x 10^18, which is exactly what the store and gRPC carry:
/// `"1000000000000000000000000"` on the wire is 1,000,000 shares. Keeping that form means
/// arithmetic matches the chain to the last unit and re-encoding is lossless.
///
/// There is deliberately no `FromStr`: the wire integer and the decimal string are both
/// plain strings, so callers say which one they have with [`Dec::from_wire`] or
/// [`Dec::from_decimal_str`].
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dec(BigUint);

impl Dec {
    /// Digits after the decimal point.
    pub const DECIMAL_PLACES: u32 = 18;

    /// Zero.
    pub fn zero() -> Self {
        Self(BigUint::zero())
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Wraps a raw value (the number x 10^18).
    pub fn from_raw(raw: BigUint) -> Self {
        Self(raw)
    }

    /// The raw value (the number x 10^18).
    pub fn raw(&self) -> &BigUint {
        &self.0
    }

    /// Gives back the raw value (the number x 10^18).
    pub fn into_raw(self) -> BigUint {
        self.0
    }

    /// Parses the wire form: the ASCII decimal integer of the value x 10^18.
    pub fn from_wire(s: &str) -> Result<Self, ParseNumberError> {
        parse_digits(s.as_bytes(), 0).map(Self)
    }

    /// The wire form: the ASCII decimal integer of the value x 10^18.
    pub fn to_wire(&self) -> String {
        self.0.to_string()
    }

    /// Parses a decimal string such as `"1.5"` or `"1000000"`, the form `LegacyDec.String()`
    /// prints.
    ///
    /// Up to 18 fractional digits; more is an error rather than a silent rounding. Both
    /// sides of a `.` must have digits.
    pub fn from_decimal_str(s: &str) -> Result<Self, ParseNumberError> {
        let bytes = s.as_bytes();
        let (whole, fraction) = match bytes.iter().position(|&b| b == b'.') {
            None => (bytes, &[][..]),
            Some(0) => return Err(ParseNumberError::EmptyIntegerPart),
            Some(dot) if dot + 1 == bytes.len() => {
                return Err(ParseNumberError::EmptyFractionalPart);
            }
            Some(dot) => (&bytes[..dot], &bytes[dot + 1..]),
        };
        if fraction.len() > PLACES {
            return Err(ParseNumberError::TooManyFractionalDigits {
                digits: fraction.len(),
            });
        }
        let mut raw = parse_digits(whole, 0)? * precision();
        if !fraction.is_empty() {
            let digits = parse_digits(fraction, whole.len() + 1)?;
            let missing_places = (PLACES - fraction.len()) as u32;
            raw += digits * BigUint::from(10u32).pow(missing_places);
        }
        Ok(Self(raw))
    }

    /// The same value as an integer: `int x 10^18` raw.
    pub fn from_int(int: &Int) -> Self {
        Self(int.as_biguint() * precision())
    }

    /// The integer part, dropping the fraction (Cosmos `TruncateInt`).
    pub fn truncate_int(&self) -> Int {
        Int::from(&self.0 / precision())
    }
}

impl fmt::Display for Dec {
    /// Renders like Cosmos `LegacyDec.String()`: always 18 fractional digits,
    /// e.g. `"1000000.000000000000000000"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.to_string();
        // Left-pad so there is at least one integer digit before the 18 fractional ones.
        let padded = format!("{digits:0>width$}", width = PLACES + 1);
        let (whole, fraction) = padded.split_at(padded.len() - PLACES);
        write!(f, "{whole}.{fraction}")
    }
}

impl fmt::Debug for Dec {
    // The decimal form: the raw integer is 18 digits too long to read at a glance.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dec({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Dec {
        Dec::from_decimal_str(s).unwrap()
    }

    #[test]
    fn wire_form_is_value_times_10_pow_18() {
        let shares = Dec::from_wire("1000000000000000000000000").unwrap();
        assert_eq!(shares.to_string(), "1000000.000000000000000000");
        assert_eq!(shares.to_wire(), "1000000000000000000000000");
        assert_eq!(shares, Dec::from_int(&Int::from(1_000_000u64)));
        assert_eq!(shares.truncate_int(), Int::from(1_000_000u64));
    }

    #[test]
    fn wire_form_rejects_non_digits() {
        assert_eq!(Dec::from_wire(""), Err(ParseNumberError::Empty));
        assert_eq!(
            Dec::from_wire("1.5"),
            Err(ParseNumberError::NotADigit {
                position: 1,
                byte: b'.'
            })
        );
        assert!(Dec::from_wire("-1").is_err());
    }

    #[test]
    fn displays_like_legacy_dec_string() {
        assert_eq!(Dec::zero().to_string(), "0.000000000000000000");
        assert_eq!(dec("1").to_string(), "1.000000000000000000");
        assert_eq!(dec("0.5").to_string(), "0.500000000000000000");
        assert_eq!(
            Dec::from_raw(BigUint::from(1u8)).to_string(),
            "0.000000000000000001"
        );
        assert_eq!(format!("{:?}", dec("2.25")), "Dec(2.250000000000000000)");
    }

    #[test]
    fn display_and_parse_round_trip() {
        for input in [
            "0",
            "1",
            "0.5",
            "1000000",
            "0.000000000000000001",
            "123.456789012345678901",
            "340282366920938463463374607431768211456.999999999999999999",
        ] {
            let value = dec(input);
            assert_eq!(dec(&value.to_string()), value, "{input}");
            assert_eq!(Dec::from_wire(&value.to_wire()), Ok(value.clone()));
        }
        assert_eq!(dec("0.5").raw(), &BigUint::from(500_000_000_000_000_000u64));
        assert_eq!(
            dec("1.5"),
            Dec::from_raw(BigUint::from(15u8) * precision() / 10u8)
        );
    }

    #[test]
    fn rejects_nineteen_fractional_digits() {
        assert_eq!(
            Dec::from_decimal_str("0.0000000000000000001"),
            Err(ParseNumberError::TooManyFractionalDigits { digits: 19 })
        );
    }

    #[test]
    fn rejects_malformed_decimals() {
        assert_eq!(Dec::from_decimal_str(""), Err(ParseNumberError::Empty));
        assert_eq!(
            Dec::from_decimal_str(".5"),
            Err(ParseNumberError::EmptyIntegerPart)
        );
        assert_eq!(
            Dec::from_decimal_str("5."),
            Err(ParseNumberError::EmptyFractionalPart)
        );
        assert_eq!(
            Dec::from_decimal_str("1.2.3"),
            Err(ParseNumberError::NotADigit {
                position: 3,
                byte: b'.'
            })
        );
        assert_eq!(
            Dec::from_decimal_str("-1.5"),
            Err(ParseNumberError::NotADigit {
                position: 0,
                byte: b'-'
            })
        );
        assert!(Dec::from_decimal_str("1.5e3").is_err());
    }
}
