//! x/staking's share/token arithmetic on `LegacyDec` wire values (ASCII integer of
//! value x 10^18), reproduced exactly so tests can predict every digit a node reports.

use num_bigint::BigUint;

/// `LegacyDec` precision: a Dec travels as the ASCII integer of value x 10^18.
pub const DEC_SCALE: u128 = 1_000_000_000_000_000_000;

/// The raw value (x 10^18) of a `LegacyDec` holding a whole number.
pub fn dec_raw(whole: u128) -> u128 {
    whole * DEC_SCALE
}

/// Shares x/staking issues for `amount` tokens delegated to a validator with `tokens` and
/// raw `delegator_shares`: `SharesFromTokens` = `delegator_shares.MulInt(amount).QuoInt(tokens)`,
/// an integer division of the raw value, i.e. truncated.
pub fn shares_for_tokens(amount: u128, tokens: u128, delegator_shares_raw: u128) -> u128 {
    let raw = big(delegator_shares_raw) * big(amount) / big(tokens);
    u128::try_from(raw).expect("shares fit in u128")
}

/// `DelegationResponse.balance` of a delegation with raw `shares` in a validator with
/// `tokens` and raw `delegator_shares`: `TokensFromShares(shares).TruncateInt()`, where
/// `TokensFromShares` = `shares.MulInt(tokens).Quo(delegator_shares)` and `Quo` rounds
/// (half to even) to 18 decimals before the truncation.
pub fn delegation_balance(shares_raw: u128, tokens: u128, delegator_shares_raw: u128) -> u128 {
    let product = big(shares_raw) * big(tokens);
    // LegacyDec.Quo: multiply by precision twice, divide, then chop one precision and round.
    let quotient = product * big(DEC_SCALE) * big(DEC_SCALE) / big(delegator_shares_raw);
    let raw = chop_precision_and_round(quotient);
    u128::try_from(raw / big(DEC_SCALE)).expect("balance fits in u128")
}

/// The same value without the 18-decimal rounding step: `floor(shares x tokens / delegator_shares)`.
pub fn truncated_value(shares_raw: u128, tokens: u128, delegator_shares_raw: u128) -> u128 {
    let raw = big(shares_raw) * big(tokens) / big(delegator_shares_raw);
    u128::try_from(raw).expect("value fits in u128")
}

/// Tokens burned by slashing `tokens` by `numerator / denominator`:
/// `tokens.ToLegacyDec().Mul(fraction).TruncateInt()` (exact for decimal fractions).
pub fn slashed(tokens: u128, numerator: u128, denominator: u128) -> u128 {
    tokens * numerator / denominator
}

fn chop_precision_and_round(value: BigUint) -> BigUint {
    let scale = big(DEC_SCALE);
    let half = big(DEC_SCALE / 2);
    let quotient = &value / &scale;
    let remainder = &value % &scale;
    if remainder < half || (remainder == half && !quotient.bit(0)) {
        quotient
    } else {
        quotient + 1u32
    }
}

fn big(value: u128) -> BigUint {
    BigUint::from(value)
}
