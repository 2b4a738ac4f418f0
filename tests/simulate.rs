//! End-to-end smoke test of `streamd start --simulate`: blocks keep coming, state moves, and
//! ujuno is conserved across accounts and pools at every sampled height.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::tx::v1beta1::{TxBody, TxRaw};
use prost::Message;
use support::accounts::{
    BOND_DENOM, BONDED_POOL, DEV_KEYS, GENESIS_UJUNO_TOTAL, NOT_BONDED_POOL, address, int,
    module_address,
};
use support::queries::At;
use support::{TestNode, TestNodeOptions};

/// Everyone who can hold ujuno: the dev accounts, the two staking pools, and every address
/// the simulation has sent to (it creates fresh accounts now and then).
struct Holders {
    addresses: BTreeSet<String>,
    /// Blocks up to this height have been scanned for send recipients.
    scanned: i64,
}

impl Holders {
    fn genesis() -> Self {
        let mut addresses: BTreeSet<String> = DEV_KEYS.iter().map(|n| address(n)).collect();
        addresses.insert(module_address(BONDED_POOL));
        addresses.insert(module_address(NOT_BONDED_POOL));
        Holders {
            addresses,
            scanned: 0,
        }
    }

    /// Adds the recipients of every MsgSend committed up to `height`.
    async fn scan_to(&mut self, node: &TestNode, height: i64) {
        for h in self.scanned + 1..=height {
            for tx in node.block_txs(h).await {
                let raw = TxRaw::decode(tx.as_slice()).expect("block txs are TxRaw");
                let body = TxBody::decode(raw.body_bytes.as_slice()).expect("TxBody");
                for msg in body.messages {
                    if msg.type_url == "/cosmos.bank.v1beta1.MsgSend" {
                        let send = MsgSend::decode(msg.value.as_slice()).expect("MsgSend");
                        self.addresses.insert(send.to_address);
                    }
                }
            }
        }
        self.scanned = self.scanned.max(height);
    }

    /// ujuno held at height `h` by every holder.
    async fn total(&self, node: &TestNode, h: i64) -> u128 {
        let mut total = 0;
        for holder in &self.addresses {
            total += node.balance(holder, BOND_DENOM, At::Height(h)).await;
        }
        total
    }
}

/// Asserts at height `h` that the pools match staking state: bonded pool = sum of validator
/// tokens, not-bonded pool = sum of unbonding entry balances.
async fn assert_pools_match_staking(node: &TestNode, h: i64) {
    let at = At::Height(h);
    let tokens: u128 = node
        .validators(at)
        .await
        .iter()
        .map(|v| int("tokens", &v.tokens))
        .sum();
    let bonded = node
        .balance(&module_address(BONDED_POOL), BOND_DENOM, at)
        .await;
    assert_eq!(
        bonded, tokens,
        "bonded pool vs validator tokens at height {h}"
    );
    let mut unbonding = 0;
    for name in DEV_KEYS {
        for ubd in node.delegator_unbondings(&address(name), at).await {
            for entry in ubd.entries {
                unbonding += int("entry.balance", &entry.balance);
            }
        }
    }
    let not_bonded = node
        .balance(&module_address(NOT_BONDED_POOL), BOND_DENOM, at)
        .await;
    assert_eq!(
        not_bonded, unbonding,
        "not-bonded pool vs unbonding entries at height {h}"
    );
}

/// ujuno of the dev accounts at height `h`, to see that the simulation changes state.
async fn dev_balances(node: &TestNode, h: i64) -> Vec<u128> {
    let mut balances = Vec::new();
    for name in DEV_KEYS {
        balances.push(
            node.balance(&address(name), BOND_DENOM, At::Height(h))
                .await,
        );
    }
    balances
}

#[tokio::test]
async fn simulation_moves_state_and_conserves_ujuno() {
    let node = TestNode::start(TestNodeOptions {
        simulate: Some(20),
        ..TestNodeOptions::default()
    })
    .await;

    let mut holders = Holders::genesis();
    holders.scan_to(&node, 1).await;
    assert_eq!(
        holders.total(&node, 1).await,
        GENESIS_UJUNO_TOTAL,
        "height 1"
    );
    let first = dev_balances(&node, 1).await;

    let start = node.height().await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut sampled = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let h = node.height().await;
        if sampled.last() == Some(&h) {
            continue;
        }
        holders.scan_to(&node, h).await;
        assert_eq!(
            holders.total(&node, h).await,
            GENESIS_UJUNO_TOTAL,
            "ujuno over {} holders at height {h}",
            holders.addresses.len()
        );
        assert_pools_match_staking(&node, h).await;
        sampled.push(h);
    }

    let last = *sampled.last().expect("sampled at least one height");
    assert!(
        last >= start + 5,
        "200 ms blocks for 3 s: height went only from {start} to {last}"
    );
    assert!(sampled.len() >= 3, "sampled only {sampled:?}");
    let txs: usize = {
        let mut n = 0;
        for h in 2..=last {
            n += node.block_txs(h).await.len();
        }
        n
    };
    assert!(
        txs >= 20,
        "--simulate 20 committed only {txs} txs by height {last}"
    );
    assert_ne!(
        dev_balances(&node, last).await,
        first,
        "simulated traffic must change some dev balance by height {last}"
    );
}
