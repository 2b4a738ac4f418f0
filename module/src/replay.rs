//! Resume (`since_height`, DESIGN.md 5.6): a resumed subscription's own task. It starts from
//! the key's state at `since_height` (read before the stream opens), walks the replay window
//! block by block, and queues the value at every height where it changed, at the client's
//! pace. Once it has replayed up to the dispatched height it hands its state to the
//! dispatcher, which from then on publishes live updates into the same queue: the seam has
//! neither a gap nor a duplicate, and the dispatcher never waits for a replay.

use crate::dispatcher::{AttachReply, Command, ReplayState, SubscriptionId};
use crate::handle::Handle;
use crate::outbox::{CloseReason, Outbox};
use crate::topic::{apply_validator, needs_validators};
use crate::value::Update;
use crate::window::Evicted;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;

/// Blocks taken from the window at a time (a short read lock each).
const CHUNK: usize = 256;

/// The message of a refused or failed resume from `since` when the window starts at `oldest`.
pub(crate) fn outside_window(since: i64, oldest: i64) -> String {
    format!(
        "since_height {since} is outside the replay window: the oldest since_height available is \
         {oldest}; subscribe without since_height for a fresh snapshot"
    )
}

/// Replays from `replay.height` (the `since_height`) and attaches to the dispatcher.
pub(crate) async fn run(
    handle: Handle,
    id: SubscriptionId,
    mut replay: ReplayState,
    outbox: Arc<Outbox>,
) {
    let chain = handle.chain.clone();
    let pricing = needs_validators(&replay.key);
    let mut last = replay.state.value(&replay.key, &chain, &replay.validators);
    loop {
        // Everything the window holds after our height.
        loop {
            let blocks = match handle.window.after(replay.height, CHUNK) {
                Ok(b) => b,
                Err(Evicted { oldest }) => {
                    handle.metrics.replays_refused("out_of_window").inc();
                    outbox.close(CloseReason::OutOfRange(outside_window(
                        replay.height,
                        oldest,
                    )));
                    return;
                }
            };
            if blocks.is_empty() {
                break;
            }
            for block in blocks {
                let mut touched = false;
                for change in &block.changes {
                    if apply_validator(&mut replay.validators, change).is_some() {
                        touched |= pricing;
                    } else {
                        touched |= replay.state.apply(&replay.key, change);
                    }
                }
                replay.height = block.height;
                if !touched {
                    continue;
                }
                let value = replay.state.value(&replay.key, &chain, &replay.validators);
                if value == last {
                    continue;
                }
                last = value.clone();
                let update = Update::new(block.height, Arc::new(value), Instant::now());
                if !outbox.push(Arc::new(update)).await {
                    return; // closed: the client went away
                }
            }
        }
        // Caught up with the window: hand over, unless more blocks arrived meanwhile.
        let (reply, answer) = oneshot::channel();
        let attach = Command::Attach {
            id,
            outbox: outbox.clone(),
            replay,
            reply,
        };
        if handle.commands.send(attach).await.is_err() {
            outbox.close(CloseReason::Shutdown);
            return;
        }
        match answer.await {
            Ok(AttachReply::Attached) => return,
            Ok(AttachReply::Behind(r)) => replay = r,
            Ok(AttachReply::Refused(reason)) => {
                outbox.close(reason);
                return;
            }
            // The dispatcher dropped the command: shut down, or our client left.
            Err(_) => {
                outbox.close(CloseReason::Shutdown);
                return;
            }
        }
    }
}
