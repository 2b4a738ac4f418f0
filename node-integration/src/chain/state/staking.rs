//! x/staking: validators, delegations, unbonding delegations and redelegations, with the
//! SDK's share/token arithmetic and pool movements.

use super::auth::{BONDED_POOL, NOT_BONDED_POOL};
use super::legacy_dec::{DecError, LegacyDec};
use super::{Ctx, TxError, TxResult, from_timestamp, keys, parse_uint, timestamp};
use crate::address::Addr;
use crate::store::{MultiStore, StoreKey};
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Delegation, Redelegation, RedelegationEntry, UnbondingDelegation, UnbondingDelegationEntry,
    Validator,
};
use num_bigint::BigUint;
use num_traits::Zero;
use prost::Message;
use std::time::SystemTime;

/// Where delegated tokens come from (decides which pool moves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The delegator's spendable balance (MsgDelegate).
    Account,
    /// An unbonding entry, held by the not-bonded pool (MsgCancelUnbondingDelegation).
    Unbonding,
    /// Another bonded validator (MsgBeginRedelegate): no coins move.
    Redelegation,
}

/// Reads a validator.
pub fn validator(state: &MultiStore, val: &Addr) -> Option<Validator> {
    decode(state.get(StoreKey::Staking, &keys::validator(val)))
}

/// All validators in key order.
pub fn validators(state: &MultiStore) -> Vec<Validator> {
    state
        .prefix(StoreKey::Staking, keys::VALIDATORS)
        .filter_map(|(_, v)| Validator::decode(v.as_slice()).ok())
        .collect()
}

/// Reads a delegation.
pub fn delegation(state: &MultiStore, del: &Addr, val: &Addr) -> Option<Delegation> {
    decode(state.get(StoreKey::Staking, &keys::delegation(del, val)))
}

/// All delegations of a delegator, in key order, with the validator address of each.
pub fn delegations(state: &MultiStore, del: &Addr) -> Vec<(Addr, Delegation)> {
    let prefix = keys::delegations(del);
    state
        .prefix(StoreKey::Staking, &prefix)
        .filter_map(|(k, v)| {
            let (val, _) = keys::split_addr(&k[prefix.len()..])?;
            Some((val, Delegation::decode(v.as_slice()).ok()?))
        })
        .collect()
}

/// Reads an unbonding delegation.
pub fn unbonding(state: &MultiStore, del: &Addr, val: &Addr) -> Option<UnbondingDelegation> {
    decode(state.get(StoreKey::Staking, &keys::unbonding(del, val)))
}

/// All unbonding delegations of a delegator, in key order.
pub fn unbondings(state: &MultiStore, del: &Addr) -> Vec<UnbondingDelegation> {
    state
        .prefix(StoreKey::Staking, &keys::unbondings(del))
        .filter_map(|(_, v)| UnbondingDelegation::decode(v.as_slice()).ok())
        .collect()
}

fn decode<M: Message + Default>(v: Option<&Vec<u8>>) -> Option<M> {
    M::decode(v?.as_slice()).ok()
}

/// Validator tokens (Int) and delegator shares (LegacyDec raw, x 10^18).
pub fn tokens_and_shares(v: &Validator) -> (BigUint, BigUint) {
    (
        parse_uint(&v.tokens).unwrap_or_default(),
        parse_uint(&v.delegator_shares).unwrap_or_default(),
    )
}

/// What `shares` (raw) of validator `v` are worth: x/staking's `Validator.TokensFromShares`,
/// `shares.MulInt(tokens).Quo(delegator_shares)`, in the node's own [`LegacyDec`].
pub fn tokens_from_shares(v: &Validator, shares_raw: &BigUint) -> Result<LegacyDec, DecError> {
    let (tokens, del_shares) = tokens_and_shares(v);
    LegacyDec::from_raw(shares_raw.clone())
        .mul_int(&tokens)?
        .quo(&LegacyDec::from_raw(del_shares))
}

/// A delegation's value in whole tokens, the `balance` of a `DelegationResponse`
/// (`TokensFromShares(shares).TruncateInt()`).
pub fn delegation_balance(v: &Validator, shares_raw: &BigUint) -> Result<BigUint, DecError> {
    Ok(tokens_from_shares(v, shares_raw)?.truncate_int())
}

