//! The staking exchange rate: what a delegation's shares are worth in tokens.

use num_bigint::BigUint;

use super::{Dec, Int, precision};

/// The tokens `shares` are worth at a validator holding `tokens` for `delegator_shares`:
/// the `balance` of a `DelegationResponse`.
///
/// This is `x/staking`'s `Validator.TokensFromShares(shares).TruncateInt()`, reproduced to
/// the last unit: `LegacyDec.Quo` first rounds the quotient to 18 decimal places (half to
/// even), then `TruncateInt` drops the fraction. It therefore equals
/// `floor(shares_raw x tokens / delegator_shares_raw)` except when the exact quotient lies
/// within half a 10^-18 below an integer, where the chain rounds up to that integer and so
/// do we. Returns zero when `delegator_shares` is zero, where the chain's division would
/// panic.
pub fn tokens_from_shares(shares: &Dec, tokens: &Int, delegator_shares: &Dec) -> Int {
    if delegator_shares.is_zero() {
        return Int::zero();
    }
    let scale = precision();
    // shares.MulInt(tokens) has raw value shares_raw x tokens; Quo scales it by 10^36 before
    // the integer division, leaving 18 extra digits to round away.
    let product = shares.raw() * tokens.as_biguint() * &scale * &scale;
    let quotient_raw = round_half_even(product / delegator_shares.raw(), &scale);
    Int::from(quotient_raw / scale)
}

/// `value / scale`, rounded half to even, like Cosmos `chopPrecisionAndRound`.
fn round_half_even(value: BigUint, scale: &BigUint) -> BigUint {
    let quotient = &value / scale;
    let remainder = value % scale;
    let twice_remainder = remainder * 2u8;
    let round_up = match twice_remainder.cmp(scale) {
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => quotient.bit(0),
    };
    if round_up { quotient + 1u8 } else { quotient }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Dec {
        Dec::from_decimal_str(s).unwrap()
    }

    fn int(value: u64) -> Int {
        Int::from(value)
    }

    #[test]
    fn unslashed_validator_pays_one_token_per_share() {
        assert_eq!(
            tokens_from_shares(&dec("1000000"), &int(1_000_000), &dec("1000000")),
            int(1_000_000)
        );
    }

    #[test]
    fn slashing_lowers_the_balance_but_not_the_shares() {
        // A 10% slash: tokens drop from 1,000,000 to 900,000, shares stay.
        assert_eq!(
            tokens_from_shares(&dec("1000000"), &int(900_000), &dec("1000000")),
            int(900_000)
        );
        assert_eq!(
            tokens_from_shares(&dec("250000"), &int(900_000), &dec("1000000")),
            int(225_000)
        );
    }

    #[test]
    fn thirds_truncate() {
        // 1/3 of 100 tokens = 33.33...
        assert_eq!(tokens_from_shares(&dec("1"), &int(100), &dec("3")), int(33));
        // 2/3 of 100 tokens = 66.66...: truncated, not rounded.
        assert_eq!(tokens_from_shares(&dec("2"), &int(100), &dec("3")), int(66));
        // 1/3 of 1 token is worth nothing.
        assert_eq!(tokens_from_shares(&dec("1"), &int(1), &dec("3")), int(0));
        // 0.333333333333333333 shares of a 3 token / 1 share validator: 0.999999999999999999.
        assert_eq!(
            tokens_from_shares(&dec("0.333333333333333333"), &int(3), &dec("1")),
            int(0)
        );
    }

    #[test]
    fn rounds_at_18_places_before_truncating_like_the_chain() {
        // (3 - 10^-18) / 3 shares of 1 token = 0.999999999999999999666...; LegacyDec.Quo rounds
        // that to 1.000000000000000000, so the chain reports 1 token where a plain floor
        // would give 0.
        let shares = dec("2.999999999999999999");
        assert_eq!(tokens_from_shares(&shares, &int(1), &dec("3")), int(1));
        // An exact 0.999999999999999999 needs no rounding, so it truncates to 0.
        let shares = dec("0.999999999999999999");
        assert_eq!(tokens_from_shares(&shares, &int(1), &dec("1")), int(0));
    }

    #[test]
    fn ties_round_to_even() {
        assert_eq!(
            round_half_even(BigUint::from(25u8), &BigUint::from(10u8)),
            BigUint::from(2u8)
        );
        assert_eq!(
            round_half_even(BigUint::from(35u8), &BigUint::from(10u8)),
            BigUint::from(4u8)
        );
        assert_eq!(
            round_half_even(BigUint::from(36u8), &BigUint::from(10u8)),
            BigUint::from(4u8)
        );
        assert_eq!(
            round_half_even(BigUint::from(34u8), &BigUint::from(10u8)),
            BigUint::from(3u8)
        );
    }

    #[test]
    fn no_delegator_shares_means_no_tokens() {
        assert_eq!(
            tokens_from_shares(&dec("5"), &int(100), &Dec::zero()),
            int(0)
        );
        assert_eq!(
            tokens_from_shares(&Dec::zero(), &int(100), &dec("5")),
            int(0)
        );
    }
}
