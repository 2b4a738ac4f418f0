//! End-to-end: balance streams after bank sends: one message at the tx's height for the
//! sender and the recipient, none for blocks that change only other accounts, and one
//! message carrying the final value for a block with several changes.

mod stream_support;
mod support;

use stream_support::values::coin;
use stream_support::{Recorder, StreamKey, StreamValue, client_channel, expect_message};
use support::accounts::{ATOM_DENOM, BOND_DENOM, GENESIS_UATOM, GENESIS_UJUNO, address};
use support::tx::{msg_send, sign, tx_hash};
use support::{TestNode, TestNodeOptions};

fn balance(denom: &str, amount: u128) -> StreamValue {
    StreamValue::Balance(coin(denom, amount))
}

fn all_balances(uatom: u128, ujuno: u128) -> StreamValue {
    StreamValue::AllBalances(vec![coin(ATOM_DENOM, uatom), coin(BOND_DENOM, ujuno)])
}

/// Opens `key` from client address 127.0.0.`client` and checks its snapshot is `value` at a
/// committed height, as the standard queries answer it there.
async fn subscribe(node: &TestNode, client: u8, key: StreamKey, value: StreamValue) -> Recorder {
    let mut recorder = Recorder::start(client_channel(node.grpc_addr(), client), &key).await;
    let first = recorder.next().await;
    assert_eq!(first.value, value, "{} {key:?}: snapshot", key.rpc());
    stream_support::assert_committed(node, &key, &first).await;
    recorder
}

#[tokio::test]
async fn a_send_updates_the_sender_and_the_recipient_at_the_tx_height() {
    let node = TestNode::start_default().await;
    let g = GENESIS_UJUNO;
    let mut alice = subscribe(
        &node,
        2,
        StreamKey::balance("alice", BOND_DENOM),
        balance(BOND_DENOM, g),
    )
    .await;
    let mut alice_all = subscribe(
        &node,
        2,
        StreamKey::all_balances("alice"),
        all_balances(GENESIS_UATOM, g),
    )
    .await;
    let mut alice_atom = subscribe(
        &node,
        2,
        StreamKey::balance("alice", ATOM_DENOM),
        balance(ATOM_DENOM, GENESIS_UATOM),
    )
    .await;
    let mut bob = subscribe(
        &node,
        3,
        StreamKey::balance("bob", BOND_DENOM),
        balance(BOND_DENOM, g),
    )
    .await;
    let mut bob_all = subscribe(
        &node,
        3,
        StreamKey::all_balances("bob"),
        all_balances(GENESIS_UATOM, g),
    )
    .await;
    // A denom nobody holds: "0", and no message while other denoms move.
    let mut bob_foo = subscribe(
        &node,
        3,
        StreamKey::balance("bob", "ufoo"),
        balance("ufoo", 0),
    )
    .await;

    let h1 = node
        .tx_ok(&["bank", "send", "alice", "bob", "1000ujuno"])
        .await
        .height;
    expect_message(&node, &mut alice, h1, balance(BOND_DENOM, g - 1000)).await;
    expect_message(
        &node,
        &mut alice_all,
        h1,
        all_balances(GENESIS_UATOM, g - 1000),
    )
    .await;
    expect_message(&node, &mut bob, h1, balance(BOND_DENOM, g + 1000)).await;
    expect_message(
        &node,
        &mut bob_all,
        h1,
        all_balances(GENESIS_UATOM, g + 1000),
    )
    .await;

    // uatom moves: the ujuno streams stay silent, the uatom stream (silent at h1) speaks.
    let h2 = node
        .tx_ok(&["bank", "send", "alice", &address("bob"), "25uatom"])
        .await
        .height;
    expect_message(
        &node,
        &mut alice_atom,
        h2,
        balance(ATOM_DENOM, GENESIS_UATOM - 25),
    )
    .await;
    expect_message(
        &node,
        &mut alice_all,
        h2,
        all_balances(GENESIS_UATOM - 25, g - 1000),
    )
    .await;
    expect_message(
        &node,
        &mut bob_all,
        h2,
        all_balances(GENESIS_UATOM + 25, g + 1000),
    )
    .await;

    // Bob sends everything back: amounts return to genesis, the stream says so.
    let h3 = node
        .tx_ok(&["bank", "send", "bob", "alice", "1000ujuno"])
        .await
        .height;
    expect_message(&node, &mut alice, h3, balance(BOND_DENOM, g)).await;
    expect_message(&node, &mut bob, h3, balance(BOND_DENOM, g)).await;
    expect_message(
        &node,
        &mut alice_all,
        h3,
        all_balances(GENESIS_UATOM - 25, g),
    )
    .await;
    expect_message(&node, &mut bob_all, h3, all_balances(GENESIS_UATOM + 25, g)).await;

    // alice gives away all her uatom: the balance reads "0" and leaves the list.
    let rest = format!("{}uatom", GENESIS_UATOM - 25);
    let h4 = node
        .tx_ok(&["bank", "send", "alice", "bob", &rest])
        .await
        .height;
    expect_message(&node, &mut alice_atom, h4, balance(ATOM_DENOM, 0)).await;
    let only_ujuno = StreamValue::AllBalances(vec![coin(BOND_DENOM, g)]);
    expect_message(&node, &mut alice_all, h4, only_ujuno).await;
    expect_message(&node, &mut bob_all, h4, all_balances(2 * GENESIS_UATOM, g)).await;

    // Nothing moved ujuno or ufoo since h3.
    node.wait_for_height(h4 + 3).await;
    for recorder in [&mut alice, &mut bob, &mut bob_foo] {
        assert_eq!(
            recorder.pending(),
            None,
            "{:?}: no change since",
            recorder.key
        );
    }
}

