//! The commit hook's end of the block queue: a small queue drained by a thread of its own,
//! which moves each block into the dispatcher's queue (`[stream] block_queue`).
//!
//! Why a thread: handing a block straight to the dispatcher's tokio queue wakes a runtime
//! worker from the node's commit thread, and Linux lets a freshly woken thread preempt the
//! waker (wakeup preemption): the commit thread then sat descheduled while the dispatcher
//! processed the block, so the hook's cost grew with the subscribers (p50 about 1 ms with
//! 650 of them changing every block). The handover thread runs as `SCHED_BATCH`, which the
//! scheduler never lets preempt on wakeup, so the hook costs one queue push and one wake.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use stream_abci_listener::BlockCommit;
use tokio::sync::mpsc;

/// Blocks waiting for the handover thread. It only moves pointers, so this fills only when
/// the dispatcher's own queue is full; then the hook drops blocks (see `CommitHook`).
pub(crate) const HANDOVER_QUEUE: usize = 16;

/// The hook's side: a bounded push that never waits.
pub(crate) struct Handover {
    queue: SyncSender<Arc<BlockCommit>>,
}

impl Handover {
    /// Starts the thread that moves blocks into `blocks`; it ends when the `Handover` is
    /// dropped or the dispatcher's queue closes.
    pub fn start(blocks: mpsc::Sender<Arc<BlockCommit>>) -> std::io::Result<Handover> {
        let (queue, incoming) = sync_channel::<Arc<BlockCommit>>(HANDOVER_QUEUE);
        std::thread::Builder::new()
            .name("stream-handover".into())
            .spawn(move || {
                never_preempt_on_wakeup();
                while let Ok(block) = incoming.recv() {
                    if blocks.blocking_send(block).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Handover { queue })
    }

    /// Queues `block`, or gives it back when the queue is full (or the dispatcher is gone:
    /// `None`).
    pub fn push(&self, block: Arc<BlockCommit>) -> Result<(), Option<Arc<BlockCommit>>> {
        match self.queue.try_send(block) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(b)) => Err(Some(b)),
            Err(TrySendError::Disconnected(_)) => Err(None),
        }
    }
}

/// `SCHED_BATCH` for the calling thread (Linux; elsewhere nothing to do). Best effort: the
/// call needs no privilege, and if it fails the handover still works, only costlier.
fn never_preempt_on_wakeup() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for the call.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "cannot make the stream handover thread SCHED_BATCH"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: i64) -> Arc<BlockCommit> {
        Arc::new(BlockCommit {
            height,
            time: std::time::SystemTime::UNIX_EPOCH,
            changes: Vec::new(),
        })
    }

    #[tokio::test]
    async fn blocks_reach_the_dispatcher_queue_in_order() {
        let (tx, mut rx) = mpsc::channel(4);
        let handover = Handover::start(tx).unwrap();
        for h in 1..=10 {
            handover.push(block(h)).unwrap();
        }
        for h in 1..=10 {
            assert_eq!(rx.recv().await.unwrap().height, h);
        }
    }

    #[tokio::test]
    async fn a_full_queue_gives_the_block_back_and_never_waits() {
        let (tx, mut rx) = mpsc::channel(1);
        let handover = Handover::start(tx).unwrap();
        // The dispatcher's queue (1) and the thread's hand (1) fill first, then the handover queue.
        let mut refused = None;
        for h in 1..=(HANDOVER_QUEUE as i64 + 100) {
            if let Err(back) = handover.push(block(h)) {
                refused = back.map(|b| b.height);
                break;
            }
            // Let the thread take what it can.
            tokio::task::yield_now().await;
        }
        assert!(refused.is_some(), "a full queue refuses");
        assert_eq!(rx.recv().await.unwrap().height, 1);
        drop(rx);
        drop(handover);
    }
}
