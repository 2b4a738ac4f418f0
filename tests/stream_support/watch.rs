//! `Watch`: a set of open streams whose every message the test predicts. The test keeps a
//! model of the state, and after each block hands over the model's values: exactly the
//! streams whose value changed must get one message at that height with the new value (and
//! equal to the standard queries there); the others must stay silent.

use super::{Recorder, StreamKey, StreamValue, assert_committed, client_channel, expect_message};
use crate::support::TestNode;

/// Streams a watch opens per client address (the node's default limit per address is 5).
const PER_CLIENT: usize = 4;

/// Open streams, each with a label and the last value it carried.
pub struct Watch {
    streams: Vec<(&'static str, Recorder, StreamValue)>,
}

impl Watch {
    /// Opens one stream per `(label, key, snapshot value)` from client addresses 127.0.0.`first_client`
    /// and up, and checks each snapshot is that value at a committed height.
    pub async fn open(
        node: &TestNode,
        first_client: u8,
        streams: Vec<(&'static str, StreamKey, StreamValue)>,
    ) -> Watch {
        let mut open = Vec::new();
        for (i, (label, key, value)) in streams.into_iter().enumerate() {
            let client = first_client + (i / PER_CLIENT) as u8;
            let mut recorder =
                Recorder::start(client_channel(node.grpc_addr(), client), &key).await;
            let first = recorder.next().await;
            assert_eq!(
                first.value,
                value,
                "{label}: snapshot of {} {key:?}",
                key.rpc()
            );
            assert_committed(node, &key, &first).await;
            open.push((label, recorder, value));
        }
        Watch { streams: open }
    }

    /// The state after block `height` is `values` (in the order the streams were opened):
    /// takes one message at `height` from every stream whose value changed, and returns
    /// their labels.
    pub async fn block(
        &mut self,
        node: &TestNode,
        height: i64,
        values: Vec<StreamValue>,
    ) -> Vec<&'static str> {
        assert_eq!(
            values.len(),
            self.streams.len(),
            "one value per watched stream"
        );
        let mut changed = Vec::new();
        for ((label, recorder, last), value) in self.streams.iter_mut().zip(values) {
            if *last != value {
                expect_message(node, recorder, height, value.clone()).await;
                *last = value;
                changed.push(*label);
            }
        }
        changed
    }

    /// Asserts no stream holds a message nobody predicted, once the node has committed a few
    /// more blocks after `height` (a stray message would have been delivered by then).
    pub async fn assert_quiet(&mut self, node: &TestNode, height: i64) {
        node.wait_for_height(height + 3).await;
        for (label, recorder, _) in &mut self.streams {
            assert_eq!(recorder.pending(), None, "{label}: unexpected message");
        }
    }
}
