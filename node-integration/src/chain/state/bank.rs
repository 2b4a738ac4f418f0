//! x/bank: balances (ASCII integers keyed by address and denom), the denom index, supply,
//! and sends.

use super::{Ctx, TxError, TxResult, keys, parse_uint};
use crate::address::Addr;
use crate::store::{MultiStore, StoreKey};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use num_bigint::BigUint;
use num_traits::Zero;

/// Balance of `addr` in `denom` (zero when absent).
pub fn balance(state: &MultiStore, addr: &Addr, denom: &str) -> BigUint {
    state
        .get(StoreKey::Bank, &keys::balance(addr, denom))
        .and_then(|v| std::str::from_utf8(v).ok().and_then(parse_uint))
        .unwrap_or_default()
}

/// All non-zero balances of `addr`, sorted by denom.
pub fn all_balances(state: &MultiStore, addr: &Addr) -> Vec<Coin> {
    let prefix = keys::balances(addr);
    state
        .prefix(StoreKey::Bank, &prefix)
        .map(|(k, v)| Coin {
            denom: String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
            amount: String::from_utf8_lossy(v).into_owned(),
        })
        .collect()
}

/// Total supply of `denom`.
pub fn supply(state: &MultiStore, denom: &str) -> BigUint {
    state
        .get(StoreKey::Bank, &keys::supply(denom))
        .and_then(|v| std::str::from_utf8(v).ok().and_then(parse_uint))
        .unwrap_or_default()
}

/// Checks a denom against the SDK's rule `[a-zA-Z][a-zA-Z0-9/:._-]{2,127}`.
pub fn validate_denom(denom: &str) -> Result<(), String> {
    stream_abci_listener::validate_denom(denom)
        .map_err(|reason| format!("invalid denom {denom:?}: {reason}"))
}

/// Digits of the largest amount an SDK `math.Int` holds (2^256 - 1 has 78).
pub const MAX_AMOUNT_DIGITS: usize = 78;
/// Bits of an SDK `math.Int`.
pub const MAX_AMOUNT_BITS: u64 = 256;
/// Longest denom (the SDK's rule allows 128 characters).
const MAX_DENOM_CHARS: usize = 128;

/// A parsed, positive coin amount, bounded as the SDK bounds `math.Int` when it decodes a
/// tx: the length is checked before any arithmetic, so a hostile amount costs one pass over
/// at most [`MAX_AMOUNT_DIGITS`] digits. Out-of-range amounts are decoding errors (code 2,
/// as the SDK's TxDecoder reports them); malformed ones are invalid coins (code 10).
pub fn parse_coin(coin: &Coin) -> TxResult<(String, BigUint)> {
    if coin.denom.len() > MAX_DENOM_CHARS {
        return Err(TxError::sdk(
            10,
            format!(
                "invalid denom: {} bytes long, at most {MAX_DENOM_CHARS}",
                coin.denom.len()
            ),
        ));
    }
    validate_denom(&coin.denom).map_err(|e| TxError::sdk(10, e))?;
    let amount = coin.amount.as_str();
    if amount.len() > MAX_AMOUNT_DIGITS {
        return Err(TxError::sdk(
            2,
            format!(
                "integer out of range: the {} amount is {} digits long; an SDK Int has at most {MAX_AMOUNT_DIGITS} digits ({MAX_AMOUNT_BITS} bits)",
                coin.denom,
                amount.len()
            ),
        ));
    }
    let value = match parse_uint(amount) {
        Some(a) if !a.is_zero() => a,
        _ => return Err(TxError::sdk(10, format!("{amount}{}", coin.denom))),
    };
    if value.bits() > MAX_AMOUNT_BITS {
        return Err(TxError::sdk(
            2,
            format!(
                "integer out of range: {amount}{} needs {} bits; an SDK Int has at most {MAX_AMOUNT_BITS}",
                coin.denom,
                value.bits()
            ),
        ));
    }
    Ok((coin.denom.clone(), value))
}

impl Ctx {
    /// Sets a balance; zero deletes the key (and its index entry), as x/bank does.
    pub fn set_balance(&mut self, addr: &Addr, denom: &str, amount: &BigUint) {
        if amount.is_zero() {
            self.ws.delete(StoreKey::Bank, keys::balance(addr, denom));
            self.ws
                .delete(StoreKey::Bank, keys::denom_index(denom, addr));
        } else {
            self.ws.set(
                StoreKey::Bank,
                keys::balance(addr, denom),
                amount.to_string().into_bytes(),
            );
            self.ws
                .set(StoreKey::Bank, keys::denom_index(denom, addr), Vec::new());
        }
    }