/// Shares (raw) worth `amount` tokens at the validator's rate, truncated (`SharesFromTokens`).
fn shares_from_tokens(v: &Validator, amount: &BigUint) -> TxResult<BigUint> {
    let (tokens, del_shares) = tokens_and_shares(v);
    if tokens.is_zero() {
        return Err(TxError::staking(
            34,
            "invalid delegator-share exchange rate: validator has no tokens",
        ));
    }
    // `delegator_shares.MulInt(amount).QuoInt(tokens)`: truncated.
    let shares = LegacyDec::from_raw(del_shares)
        .mul_int(amount)?
        .quo_int(&tokens)?;
    Ok(shares.raw().clone())
}

impl Ctx {
    fn set_validator(&mut self, val: &Addr, v: &Validator) {
        self.ws
            .set(StoreKey::Staking, keys::validator(val), v.encode_to_vec());
    }

    fn get_validator(&self, val: &Addr) -> TxResult<Validator> {
        validator(self.state(), val).ok_or_else(|| TxError::staking(3, "validator does not exist"))
    }

    /// Creates a bonded validator (genesis).
    pub fn create_validator(&mut self, val: &Addr, v: Validator) {
        self.set_validator(val, &v);
    }

    fn set_delegation(&mut self, del: &Addr, val: &Addr, shares: &BigUint) {
        if shares.is_zero() {
            self.ws
                .delete(StoreKey::Staking, keys::delegation(del, val));
            self.ws
                .delete(StoreKey::Staking, keys::delegation_by_val(val, del));
            return;
        }
        let d = Delegation {
            delegator_address: self.params.prefixes.acc(del),
            validator_address: self.params.prefixes.val(val),
            shares: shares.to_string(),
        };
        self.ws.set(
            StoreKey::Staking,
            keys::delegation(del, val),
            d.encode_to_vec(),
        );
        self.ws.set(
            StoreKey::Staking,
            keys::delegation_by_val(val, del),
            Vec::new(),
        );
    }

    fn set_unbonding(&mut self, del: &Addr, val: &Addr, ubd: &UnbondingDelegation) {
        if ubd.entries.is_empty() {
            self.ws.delete(StoreKey::Staking, keys::unbonding(del, val));
            self.ws
                .delete(StoreKey::Staking, keys::unbonding_by_val(val, del));
        } else {
            self.ws.set(
                StoreKey::Staking,
                keys::unbonding(del, val),
                ubd.encode_to_vec(),
            );
            self.ws.set(
                StoreKey::Staking,
                keys::unbonding_by_val(val, del),
                Vec::new(),
            );
        }
    }

    fn set_redelegation(&mut self, del: &Addr, src: &Addr, dst: &Addr, red: &Redelegation) {
        let keys = [
            keys::redelegation(del, src, dst),
            keys::redelegation_by_src(src, del, dst),
            keys::redelegation_by_dst(dst, del, src),
        ];
        if red.entries.is_empty() {
            for k in keys {
                self.ws.delete(StoreKey::Staking, k);
            }
        } else {
            let [main, by_src, by_dst] = keys;
            self.ws.set(StoreKey::Staking, main, red.encode_to_vec());
            self.ws.set(StoreKey::Staking, by_src, Vec::new());
            self.ws.set(StoreKey::Staking, by_dst, Vec::new());
        }
    }

    fn next_unbonding_id(&mut self, holder_key: Vec<u8>, kind: u64) -> u64 {
        let id = self.next_sequence(StoreKey::Staking, keys::UNBONDING_ID) + 1;
        self.ws
            .set(StoreKey::Staking, keys::unbonding_index(id), holder_key);
        self.ws.set(
            StoreKey::Staking,
            keys::unbonding_type(id),
            kind.to_be_bytes().to_vec(),
        );
        id
    }

    fn completion_time(&self) -> SystemTime {
        self.time + self.params.unbonding_time
    }

    fn check_bond_denom(&self, denom: &str) -> TxResult<()> {
        if denom != self.params.bond_denom {
            return Err(TxError::sdk(
                18,
                format!(
                    "invalid coin denomination: got {denom}, expected {}",
                    self.params.bond_denom
                ),
            ));
        }
        Ok(())
    }

