//! End-to-end: slashing a validator (`streamd dev slash`) changes the `balance` of every
//! delegation to it on the streams, in the slash's block, with the shares unchanged; later
//! delegations follow the SDK's LegacyDec arithmetic to the last digit.

mod stream_support;
mod support;

use stream_support::StreamKey;
use stream_support::StreamValue::{self, Delegation, Delegations};
use stream_support::values::{coin, delegation};
use stream_support::watch::Watch;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO, SELF_BOND};
use support::dec::{dec_raw, delegation_balance, shares_for_tokens, slashed, truncated_value};
use support::{TestNode, stderr, stdout};

/// `streamd dev slash VALIDATOR FRACTION`; the height of the block that slashed.
async fn slash(node: &TestNode, validator: &str, fraction: &str) -> i64 {
    let output = node.cli(&["dev", "slash", validator, fraction]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let json: serde_json::Value =
        serde_json::from_str(stdout(&output).trim_end()).expect("dev slash prints JSON");
    json["height"].as_i64().expect("height")
}

/// Alice's and bob's delegations to validator1 and what the streams must show.
struct Validator1 {
    tokens: u128,
    /// Raw delegator shares (x 10^18).
    shares: u128,
    alice: u128,
    bob: u128,
    alice_balance: u128,
}

impl Validator1 {
    fn values(&self) -> Vec<StreamValue> {
        let value = |shares| delegation_balance(shares, self.tokens, self.shares);
        let alice = delegation("alice", "validator1", self.alice, value(self.alice));
        let bob = delegation("bob", "validator1", self.bob, value(self.bob));
        vec![
            Delegations(vec![alice.clone()]),
            Delegation(Some(alice)),
            Delegation(None),
            Delegation(Some(bob)),
            StreamValue::Balance(coin(BOND_DENOM, self.alice_balance)),
        ]
    }
}

#[tokio::test]
async fn slash_changes_delegation_balances_but_not_shares() {
    let node = TestNode::start_default().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "alice",
        "validator1",
        "10000000ujuno",
    ])
    .await;
    let h = node
        .tx_ok(&[
            "staking",
            "delegate",
            "bob",
            "validator1",
            "1000000000ujuno",
        ])
        .await
        .height;
    node.wait_for_height(h + 2).await;
    let mut v1 = Validator1 {
        tokens: SELF_BOND + 10_000_000 + 1_000_000_000,
        shares: dec_raw(SELF_BOND + 10_000_000 + 1_000_000_000),
        alice: dec_raw(10_000_000),
        bob: dec_raw(1_000_000_000),
        alice_balance: GENESIS_UJUNO - 10_000_000,
    };
    let keys = [
        ("alice's delegations", StreamKey::delegations("alice")),
        (
            "alice to validator1",
            StreamKey::delegation("alice", "validator1"),
        ),
        (
            "alice to validator2",
            StreamKey::delegation("alice", "validator2"),
        ),
        (
            "bob to validator1",
            StreamKey::delegation("bob", "validator1"),
        ),
        ("alice's balance", StreamKey::balance("alice", BOND_DENOM)),
    ];
    let streams = keys
        .into_iter()
        .zip(v1.values())
        .map(|((label, key), value)| (label, key, value))
        .collect();
    let mut watch = Watch::open(&node, 2, streams).await;

    // 10% of validator1's 11010000000 tokens burn; nobody's shares change.
    let hs = slash(&node, "validator1", "0.1").await;
    v1.tokens -= slashed(v1.tokens, 1, 10);
    assert_eq!(v1.tokens, 9_909_000_000);
    let values = v1.values();
    assert_eq!(
        values[1],
        Delegation(Some(delegation(
            "alice",
            "validator1",
            dec_raw(10_000_000),
            9_000_000
        )))
    );
    let changed = watch.block(&node, hs, values).await;
    assert_eq!(
        changed,
        [
            "alice's delegations",
            "alice to validator1",
            "bob to validator1"
        ]
    );

    // New shares after the slash: delegator_shares x amount / tokens, truncated. Every
    // delegation's balance is recomputed with the validator's new tokens and shares (bob's
    // may move by rounding; the model says whether it does).
    let h = node
        .tx_ok(&["staking", "delegate", "alice", "validator1", "3333333ujuno"])
        .await
        .height;
    let issued = shares_for_tokens(3_333_333, v1.tokens, v1.shares);
    v1.tokens += 3_333_333;
    v1.shares += issued;
    v1.alice += issued;
    v1.alice_balance -= 3_333_333;
    let changed = watch.block(&node, h, v1.values()).await;
    assert!(
        changed.starts_with(&["alice's delegations", "alice to validator1"])
            && changed.ends_with(&["alice's balance"]),
        "{changed:?}"
    );

    // Slashing validator2 reaches none of these streams.
    let hs2 = slash(&node, "validator2", "0.5").await;
    watch.assert_quiet(&node, hs2).await;
}