    /// Moves `amount` of `denom` from one account to another; the recipient's account is
    /// created if needed.
    pub fn send(&mut self, from: &Addr, to: &Addr, denom: &str, amount: &BigUint) -> TxResult<()> {
        let have = balance(self.state(), from, denom);
        if &have < amount {
            return Err(TxError::sdk(
                5,
                format!("spendable balance {have}{denom} is smaller than {amount}{denom}"),
            ));
        }
        self.set_balance(from, denom, &(have - amount));
        let to_have = balance(self.state(), to, denom);
        self.set_balance(to, denom, &(to_have + amount));
        self.ensure_account(to);
        Ok(())
    }

    /// Moves coins between two module accounts.
    pub fn send_between_modules(
        &mut self,
        from: &str,
        to: &str,
        denom: &str,
        amount: &BigUint,
    ) -> TxResult<()> {
        if amount.is_zero() {
            return Ok(());
        }
        self.send(&Addr::module(from), &Addr::module(to), denom, amount)
    }

    /// Creates coins in an account (genesis only).
    pub fn mint(&mut self, to: &Addr, denom: &str, amount: &BigUint) {
        let have = balance(self.state(), to, denom);
        self.set_balance(to, denom, &(have + amount));
        let s = supply(self.state(), denom) + amount;
        self.ws.set(
            StoreKey::Bank,
            keys::supply(denom),
            s.to_string().into_bytes(),
        );
    }

    /// Destroys coins held by a module account (slashing).
    pub fn burn(&mut self, module: &str, denom: &str, amount: &BigUint) -> TxResult<()> {
        let addr = Addr::module(module);
        let have = balance(self.state(), &addr, denom);
        if &have < amount {
            return Err(TxError::sdk(
                5,
                format!("{module} holds {have}{denom}, cannot burn {amount}{denom}"),
            ));
        }
        self.set_balance(&addr, denom, &(have - amount));
        let s = supply(self.state(), denom) - amount;
        self.ws.set(
            StoreKey::Bank,
            keys::supply(denom),
            s.to_string().into_bytes(),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denoms_follow_sdk_rules() {
        for ok in [
            "ujuno",
            "uatom",
            "ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2",
            "factory/juno1x/abc",
        ] {
            assert!(validate_denom(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ab", "1abc", "u juno", "ujuno!", &"a".repeat(129)] {
            assert!(validate_denom(bad).is_err(), "{bad}");
        }
    }

    fn coin(amount: &str) -> Coin {
        Coin {
            denom: "ujuno".into(),
            amount: amount.into(),
        }
    }

    #[test]
    fn amounts_are_bounded_like_sdk_ints() {
        let max = (BigUint::from(1u8) << 256u32) - 1u8;
        assert_eq!(max.to_string().len(), MAX_AMOUNT_DIGITS);
        assert_eq!(parse_coin(&coin(&max.to_string())).unwrap().1, max);
        assert_eq!(parse_coin(&coin("1")).unwrap().1, BigUint::from(1u8));

        let two_256 = (&max + 1u8).to_string();
        let e = parse_coin(&coin(&two_256)).unwrap_err();
        assert_eq!(
            (e.code, e.log),
            (
                2,
                format!(
                    "integer out of range: {two_256}ujuno needs 257 bits; an SDK Int has at most 256: tx parse error"
                )
            )
        );
        let e = parse_coin(&coin(&format!("1{}", "0".repeat(78)))).unwrap_err();
        assert_eq!(
            (e.code, e.log.as_str()),
            (
                2,
                "integer out of range: the ujuno amount is 79 digits long; an SDK Int has at most 78 digits (256 bits): tx parse error"
            )
        );
        for bad in ["", "0", "-1", "1.5", "1e3", " 1"] {
            assert_eq!(parse_coin(&coin(bad)).unwrap_err().code, 10, "{bad:?}");
        }
    }

    #[test]
    fn a_huge_amount_is_refused_in_linear_time() {
        // D1: 4,150,000 digits took 18.6 s to parse before the bound (release build).
        let huge = coin(&"7".repeat(4_150_000));
        let start = std::time::Instant::now();
        let e = parse_coin(&huge).unwrap_err();
        assert!(e.log.contains("4150000 digits long"), "{}", e.log);
        assert!(start.elapsed() < std::time::Duration::from_millis(100));
        // A huge denom is refused without being echoed back.
        let e = parse_coin(&Coin {
            denom: "u".repeat(1_000_000),
            amount: "1".into(),
        })
        .unwrap_err();
        assert!(e.log.len() < 100, "{}", e.log);
    }
}
