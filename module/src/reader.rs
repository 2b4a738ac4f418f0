//! `StateReader`: how the module reads committed state at a height, for first snapshots and
//! for resynchronising. The node implements it (in-process reads in the reference node,
//! gRPC queries with `x-cosmos-block-height` in plugin mode).

use async_trait::async_trait;
use stream_abci_listener::{
    Address, BANK_STORE, Dec, Int, STAKING_STORE, StateChange, StoreKVPair, UnbondingEntry,
    VALIDATORS_PREFIX, ValidatorTokens, balances_prefix, decode_pair, delegations_prefix,
    unbonding_delegations_prefix,
};

/// A read that failed (height pruned, node unreachable, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read state at height {height}: {reason}")]
pub struct ReadError {
    /// The height asked for.
    pub height: i64,
    /// Why.
    pub reason: String,
}

/// Reads committed state at a given height. Every method answers for exactly `height`.
#[async_trait]
pub trait StateReader: Send + Sync + 'static {
    /// Non-zero balances of `address`, sorted by denom.
    async fn balances(
        &self,
        height: i64,
        address: &Address,
    ) -> Result<Vec<(String, Int)>, ReadError>;

    /// The oldest height this reader can still answer for, if it knows (a node keeps a
    /// limited number of versions). Resumes never start below it.
    fn earliest_height(&self) -> Option<i64> {
        None
    }

    /// Every validator's tokens and delegator shares.
    async fn validators(&self, height: i64) -> Result<Vec<(Address, ValidatorTokens)>, ReadError>;

    /// Delegations of `delegator`: (validator, shares), any order.
    async fn delegations(
        &self,
        height: i64,
        delegator: &Address,
    ) -> Result<Vec<(Address, Dec)>, ReadError>;

    /// Unbonding delegations of `delegator`: (validator, entries), any order.
    async fn unbonding_delegations(
        &self,
        height: i64,
        delegator: &Address,
    ) -> Result<Vec<(Address, Vec<UnbondingEntry>)>, ReadError>;
}

/// Raw reads of committed store entries at a height: what a node with direct access to its
/// stores implements. [`DecodingReader`] turns it into a [`StateReader`] that decodes the
/// entries with the change-set decoder, so snapshots and updates cannot disagree.
#[async_trait]
pub trait KvReader: Send + Sync + 'static {
    /// The oldest height whose entries can still be scanned, if known.
    fn earliest_height(&self) -> Option<i64> {
        None
    }

    /// Entries of `store` (`"bank"`, `"staking"`) whose key starts with `prefix`.
    async fn scan(
        &self,
        height: i64,
        store: &'static str,
        prefix: Vec<u8>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ReadError>;
}

/// A [`StateReader`] over a [`KvReader`].
pub struct DecodingReader<R>(pub R);

impl<R: KvReader> DecodingReader<R> {
    /// Decoded entries under `prefix`; undecodable ones are logged and skipped.
    async fn changes(
        &self,
        height: i64,
        store: &'static str,
        prefix: Vec<u8>,
    ) -> Result<Vec<StateChange>, ReadError> {
        let entries = self.0.scan(height, store, prefix).await?;
        Ok(entries
            .into_iter()
            .filter_map(|(key, value)| {
                let pair = StoreKVPair {
                    store_key: store.into(),
                    delete: false,
                    key,
                    value,
                };
                decode_pair(&pair).unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "undecodable store entry skipped in a snapshot");
                    None
                })
            })
            .collect())
    }
}

#[async_trait]
impl<R: KvReader> StateReader for DecodingReader<R> {
    fn earliest_height(&self) -> Option<i64> {
        self.0.earliest_height()
    }

    async fn balances(
        &self,
        height: i64,
        address: &Address,
    ) -> Result<Vec<(String, Int)>, ReadError> {
        let changes = self
            .changes(height, BANK_STORE, balances_prefix(address))
            .await?;
        Ok(changes
            .into_iter()
            .filter_map(|c| match c {
                StateChange::Balance { denom, amount, .. } => Some((denom, amount)),
                _ => None,
            })
            .collect())
    }

    async fn validators(&self, height: i64) -> Result<Vec<(Address, ValidatorTokens)>, ReadError> {
        let changes = self
            .changes(height, STAKING_STORE, VALIDATORS_PREFIX.to_vec())
            .await?;
        Ok(changes
            .into_iter()
            .filter_map(|c| match c {
                StateChange::Validator {
                    operator,
                    value: Some(v),
                } => Some((operator, v)),
                _ => None,
            })
            .collect())
    }

    async fn delegations(
        &self,
        height: i64,
        delegator: &Address,
    ) -> Result<Vec<(Address, Dec)>, ReadError> {
        let changes = self
            .changes(height, STAKING_STORE, delegations_prefix(delegator))
            .await?;
        Ok(changes
            .into_iter()
            .filter_map(|c| match c {
                StateChange::Delegation {
                    validator,
                    shares: Some(s),
                    ..
                } => Some((validator, s)),
                _ => None,
            })
            .collect())
    }

    async fn unbonding_delegations(
        &self,
        height: i64,
        delegator: &Address,
    ) -> Result<Vec<(Address, Vec<UnbondingEntry>)>, ReadError> {
        let changes = self
            .changes(
                height,
                STAKING_STORE,
                unbonding_delegations_prefix(delegator),
            )
            .await?;
        Ok(changes
            .into_iter()
            .filter_map(|c| match c {
                StateChange::UnbondingDelegation {
                    validator,
                    entries: Some(e),
                    ..
                } => Some((validator, e)),
                _ => None,
            })
            .collect())
    }
}
