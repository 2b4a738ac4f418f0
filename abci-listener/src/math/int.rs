//! [`Int`]: Cosmos `math.Int`, restricted to the non-negative values we stream.

use std::fmt;
use std::ops::Add;
use std::str::FromStr;

use num_bigint::BigUint;
use num_traits::{CheckedSub, ToPrimitive, Zero};

use super::{ParseNumberError, parse_digits};

/// A non-negative Cosmos `math.Int`: balances, validator tokens, unbonding amounts.
///
/// Parsed from and displayed as plain ASCII decimal (`"1000000"`), the form the store and
/// gRPC carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int(BigUint);

impl Int {
    /// Zero, the balance of a deleted key.
    pub fn zero() -> Self {
        Self(BigUint::zero())
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// The underlying big integer.
    pub fn as_biguint(&self) -> &BigUint {
        &self.0
    }

    /// Gives back the underlying big integer.
    pub fn into_biguint(self) -> BigUint {
        self.0
    }

    /// `self - other`, or `None` when the result would be negative.
    pub fn checked_sub(&self, other: &Int) -> Option<Int> {
        self.0.checked_sub(&other.0).map(Int)
    }

    /// Parses raw bytes with the rules of [`FromStr`], for values that may not be UTF-8.
    pub(crate) fn from_ascii_digits(bytes: &[u8]) -> Result<Self, ParseNumberError> {
        parse_digits(bytes, 0).map(Self)
    }

    /// The value as a `u128`, if it fits.
    pub fn to_u128(&self) -> Option<u128> {
        self.0.to_u128()
    }
}

impl From<BigUint> for Int {
    fn from(value: BigUint) -> Self {
        Self(value)
    }
}

impl From<u64> for Int {
    fn from(value: u64) -> Self {
        Self(BigUint::from(value))
    }
}

impl From<u128> for Int {
    fn from(value: u128) -> Self {
        Self(BigUint::from(value))
    }
}

impl FromStr for Int {
    type Err = ParseNumberError;

    /// Accepts ASCII decimal digits only: no sign, no spaces, no separators, not empty.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_digits(s.as_bytes(), 0).map(Self)
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Add for Int {
    type Output = Int;

    fn add(self, other: Int) -> Int {
        Int(self.0 + other.0)
    }
}

impl Add<&Int> for &Int {
    type Output = Int;

    fn add(self, other: &Int) -> Int {
        Int(&self.0 + &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_decimal() {
        let int: Int = "1000000".parse().unwrap();
        assert_eq!(int, Int::from(1_000_000u64));
        assert_eq!(int.to_string(), "1000000");
        assert_eq!("0".parse::<Int>().unwrap(), Int::zero());
        assert_eq!("007".parse::<Int>().unwrap().to_string(), "7");
    }

    #[test]
    fn parses_beyond_u128() {
        let digits = "340282366920938463463374607431768211456"; // 2^128
        let int: Int = digits.parse().unwrap();
        assert_eq!(int.to_string(), digits);
        assert_eq!(int.to_u128(), None);
        assert_eq!(Int::from(u128::MAX).to_u128(), Some(u128::MAX));
    }

    #[test]
    fn rejects_everything_but_digits() {
        assert_eq!("".parse::<Int>(), Err(ParseNumberError::Empty));
        assert_eq!(
            "12a".parse::<Int>(),
            Err(ParseNumberError::NotADigit {
                position: 2,
                byte: b'a'
            })
        );
        assert_eq!(
            "-5".parse::<Int>(),
            Err(ParseNumberError::NotADigit {
                position: 0,
                byte: b'-'
            })
        );
        for input in ["+5", " 5", "5 ", "1_000", "1.0", "1e6", "٣"] {
            assert!(input.parse::<Int>().is_err(), "{input:?} must be rejected");
        }
    }

    #[test]
    fn adds_and_subtracts_without_going_negative() {
        let a = Int::from(500u64);
        let b = Int::from(200u64);
        assert_eq!(&a + &b, Int::from(700u64));
        assert_eq!(a.clone() + b.clone(), Int::from(700u64));
        assert_eq!(a.checked_sub(&b), Some(Int::from(300u64)));
        assert_eq!(b.checked_sub(&a), None);
        assert!(a.checked_sub(&a).is_some_and(|zero| zero.is_zero()));
    }

    #[test]
    fn orders_numerically() {
        assert!(Int::from(9u64) < Int::from(10u64));
        assert_eq!(Int::default(), Int::zero());
    }
}
