//! End-to-end: malformed, mis-signed, replayed and unknown transactions and invalid query
//! addresses each get the precise Cosmos SDK error, and the node keeps producing blocks.

mod support;

use cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse;
use cosmrs::Any;
use support::TestNode;
use support::accounts::{BOND_DENOM, GENESIS_UJUNO, address, bech32, signing_key, valoper};
use support::queries::At;
use support::tx::{Signer, msg_send, sign, sign_for_chain, tx_hash};
use tonic::Code;

/// Asserts a CheckTx rejection: `code` in codespace "sdk", height 0, the tx's hash, and a log.
fn assert_rejected(response: &TxResponse, tx_bytes: &[u8], code: u32) {
    assert_eq!(
        (
            response.code,
            response.codespace.as_str(),
            response.height,
            response.txhash.as_str()
        ),
        (code, "sdk", 0, tx_hash(tx_bytes).as_str()),
        "CheckTx response: {response:?}"
    );
    assert!(
        !response.raw_log.is_empty(),
        "a rejection explains itself: {response:?}"
    );
}

/// The node still produces blocks and executes a valid signed send after the bad input.
async fn assert_still_healthy(node: &TestNode) {
    let h = node.height().await;
    node.wait_for_height(h + 3).await;
    let (bob, carol) = (address("bob"), address("carol"));
    let signer = node.signer("bob").await;
    let tx = sign(&signer, vec![msg_send(&bob, &carol, 42, BOND_DENOM)], "");
    let result = node.submit(tx).await;
    assert_eq!(
        (result.code, result.codespace.as_str()),
        (0, ""),
        "{result:?}"
    );
    let before = node
        .balance(&carol, BOND_DENOM, At::Height(result.height - 1))
        .await;
    assert_eq!(
        node.balance(&carol, BOND_DENOM, At::Height(result.height))
            .await,
        before + 42
    );
    let account = node.account(&bob).await.expect("bob's account");
    assert_eq!(account.sequence, signer.sequence + 1);
}

#[tokio::test]
async fn malformed_tx_bytes_get_code_2() {
    let node = TestNode::start_default().await;
    // An unterminated varint, an invalid wire type, and a TxRaw whose body is garbage.
    let bad_body = {
        use prost::Message;
        cosmos_sdk_proto::cosmos::tx::v1beta1::TxRaw {
            body_bytes: vec![0xff, 0xff, 0xff],
            auth_info_bytes: vec![0xff],
            signatures: vec![vec![0; 64]],
        }
        .encode_to_vec()
    };
    for tx in [vec![0xde, 0xad, 0xbe, 0xef], b"not a tx".to_vec(), bad_body] {
        let response = node.broadcast(tx.clone()).await;
        assert_rejected(&response, &tx, 2);
    }
    assert_still_healthy(&node).await;
}

#[tokio::test]
async fn a_signature_by_the_wrong_key_gets_code_4() {
    let node = TestNode::start_default().await;
    let alice = node.signer("alice").await;
    let send = || {
        vec![msg_send(
            &address("alice"),
            &address("carol"),
            1000,
            BOND_DENOM,
        )]
    };

    // Alice's public key and account, bob's signature.
    let forged = Signer {
        key: signing_key("bob"),
        ..Signer::dev("alice", alice.account_number, alice.sequence)
    };
    let wrong_key = sign(&forged, send(), "");
    // Alice's key, but the signature commits to another chain or another account number.
    let wrong_chain = sign_for_chain(&alice, send(), "", "other-chain-1");
    let wrong_number = sign(
        &Signer::dev("alice", alice.account_number + 1, alice.sequence),
        send(),
        "",
    );
    for tx in [wrong_key, wrong_chain, wrong_number] {
        let response = node.broadcast(tx.clone()).await;
        assert_rejected(&response, &tx, 4);
        let h = node.height().await;
        node.wait_for_height(h + 1).await;
        let lookup = node
            .get_tx(&tx_hash(&tx))
            .await
            .expect_err("never committed");
        assert_eq!(lookup.code(), Code::NotFound, "{lookup}");
    }
    let after = node.account(&address("alice")).await.expect("alice");
    assert_eq!(
        after.sequence, alice.sequence,
        "rejected txs do not consume a sequence"
    );
    assert_eq!(
        node.balance(&address("alice"), BOND_DENOM, At::Latest)
            .await,
        GENESIS_UJUNO
    );
    assert_still_healthy(&node).await;
}

