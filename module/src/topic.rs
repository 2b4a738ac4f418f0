//! A topic: the state behind one subscription key, kept current by applying each block's
//! decoded changes, and turned into a `Value` for its subscribers.

use crate::chain::Chain;
use crate::key::SubscriptionKey;
use crate::reader::{ReadError, StateReader};
use crate::value::{Coin, DelegationValue, UnbondingValue, Value};
use std::collections::{BTreeMap, HashMap};
use stream_abci_listener::{
    Address, Dec, Int, StateChange, UnbondingEntry, ValidatorTokens, tokens_from_shares,
};

/// Tokens and shares of every validator: what prices delegations.
pub(crate) type Validators = HashMap<Address, ValidatorTokens>;

/// Applies a validator change to `validators`; returns the validator it was about.
pub(crate) fn apply_validator<'a>(
    validators: &mut Validators,
    change: &'a StateChange,
) -> Option<&'a Address> {
    let StateChange::Validator { operator, value } = change else {
        return None;
    };
    match value {
        Some(v) => validators.insert(operator.clone(), v.clone()),
        None => validators.remove(operator),
    };
    Some(operator)
}

/// The account a change is about (holder or delegator); `None` for validator changes.
pub(crate) fn account_of(change: &StateChange) -> Option<&Address> {
    match change {
        StateChange::Balance { address, .. } => Some(address),
        StateChange::Delegation { delegator, .. }
        | StateChange::UnbondingDelegation { delegator, .. } => Some(delegator),
        StateChange::Validator { .. } => None,
    }
}

/// Whether a key's value depends on validators (delegation balances).
pub(crate) fn needs_validators(key: &SubscriptionKey) -> bool {
    matches!(
        key,
        SubscriptionKey::Delegation { .. } | SubscriptionKey::Delegations { .. }
    )
}

/// The typed state a topic tracks.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TopicState {
    /// Amount (zero when absent).
    Balance(Int),
    /// Denom -> amount (non-zero only).
    Balances(BTreeMap<String, Int>),
    /// Shares, or none.
    Delegation(Option<Dec>),
    /// Validator -> shares.
    Delegations(BTreeMap<Address, Dec>),
    /// Entries, or none.
    UnbondingDelegation(Option<Vec<UnbondingEntry>>),
    /// Validator -> entries.
    UnbondingDelegations(BTreeMap<Address, Vec<UnbondingEntry>>),
}

impl TopicState {
    /// Reads the state of `key` at `height`.
    pub async fn load(
        reader: &dyn StateReader,
        key: &SubscriptionKey,
        height: i64,
    ) -> Result<TopicState, ReadError> {
        Ok(match key {
            SubscriptionKey::Balance { address, denom } => TopicState::Balance(
                reader
                    .balances(height, address)
                    .await?
                    .into_iter()
                    .find(|(d, _)| d == denom)
                    .map(|(_, a)| a)
                    .unwrap_or_default(),
            ),
            SubscriptionKey::Balances { address } => TopicState::Balances(
                reader
                    .balances(height, address)
                    .await?
                    .into_iter()
                    .filter(|(_, a)| !a.is_zero())
                    .collect(),
            ),
            SubscriptionKey::Delegation {
                delegator,
                validator,
            } => TopicState::Delegation(
                reader
                    .delegations(height, delegator)
                    .await?
                    .into_iter()
                    .find(|(v, _)| v == validator)
                    .map(|(_, s)| s),
            ),
            SubscriptionKey::Delegations { delegator } => TopicState::Delegations(
                reader
                    .delegations(height, delegator)
                    .await?
                    .into_iter()
                    .collect(),
            ),
            SubscriptionKey::UnbondingDelegation {
                delegator,
                validator,
            } => TopicState::UnbondingDelegation(
                reader
                    .unbonding_delegations(height, delegator)
                    .await?
                    .into_iter()
                    .find(|(v, _)| v == validator)
                    .map(|(_, e)| e),
            ),
            SubscriptionKey::UnbondingDelegations { delegator } => {
                TopicState::UnbondingDelegations(
                    reader
                        .unbonding_delegations(height, delegator)
                        .await?
                        .into_iter()
                        .collect(),
                )
            }
        })
    }