#[tokio::test]
async fn no_message_for_blocks_that_change_only_other_accounts() {
    let node = TestNode::start_default().await;
    let g = GENESIS_UJUNO;
    let mut alice = subscribe(
        &node,
        2,
        StreamKey::balance("alice", BOND_DENOM),
        balance(BOND_DENOM, g),
    )
    .await;
    let mut alice_all = subscribe(
        &node,
        2,
        StreamKey::all_balances("alice"),
        all_balances(GENESIS_UATOM, g),
    )
    .await;

    // Blocks that change bob and carol only (and the staking pools), several blocks long.
    let unrelated = node
        .tx_ok(&["bank", "send", "carol", "bob", "700ujuno"])
        .await
        .height;
    node.tx_ok(&["staking", "delegate", "bob", "validator1", "5000000ujuno"])
        .await;
    node.wait_for_height(unrelated + 5).await;

    // The next message is for alice's own change, not for any block in between.
    let h = node
        .tx_ok(&["bank", "send", "carol", "alice", "300ujuno"])
        .await
        .height;
    expect_message(&node, &mut alice, h, balance(BOND_DENOM, g + 300)).await;
    expect_message(
        &node,
        &mut alice_all,
        h,
        all_balances(GENESIS_UATOM, g + 300),
    )
    .await;
}

