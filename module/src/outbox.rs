//! A subscription's outbox, shared by the dispatcher (writer) and the client's connection
//! (reader). Two kinds:
//! - **latest** (a plain subscription): only the newest undelivered update. The dispatcher
//!   overwrites an update the client has not taken yet (every update is a full state, so the
//!   client only skips intermediate heights), which keeps a slow client from costing memory
//!   or delaying anyone else. Overwrites are counted as buffer overflows.
//! - **every** (a resumed subscription, `since_height`): a bounded queue of every update. The
//!   replay fills it at the client's pace; live updates never wait: when the queue is full the
//!   subscription ends with an explicit "resume from height H" error, never a silent gap.

use crate::value::Update;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why a subscription ended (or could not start) on the server side. Each transport turns it
/// into its status in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The node is shutting down.
    Shutdown,
    /// The stream cannot continue (state could not be read, ...).
    Failed(String),
    /// The changes asked for are no longer (or not yet) replayable: outside the replay
    /// window, blocks skipped, or the client fell behind its queue. The message says which
    /// height to resume from, or to re-snapshot.
    OutOfRange(String),
    /// The request cannot be served as asked (`since_height` above the latest height).
    InvalidArgument(String),
    /// The token the stream was opened with expired (token auth).
    TokenExpired,
}

impl std::fmt::Display for CloseReason {
    /// The words clients see (gRPC status message, WebSocket error or close reason).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Shutdown => f.write_str("the node is shutting down"),
            CloseReason::TokenExpired => {
                f.write_str("the token expired; reconnect with a new one (and since_height)")
            }
            CloseReason::Failed(m)
            | CloseReason::OutOfRange(m)
            | CloseReason::InvalidArgument(m) => f.write_str(m),
        }
    }
}

/// Resolves once `rx` says the node is shutting down (or its sender is gone).
pub(crate) async fn shutting_down(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// What the consumer gets next.
#[derive(Debug)]
pub(crate) enum Next {
    /// A newer value.
    Update(Arc<Update>),
    /// The subscription ended.
    Closed(CloseReason),
}

/// What a live publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// Queued (or the outbox is closed and takes nothing).
    Queued,
    /// Replaced an update the client had not taken (latest outbox).
    Overwrote,
    /// The queue was full: the subscription ended with "fell behind" (every outbox).
    Overflowed,
}

#[derive(Default)]
struct Slot {
    queue: VecDeque<Arc<Update>>,
    closed: Option<CloseReason>,
    /// Height of the newest update queued: where a client that fell behind resumes.
    last_height: i64,
}

/// See the module docs.
pub(crate) struct Outbox {
    /// 0 = latest only; otherwise the queue bound of an every-update outbox.
    capacity: usize,
    slot: Mutex<Slot>,
    /// Wakes the consumer.
    ready: Notify,
    /// Wakes a replay waiting for room.
    room: Notify,
    /// The consumer is gone: the dispatcher must not register it (or may drop it).
    abandoned: AtomicBool,
}

impl Outbox {
    fn with(capacity: usize, last_height: i64) -> Arc<Outbox> {
        Arc::new(Outbox {
            capacity,
            slot: Mutex::new(Slot {
                last_height,
                ..Slot::default()
            }),
            ready: Notify::new(),
            room: Notify::new(),
            abandoned: AtomicBool::new(false),
        })
    }

    /// A latest-value outbox.
    pub fn latest() -> Arc<Outbox> {
        Outbox::with(0, 0)
    }

    /// An every-update outbox holding at most `capacity` (>= 1) updates, for a client that
    /// has everything up to `since_height`.
    pub fn every(capacity: usize, since_height: i64) -> Arc<Outbox> {
        Outbox::with(capacity.max(1), since_height)
    }

    /// Whether this outbox delivers every update.
    pub fn is_every(&self) -> bool {
        self.capacity > 0
    }

    /// Live delivery from the dispatcher: never waits.
    pub fn publish(&self, update: Arc<Update>) -> Published {
        let outcome = {
            let mut slot = self.slot.lock().expect("outbox lock");
            if slot.closed.is_some() {
                return Published::Queued;
            }
            if self.capacity == 0 {
                let replaced = slot.queue.pop_front().is_some();
                slot.queue.push_back(update);
                if replaced {
                    Published::Overwrote
                } else {
                    Published::Queued
                }
            } else if slot.queue.len() >= self.capacity {
                slot.closed = Some(CloseReason::OutOfRange(format!(
                    "the client fell behind: more than {} updates were waiting; resume with since_height={}",
                    self.capacity, slot.last_height
                )));
                Published::Overflowed
            } else {
                slot.last_height = update.height;
                slot.queue.push_back(update);
                Published::Queued
            }
        };
        self.ready.notify_one();
        outcome
    }

    /// Replay delivery into an every-update outbox: waits for room at the client's pace.
    /// Returns false once the outbox is closed (the replay should stop).
    pub async fn push(&self, update: Arc<Update>) -> bool {
        let mut update = Some(update);
        loop {
            let room = self.room.notified();
            {
                let mut slot = self.slot.lock().expect("outbox lock");
                if slot.closed.is_some() {
                    return false;
                }
                if slot.queue.len() < self.capacity {
                    let u = update.take().expect("pushed once");
                    slot.last_height = u.height;
                    slot.queue.push_back(u);
                    drop(slot);
                    self.ready.notify_one();
                    return true;
                }
            }
            room.await;
        }
    }