    /// Delegates `amount` bond tokens from `del` to `val` and returns the shares issued
    /// (x/staking `Keeper.Delegate`).
    pub fn delegate(
        &mut self,
        del: &Addr,
        val: &Addr,
        amount: &BigUint,
        source: TokenSource,
    ) -> TxResult<BigUint> {
        let mut v = self.get_validator(val)?;
        let (tokens, del_shares) = tokens_and_shares(&v);
        let issued = if del_shares.is_zero() {
            // The first delegation sets the exchange rate to one share per token.
            LegacyDec::from_int(amount).raw().clone()
        } else {
            shares_from_tokens(&v, amount)?
        };
        let denom = self.params.bond_denom.clone();
        match source {
            TokenSource::Account => self.send(del, &Addr::module(BONDED_POOL), &denom, amount)?,
            TokenSource::Unbonding => {
                self.send_between_modules(NOT_BONDED_POOL, BONDED_POOL, &denom, amount)?
            }
            TokenSource::Redelegation => {}
        }
        let current = delegation(self.state(), del, val)
            .and_then(|d| parse_uint(&d.shares))
            .unwrap_or_default();
        self.set_delegation(del, val, &(current + &issued));
        v.tokens = (tokens + amount).to_string();
        v.delegator_shares = (del_shares + &issued).to_string();
        self.set_validator(val, &v);
        Ok(issued)
    }

    /// Shares to remove for unbonding `amount` tokens (x/staking `ValidateUnbondAmount`).
    fn validate_unbond_amount(
        &self,
        del: &Addr,
        val: &Addr,
        amount: &BigUint,
    ) -> TxResult<BigUint> {
        let v = self.get_validator(val)?;
        let d = delegation(self.state(), del, val)
            .ok_or_else(|| TxError::staking(19, "no delegation for (address, validator) tuple"))?;
        let have = parse_uint(&d.shares).unwrap_or_default();
        let shares = shares_from_tokens(&v, amount)?;
        if shares > have {
            return Err(TxError::staking(22, "invalid shares amount"));
        }
        Ok(shares)
    }

    /// Removes shares from a delegation and returns the tokens they were worth
    /// (x/staking `Keeper.Unbond` + `Validator.RemoveDelShares`).
    fn unbond(&mut self, del: &Addr, val: &Addr, shares: &BigUint) -> TxResult<BigUint> {
        let d = delegation(self.state(), del, val)
            .ok_or_else(|| TxError::staking(19, "no delegation for (address, validator) tuple"))?;
        let have = parse_uint(&d.shares).unwrap_or_default();
        if &have < shares {
            return Err(TxError::staking(24, "not enough delegation shares"));
        }
        self.set_delegation(del, val, &(have - shares));
        let mut v = self.get_validator(val)?;
        let (tokens, del_shares) = tokens_and_shares(&v);
        let remaining = &del_shares - shares;
        let issued = if remaining.is_zero() {
            // The last shares take whatever tokens are left.
            tokens.clone()
        } else {
            delegation_balance(&v, shares)?
        };
        v.tokens = (tokens - &issued).to_string();
        v.delegator_shares = remaining.to_string();
        self.set_validator(val, &v);
        Ok(issued)
    }

    /// MsgUndelegate: returns the completion time.
    pub fn undelegate(
        &mut self,
        del: &Addr,
        val: &Addr,
        denom: &str,
        amount: &BigUint,
    ) -> TxResult<SystemTime> {
        self.check_bond_denom(denom)?;
        if unbonding(self.state(), del, val)
            .is_some_and(|u| u.entries.len() >= self.params.max_entries)
        {
            return Err(TxError::staking(
                27,
                "too many unbonding delegation entries for (delegator, validator) tuple",
            ));
        }
        let shares = self.validate_unbond_amount(del, val, amount)?;
        let returned = self.unbond(del, val, &shares)?;
        let denom = self.params.bond_denom.clone();
        self.send_between_modules(BONDED_POOL, NOT_BONDED_POOL, &denom, &returned)?;
        let completion = self.completion_time();
        let key = keys::unbonding(del, val);
        let id = self.next_unbonding_id(key, 1);
        let mut ubd = unbonding(self.state(), del, val).unwrap_or_else(|| UnbondingDelegation {
            delegator_address: self.params.prefixes.acc(del),
            validator_address: self.params.prefixes.val(val),
            entries: Vec::new(),
        });
        let ts = timestamp(completion);
        // Entries created at the same height with the same completion time merge (SDK v0.47+).
        match ubd
            .entries
            .iter_mut()
            .find(|e| e.creation_height == self.height && e.completion_time.as_ref() == Some(&ts))
        {
            Some(e) => {
                e.balance = (parse_uint(&e.balance).unwrap_or_default() + &returned).to_string();
                e.initial_balance =
                    (parse_uint(&e.initial_balance).unwrap_or_default() + &returned).to_string();
            }
            None => ubd.entries.push(UnbondingDelegationEntry {
                creation_height: self.height,
                completion_time: Some(ts),
                initial_balance: returned.to_string(),
                balance: returned.to_string(),
                unbonding_id: id,
                unbonding_on_hold_ref_count: 0,
            }),
        }
        self.set_unbonding(del, val, &ubd);
        Ok(completion)
    }

