//! End-to-end consistency under load: while `--simulate` fills every short block with sends,
//! delegations, undelegations, redelegations and cancellations, several clients keep opening
//! and dropping streams of random kinds and keys. Afterwards every message received must be
//! what the standard queries answer at its height, heights must strictly increase, and no
//! change may be missing: between two consecutive messages at h1 < h2 the standard answer at
//! every height in [h1, h2) is the first message's value.

mod stream_support;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stream_support::{
    Recorder, StreamKey, StreamMessage, StreamValue, client_channel, standard_value,
};
use support::accounts::{ATOM_DENOM, BOND_DENOM, DEV_KEYS, VALIDATORS};
use support::{TestNode, TestNodeOptions};

/// How long the clients subscribe and unsubscribe.
const RUN: Duration = Duration::from_secs(12);
/// Concurrent clients, each from its own loopback address.
const CLIENTS: u8 = 4;
/// Streams a client holds at most (the node's default limit per client address is 5).
const MAX_OPEN: usize = 4;

/// SplitMix64: reproducible choices without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn key(&mut self) -> StreamKey {
        let name = *self.pick(&DEV_KEYS);
        let validator = *self.pick(&VALIDATORS);
        let denom = *self.pick(&[BOND_DENOM, ATOM_DENOM]);
        match self.below(6) {
            0 => StreamKey::balance(name, denom),
            1 => StreamKey::all_balances(name),
            2 => StreamKey::delegations(name),
            3 => StreamKey::delegation(name, validator),
            4 => StreamKey::unbonding_delegations(name),
            _ => StreamKey::unbonding_delegation(name, validator),
        }
    }
}

/// Everything one stream delivered while it was open.
struct Finished {
    key: StreamKey,
    messages: Vec<StreamMessage>,
}

fn finish(mut recorder: Recorder) -> Finished {
    while recorder.pending().is_some() {}
    Finished {
        key: recorder.key.clone(),
        messages: recorder.received().to_vec(),
    }
}

/// One client: opens streams to random keys and drops them again until `until`.
async fn client(grpc: SocketAddr, id: u8, until: Instant) -> Vec<Finished> {
    let mut rng = Rng(0xC0FFEE + u64::from(id));
    let channel = client_channel(grpc, 10 + id);
    let mut open: Vec<Recorder> = Vec::new();
    let mut done = Vec::new();
    while Instant::now() < until {
        if open.len() < MAX_OPEN && (open.is_empty() || rng.below(3) == 0) {
            let key = rng.key();
            let mut recorder = Recorder::open(channel.clone(), &key)
                .await
                .unwrap_or_else(|s| panic!("client {id}: {} {key:?} refused: {s:?}", key.rpc()));
            // Every stream starts with its snapshot.
            recorder.next().await;
            open.push(recorder);
        } else if !open.is_empty() && rng.below(3) == 0 {
            let i = rng.below(open.len() as u64) as usize;
            done.push(finish(open.swap_remove(i)));
        } else {
            let wait = Duration::from_millis(20 + rng.below(300));
            tokio::time::sleep(wait).await;
            for recorder in &mut open {
                while recorder.pending().is_some() {}
            }
        }
    }
    done.extend(open.into_iter().map(finish));
    done
}

#[tokio::test]
async fn every_message_matches_the_standard_queries_and_no_change_is_missed() {
    let node = Arc::new(
        TestNode::start(TestNodeOptions {
            block_time: "100ms",
            unbonding_time: "2s",
            simulate: Some(50),
            ..TestNodeOptions::default()
        })
        .await,
    );
    let start_height = node.height().await;
    let until = Instant::now() + RUN;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| tokio::spawn(client(node.grpc_addr(), id, until)))
        .collect();
    let mut streams = Vec::new();
    for c in clients {
        streams.extend(
            c.await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        );
    }
    let end_height = node.height().await;

    // What the streams claim, per key and height: a message's value at its own height and
    // at every height up to (not including) the stream's next message.
    let mut claims: BTreeMap<StreamKey, BTreeMap<i64, Vec<(StreamValue, String)>>> =
        BTreeMap::new();
    let mut changes: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut opened: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (n, stream) in streams.iter().enumerate() {
        *opened.entry(stream.key.rpc()).or_default() += 1;
        *changes.entry(stream.key.rpc()).or_default() += stream.messages.len().saturating_sub(1);
        let claimed = claims.entry(stream.key.clone()).or_default();
        for (i, message) in stream.messages.iter().enumerate() {
            let next = stream
                .messages
                .get(i + 1)
                .map_or(message.height + 1, |m| m.height);
            for h in message.height..next {
                let origin = if h == message.height {
                    format!("stream #{n}, message {i} (height {})", message.height)
                } else {
                    format!(
                        "stream #{n}: no message between heights {} and {next}",
                        message.height
                    )
                };
                claimed
                    .entry(h)
                    .or_default()
                    .push((message.value.clone(), origin));
            }
        }
    }

    // Check every claim against the standard queries, one task per key.
    let mut checks = tokio::task::JoinSet::new();
    let mut heights_checked = 0;
    for (key, claimed) in claims {
        heights_checked += claimed.len();
        let node = node.clone();
        checks.spawn(async move {
            for (h, claims) in claimed {
                let standard = standard_value(&node, &key, h).await;
                for (value, origin) in claims {
                    assert_eq!(
                        value,
                        standard,
                        "{} {key:?} at height {h}: {origin}; the stream's value differs from \
                         the standard query's",
                        key.rpc()
                    );
                }
            }
        });
    }
    while let Some(result) = checks.join_next().await {
        result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }

    let total_changes: usize = changes.values().sum();
    eprintln!(
        "consistency: heights {start_height}..{end_height}, {} streams {opened:?}, {total_changes} \
         change messages {changes:?}, {heights_checked} (key, height) pairs checked",
        streams.len()
    );
    let kinds: BTreeSet<&str> = opened.keys().copied().collect();
    assert_eq!(
        kinds.len(),
        6,
        "every kind of stream was opened: {opened:?}"
    );
    assert!(
        end_height - start_height >= 20,
        "the chain moved: {start_height}..{end_height}"
    );
    assert!(total_changes >= 20, "the streams saw changes: {changes:?}");
}