#[tokio::test]
async fn replayed_and_out_of_order_sequences_get_code_32() {
    let node = TestNode::start_default().await;
    let alice = node.signer("alice").await;
    let (from, to) = (address("alice"), address("carol"));

    let tx = sign(&alice, vec![msg_send(&from, &to, 1000, BOND_DENOM)], "");
    let committed = node.submit(tx.clone()).await;
    assert_eq!(committed.code, 0, "{committed:?}");

    // The same bytes again, a new tx with the used sequence, and one from the future.
    let replay = node.broadcast(tx.clone()).await;
    assert_rejected(&replay, &tx, 32);
    let stale = sign(
        &alice,
        vec![msg_send(&from, &to, 2000, BOND_DENOM)],
        "stale",
    );
    assert_rejected(&node.broadcast(stale.clone()).await, &stale, 32);
    let future = sign(
        &Signer::dev("alice", alice.account_number, alice.sequence + 2),
        vec![msg_send(&from, &to, 3000, BOND_DENOM)],
        "",
    );
    assert_rejected(&node.broadcast(future.clone()).await, &future, 32);

    let h = node.height().await;
    node.wait_for_height(h + 2).await;
    assert_eq!(
        node.balance(&to, BOND_DENOM, At::Latest).await,
        GENESIS_UJUNO + 1000,
        "only the first broadcast moved coins"
    );
    let account = node.account(&from).await.expect("alice");
    assert_eq!(account.sequence, alice.sequence + 1);
    assert_still_healthy(&node).await;
}

#[tokio::test]
async fn an_unknown_message_type_gets_code_2() {
    let node = TestNode::start_default().await;
    let alice = node.signer("alice").await;
    let unknown = Any {
        type_url: "/cosmos.bank.v1beta1.MsgPrintMoney".into(),
        value: vec![0x0a, 0x03, b'x', b'y', b'z'],
    };
    let tx = sign(&alice, vec![unknown], "");
    assert_rejected(&node.broadcast(tx.clone()).await, &tx, 2);
    let after = node.account(&address("alice")).await.expect("alice");
    assert_eq!(after.sequence, alice.sequence);
    assert_still_healthy(&node).await;
}

#[tokio::test]
async fn invalid_addresses_in_queries_are_invalid_argument() {
    let node = TestNode::start_default().await;
    let alice = address("alice");
    let mut corrupted = alice.clone();
    let last = corrupted.pop().expect("non-empty");
    corrupted.push(if last == 'q' { 'p' } else { 'q' });
    let cosmos_prefix = bech32("cosmos", &[7; 20]);
    let bad_accounts = [
        "juno1invalid".to_owned(),
        corrupted,
        valoper("alice"),
        cosmos_prefix,
        String::new(),
    ];

    for bad in &bad_accounts {
        let balance = node.try_balance(bad, BOND_DENOM, At::Latest).await;
        assert_invalid(&format!("Balance {bad:?}"), balance.err());
        let account = node.account(bad).await;
        assert_invalid(&format!("Account {bad:?}"), account.err());
        let delegation = node
            .delegation(bad, &valoper("validator1"), At::Latest)
            .await;
        assert_invalid(&format!("Delegation delegator {bad:?}"), delegation.err());
        let unbonding = node
            .unbonding(bad, &valoper("validator1"), At::Latest)
            .await;
        assert_invalid(
            &format!("UnbondingDelegation delegator {bad:?}"),
            unbonding.err(),
        );
    }
    // A juno1 account address where a junovaloper operator address is expected.
    let as_validator = address("validator1");
    assert_invalid(
        "Delegation validator juno1",
        node.delegation(&alice, &as_validator, At::Latest)
            .await
            .err(),
    );
    assert_invalid(
        "Validator juno1",
        node.try_validator(&as_validator, At::Latest).await.err(),
    );
    assert_invalid(
        "Validator junovaloper1invalid",
        node.try_validator("junovaloper1invalid", At::Latest)
            .await
            .err(),
    );

    // Valid queries still answer afterwards, and blocks keep coming.
    assert_eq!(
        node.balance(&alice, BOND_DENOM, At::Latest).await,
        GENESIS_UJUNO
    );
    assert_still_healthy(&node).await;
}

#[tokio::test]
async fn get_tx_of_an_unknown_hash_is_not_found() {
    let node = TestNode::start_default().await;
    let missing = node.get_tx(&"AB".repeat(32)).await.expect_err("no such tx");
    assert_eq!(missing.code(), Code::NotFound, "{missing}");
}

fn assert_invalid(what: &str, error: Option<tonic::Status>) {
    match error {
        Some(status) => assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status}"),
        None => panic!("{what}: expected InvalidArgument, got an answer"),
    }
}
