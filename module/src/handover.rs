//! The commit hook's end of the block queue: a small queue drained by a thread of its own,
//! which moves each block into the dispatcher's queue (`[stream] block_queue`).
//!
//! Why a thread: handing a block straight to the dispatcher's tokio queue wakes a runtime
//! worker from the node's commit thread, and Linux lets a freshly woken thread preempt the
//! waker (wakeup preemption): the commit thread then sat descheduled while the dispatcher
//! processed the block, so the hook's cost grew with the subscribers (p50 about 1 ms with
//! 650 of them changing every block). The handover thread runs as `SCHED_BATCH`, which the
//! scheduler never lets preempt on wakeup.
//!
//! Why the thread watches for blocks instead of sleeping until the hook wakes it: waking a
//! sleeping thread is a futex syscall, most of the hook's cost when it did one on every
//! block (7 us of its 8-12 us median on a 2-vCPU VM, against under 1 us for the rest), and
//! the point where the kernel took the core from the commit thread: in a traced run, each of
//! the 12 blocks of 94 whose hook took over 40 us had been switched out inside that syscall
//! (one or two such blocks of 80 put the p99 over DESIGN.md's 50 us even on a quiet
//! machine). Blocks come at a steady pace, so the thread learns it from the hook's own
//! instants: it sleeps until shortly before the next block is due, then looks at the queue
//! every [`WATCH_EVERY`] until the block is there (about 10 timed wakeups per block at a
//! steady 250 ms pace, under 0.1% of a core). While it watches, the hook only pushes; while
//! it sleeps (a block earlier or later than the pace said, or no pace yet) the hook wakes it
//! as before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::thread::Thread;
use std::time::{Duration, Instant};
use stream_abci_listener::BlockCommit;
use tokio::sync::mpsc;

/// Blocks waiting for the handover thread. It only moves pointers, so this fills only when
/// the dispatcher's own queue is full; then the hook drops blocks (see `CommitHook`).
pub(crate) const HANDOVER_QUEUE: usize = 16;

/// How often the handover thread looks at the queue while a block is due: what a block can
/// wait for the thread when it comes on time (a timed sleep; timer slack adds up to 50 us).
const WATCH_EVERY: Duration = Duration::from_micros(200);

/// How much earlier than the shortest recent interval, and later than the longest, the
/// thread watches for the next block: the producer's own jitter.
const WATCH_MARGIN: Duration = Duration::from_millis(2);

/// The longest the thread watches for one block (then it sleeps until woken), so an
/// irregular chain costs at most this many timed wakeups' worth of watching per block.
const WATCH_LIMIT: Duration = Duration::from_millis(20);

/// Intervals between blocks the pace is learnt from.
const PACE_INTERVALS: usize = 8;

/// A queued block and the instant the hook got it, which the pace is learnt from (the
/// thread's own pickup instants are late by however long it waited for a core).
type Queued = (Arc<BlockCommit>, Instant);

/// What the hook and the handover thread share besides the queue.
struct Shared {
    /// The thread sleeps until woken: the hook must unpark it after a push.
    sleeping: AtomicBool,
    /// The `Handover` is gone: the thread ends once the queue is empty.
    closed: AtomicBool,
}

/// The hook's side: a bounded push that never waits.
pub(crate) struct Handover {
    queue: SyncSender<Queued>,
    shared: Arc<Shared>,
    thread: Thread,
}