    /// Validators whose tokens this state's value depends on.
    pub fn validators(&self, key: &SubscriptionKey) -> Vec<Address> {
        match (key, self) {
            (SubscriptionKey::Delegation { validator, .. }, _) => vec![validator.clone()],
            (_, TopicState::Delegations(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// The value subscribers see.
    pub fn value(&self, key: &SubscriptionKey, chain: &Chain, validators: &Validators) -> Value {
        let delegation = |delegator: &Address, validator: &Address, shares: &Dec| {
            let balance = validators
                .get(validator)
                .map(|v| tokens_from_shares(shares, &v.tokens, &v.delegator_shares))
                .unwrap_or_default();
            DelegationValue {
                delegator: chain.account_string(delegator),
                validator: chain.validator_string(validator),
                shares: shares.clone(),
                balance: Coin {
                    denom: chain.bond_denom.clone(),
                    amount: balance,
                },
            }
        };
        let unbonding = |delegator: &Address,
                         validator: &Address,
                         entries: &Vec<UnbondingEntry>| UnbondingValue {
            delegator: chain.account_string(delegator),
            validator: chain.validator_string(validator),
            entries: entries.clone(),
        };
        match (key, self) {
            (SubscriptionKey::Balance { denom, .. }, TopicState::Balance(a)) => {
                Value::Balance(Coin {
                    denom: denom.clone(),
                    amount: a.clone(),
                })
            }
            (_, TopicState::Balances(m)) => Value::Balances(
                m.iter()
                    .map(|(d, a)| Coin {
                        denom: d.clone(),
                        amount: a.clone(),
                    })
                    .collect(),
            ),
            (
                SubscriptionKey::Delegation {
                    delegator,
                    validator,
                },
                TopicState::Delegation(s),
            ) => Value::Delegation(s.as_ref().map(|s| delegation(delegator, validator, s))),
            (SubscriptionKey::Delegations { delegator }, TopicState::Delegations(m)) => {
                Value::Delegations(m.iter().map(|(v, s)| delegation(delegator, v, s)).collect())
            }
            (
                SubscriptionKey::UnbondingDelegation {
                    delegator,
                    validator,
                },
                TopicState::UnbondingDelegation(e),
            ) => Value::UnbondingDelegation(e.as_ref().map(|e| unbonding(delegator, validator, e))),
            (
                SubscriptionKey::UnbondingDelegations { delegator },
                TopicState::UnbondingDelegations(m),
            ) => Value::UnbondingDelegations(
                m.iter().map(|(v, e)| unbonding(delegator, v, e)).collect(),
            ),
            _ => unreachable!("a topic's state always matches its key's kind"),
        }
    }

    /// Applies one decoded change if it is about this topic's key; returns whether it was.
    /// Validator changes are not topic state (see [`apply_validator`]).
    pub fn apply(&mut self, key: &SubscriptionKey, change: &StateChange) -> bool {
        match change {
            StateChange::Balance {
                address,
                denom,
                amount,
            } if address == key.account() => self.apply_balance(key, denom, amount),
            StateChange::Delegation {
                delegator,
                validator,
                shares,
            } if delegator == key.account() => self.apply_delegation(key, validator, shares),
            StateChange::UnbondingDelegation {
                delegator,
                validator,
                entries,
            } if delegator == key.account() => self.apply_unbonding(key, validator, entries),
            _ => false,
        }
    }

    /// Applies a balance change (the topic is about `denom`'s holder).
    pub fn apply_balance(&mut self, key: &SubscriptionKey, denom: &str, amount: &Int) -> bool {
        match (key, self) {
            (SubscriptionKey::Balance { denom: d, .. }, TopicState::Balance(a)) if d == denom => {
                *a = amount.clone();
                true
            }
            (_, TopicState::Balances(m)) => {
                if amount.is_zero() {
                    m.remove(denom);
                } else {
                    m.insert(denom.to_owned(), amount.clone());
                }
                true
            }
            _ => false,
        }
    }

    /// Applies a delegation change; returns whether the topic is affected.
    pub fn apply_delegation(
        &mut self,
        key: &SubscriptionKey,
        validator: &Address,
        shares: &Option<Dec>,
    ) -> bool {
        match (key, self) {
            (SubscriptionKey::Delegation { validator: v, .. }, TopicState::Delegation(s))
                if v == validator =>
            {
                *s = shares.clone();
                true
            }
            (_, TopicState::Delegations(m)) => {
                match shares {
                    Some(s) => m.insert(validator.clone(), s.clone()),
                    None => m.remove(validator),
                };
                true
            }
            _ => false,
        }
    }

    /// Applies an unbonding delegation change; returns whether the topic is affected.
    pub fn apply_unbonding(
        &mut self,
        key: &SubscriptionKey,
        validator: &Address,
        entries: &Option<Vec<UnbondingEntry>>,
    ) -> bool {
        match (key, self) {
            (
                SubscriptionKey::UnbondingDelegation { validator: v, .. },
                TopicState::UnbondingDelegation(e),
            ) if v == validator => {
                *e = entries.clone();
                true
            }
            (_, TopicState::UnbondingDelegations(m)) => {
                match entries {
                    Some(e) => m.insert(validator.clone(), e.clone()),
                    None => m.remove(validator),
                };
                true
            }
            _ => false,
        }
    }
}
