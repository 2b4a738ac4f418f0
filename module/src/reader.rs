//! `StateReader`: how the module reads committed state at a height, for first snapshots and
//! for resynchronising. The node implements it (in-process reads in the reference node,
//! gRPC queries with `x-cosmos-block-height` in plugin mode).

use async_trait::async_trait;
use stream_abci_listener::{Address, Dec, Int, UnbondingEntry, ValidatorTokens};

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