impl Handover {
    /// Starts the thread that moves blocks into `blocks`; it ends when the `Handover` is
    /// dropped or the dispatcher's queue closes.
    pub fn start(blocks: mpsc::Sender<Arc<BlockCommit>>) -> std::io::Result<Handover> {
        let (queue, incoming) = sync_channel::<Queued>(HANDOVER_QUEUE);
        let shared = Arc::new(Shared {
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("stream-handover".into())
            .spawn({
                let shared = shared.clone();
                move || {
                    never_preempt_on_wakeup();
                    run(&incoming, &blocks, &shared);
                }
            })?
            .thread()
            .clone();
        Ok(Handover {
            queue,
            shared,
            thread,
        })
    }

    /// Queues `block`, committed at `committed`, or gives it back when the queue is full
    /// (or the dispatcher is gone: `None`). Wakes the handover thread only if it is not
    /// watching the queue.
    pub fn push(
        &self,
        block: Arc<BlockCommit>,
        committed: Instant,
    ) -> Result<(), Option<Arc<BlockCommit>>> {
        match self.queue.try_send((block, committed)) {
            Ok(()) => {
                // Pairs with the fence in `sleep`: either the thread sees this block before
                // it sleeps, or this sees that it sleeps.
                fence(Ordering::SeqCst);
                if self.shared.sleeping.load(Ordering::Relaxed) {
                    self.thread.unpark();
                }
                Ok(())
            }
            Err(TrySendError::Full((b, _))) => Err(Some(b)),
            Err(TrySendError::Disconnected(_)) => Err(None),
        }
    }
}

impl Drop for Handover {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// The handover thread: every queued block into `blocks`, in order.
fn run(incoming: &Receiver<Queued>, blocks: &mpsc::Sender<Arc<BlockCommit>>, shared: &Shared) {
    let mut pace = Pace::default();
    loop {
        let (block, committed) = match incoming.try_recv() {
            Ok(queued) => queued,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) if shared.closed.load(Ordering::SeqCst) => return,
            Err(TryRecvError::Empty) => {
                let now = Instant::now();
                let woken_with = match pace.next(now) {
                    Wait::Watch => {
                        std::thread::park_timeout(WATCH_EVERY);
                        None
                    }
                    Wait::Sleep(until) => sleep(incoming, shared, until.map(|t| t - now)),
                };
                match woken_with {
                    Some(queued) => queued,
                    None => continue,
                }
            }
        };
        pace.arrived(committed);
        if blocks.blocking_send(block).is_err() {
            return;
        }
    }
}

/// Sleeps until the hook wakes the thread or `timeout` passes, unless a block came in
/// before the hook could see the thread asleep: then returns it at once.
fn sleep(
    incoming: &Receiver<Queued>,
    shared: &Shared,
    timeout: Option<Duration>,
) -> Option<Queued> {
    shared.sleeping.store(true, Ordering::Relaxed);
    // Pairs with the fence in `Handover::push`.
    fence(Ordering::SeqCst);
    let taken = match incoming.try_recv() {
        Ok(queued) => Some(queued),
        // The caller's next `try_recv` ends the thread.
        Err(TryRecvError::Disconnected) => None,
        Err(TryRecvError::Empty) => {
            match timeout {
                Some(t) => std::thread::park_timeout(t),
                None => std::thread::park(),
            }
            None
        }
    };
    shared.sleeping.store(false, Ordering::Relaxed);
    taken
}

/// How the handover thread waits for the next block.
#[derive(Debug, PartialEq)]
enum Wait {
    /// Look at the queue again in [`WATCH_EVERY`]: the block is due.
    Watch,
    /// Sleep until woken by the hook, or until the block is due.
    Sleep(Option<Instant>),
}

/// The pace of recent blocks: when the next one is due.
#[derive(Default)]
struct Pace {
    last: Option<Instant>,
    /// Recent intervals between blocks, the newest at `next_slot - 1` (a ring).
    intervals: [Duration; PACE_INTERVALS],
    known: usize,
    next_slot: usize,
}

impl Pace {
    /// A block the hook got at `at`.
    fn arrived(&mut self, at: Instant) {
        if let Some(last) = self.last {
            self.intervals[self.next_slot] = at.saturating_duration_since(last);
            self.next_slot = (self.next_slot + 1) % PACE_INTERVALS;
            self.known = (self.known + 1).min(PACE_INTERVALS);
        }
        self.last = Some(at);
    }

    /// The span in which the next block is expected: from the shortest recent interval
    /// after the last block to the longest, each widened by [`WATCH_MARGIN`], and at most
    /// [`WATCH_LIMIT`] long.
    fn window(&self) -> Option<(Instant, Instant)> {
        let last = self.last?;
        let recent = &self.intervals[..self.known];
        let shortest = *recent.iter().min()?;
        let longest = *recent.iter().max()?;
        let start = last + shortest.saturating_sub(WATCH_MARGIN);
        let end = (last + longest + WATCH_MARGIN).min(start + WATCH_LIMIT);
        Some((start, end))
    }

    /// How to wait from `now`.
    fn next(&self, now: Instant) -> Wait {
        match self.window() {
            Some((start, _)) if now < start => Wait::Sleep(Some(start)),
            Some((_, end)) if now < end => Wait::Watch,
            _ => Wait::Sleep(None),
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
            handover.push(block(h), Instant::now()).unwrap();
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
            if let Err(back) = handover.push(block(h), Instant::now()) {
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

    #[tokio::test]
    async fn a_block_after_a_pause_wakes_the_sleeping_thread() {
        let (tx, mut rx) = mpsc::channel(4);
        let handover = Handover::start(tx).unwrap();
        // A pace of 5 ms, then a block long after the window.
        for h in 1..=4 {
            handover.push(block(h), Instant::now()).unwrap();
            assert_eq!(rx.recv().await.unwrap().height, h);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        handover.push(block(5), Instant::now()).unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(next.unwrap().unwrap().height, 5);
    }

    #[test]
    fn dropping_the_handover_ends_a_sleeping_thread() {
        let (tx, rx) = mpsc::channel(4);
        let handover = Handover::start(tx).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(handover);
        // The thread owned the dispatcher's sender: the queue closes when it ends.
        let mut rx = rx;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !rx.is_closed() {
            assert!(Instant::now() < deadline, "the handover thread ended");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(rx.try_recv().is_err());
    }

    fn pace(intervals_ms: &[u64]) -> (Pace, Instant) {
        let mut pace = Pace::default();
        let mut at = Instant::now();
        pace.arrived(at);
        for &ms in intervals_ms {
            at += Duration::from_millis(ms);
            pace.arrived(at);
        }
        (pace, at)
    }

    #[test]
    fn without_a_pace_the_thread_sleeps_until_woken() {
        assert_eq!(Pace::default().next(Instant::now()), Wait::Sleep(None));
        let (one_block, at) = pace(&[]);
        assert_eq!(one_block.next(at), Wait::Sleep(None));
    }

    #[test]
    fn the_thread_watches_around_the_due_time_of_a_steady_pace() {
        let (steady, last) = pace(&[250, 249, 251, 250]);
        let ms = Duration::from_millis;
        // Until the shortest interval less the margin: asleep, woken early by the hook.
        assert_eq!(steady.next(last), Wait::Sleep(Some(last + ms(247))));
        assert_eq!(
            steady.next(last + ms(246)),
            Wait::Sleep(Some(last + ms(247)))
        );
        // Up to the longest interval plus the margin: watching.
        assert_eq!(steady.next(last + ms(247)), Wait::Watch);
        assert_eq!(steady.next(last + ms(252)), Wait::Watch);
        // Later: asleep until woken.
        assert_eq!(steady.next(last + ms(253)), Wait::Sleep(None));
    }

    #[test]
    fn an_irregular_pace_is_watched_for_at_most_the_limit() {
        let (irregular, last) = pace(&[1000, 6000, 2000]);
        let start = last + Duration::from_millis(998);
        assert_eq!(irregular.next(last), Wait::Sleep(Some(start)));
        assert_eq!(
            irregular.next(start + WATCH_LIMIT - Duration::from_micros(1)),
            Wait::Watch
        );
        assert_eq!(irregular.next(start + WATCH_LIMIT), Wait::Sleep(None));
    }

    #[test]
    fn the_pace_follows_the_newest_intervals() {
        let mut intervals = vec![1000; PACE_INTERVALS];
        intervals.extend([250; PACE_INTERVALS]);
        let (faster, last) = pace(&intervals);
        assert_eq!(
            faster.next(last),
            Wait::Sleep(Some(last + Duration::from_millis(248)))
        );
    }
}
