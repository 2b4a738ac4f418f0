//! End-to-end: delegation and unbonding streams after delegate, undelegate, redelegate and
//! cancel-unbonding: exactly one message per changed stream at the tx's height, with the
//! x/staking values to the last digit, `found=false` on removal, and silence for changes of
//! other delegators.

mod stream_support;
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use cosmos_sdk_proto::cosmos::staking::v1beta1::UnbondingDelegationEntry;
use stream_support::values::{coin, delegation, entry, in_store_order, unbonding};
use stream_support::watch::Watch;
use stream_support::{StreamKey, StreamValue};
use support::TestNode;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO};
use support::dec::dec_raw;
use support::queries::At;
use support::staking::{slow_unbonding_node, unbonding as standard_unbonding};

/// Unbonding time of `slow_unbonding_node`: no entry matures during these tests.
const UNBONDING: Duration = Duration::from_secs(60);

/// What alice's staking streams must show. No validator is slashed here, so shares and
/// tokens are 1:1.
struct Alice {
    balance: u128,
    /// ujuno delegated, by validator (dev key name).
    delegated: BTreeMap<&'static str, u128>,
    /// Unbonding entries from validator1, oldest first.
    entries: Vec<UnbondingDelegationEntry>,
}

impl Alice {
    /// The watched streams, labelled, with their values now.
    fn streams(&self) -> Vec<(&'static str, StreamKey, StreamValue)> {
        let keys = [
            ("delegations", StreamKey::delegations("alice")),
            (
                "delegation to validator1",
                StreamKey::delegation("alice", "validator1"),
            ),
            (
                "delegation to validator2",
                StreamKey::delegation("alice", "validator2"),
            ),
            ("unbondings", StreamKey::unbonding_delegations("alice")),
            (
                "unbonding from validator1",
                StreamKey::unbonding_delegation("alice", "validator1"),
            ),
            ("balance", StreamKey::balance("alice", BOND_DENOM)),
        ];
        keys.into_iter()
            .zip(self.values())
            .map(|((label, key), value)| (label, key, value))
            .collect()
    }

    fn values(&self) -> Vec<StreamValue> {
        let to = |validator: &str| {
            let amount = *self.delegated.get(validator).unwrap_or(&0);
            (amount > 0).then(|| delegation("alice", validator, dec_raw(amount), amount))
        };
        let from_v1 = (!self.entries.is_empty())
            .then(|| unbonding("alice", "validator1", self.entries.clone()));
        vec![
            StreamValue::Delegations(in_store_order(
                ["validator1", "validator2"]
                    .into_iter()
                    .filter_map(to)
                    .collect(),
            )),
            StreamValue::Delegation(to("validator1")),
            StreamValue::Delegation(to("validator2")),
            StreamValue::UnbondingDelegations(from_v1.clone().into_iter().collect()),
            StreamValue::UnbondingDelegation(from_v1),
            StreamValue::Balance(coin(BOND_DENOM, self.balance)),
        ]
    }

    fn delegate(&mut self, validator: &'static str, amount: u128) {
        *self.delegated.entry(validator).or_default() += amount;
    }

    fn undelegate(&mut self, validator: &'static str, amount: u128) {
        let delegated = self.delegated.get_mut(validator).expect("delegated before");
        *delegated -= amount;
    }

    /// The entry undelegating `amount` from validator1 at `height` created, as the node
    /// reports it (its id comes from a chain-wide counter).
    async fn unbond(&mut self, node: &TestNode, height: i64, amount: u128) {
        self.undelegate("validator1", amount);
        let ubd = standard_unbonding(node, "alice", "validator1", At::Height(height)).await;
        let id = ubd
            .entries
            .iter()
            .find(|e| e.creation_height == height)
            .expect("an entry created at the tx's height")
            .unbonding_id;
        let done = node.block(height).await.time.plus(UNBONDING);
        self.entries.push(entry(height, done, amount, amount, id));
    }

    /// Cancelling `amount` of the entry created at `created`: back into the delegation.
    fn cancel(&mut self, created: i64, amount: u128) {
        self.delegate("validator1", amount);
        let i = self
            .entries
            .iter()
            .position(|e| e.creation_height == created)
            .expect("the entry exists");
        let left: u128 = self.entries[i].balance.parse::<u128>().expect("integer") - amount;
        if left == 0 {
            self.entries.remove(i);
        } else {
            self.entries[i].balance = left.to_string();
            self.entries[i].initial_balance = left.to_string();
        }
    }
}

