//! End-to-end: CometBFT's `[rpc] max_open_connections` and `max_subscriptions_per_client`
//! (config/config.toml) limit open gRPC streams: one over the limit gets RESOURCE_EXHAUSTED
//! with a message naming the setting, and a dropped stream frees its slot at once.

mod stream_support;
mod support;

use std::time::{Duration, Instant};

use stream_support::{Recorder, StreamKey, open_error};
use support::accounts::BOND_DENOM;
use support::{TestNode, TestNodeOptions};
use tonic::Code;
use tonic::transport::Channel;

/// Opens `key` and waits for its snapshot; fails the test if the node refuses it.
async fn admitted(channel: Channel, key: &StreamKey) -> Recorder {
    let mut recorder = Recorder::start(channel, key).await;
    recorder.next().await;
    recorder
}

/// Asserts the node refuses `key` with RESOURCE_EXHAUSTED naming `setting`.
async fn refused(channel: Channel, key: &StreamKey, setting: &str) {
    let status = open_error(channel, key).await;
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{key:?}: {status:?}"
    );
    assert!(
        status.message().contains(setting),
        "the refusal must name {setting}: {:?}",
        status.message()
    );
}

/// How soon a dropped stream's slot must be usable again. The client's reset travels to the
/// node asynchronously (and a new stream may come over another connection), so "at once" is
/// measured as: well within a block, with no change on the chain needed to notice it.
const SLOT_FREED_WITHIN: Duration = Duration::from_secs(2);

/// Opens `key` right after a slot was freed, retrying until [`SLOT_FREED_WITHIN`].
async fn admitted_at_once(channel: Channel, key: &StreamKey) -> Recorder {
    let started = Instant::now();
    loop {
        match Recorder::open(channel.clone(), key).await {
            Ok(mut recorder) => {
                recorder.next().await;
                eprintln!(
                    "{key:?}: admitted {:?} after the slot was freed",
                    started.elapsed()
                );
                return recorder;
            }
            Err(status) if started.elapsed() < SLOT_FREED_WITHIN => {
                assert_eq!(
                    status.code(),
                    Code::ResourceExhausted,
                    "{key:?}: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(status) => panic!(
                "a dropped stream must free its slot at once; {key:?} is still refused after \
                 {SLOT_FREED_WITHIN:?}: {status:?}"
            ),
        }
    }
}

#[tokio::test]
async fn max_open_connections_refuses_the_fourth_stream_until_one_is_dropped() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_open_connections", 3)
            .rpc("max_subscriptions_per_client", 0),
    )
    .await;
    let keys = [
        StreamKey::balance("alice", BOND_DENOM),
        StreamKey::delegations("bob"),
        StreamKey::unbonding_delegation("carol", "validator1"),
        StreamKey::all_balances("carol"),
    ];
    // Three clients, one stream each; the limit counts streams, whoever opens them.
    let mut open = vec![
        admitted(node.channel_from(2), &keys[0]).await,
        admitted(node.channel_from(3), &keys[1]).await,
        admitted(node.channel_from(3), &keys[2]).await,
    ];
    refused(node.channel_from(4), &keys[3], "max_open_connections").await;
    refused(node.channel_from(2), &keys[0], "max_open_connections").await;

    // Standard queries are not streams and are not limited.
    node.latest_block()
        .await
        .expect("standard queries answer while the stream limit is reached");

    // The chain is quiet (no traffic): nothing but the client's reset tells the node that
    // the stream is gone.
    open.remove(1).close().await;
    let fourth = admitted_at_once(node.channel_from(4), &keys[3]).await;
    refused(node.channel_from(5), &keys[1], "max_open_connections").await;
    fourth.close().await;
    for recorder in open {
        recorder.close().await;
    }
    // All three slots are back.
    let _again: Vec<Recorder> = vec![
        admitted_at_once(node.channel_from(6), &keys[0]).await,
        admitted_at_once(node.channel_from(6), &keys[1]).await,
        admitted_at_once(node.channel_from(7), &keys[2]).await,
    ];
}

#[tokio::test]
async fn max_subscriptions_per_client_refuses_the_third_stream_from_one_address() {
    let node = TestNode::start(
        TestNodeOptions::slow_unbonding()
            .rpc("max_subscriptions_per_client", 2)
            .rpc("max_open_connections", 4),
    )
    .await;
    let keys = [
        StreamKey::balance("alice", BOND_DENOM),
        StreamKey::delegation("alice", "validator1"),
        StreamKey::unbonding_delegations("bob"),
    ];
    // Two connections from 127.0.0.1: the limit is per client address, not per connection.
    let first_connection = node.channel_from(1);
    let second_connection = node.channel_from(1);
    let mut held = vec![
        admitted(first_connection.clone(), &keys[0]).await,
        admitted(second_connection.clone(), &keys[1]).await,
    ];
    for channel in [
        first_connection.clone(),
        second_connection.clone(),
        node.channel_from(1),
    ] {
        refused(channel, &keys[2], "max_subscriptions_per_client").await;
    }

    // Another client address has its own two; the refusals above hold no connection slot,
    // so they fill max_open_connections exactly.
    let _other = [
        admitted(node.channel_from(2), &keys[2]).await,
        admitted(node.channel_from(2), &keys[0]).await,
    ];
    refused(node.channel_from(3), &keys[1], "max_open_connections").await;

    // Dropping one of 127.0.0.1's streams gives it a slot back.
    held.remove(0).close().await;
    held.push(admitted_at_once(second_connection, &keys[2]).await);
    // Both limits are reached now; the client's own limit is checked first (a refused
    // stream never takes a connection slot).
    refused(first_connection, &keys[0], "max_subscriptions_per_client").await;
}