    /// MsgCancelUnbondingDelegation.
    pub fn cancel_unbonding(
        &mut self,
        del: &Addr,
        val: &Addr,
        denom: &str,
        amount: &BigUint,
        creation_height: i64,
    ) -> TxResult<()> {
        self.check_bond_denom(denom)?;
        self.get_validator(val)?;
        let mut ubd = unbonding(self.state(), del, val)
            .ok_or_else(|| TxError::staking(26, "no unbonding delegation found"))?;
        let idx = ubd
            .entries
            .iter()
            .position(|e| e.creation_height == creation_height)
            .ok_or_else(|| {
                TxError::sdk(
                    38,
                    format!(
                        "unbonding delegation entry is not found at block height {creation_height}"
                    ),
                )
            })?;
        let entry = &ubd.entries[idx];
        if entry
            .completion_time
            .as_ref()
            .is_some_and(|t| from_timestamp(t) <= self.time)
        {
            return Err(TxError::sdk(
                18,
                "unbonding delegation is already processed",
            ));
        }
        let balance = parse_uint(&entry.balance).unwrap_or_default();
        if &balance < amount {
            return Err(TxError::sdk(
                18,
                "amount is greater than the unbonding delegation entry balance",
            ));
        }
        self.delegate(del, val, amount, TokenSource::Unbonding)?;
        let left = balance - amount;
        if left.is_zero() {
            ubd.entries.remove(idx);
        } else {
            let e = &mut ubd.entries[idx];
            e.balance = left.to_string();
            e.initial_balance =
                (parse_uint(&e.initial_balance).unwrap_or_default() - amount).to_string();
        }
        self.set_unbonding(del, val, &ubd);
        Ok(())
    }

    /// MsgBeginRedelegate: returns the completion time.
    pub fn redelegate(
        &mut self,
        del: &Addr,
        src: &Addr,
        dst: &Addr,
        denom: &str,
        amount: &BigUint,
    ) -> TxResult<SystemTime> {
        self.check_bond_denom(denom)?;
        if src == dst {
            return Err(TxError::staking(
                29,
                "cannot redelegate to the same validator",
            ));
        }
        self.get_validator(src)?;
        if validator(self.state(), dst).is_none() {
            return Err(TxError::staking(
                31,
                "redelegation destination validator not found",
            ));
        }
        let transitive = self
            .state()
            .prefix(StoreKey::Staking, &keys::redelegations_by_dst_del(src, del))
            .next()
            .is_some();
        if transitive {
            return Err(TxError::staking(
                32,
                "redelegation to this validator already in progress; first redelegation to this validator must complete before next redelegation",
            ));
        }
        let existing = self.get_redelegation(del, src, dst);
        if existing
            .as_ref()
            .is_some_and(|r| r.entries.len() >= self.params.max_entries)
        {
            return Err(TxError::staking(
                33,
                "too many redelegation entries for (delegator, src-validator, dst-validator) tuple",
            ));
        }
        let shares = self.validate_unbond_amount(del, src, amount)?;
        let returned = self.unbond(del, src, &shares)?;
        if returned.is_zero() {
            return Err(TxError::staking(
                30,
                "too few tokens to redelegate (truncates to zero tokens)",
            ));
        }
        let shares_dst = self.delegate(del, dst, &returned, TokenSource::Redelegation)?;
        let completion = self.completion_time();
        let id = self.next_unbonding_id(keys::redelegation(del, src, dst), 2);
        let mut red = existing.unwrap_or_else(|| Redelegation {
            delegator_address: self.params.prefixes.acc(del),
            validator_src_address: self.params.prefixes.val(src),
            validator_dst_address: self.params.prefixes.val(dst),
            entries: Vec::new(),
        });
        red.entries.push(RedelegationEntry {
            creation_height: self.height,
            completion_time: Some(timestamp(completion)),
            initial_balance: returned.to_string(),
            shares_dst: shares_dst.to_string(),
            unbonding_id: id,
            unbonding_on_hold_ref_count: 0,
        });
        self.set_redelegation(del, src, dst, &red);
        Ok(completion)
    }

