//! End-to-end: bank sends through `streamd tx bank send`, checked with Balance/AllBalances at
//! the tx's height and the one before, new accounts, insufficient funds and sequences.

mod support;

use cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey;
use prost::Message;
use support::TestNode;
use support::accounts::{
    ATOM_DENOM, BOND_DENOM, GENESIS_UATOM, GENESIS_UJUNO, address, signing_key,
};
use support::queries::At;

#[tokio::test]
async fn send_moves_exactly_the_amount_at_the_tx_height() {
    let node = TestNode::start_default().await;
    let (alice, bob) = (address("alice"), address("bob"));

    let sent = node
        .tx_ok(&["bank", "send", "alice", "bob", "1234567ujuno"])
        .await;
    assert_eq!(sent.raw_log, "");
    let h = sent.height;

    // The block result is what GetTx reports for the same hash.
    let result = node
        .get_tx(&sent.txhash)
        .await
        .expect("committed tx is found");
    assert_eq!(
        (result.height, result.code, result.txhash.as_str()),
        (h, 0, sent.txhash.as_str())
    );

    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Height(h - 1)).await,
        GENESIS_UJUNO
    );
    assert_eq!(
        node.balance(&bob, BOND_DENOM, At::Height(h - 1)).await,
        GENESIS_UJUNO
    );
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Height(h)).await,
        GENESIS_UJUNO - 1_234_567
    );
    assert_eq!(
        node.balance(&bob, BOND_DENOM, At::Height(h)).await,
        GENESIS_UJUNO + 1_234_567
    );

    // Other denoms are untouched; AllBalances lists denoms in order.
    assert_eq!(
        node.all_balances(&alice, At::Height(h)).await,
        [
            (ATOM_DENOM.to_owned(), GENESIS_UATOM),
            (BOND_DENOM.to_owned(), GENESIS_UJUNO - 1_234_567)
        ]
    );
    assert_eq!(
        node.all_balances(&bob, At::Height(h - 1)).await,
        [
            (ATOM_DENOM.to_owned(), GENESIS_UATOM),
            (BOND_DENOM.to_owned(), GENESIS_UJUNO)
        ]
    );

    // Later blocks keep the new balances.
    node.wait_for_height(h + 2).await;
    assert_eq!(
        node.balance(&bob, BOND_DENOM, At::Latest).await,
        GENESIS_UJUNO + 1_234_567
    );
}

#[tokio::test]
async fn send_to_a_juno_address_and_a_second_denom() {
    let node = TestNode::start_default().await;
    let carol = address("carol");

    let sent = node
        .tx_ok(&["bank", "send", "bob", &carol, "250uatom"])
        .await;
    let h = sent.height;
    assert_eq!(
        node.all_balances(&carol, At::Height(h)).await,
        [
            (ATOM_DENOM.to_owned(), GENESIS_UATOM + 250),
            (BOND_DENOM.to_owned(), GENESIS_UJUNO)
        ]
    );
    assert_eq!(
        node.balance(&address("bob"), ATOM_DENOM, At::Height(h))
            .await,
        GENESIS_UATOM - 250
    );
}

#[tokio::test]
async fn send_to_a_fresh_address_creates_its_account() {
    let node = TestNode::start_default().await;
    let fresh = signing_key("e2e-fresh-account")
        .public_key()
        .account_id("juno")
        .expect("account id")
        .to_string();

    let missing = node
        .account(&fresh)
        .await
        .expect_err("no account before the send");
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing}");
    assert_eq!(node.balance(&fresh, BOND_DENOM, At::Latest).await, 0);
    assert_eq!(node.all_balances(&fresh, At::Latest).await, []);

    let sent = node
        .tx_ok(&["bank", "send", "alice", &fresh, "1000ujuno"])
        .await;
    assert_eq!(
        node.balance(&fresh, BOND_DENOM, At::Height(sent.height))
            .await,
        1000
    );
    assert_eq!(
        node.all_balances(&fresh, At::Height(sent.height)).await,
        [(BOND_DENOM.to_owned(), 1000)]
    );
    assert_eq!(
        node.balance(&fresh, BOND_DENOM, At::Height(sent.height - 1))
            .await,
        0
    );

    let account = node
        .account(&fresh)
        .await
        .expect("account exists after the send");
    assert_eq!(account.address, fresh);
    assert_eq!(account.pub_key, None, "no pubkey until the account signs");
    assert_eq!(account.sequence, 0);
    // A new account number follows every genesis account's.
    for name in support::accounts::DEV_KEYS {
        let dev = node.account(&address(name)).await.expect("dev account");
        assert!(
            account.account_number > dev.account_number,
            "new account number {} must exceed {name}'s {}",
            account.account_number,
            dev.account_number
        );
    }
}

#[tokio::test]
async fn insufficient_funds_fails_with_code_5_and_changes_no_balance() {
    let node = TestNode::start_default().await;
    let (carol, bob) = (address("carol"), address("bob"));
    let before = node.account(&carol).await.expect("carol's account");

    let too_much = format!("{}ujuno", GENESIS_UJUNO + 1);
    let failed = node.tx(&["bank", "send", "carol", "bob", &too_much]).await;
    assert_eq!(
        (failed.code, failed.codespace.as_str()),
        (5, "sdk"),
        "{failed:?}"
    );
    assert!(!failed.raw_log.is_empty(), "a failure explains itself");
    let h = failed.height;

    let result = node
        .get_tx(&failed.txhash)
        .await
        .expect("failed tx is committed");
    assert_eq!(
        (result.height, result.code, result.codespace.as_str()),
        (h, 5, "sdk")
    );

    for (who, addr) in [("carol", &carol), ("bob", &bob)] {
        assert_eq!(
            node.all_balances(addr, At::Height(h)).await,
            [
                (ATOM_DENOM.to_owned(), GENESIS_UATOM),
                (BOND_DENOM.to_owned(), GENESIS_UJUNO)
            ],
            "{who}'s balances must not change"
        );
    }
    // As in the SDK, the ante handler's sequence increment survives the failed message.
    let after = node.account(&carol).await.expect("carol's account");
    assert_eq!(after.sequence, before.sequence + 1);
}

#[tokio::test]
async fn each_tx_increments_the_sender_sequence() {
    let node = TestNode::start_default().await;
    let alice = address("alice");
    let genesis = node.account(&alice).await.expect("alice's account");
    assert_eq!(genesis.address, alice);
    assert_eq!(
        genesis.sequence, 0,
        "alice has not signed anything at genesis"
    );

    node.tx_ok(&["bank", "send", "alice", "bob", "1ujuno"])
        .await;
    let one = node.account(&alice).await.expect("alice's account");
    assert_eq!(
        (one.account_number, one.sequence),
        (genesis.account_number, 1)
    );
    let pub_key = one
        .pub_key
        .expect("the first signed tx stores alice's pubkey");
    assert_eq!(pub_key.type_url, "/cosmos.crypto.secp256k1.PubKey");
    assert_eq!(
        PubKey::decode(pub_key.value.as_slice())
            .expect("PubKey decodes")
            .key,
        signing_key("alice").public_key().to_bytes(),
        "the stored pubkey is alice's 33-byte compressed key"
    );

    node.tx_ok(&["bank", "send", "alice", "carol", "2ujuno"])
        .await;
    assert_eq!(node.account(&alice).await.expect("alice").sequence, 2);
    // The receiver's sequence does not move.
    assert_eq!(
        node.account(&address("bob")).await.expect("bob").sequence,
        0
    );
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Latest).await,
        GENESIS_UJUNO - 3
    );
}
