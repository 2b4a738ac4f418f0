//! End-to-end: SIGTERM to the node ends every open stream with UNAVAILABLE (never a silent
//! end, never UNKNOWN), and the node still exits cleanly.

mod stream_support;
mod support;

use std::time::Duration;

use stream_support::{Recorder, StreamKey};
use support::{TestNode, TestNodeOptions};
use tonic::Code;

#[tokio::test]
async fn sigterm_ends_every_open_stream_with_unavailable() {
    let mut node = TestNode::start(TestNodeOptions::slow_unbonding()).await;
    let mut open = Vec::new();
    for (i, key) in StreamKey::all_six("alice", "validator1")
        .into_iter()
        .chain(StreamKey::all_six("bob", "validator2"))
        .enumerate()
    {
        // Four streams per client address (the default limit is five per client).
        let mut recorder = Recorder::start(node.channel_from(2 + (i / 4) as u8), &key).await;
        recorder.next().await;
        open.push(recorder);
    }

    node.terminate();
    for recorder in &mut open {
        let key = recorder.key.clone();
        match recorder.end().await {
            Some(status) => {
                assert_eq!(
                    status.code(),
                    Code::Unavailable,
                    "{} {key:?} must end with UNAVAILABLE on shutdown: {status:?}",
                    key.rpc()
                );
                assert!(
                    !status.message().is_empty(),
                    "{}: UNAVAILABLE should say why",
                    key.rpc()
                );
            }
            None => panic!(
                "{} {key:?} ended silently (status OK) on shutdown; expected UNAVAILABLE",
                key.rpc()
            ),
        }
    }
    let status = node.wait_exit(Duration::from_secs(30)).await;
    assert!(
        status.success(),
        "streamd exits 0 on SIGTERM, got {status}:\n{}",
        node.log_text()
    );
}
