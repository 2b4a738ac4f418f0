//! Vectors for `LegacyDec`, each derived by hand from the SDK's definitions (raw integers,
//! `chopPrecisionAndRound` with 5 x 10^17 as the half), not from another implementation.

use super::*;

fn raw(text: &str) -> LegacyDec {
    LegacyDec::parse_raw(text).expect("raw decimal")
}

fn int(text: &str) -> BigUint {
    BigUint::parse_bytes(text.as_bytes(), 10).expect("integer")
}

/// x/staking `TokensFromShares(shares).TruncateInt()` on raw wire values.
fn balance(shares: &str, tokens: &str, delegator_shares: &str) -> Result<BigUint, DecError> {
    Ok(raw(shares)
        .mul_int(&int(tokens))?
        .quo(&raw(delegator_shares))?
        .truncate_int())
}

#[test]
fn wire_form_is_the_raw_integer() {
    // "1000000000000000000000000" = 1,000,000 shares (DESIGN.md 8).
    let d = raw("1000000000000000000000000");
    assert_eq!(d.truncate_int(), int("1000000"));
    assert_eq!(d.to_string(), "1000000000000000000000000");
    assert_eq!(LegacyDec::from_int(&int("1000000")), d);
    assert_eq!(LegacyDec::parse_raw(""), None);
    assert_eq!(LegacyDec::parse_raw("1.5"), None);
    assert_eq!(LegacyDec::parse_raw("-1"), None);
}

#[test]
fn an_unslashed_validator_pays_one_token_per_share() {
    // 10^24 x 10^6 = 10^30; x 10^36 / 10^24 = 10^42; chop -> 10^24 (1,000,000.0).
    assert_eq!(
        balance(
            "1000000000000000000000000",
            "1000000",
            "1000000000000000000000000"
        ),
        Ok(int("1000000"))
    );
}

#[test]
fn quo_rounds_to_18_places_before_truncate_int() {
    // 2.999999999999999999 shares of 3.0, 1 token: 10^36 x (3 x 10^18 - 1) / (3 x 10^18)
    // = 999999999999999999666666666666666666 (truncated); the chopped 18 digits
    // 666666666666666666 exceed 5 x 10^17, so the quotient rounds up to 1.0 -> 1 token,
    // where floor(shares x tokens / delegator_shares) is 0.
    assert_eq!(
        balance("2999999999999999999", "1", "3000000000000000000"),
        Ok(int("1"))
    );
    // 0.999999999999999999 of 1.0: exact, nothing to round -> 0 tokens.
    assert_eq!(
        balance("999999999999999999", "1", "1000000000000000000"),
        Ok(int("0"))
    );
    // 1/3 of 100 tokens: 33.333333333333333333 -> 33.
    assert_eq!(
        balance("1000000000000000000", "100", "3000000000000000000"),
        Ok(int("33"))
    );
    // 2/3 of 100: 66.666666666666666667 (rounded at 18 places) -> still 66.
    assert_eq!(
        raw("2000000000000000000")
            .mul_int(&int("100"))
            .and_then(|p| p.quo(&raw("3000000000000000000"))),
        Ok(raw("66666666666666666667"))
    );
}

#[test]
fn halves_round_to_even() {
    // 1.999999999999999999 shares of 2.0, 1 token: x 10^36 / (2 x 10^18) =
    // 999999999999999999500000000000000000; the chopped digits are exactly 5 x 10^17 and
    // the kept ...999 is odd, so it rounds up to 1.0 -> 1 token (half-down would give 0).
    assert_eq!(
        balance("1999999999999999999", "1", "2000000000000000000"),
        Ok(int("1"))
    );
    // 1.999999999999999997 of 2.0: 0.9999999999999999985 -> the tie goes to the even
    // ...998, so 0.999999999999999998 -> 0 tokens (half-up would give ...999, also 0).
    assert_eq!(
        raw("1999999999999999997").quo(&raw("2000000000000000000")),
        Ok(raw("999999999999999998"))
    );
    // 10^-18 / 2 = 0.5 x 10^-18 -> 0 (even); 3 x 10^-18 / 2 = 1.5 x 10^-18 -> 2 (even).
    let two = raw("2000000000000000000");
    assert_eq!(raw("1").quo(&two), Ok(raw("0")));
    assert_eq!(raw("3").quo(&two), Ok(raw("2")));
    assert_eq!(raw("5").quo(&two), Ok(raw("2")));
    assert_eq!(raw("7").quo(&two), Ok(raw("4")));
    // Mul chops the same way: 0.5 x 10^-18 -> 0, 1.5 x 10^-18 -> 2, 2.5 x 10^-18 -> 2.
    let tiny = raw("1");
    assert_eq!(raw("500000000000000000").mul(&tiny), Ok(raw("0")));
    assert_eq!(raw("1500000000000000000").mul(&tiny), Ok(raw("2")));
    assert_eq!(raw("2500000000000000000").mul(&tiny), Ok(raw("2")));
    // Just above a half rounds up whatever the parity.
    assert_eq!(raw("500000000000000001").mul(&tiny), Ok(raw("1")));
}