    fn get_redelegation(&self, del: &Addr, src: &Addr, dst: &Addr) -> Option<Redelegation> {
        decode(
            self.state()
                .get(StoreKey::Staking, &keys::redelegation(del, src, dst)),
        )
    }

    /// End of block: completes matured unbonding entries (coins from the not-bonded pool to
    /// the delegator) and forgets matured redelegation entries.
    pub fn complete_matured(&mut self) -> TxResult<()> {
        let now = self.time;
        let mature = |t: &Option<tendermint_proto::google::protobuf::Timestamp>| {
            t.as_ref().is_some_and(|t| from_timestamp(t) <= now)
        };
        let ubds: Vec<(Vec<u8>, UnbondingDelegation)> = self
            .state()
            .prefix(StoreKey::Staking, keys::UNBONDINGS)
            .filter_map(|(k, v)| Some((k.clone(), UnbondingDelegation::decode(v.as_slice()).ok()?)))
            .filter(|(_, u)| u.entries.iter().any(|e| mature(&e.completion_time)))
            .collect();
        let denom = self.params.bond_denom.clone();
        for (key, mut ubd) in ubds {
            let Some((del, rest)) = keys::split_addr(&key[1..]) else {
                continue;
            };
            let Some((val, _)) = keys::split_addr(rest) else {
                continue;
            };
            let (done, kept): (Vec<_>, Vec<_>) = ubd
                .entries
                .into_iter()
                .partition(|e| mature(&e.completion_time));
            ubd.entries = kept;
            for e in done {
                let amount = parse_uint(&e.balance).unwrap_or_default();
                if !amount.is_zero() {
                    self.send(&Addr::module(NOT_BONDED_POOL), &del, &denom, &amount)?;
                }
            }
            self.set_unbonding(&del, &val, &ubd);
        }
        let reds: Vec<(Vec<u8>, Redelegation)> = self
            .state()
            .prefix(StoreKey::Staking, keys::REDELEGATIONS)
            .filter_map(|(k, v)| Some((k.clone(), Redelegation::decode(v.as_slice()).ok()?)))
            .filter(|(_, r)| r.entries.iter().any(|e| mature(&e.completion_time)))
            .collect();
        for (key, mut red) in reds {
            let Some((del, rest)) = keys::split_addr(&key[1..]) else {
                continue;
            };
            let Some((src, rest)) = keys::split_addr(rest) else {
                continue;
            };
            let Some((dst, _)) = keys::split_addr(rest) else {
                continue;
            };
            red.entries.retain(|e| !mature(&e.completion_time));
            self.set_redelegation(&del, &src, &dst, &red);
        }
        Ok(())
    }

    /// Slashes a bonded validator by `fraction_raw` / 10^18 of its tokens: the tokens are
    /// burned from the bonded pool; delegations keep their shares, so their value drops.
    /// Returns (burned, tokens after).
    pub fn slash(&mut self, val: &Addr, fraction_raw: &BigUint) -> TxResult<(BigUint, BigUint)> {
        let mut v = self.get_validator(val)?;
        let (tokens, _) = tokens_and_shares(&v);
        // x/staking: `tokens.ToLegacyDec().Mul(slashFactor).TruncateInt()`.
        let burn = LegacyDec::from_int(&tokens)
            .mul(&LegacyDec::from_raw(fraction_raw.clone()))?
            .truncate_int()
            .min(tokens.clone());
        let denom = self.params.bond_denom.clone();
        self.burn(BONDED_POOL, &denom, &burn)?;
        let after = tokens - &burn;
        v.tokens = after.to_string();
        self.set_validator(val, &v);
        Ok((burn, after))
    }
}