/// `streamd tx ARGS --wait` (words split on spaces), requiring success; the tx's height.
async fn tx(node: &TestNode, args: &str) -> i64 {
    let args: Vec<&str> = args.split(' ').collect();
    node.tx_ok(&args).await.height
}

#[tokio::test]
async fn delegate_unbond_redelegate_and_cancel_each_give_one_exact_message() {
    let node = slow_unbonding_node().await;
    let mut alice = Alice {
        balance: GENESIS_UJUNO,
        delegated: BTreeMap::new(),
        entries: Vec::new(),
    };
    let mut watch = Watch::open(&node, 2, alice.streams()).await;
    let (delegations, to_v1, to_v2, unbondings, from_v1, balance) = (
        "delegations",
        "delegation to validator1",
        "delegation to validator2",
        "unbondings",
        "unbonding from validator1",
        "balance",
    );

    // Delegate: the delegation appears, coins leave the balance.
    let h = tx(&node, "staking delegate alice validator1 10000000ujuno").await;
    alice.delegate("validator1", 10_000_000);
    alice.balance -= 10_000_000;
    let changed = watch.block(&node, h, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, balance]);

    // Undelegate: shares go down, an entry appears; the balance waits for maturity.
    let h2 = tx(&node, "staking unbond alice validator1 4000000ujuno").await;
    alice.unbond(&node, h2, 4_000_000).await;
    let changed = watch.block(&node, h2, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, unbondings, from_v1]);

    // Redelegate: two delegations change in one block, one message each.
    let h = tx(
        &node,
        "staking redelegate alice validator1 validator2 2000000ujuno",
    )
    .await;
    alice.undelegate("validator1", 2_000_000);
    alice.delegate("validator2", 2_000_000);
    let changed = watch.block(&node, h, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, to_v2]);

    // Cancel part of the entry: back into the delegation, the entry shrinks.
    let h = tx(
        &node,
        &format!("staking cancel-unbond alice validator1 1000000ujuno {h2}"),
    )
    .await;
    alice.cancel(h2, 1_000_000);
    let changed = watch.block(&node, h, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, unbondings, from_v1]);

    // Undelegate everything left at validator1: the delegation is gone (found=false).
    let h5 = tx(&node, "staking unbond alice validator1 5000000ujuno").await;
    alice.unbond(&node, h5, 5_000_000).await;
    assert_eq!(alice.values()[1], StreamValue::Delegation(None));
    let changed = watch.block(&node, h5, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, unbondings, from_v1]);

    // Cancel both entries completely: the unbonding delegation is gone (found=false).
    let h = tx(
        &node,
        &format!("staking cancel-unbond alice validator1 3000000ujuno {h2}"),
    )
    .await;
    alice.cancel(h2, 3_000_000);
    let changed = watch.block(&node, h, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, unbondings, from_v1]);
    let h = tx(
        &node,
        &format!("staking cancel-unbond alice validator1 5000000ujuno {h5}"),
    )
    .await;
    alice.cancel(h5, 5_000_000);
    assert_eq!(alice.values()[4], StreamValue::UnbondingDelegation(None));
    let changed = watch.block(&node, h, alice.values()).await;
    assert_eq!(changed, [delegations, to_v1, unbondings, from_v1]);

    watch.assert_quiet(&node, h).await;
}

#[tokio::test]
async fn other_delegators_do_not_reach_alices_streams() {
    let node = slow_unbonding_node().await;
    let h0 = tx(&node, "staking delegate alice validator1 10000000ujuno").await;
    node.wait_for_height(h0 + 2).await;
    let mut alice = Alice {
        balance: GENESIS_UJUNO - 10_000_000,
        delegated: BTreeMap::new(),
        entries: Vec::new(),
    };
    alice.delegate("validator1", 10_000_000);
    let mut watch = Watch::open(&node, 2, alice.streams()).await;

    // bob's staking changes both validators' tokens and shares, at 1:1, so alice's
    // delegation keeps its value: no message for any of these blocks.
    tx(&node, "staking delegate bob validator1 7000000ujuno").await;
    tx(&node, "staking unbond bob validator1 3000000ujuno").await;
    let h = tx(
        &node,
        "staking redelegate bob validator1 validator2 1000000ujuno",
    )
    .await;
    watch.assert_quiet(&node, h).await;

    // Then alice's own change is the next message.
    let h = tx(&node, "staking delegate alice validator2 1000ujuno").await;
    alice.delegate("validator2", 1000);
    alice.balance -= 1000;
    let changed = watch.block(&node, h, alice.values()).await;
    assert_eq!(
        changed,
        ["delegations", "delegation to validator2", "balance"]
    );
}