    /// Ends the subscription: the consumer gets what is queued, then `reason`.
    pub fn close(&self, reason: CloseReason) {
        self.slot
            .lock()
            .expect("outbox lock")
            .closed
            .get_or_insert(reason);
        self.ready.notify_one();
        self.room.notify_one();
    }

    /// The consumer went away.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::SeqCst);
        self.close(CloseReason::Failed("the client went away".into()));
    }

    /// Whether the consumer went away.
    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::SeqCst)
    }

    /// Waits for the next update or the end.
    pub async fn next(&self) -> Next {
        loop {
            // `notify_one` stores a permit when nobody waits, so a publish between the check
            // and the await is not lost.
            let ready = self.ready.notified();
            {
                let mut slot = self.slot.lock().expect("outbox lock");
                if let Some(u) = slot.queue.pop_front() {
                    drop(slot);
                    self.room.notify_one();
                    return Next::Update(u);
                }
                if let Some(r) = &slot.closed {
                    return Next::Closed(r.clone());
                }
            }
            ready.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Coin, Value};
    use std::time::{Duration, Instant};
    use stream_abci_listener::Int;

    fn update(h: i64) -> Arc<Update> {
        Arc::new(Update::new(
            h,
            Arc::new(Value::Balance(Coin {
                denom: "ujuno".into(),
                amount: Int::from(h as u64),
            })),
            Instant::now(),
        ))
    }

    fn height(n: Next) -> i64 {
        match n {
            Next::Update(u) => u.height,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn latest_keeps_only_the_newest() {
        let o = Outbox::latest();
        assert_eq!(o.publish(update(1)), Published::Queued);
        assert_eq!(o.publish(update(2)), Published::Overwrote);
        assert_eq!(o.publish(update(3)), Published::Overwrote);
        assert_eq!(height(o.next().await), 3);
        o.close(CloseReason::Shutdown);
        assert!(matches!(
            o.next().await,
            Next::Closed(CloseReason::Shutdown)
        ));
        assert_eq!(
            o.publish(update(4)),
            Published::Queued,
            "closed outboxes take nothing"
        );
        assert!(matches!(o.next().await, Next::Closed(_)));
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_publish() {
        let o = Outbox::latest();
        let reader = {
            let o = o.clone();
            tokio::spawn(async move { o.next().await })
        };
        tokio::task::yield_now().await;
        o.publish(update(5));
        assert_eq!(height(reader.await.unwrap()), 5);
    }

    #[tokio::test]
    async fn pending_update_is_delivered_before_close() {
        let o = Outbox::latest();
        o.publish(update(1));
        o.close(CloseReason::Failed("x".into()));
        assert!(matches!(o.next().await, Next::Update(_)));
        assert!(matches!(
            o.next().await,
            Next::Closed(CloseReason::Failed(_))
        ));
    }

    #[tokio::test]
    async fn every_delivers_all_then_fails_explicitly_when_the_client_falls_behind() {
        let o = Outbox::every(2, 10);
        assert_eq!(o.publish(update(11)), Published::Queued);
        assert_eq!(o.publish(update(12)), Published::Queued);
        assert_eq!(o.publish(update(13)), Published::Overflowed);
        assert_eq!(height(o.next().await), 11);
        assert_eq!(height(o.next().await), 12);
        match o.next().await {
            Next::Closed(CloseReason::OutOfRange(m)) => {
                assert!(m.ends_with("resume with since_height=12"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_untouched_every_outbox_resumes_from_its_since_height() {
        let o = Outbox::every(1, 7);
        o.publish(update(8));
        o.publish(update(9));
        // The client takes 8 and then learns to resume from 8.
        assert_eq!(height(o.next().await), 8);
        let Next::Closed(r) = o.next().await else {
            panic!()
        };
        assert!(r.to_string().ends_with("since_height=8"), "{r}");
        let o = Outbox::every(1, 7);
        o.close(CloseReason::Shutdown);
        assert_eq!(o.slot.lock().unwrap().last_height, 7);
    }

    #[tokio::test]
    async fn a_replay_waits_for_room_at_the_clients_pace() {
        let o = Outbox::every(1, 0);
        assert!(o.push(update(1)).await);
        let pusher = {
            let o = o.clone();
            tokio::spawn(async move { o.push(update(2)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!pusher.is_finished(), "the queue is full: the replay waits");
        assert_eq!(height(o.next().await), 1);
        assert!(pusher.await.unwrap());
        assert_eq!(height(o.next().await), 2);
        // Closing releases a waiting replay.
        assert!(o.push(update(3)).await);
        let pusher = {
            let o = o.clone();
            tokio::spawn(async move { o.push(update(4)).await })
        };
        tokio::task::yield_now().await;
        o.abandon();
        assert!(!pusher.await.unwrap());
        assert!(o.is_abandoned());
    }
}
