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

/// A parsed, positive coin amount.
pub fn parse_coin(coin: &Coin) -> TxResult<(String, BigUint)> {
    validate_denom(&coin.denom).map_err(|e| TxError::sdk(10, e))?;
    match parse_uint(&coin.amount) {
        Some(a) if !a.is_zero() => Ok((coin.denom.clone(), a)),
        _ => Err(TxError::sdk(10, format!("{}{}", coin.amount, coin.denom))),
    }
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
}
