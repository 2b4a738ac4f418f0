//! The transports' side of the dispatcher: open a subscription (from a snapshot, or resumed
//! from a height), read its updates, and have it removed from the index when the client goes
//! away, at whatever point that happens.

use crate::auth::Auth;
use crate::chain::Chain;
use crate::dispatcher::{Command, ReplayState, SubscriptionId};
use crate::key::{SubscriptionKey, SubscriptionKind};
use crate::limits::{Limits, SubscriptionPermit};
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Next, Outbox};
use crate::reader::StateReader;
use crate::replay::{self, outside_window};
use crate::topic::{TopicState, Validators, needs_validators};
use crate::window::ReplayWindow;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The current value, then changes (a slow client skips heights).
    Snapshot,
    /// Every change after this height (> 0), replayed from the window, then live, none skipped.
    Since(i64),
}

/// Cheap-to-clone access to the running module, shared by gRPC and WebSocket.
#[derive(Clone)]
pub(crate) struct Handle {
    /// Chain facts for parsing requests and rendering values.
    pub chain: Arc<Chain>,
    /// Admission control.
    pub limits: Arc<Limits>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Becomes true when the node shuts down.
    pub shutdown: watch::Receiver<bool>,
    pub commands: mpsc::Sender<Command>,
    pub unsubscribe: mpsc::UnboundedSender<SubscriptionId>,
    pub window: Arc<ReplayWindow>,
    pub reader: Arc<dyn StateReader>,
    /// Bound of a resumed subscription's queue (`[stream] resume_queue`).
    pub resume_queue: usize,
    pub next_id: Arc<AtomicU64>,
    /// Token auth (`[stream.auth]`), when on.
    pub auth: Option<Arc<Auth>>,
}

/// The dispatcher's registration of a subscription. Dropping it, at any point (even while
/// the subscribe request is still queued), marks the outbox abandoned, so the dispatcher will
/// not register it, and then asks the dispatcher to forget it, in case it already did.
struct Registration {
    id: SubscriptionId,
    outbox: Arc<Outbox>,
    unsubscribe: mpsc::UnboundedSender<SubscriptionId>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.outbox.abandon();
        let _ = self.unsubscribe.send(self.id);
    }
}

/// A live subscription. Dropping it unsubscribes and frees its slot.
pub(crate) struct Subscription {
    kind: SubscriptionKind,
    registration: Registration,
    /// The replay task of a resumed subscription.
    replay: Option<AbortHandle>,
    metrics: Arc<Metrics>,
    /// `stream_messages_sent{type}` of this kind, looked up once rather than per message.
    sent: Counter,
    /// `stream_transport_messages_sent` of this subscription's transport.
    sent_over: Counter,
    /// When it ends with `TokenExpired` (token auth).
    expires: Option<tokio::time::Instant>,
    _permit: SubscriptionPermit,
}

impl Handle {
    /// Opens a subscription to `key` from `start`. Resolves once the snapshot is waiting in
    /// the outbox (snapshot), or once the state at `since_height` is read and the replay has
    /// started (resume). Errors: `OutOfRange` when `since_height` is older than the window,
    /// `InvalidArgument` when it is above the latest height, `Shutdown` / `Failed` otherwise.
    pub async fn subscribe(
        &self,
        key: SubscriptionKey,
        start: Start,
        permit: SubscriptionPermit,
    ) -> Result<Subscription, CloseReason> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kind = key.kind();
        let (registration, replay) = match start {
            Start::Snapshot => {
                let registration = self.registration(id, Outbox::latest());
                let (reply, answer) = oneshot::channel();
                self.commands
                    .send(Command::Subscribe {
                        id,
                        key,
                        outbox: registration.outbox.clone(),
                        reply,
                    })
                    .await
                    .map_err(|_| CloseReason::Shutdown)?;
                answer.await.map_err(|_| CloseReason::Shutdown)??;
                (registration, None)
            }
            Start::Since(since) => {
                let state = self.state_at(key, since).await?;
                let registration = self.registration(id, Outbox::every(self.resume_queue, since));
                self.metrics.replays.inc();
                let task = tokio::spawn(replay::run(
                    self.clone(),
                    id,
                    state,
                    registration.outbox.clone(),
                ));
                (registration, Some(task.abort_handle()))
            }
        };
        self.metrics.subscriptions(kind).inc();
        Ok(Subscription {
            kind,
            registration,
            replay,
            metrics: self.metrics.clone(),
            sent: self.metrics.messages_sent(kind),
            sent_over: self.metrics.transport_messages_sent(permit.transport),
            expires: None,
            _permit: permit,
        })
    }

    fn registration(&self, id: SubscriptionId, outbox: Arc<Outbox>) -> Registration {
        Registration {
            id,
            outbox,
            unsubscribe: self.unsubscribe.clone(),
        }
    }

    /// The oldest `since_height` a resume can start from: the window's, or the state reader's
    /// oldest readable height if that is newer.
    fn oldest_resumable(&self) -> i64 {
        let (oldest, _) = self.window.bounds();
        oldest.max(self.reader.earliest_height().unwrap_or(0))
    }

    /// Checks `since` against the window and reads `key`'s state there.
    async fn state_at(&self, key: SubscriptionKey, since: i64) -> Result<ReplayState, CloseReason> {
        let (_, latest) = self.window.bounds();
        if since > latest {
            self.metrics.rejected("invalid_request").inc();
            return Err(CloseReason::InvalidArgument(format!(
                "since_height {since} is above the latest height {latest} this node has streamed; \
                 resume from a height you received"
            )));
        }
        let oldest = self.oldest_resumable();
        if since < oldest {
            self.metrics.replays_refused("out_of_window").inc();
            return Err(CloseReason::OutOfRange(outside_window(since, oldest)));
        }
        let read = async {
            let state = TopicState::load(self.reader.as_ref(), &key, since).await?;
            let validators: Validators = if needs_validators(&key) {
                self.reader.validators(since).await?.into_iter().collect()
            } else {
                Validators::new()
            };
            Ok::<_, crate::ReadError>((state, validators))
        };
        match read.await {
            Ok((state, validators)) => Ok(ReplayState {
                key,
                height: since,
                state,
                validators,
            }),
            Err(e) => {
                let oldest = self.oldest_resumable();
                if since < oldest {
                    self.metrics.replays_refused("out_of_window").inc();
                    Err(CloseReason::OutOfRange(outside_window(since, oldest)))
                } else {
                    Err(CloseReason::Failed(format!(
                        "cannot resume: the state at since_height {since} could not be read: {e}"
                    )))
                }
            }
        }
    }
}

impl Subscription {
    /// Ends the subscription (`TokenExpired`) at `deadline`, if any.
    pub fn until(mut self, deadline: Option<tokio::time::Instant>) -> Subscription {
        self.expires = deadline;
        self
    }

    /// The next update (or the end). Counts the message as sent and observes its latency.
    pub async fn next(&self) -> Next {
        let next = match self.expires {
            None => self.registration.outbox.next().await,
            Some(deadline) => tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => Next::Closed(CloseReason::TokenExpired),
                next = self.registration.outbox.next() => next,
            },
        };
        if let Next::Update(u) = &next {
            self.sent.inc();
            self.sent_over.inc();
            self.metrics
                .commit_to_send
                .observe(u.produced.elapsed().as_secs_f64());
        }
        next
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.metrics.subscriptions(self.kind).dec();
        if let Some(replay) = &self.replay {
            replay.abort();
        }
        // `registration` drops next: abandon, then unsubscribe.
    }
}