#[tokio::test]
async fn a_block_with_several_changes_gives_one_message_with_the_final_value() {
    // Longer blocks so that two txs broadcast back to back land in the same block.
    let node = TestNode::start(TestNodeOptions {
        block_time: "1s",
        ..TestNodeOptions::default()
    })
    .await;
    let alice_addr = address("alice");
    let mut expected_alice = GENESIS_UJUNO;
    let (mut expected_bob, mut expected_carol) = (GENESIS_UJUNO, GENESIS_UJUNO);
    let mut alice = subscribe(
        &node,
        2,
        StreamKey::balance("alice", BOND_DENOM),
        balance(BOND_DENOM, expected_alice),
    )
    .await;
    let mut alice_all = subscribe(
        &node,
        2,
        StreamKey::all_balances("alice"),
        all_balances(GENESIS_UATOM, expected_alice),
    )
    .await;
    let mut bob = subscribe(
        &node,
        3,
        StreamKey::balance("bob", BOND_DENOM),
        balance(BOND_DENOM, expected_bob),
    )
    .await;
    let mut carol = subscribe(
        &node,
        3,
        StreamKey::balance("carol", BOND_DENOM),
        balance(BOND_DENOM, expected_carol),
    )
    .await;

    // Two txs from alice (sequences n and n+1) broadcast without waiting. Should a block
    // boundary fall between them, each block gets its own message; try again.
    const ATTEMPTS: usize = 5;
    let mut same_block = None;
    for attempt in 1..=ATTEMPTS {
        let signer = node.signer("alice").await;
        let first = sign(
            &signer,
            vec![msg_send(&alice_addr, &address("bob"), 1111, BOND_DENOM)],
            "",
        );
        let mut second_signer = signer;
        second_signer.sequence += 1;
        let second = sign(
            &second_signer,
            vec![msg_send(&alice_addr, &address("carol"), 2222, BOND_DENOM)],
            "",
        );
        let (hash1, hash2) = (tx_hash(&first), tx_hash(&second));
        for tx in [first, second] {
            let check = node.broadcast(tx).await;
            assert_eq!(check.code, 0, "CheckTx: {}", check.raw_log);
        }
        let r1 = node.wait_tx(&hash1).await;
        let r2 = node.wait_tx(&hash2).await;
        assert_eq!((r1.code, r2.code), (0, 0), "{r1:?} {r2:?}");
        expected_bob += 1111;
        expected_carol += 2222;
        expect_message(
            &node,
            &mut bob,
            r1.height,
            balance(BOND_DENOM, expected_bob),
        )
        .await;
        expect_message(
            &node,
            &mut carol,
            r2.height,
            balance(BOND_DENOM, expected_carol),
        )
        .await;
        if r1.height == r2.height {
            expected_alice -= 1111 + 2222;
            same_block = Some(r1.height);
            break;
        }
        eprintln!(
            "attempt {attempt}: the two txs landed in blocks {} and {}",
            r1.height, r2.height
        );
        expected_alice -= 1111;
        expect_message(
            &node,
            &mut alice,
            r1.height,
            balance(BOND_DENOM, expected_alice),
        )
        .await;
        expect_message(
            &node,
            &mut alice_all,
            r1.height,
            all_balances(GENESIS_UATOM, expected_alice),
        )
        .await;
        expected_alice -= 2222;
        expect_message(
            &node,
            &mut alice,
            r2.height,
            balance(BOND_DENOM, expected_alice),
        )
        .await;
        expect_message(
            &node,
            &mut alice_all,
            r2.height,
            all_balances(GENESIS_UATOM, expected_alice),
        )
        .await;
    }
    let h =
        same_block.unwrap_or_else(|| panic!("two txs never shared a block in {ATTEMPTS} attempts"));
    expect_message(&node, &mut alice, h, balance(BOND_DENOM, expected_alice)).await;
    expect_message(
        &node,
        &mut alice_all,
        h,
        all_balances(GENESIS_UATOM, expected_alice),
    )
    .await;

    // One tx with three messages touching alice: out, in (from herself: net zero), out.
    let signer = node.signer("alice").await;
    let tx = sign(
        &signer,
        vec![
            msg_send(&alice_addr, &address("bob"), 10, BOND_DENOM),
            msg_send(&alice_addr, &alice_addr, 5, BOND_DENOM),
            msg_send(&alice_addr, &address("bob"), 20, ATOM_DENOM),
        ],
        "",
    );
    let result = node.submit(tx).await;
    assert_eq!(result.code, 0, "{result:?}");
    let h2 = result.height;
    expected_alice -= 10;
    expected_bob += 10;
    expect_message(&node, &mut alice, h2, balance(BOND_DENOM, expected_alice)).await;
    expect_message(
        &node,
        &mut alice_all,
        h2,
        all_balances(GENESIS_UATOM - 20, expected_alice),
    )
    .await;
    expect_message(&node, &mut bob, h2, balance(BOND_DENOM, expected_bob)).await;

    // The only message for those blocks was the one above: the next is for a later block.
    let h3 = node
        .tx_ok(&["bank", "send", "carol", "alice", "1ujuno"])
        .await
        .height;
    expect_message(
        &node,
        &mut alice,
        h3,
        balance(BOND_DENOM, expected_alice + 1),
    )
    .await;
    assert_eq!(carol.next().await.height, h3);
}
