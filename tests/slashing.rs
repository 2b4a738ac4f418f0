//! End-to-end: `streamd dev slash` and `streamd.dev.v1.Dev/Slash` lower validator tokens and
//! every delegation's balance but no shares, and later delegations follow x/staking's
//! share arithmetic to the last digit.

mod support;

use stream_proto::streamd::dev::v1::SlashRequest;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO, SELF_BOND, address, valoper};
use support::dec::{dec_raw, delegation_balance, shares_for_tokens, slashed, truncated_value};
use support::queries::At;
use support::staking::{assert_pools, delegation, validator};
use support::{TestNode, stderr, stdout};

#[tokio::test]
async fn slash_lowers_tokens_and_every_delegation_balance_but_no_shares() {
    let node = TestNode::start_default().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "bob",
        "validator1",
        "1000000000ujuno",
    ])
    .await;
    let before = validator(&node, "validator1", At::Latest).await;
    assert_eq!(before, (11_000_000_000, dec_raw(11_000_000_000)));

    let output = node.cli(&["dev", "slash", "validator1", "0.1"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let text = stdout(&output);
    let json: serde_json::Value = serde_json::from_str(text.trim_end())
        .unwrap_or_else(|e| panic!("dev slash printed {text:?}: {e}"));
    assert_eq!(text.lines().count(), 1, "one JSON line: {text:?}");
    let n = json["height"].as_i64().expect("height");
    assert_eq!(
        json,
        serde_json::json!({"height": n, "burned": "1100000000", "tokens": "9900000000"})
    );
    assert_eq!(slashed(11_000_000_000, 1, 10), 1_100_000_000);

    let at = At::Height(n);
    assert_eq!(
        validator(&node, "validator1", At::Height(n - 1)).await,
        before
    );
    assert_eq!(
        validator(&node, "validator1", at).await,
        (9_900_000_000, dec_raw(11_000_000_000))
    );
    // Shares stay; balances follow tokens: shares x tokens / delegator_shares.
    assert_eq!(
        delegation(&node, "bob", "validator1", at).await,
        (dec_raw(1_000_000_000), 900_000_000)
    );
    assert_eq!(
        delegation(&node, "validator1", "validator1", at).await,
        (dec_raw(SELF_BOND), 9_000_000_000)
    );
    assert_eq!(
        delegation_balance(
            dec_raw(1_000_000_000),
            9_900_000_000,
            dec_raw(11_000_000_000)
        ),
        900_000_000
    );
    assert_eq!(
        node.balance(&address("bob"), BOND_DENOM, at).await,
        GENESIS_UJUNO - 1_000_000_000
    );
    assert_pools(&node, at, 9_900_000_000 + SELF_BOND, 0).await;

    // The same through gRPC `streamd.dev.v1.Dev/Slash`.
    let response = node
        .dev()
        .slash(SlashRequest {
            validator_address: valoper("validator2"),
            fraction: "0.5".into(),
        })
        .await
        .expect("Dev/Slash")
        .into_inner();
    assert!(response.height > n);
    assert_eq!(
        (response.burned.as_str(), response.tokens.as_str()),
        ("5000000000", "5000000000")
    );
    let at = At::Height(response.height);
    assert_eq!(
        validator(&node, "validator2", at).await,
        (5_000_000_000, dec_raw(SELF_BOND))
    );
    assert_eq!(
        delegation(&node, "validator2", "validator2", at).await,
        (dec_raw(SELF_BOND), 5_000_000_000)
    );
    assert_pools(&node, at, 9_900_000_000 + 5_000_000_000, 0).await;
}

#[tokio::test]
async fn delegations_after_a_slash_use_the_sdk_share_arithmetic() {
    let node = TestNode::start_default().await;
    let output = node.cli(&["dev", "slash", "validator1", "0.01"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    // 10000000000 tokens - 1% = 9900000000 tokens for 10^28 raw shares.
    let (tokens, shares) = validator(&node, "validator1", At::Latest).await;
    assert_eq!((tokens, shares), (9_900_000_000, dec_raw(SELF_BOND)));

    // Issued shares: delegator_shares x amount / tokens, truncated (QuoInt on the raw Dec).
    let h = node
        .tx_ok(&["staking", "delegate", "carol", "validator1", "2500000ujuno"])
        .await
        .height;
    let issued = shares_for_tokens(2_500_000, tokens, shares);
    assert_eq!(issued, 2_525_252_525_252_525_252_525_252);
    let (carol_shares, carol_balance) =
        delegation(&node, "carol", "validator1", At::Height(h)).await;
    assert_eq!(carol_shares, issued);
    let (tokens, shares) = validator(&node, "validator1", At::Height(h)).await;
    assert_eq!(
        (tokens, shares),
        (9_902_500_000, dec_raw(SELF_BOND) + issued)
    );
    // The delegation is worth a hair under 2500000 tokens, which both the SDK's rounding
    // (see the next test) and plain truncation report as 2499999.
    assert_eq!(
        (
            delegation_balance(issued, tokens, shares),
            truncated_value(issued, tokens, shares)
        ),
        (2_499_999, 2_499_999)
    );
    assert_eq!(carol_balance, 2_499_999);
}

#[tokio::test]
async fn delegation_balance_rounds_at_18_decimals_like_legacy_dec_quo() {
    // A case where the SDK's 18-decimal rounding and plain truncation disagree: after a 10%
    // slash of 11000000000 tokens, 1000000ujuno buys 1111111111111111111111111 raw shares
    // worth 999999.99999999999999999990...: the SDK reports 1000000, truncation 999999.
    let node = TestNode::start_default().await;
    node.tx_ok(&[
        "staking",
        "delegate",
        "bob",
        "validator1",
        "1000000000ujuno",
    ])
    .await;
    let output = node.cli(&["dev", "slash", "validator1", "0.1"]).await;
    assert!(
        output.status.success(),
        "dev slash failed: {}",
        stderr(&output)
    );
    let h = node
        .tx_ok(&["staking", "delegate", "carol", "validator1", "1000000ujuno"])
        .await
        .height;
    let (tokens, shares) = validator(&node, "validator1", At::Height(h)).await;
    let issued = 1_111_111_111_111_111_111_111_111;
    assert_eq!(
        shares_for_tokens(1_000_000, 9_900_000_000, dec_raw(11_000_000_000)),
        issued
    );
    assert_eq!(
        (tokens, shares),
        (9_901_000_000, dec_raw(11_000_000_000) + issued)
    );
    assert_eq!(
        (
            delegation_balance(issued, tokens, shares),
            truncated_value(issued, tokens, shares)
        ),
        (1_000_000, 999_999)
    );
    assert_eq!(
        delegation(&node, "carol", "validator1", At::Height(h)).await,
        (issued, 1_000_000),
        "x/staking: TokensFromShares = shares.MulInt(tokens).Quo(delegator_shares) rounds to 18 \
         decimals, then TruncateInt"
    );
}
