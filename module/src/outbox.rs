//! A subscription's outbox: the latest undelivered update, never a queue. The dispatcher
//! overwrites an update the client has not taken yet (every update is a full state, so the
//! client only skips intermediate heights), which keeps a slow client from costing memory or
//! delaying anyone else. Overwrites are counted as buffer overflows.

use crate::value::Update;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Why a subscription ended on the server side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The node is shutting down.
    Shutdown,
    /// The stream cannot continue (state could not be read, ...).
    Failed(String),
}

impl std::fmt::Display for CloseReason {
    /// The words clients see (gRPC status message, WebSocket error or close reason).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Shutdown => f.write_str("the node is shutting down"),
            CloseReason::Failed(m) => f.write_str(m),
        }
    }
}

/// Resolves once `rx` says the node is shutting down (or its sender is gone).
pub async fn shutting_down(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await.map(|_| ());
}

/// What the consumer gets next.
#[derive(Debug)]
pub enum Next {
    /// A newer value.
    Update(Arc<Update>),
    /// The subscription ended.
    Closed(CloseReason),
}

#[derive(Default)]
struct Slot {
    update: Option<Arc<Update>>,
    closed: Option<CloseReason>,
}

/// One subscription's delivery slot, shared by the dispatcher (writer) and the connection
/// (reader).
#[derive(Default)]
pub struct Outbox {
    slot: Mutex<Slot>,
    notify: Notify,
    overwritten: AtomicU64,
}

impl Outbox {
    /// A new, empty outbox.
    pub fn new() -> Arc<Outbox> {
        Arc::new(Outbox::default())
    }

    /// Stores `update` as the latest value. Returns true when it replaced an update the
    /// client had not taken (the client skips that height).
    pub fn publish(&self, update: Arc<Update>) -> bool {
        let replaced = {
            let mut slot = self.slot.lock().expect("outbox lock");
            if slot.closed.is_some() {
                return false;
            }
            slot.update.replace(update).is_some()
        };
        if replaced {
            self.overwritten.fetch_add(1, Ordering::Relaxed);
        }
        self.notify.notify_one();
        replaced
    }

    /// Ends the subscription: the consumer gets any pending update, then `reason`.
    pub fn close(&self, reason: CloseReason) {
        self.slot
            .lock()
            .expect("outbox lock")
            .closed
            .get_or_insert(reason);
        self.notify.notify_one();
    }

    /// Updates this outbox skipped because the client was not reading.
    pub fn overwritten(&self) -> u64 {
        self.overwritten.load(Ordering::Relaxed)
    }

    /// Waits for the next update or the end.
    pub async fn next(&self) -> Next {
        loop {
            // `notify_one` stores a permit when nobody waits, so a publish between the check
            // and the await is not lost.
            let notified = self.notify.notified();
            {
                let mut slot = self.slot.lock().expect("outbox lock");
                if let Some(u) = slot.update.take() {
                    return Next::Update(u);
                }
                if let Some(r) = &slot.closed {
                    return Next::Closed(r.clone());
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Coin, Value};
    use std::time::Instant;
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

    #[tokio::test]
    async fn keeps_only_the_latest_and_counts_skips() {
        let o = Outbox::new();
        assert!(!o.publish(update(1)));
        assert!(o.publish(update(2)));
        assert!(o.publish(update(3)));
        assert_eq!(o.overwritten(), 2);
        match o.next().await {
            Next::Update(u) => assert_eq!(u.height, 3),
            other => panic!("{other:?}"),
        }
        o.close(CloseReason::Shutdown);
        assert!(matches!(
            o.next().await,
            Next::Closed(CloseReason::Shutdown)
        ));
        assert!(!o.publish(update(4)), "closed outboxes take nothing");
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_publish() {
        let o = Outbox::new();
        let reader = {
            let o = o.clone();
            tokio::spawn(async move { o.next().await })
        };
        tokio::task::yield_now().await;
        o.publish(update(5));
        match reader.await.unwrap() {
            Next::Update(u) => assert_eq!(u.height, 5),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn pending_update_is_delivered_before_close() {
        let o = Outbox::new();
        o.publish(update(1));
        o.close(CloseReason::Failed("x".into()));
        assert!(matches!(o.next().await, Next::Update(_)));
        assert!(matches!(
            o.next().await,
            Next::Closed(CloseReason::Failed(_))
        ));
    }
}