#[tokio::test]
async fn a_delegation_made_after_subscribing_follows_its_validator_until_removed() {
    let node = TestNode::start_default().await;
    let carol = |amount: u128, tokens: u128, shares: u128| {
        delegation(
            "carol",
            "validator2",
            amount,
            delegation_balance(amount, tokens, shares),
        )
    };
    let streams = vec![
        (
            "carol's delegations",
            StreamKey::delegations("carol"),
            Delegations(vec![]),
        ),
        (
            "carol to validator2",
            StreamKey::delegation("carol", "validator2"),
            Delegation(None),
        ),
    ];
    let mut watch = Watch::open(&node, 2, streams).await;

    let h = node
        .tx_ok(&["staking", "delegate", "carol", "validator2", "5000000ujuno"])
        .await
        .height;
    let (mut tokens, mut shares) = (SELF_BOND + 5_000_000, dec_raw(SELF_BOND + 5_000_000));
    let d = carol(dec_raw(5_000_000), tokens, shares);
    let values = vec![Delegations(vec![d.clone()]), Delegation(Some(d))];
    assert_eq!(watch.block(&node, h, values).await.len(), 2);

    // The new delegation is indexed under its validator: a slash reaches it.
    let hs = slash(&node, "validator2", "0.5").await;
    tokens -= slashed(tokens, 1, 2);
    let d = carol(dec_raw(5_000_000), tokens, shares);
    assert_eq!(d.balance, Some(coin(BOND_DENOM, 2_500_000)));
    let values = vec![Delegations(vec![d.clone()]), Delegation(Some(d))];
    assert_eq!(watch.block(&node, hs, values).await.len(), 2);

    // Undelegating all of it (2500000 tokens = all shares) removes it: found=false.
    let h = node
        .tx_ok(&["staking", "unbond", "carol", "validator2", "2500000ujuno"])
        .await
        .height;
    let values = vec![Delegations(vec![]), Delegation(None)];
    assert_eq!(watch.block(&node, h, values).await.len(), 2);
    tokens -= 2_500_000;
    shares -= dec_raw(5_000_000);
    assert_eq!((tokens, shares), (SELF_BOND / 2, dec_raw(SELF_BOND)));

    // A later slash of validator2 has nothing of carol's left to change.
    let hs2 = slash(&node, "validator2", "0.1").await;
    watch.assert_quiet(&node, hs2).await;
}

#[tokio::test]
async fn the_streamed_balance_rounds_at_18_decimals_like_the_standard_query() {
    // The case where x/staking's rounding and a plain floor disagree (tests/slashing.rs):
    // after a 10% slash of 11000000000 tokens, 1000000ujuno buys 1111111111111111111111111
    // raw shares worth 999999.9999999999999999999...; x/staking reports 1000000, a floor
    // 999999. The stream computes it in the module, the standard query in the node (its own
    // LegacyDec), the expected value in the tests (a third implementation): a divergence of
    // any one of them fails here.
    let node = TestNode::start_default().await;
    let streams = vec![
        (
            "carol's delegations",
            StreamKey::delegations("carol"),
            Delegations(vec![]),
        ),
        (
            "carol to validator1",
            StreamKey::delegation("carol", "validator1"),
            Delegation(None),
        ),
    ];
    let mut watch = Watch::open(&node, 2, streams).await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "bob",
        "validator1",
        "1000000000ujuno",
    ])
    .await;
    let hs = slash(&node, "validator1", "0.1").await;
    watch.assert_quiet(&node, hs).await;

    let h = node
        .tx_ok(&["staking", "delegate", "carol", "validator1", "1000000ujuno"])
        .await
        .height;
    let (tokens, shares) = (9_901_000_000, dec_raw(11_000_000_000));
    let issued = shares_for_tokens(1_000_000, tokens - 1_000_000, shares);
    assert_eq!(issued, 1_111_111_111_111_111_111_111_111);
    let shares = shares + issued;
    assert_eq!(
        (
            delegation_balance(issued, tokens, shares),
            truncated_value(issued, tokens, shares)
        ),
        (1_000_000, 999_999),
        "a case where the rounding matters"
    );
    let d = delegation("carol", "validator1", issued, 1_000_000);
    let values = vec![Delegations(vec![d.clone()]), Delegation(Some(d))];
    assert_eq!(watch.block(&node, h, values).await.len(), 2);
}
