//! The transports' side of the dispatcher: open a subscription (limits, snapshot), read its
//! updates, and have it removed from the index when the client goes away.

use crate::chain::Chain;
use crate::dispatcher::{SubscribeRequest, SubscriptionId};
use crate::key::{SubscriptionKey, SubscriptionKind};
use crate::limits::{Limits, SubscriptionPermit};
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Next, Outbox};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Cheap-to-clone access to the running module, shared by gRPC and WebSocket.
#[derive(Clone)]
pub struct Handle {
    /// Chain facts for parsing requests and rendering values.
    pub chain: Arc<Chain>,
    /// Admission control.
    pub limits: Arc<Limits>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Becomes true when the node shuts down.
    pub shutdown: watch::Receiver<bool>,
    pub(crate) subscribe: mpsc::Sender<SubscribeRequest>,
    pub(crate) unsubscribe: mpsc::UnboundedSender<SubscriptionId>,
}

/// A live subscription. Dropping it unsubscribes and frees its slot.
pub struct Subscription {
    id: SubscriptionId,
    kind: SubscriptionKind,
    outbox: Arc<Outbox>,
    unsubscribe: mpsc::UnboundedSender<SubscriptionId>,
    metrics: Arc<Metrics>,
    _permit: SubscriptionPermit,
}

impl Handle {
    /// Registers `key`; resolves once its snapshot is waiting in the outbox.
    pub async fn subscribe(
        &self,
        key: SubscriptionKey,
        permit: SubscriptionPermit,
    ) -> Result<Subscription, CloseReason> {
        let kind = key.kind();
        let outbox = Outbox::new();
        let (reply, answer) = oneshot::channel();
        self.subscribe
            .send(SubscribeRequest {
                key,
                outbox: outbox.clone(),
                reply,
            })
            .await
            .map_err(|_| CloseReason::Shutdown)?;
        let id = answer.await.map_err(|_| CloseReason::Shutdown)??;
        self.metrics.subscriptions(kind).inc();
        Ok(Subscription {
            id,
            kind,
            outbox,
            unsubscribe: self.unsubscribe.clone(),
            metrics: self.metrics.clone(),
            _permit: permit,
        })
    }
}

impl Subscription {
    /// Its kind.
    pub fn kind(&self) -> SubscriptionKind {
        self.kind
    }

    /// The next update (or the end). Counts the message as sent and observes its latency.
    pub async fn next(&self) -> Next {
        let next = self.outbox.next().await;
        if let Next::Update(u) = &next {
            self.metrics.messages_sent(self.kind).inc();
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
        let _ = self.unsubscribe.send(self.id);
    }
}