#[test]
fn a_delegation_after_a_slash_is_worth_what_x_staking_reports() {
    // A validator with 10,000,000,000 tokens for 10^10 shares is slashed by 10%:
    // Mul(10^10 x 10^18, 0.1 = 10^17) = 10^45, chopped -> 10^27 raw = 10^9 burned.
    let tokens = int("10000000000");
    let fraction = raw("100000000000000000");
    let burned = LegacyDec::from_int(&tokens)
        .mul(&fraction)
        .expect("in range")
        .truncate_int();
    assert_eq!(burned, int("1000000000"));
    let tokens = int("9000000000");
    // Delegating 5,000,000 then issues shares = 10^28 x 5 x 10^6 / (9 x 10^9), QuoInt
    // truncates: 5555555555555555555555555 raw.
    let shares = raw("10000000000000000000000000000")
        .mul_int(&int("5000000"))
        .and_then(|d| d.quo_int(&tokens))
        .expect("in range");
    assert_eq!(shares, raw("5555555555555555555555555"));
    // The validator now has 9,005,000,000 tokens for 10005555555555555555555555555 shares.
    // The delegation's value: 5555555555555555555555555 x 9005000000 x 10^36 /
    // 10005555555555555555555555555 = 4999999999999999999999999500277623542476401 (truncated);
    // chopping 18 digits leaves ...999999 with 500277623542476401 > 5 x 10^17, so it rounds up
    // to 5000000.000000000000000000: balance 5,000,000 (a plain floor says 4,999,999).
    assert_eq!(
        balance(
            "5555555555555555555555555",
            "9005000000",
            "10005555555555555555555555555"
        ),
        Ok(int("5000000"))
    );
    // The self-delegation (10^28 raw shares): exactly 9,000,000,000.
    assert_eq!(
        balance(
            "10000000000000000000000000000",
            "9005000000",
            "10005555555555555555555555555"
        ),
        Ok(int("9000000000"))
    );
}

#[test]
fn very_large_values_stay_exact_up_to_the_sdk_range() {
    // 2^200 tokens, 2^40 shares out of 2^40: the whole 2^200.
    let two_200 = BigUint::from(1u32) << 200u32;
    let shares = LegacyDec::from_int(&(BigUint::from(1u32) << 40u32));
    let value = shares
        .mul_int(&two_200)
        .and_then(|p| p.quo(&shares))
        .expect("in range");
    assert_eq!(value.truncate_int(), two_200);
    // The largest raw value, 2^256 x 10^18 - 1, is accepted; its whole part is 2^256 - 1.
    let max = raw(
        "115792089237316195423570985008687907853269984665640564039457584007913129639935\
         999999999999999999",
    );
    let one = LegacyDec::from_int(&int("1"));
    assert_eq!(max.mul(&one).as_ref(), Ok(&max));
    assert_eq!(max.truncate_int(), (BigUint::from(1u32) << 256u32) - 1u32);
    // One more unit is out of range, as the SDK's "Int overflow" panic.
    assert_eq!(max.mul_int(&int("2")), Err(DecError::Overflow));
    assert_eq!(max.quo(&raw("1")), Err(DecError::Overflow));
    assert_eq!(
        raw("1000000000000000000").mul_int(&((BigUint::from(1u32) << 256u32) * int("2"))),
        Err(DecError::Overflow)
    );
}

#[test]
fn zero_shares_and_zero_divisors() {
    assert_eq!(
        balance("0", "1000000", "1000000000000000000000000"),
        Ok(int("0"))
    );
    // No delegator shares: the SDK's division panics; we report it.
    assert_eq!(
        balance("1000000000000000000", "1000000", "0"),
        Err(DecError::DivisionByZero)
    );
    assert_eq!(raw("1").quo_int(&int("0")), Err(DecError::DivisionByZero));
}
