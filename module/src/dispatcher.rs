//! The dispatcher: the single owner of the subscription index. It takes committed blocks in
//! order from the commit hook's bounded queue, decodes them, updates the topics the changes
//! touch (indexed by account and by validator), and publishes each changed topic's new value
//! once per block to its subscribers' outboxes. Subscriptions are registered between blocks,
//! with their snapshot read at the last dispatched height, so subscribing never races a
//! commit and no change after the snapshot is missed.

use crate::chain::Chain;
use crate::key::SubscriptionKey;
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Outbox, shutting_down};
use crate::reader::{ReadError, StateReader};
use crate::topic::TopicState;
use crate::value::{Update, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;
use stream_abci_listener::{Address, BlockCommit, StateChange, ValidatorTokens, decode_block};
use tokio::sync::{mpsc, oneshot, watch};

/// Identifies one subscription (one client stream).
pub type SubscriptionId = u64;

/// A request to subscribe, answered once the snapshot is in the outbox.
pub struct SubscribeRequest {
    /// What to follow.
    pub key: SubscriptionKey,
    /// Where to deliver.
    pub outbox: Arc<Outbox>,
    /// The subscription id, or why it could not start.
    pub reply: oneshot::Sender<Result<SubscriptionId, CloseReason>>,
}

/// The dispatcher's inputs.
pub struct Inputs {
    /// Committed blocks from the commit hook (bounded).
    pub blocks: mpsc::Receiver<Arc<BlockCommit>>,
    /// New subscriptions (bounded; callers wait).
    pub subscribe: mpsc::Receiver<SubscribeRequest>,
    /// Ended subscriptions (one message per subscription at most).
    pub unsubscribe: mpsc::UnboundedReceiver<SubscriptionId>,
    /// Highest height the commit hook had to drop (queue full); 0 = none.
    pub dropped: watch::Receiver<i64>,
    /// Set to true on node shutdown.
    pub shutdown: watch::Receiver<bool>,
}

struct Topic {
    state: TopicState,
    last: Arc<Value>,
    subscribers: Vec<(SubscriptionId, Arc<Outbox>)>,
    /// Validators this topic is indexed under in `by_validator`.
    validators: Vec<Address>,
}

/// See the module docs.
pub struct Dispatcher {
    chain: Arc<Chain>,
    reader: Arc<dyn StateReader>,
    metrics: Arc<Metrics>,
    /// Last dispatched height; 0 before the first block.
    height: i64,
    /// Tokens and shares of every validator, as of `height`.
    validators: HashMap<Address, ValidatorTokens>,
    topics: HashMap<SubscriptionKey, Topic>,
    by_account: HashMap<Address, HashSet<SubscriptionKey>>,
    by_validator: HashMap<Address, HashSet<SubscriptionKey>>,
    subscriptions: HashMap<SubscriptionId, SubscriptionKey>,
    /// Subscriptions that arrived before the first block.
    waiting: Vec<SubscribeRequest>,
    /// Highest height the commit hook dropped.
    dropped_up_to: i64,
    next_id: SubscriptionId,
}

impl Dispatcher {
    /// A dispatcher with no subscriptions.
    pub fn new(chain: Arc<Chain>, reader: Arc<dyn StateReader>, metrics: Arc<Metrics>) -> Self {
        Dispatcher {
            chain,
            reader,
            metrics,
            height: 0,
            validators: HashMap::new(),
            topics: HashMap::new(),
            by_account: HashMap::new(),
            by_validator: HashMap::new(),
            subscriptions: HashMap::new(),
            waiting: Vec::new(),
            dropped_up_to: 0,
            next_id: 1,
        }
    }

    /// Runs until shutdown, then closes every subscription with `CloseReason::Shutdown`.
    pub async fn run(mut self, mut inputs: Inputs) {
        loop {
            tokio::select! {
                biased;
                _ = shutting_down(&mut inputs.shutdown) => break,
                Some(block) = inputs.blocks.recv() => {
                    self.metrics.dispatcher_lag_blocks.set(inputs.blocks.len() as i64);
                    self.on_block(block).await;
                    self.catch_up_dropped(inputs.blocks.is_empty()).await;
                    if !self.waiting.is_empty() {
                        let waiting = std::mem::take(&mut self.waiting);
                        self.on_subscribe(waiting).await;
                    }
                }
                Ok(()) = inputs.dropped.changed() => {
                    self.dropped_up_to = self.dropped_up_to.max(*inputs.dropped.borrow_and_update());
                    self.catch_up_dropped(inputs.blocks.is_empty()).await;
                    if !self.waiting.is_empty() {
                        let waiting = std::mem::take(&mut self.waiting);
                        self.on_subscribe(waiting).await;
                    }
                }
                Some(id) = inputs.unsubscribe.recv() => {
                    self.on_unsubscribe(id);
                    while let Ok(id) = inputs.unsubscribe.try_recv() {
                        self.on_unsubscribe(id);
                    }
                }
                Some(req) = inputs.subscribe.recv() => {
                    let mut batch = vec![req];
                    while let Ok(req) = inputs.subscribe.try_recv() {
                        batch.push(req);
                    }
                    self.on_subscribe(batch).await;
                }
                else => break,
            }
        }
        inputs.subscribe.close();
        while let Ok(req) = inputs.subscribe.try_recv() {
            let _ = req.reply.send(Err(CloseReason::Shutdown));
        }
        for req in self.waiting.drain(..) {
            let _ = req.reply.send(Err(CloseReason::Shutdown));
        }
        for topic in self.topics.values() {
            for (_, outbox) in &topic.subscribers {
                outbox.close(CloseReason::Shutdown);
            }
        }
    }

    /// The newest committed block may be one the hook dropped; no later block may come soon
    /// to reveal the gap, so once the queue is drained, catch up from state.
    async fn catch_up_dropped(&mut self, queue_empty: bool) {
        if queue_empty && self.dropped_up_to > self.height {
            tracing::warn!(
                from = self.height + 1,
                to = self.dropped_up_to,
                "latest blocks were dropped; resynchronising subscriptions from state"
            );
            self.resync(self.dropped_up_to).await;
        }
    }

    async fn on_block(&mut self, commit: Arc<BlockCommit>) {
        if self.height != 0 && commit.height <= self.height {
            tracing::warn!(
                height = commit.height,
                dispatched = self.height,
                "ignoring a block at or below the dispatched height"
            );
            return;
        }
        if self.height == 0 && commit.height > 1 {
            // Joining a running chain: start from the state just before this block.
            self.resync(commit.height - 1).await;
        } else if self.height != 0 && commit.height > self.height + 1 {
            // Blocks were dropped (the queue was full, or a plugin host skipped them): catch up
            // from state, then go on with this block.
            tracing::warn!(
                from = self.height + 1,
                to = commit.height - 1,
                "blocks missing; resynchronising subscriptions from state"
            );
            self.resync(commit.height - 1).await;
        }
        let decoded = decode_block(&commit);
        self.metrics
            .decode_errors
            .inc_by(decoded.errors.len() as u64);
        let mut dirty = HashSet::new();
        for change in decoded.changes {
            self.apply(change, &mut dirty);
        }
        self.height = commit.height;
        self.metrics.blocks_dispatched.inc();
        let produced = Instant::now();
        for key in dirty {
            self.publish(&key, produced);
        }
    }

    fn apply(&mut self, change: StateChange, dirty: &mut HashSet<SubscriptionKey>) {
        match change {
            StateChange::Validator { operator, value } => {
                match value {
                    Some(v) => self.validators.insert(operator.clone(), v),
                    None => self.validators.remove(&operator),
                };
                if let Some(keys) = self.by_validator.get(&operator) {
                    dirty.extend(keys.iter().cloned());
                }
            }
            StateChange::Balance {
                address,
                denom,
                amount,
            } => {
                self.for_account(&address, dirty, |key, state| {
                    state.apply_balance(key, &denom, &amount)
                });
            }
            StateChange::Delegation {
                delegator,
                validator,
                shares,
            } => {
                let touched = self.for_account(&delegator, dirty, |key, state| {
                    state.apply_delegation(key, &validator, &shares)
                });
                for key in touched {
                    self.reindex_validators(&key);
                }
            }
            StateChange::UnbondingDelegation {
                delegator,
                validator,
                entries,
            } => {
                self.for_account(&delegator, dirty, |key, state| {
                    state.apply_unbonding(key, &validator, &entries)
                });
            }
        }
    }

    /// Applies `f` to every topic of `account`; marks and returns those it affected.
    fn for_account(
        &mut self,
        account: &Address,
        dirty: &mut HashSet<SubscriptionKey>,
        mut f: impl FnMut(&SubscriptionKey, &mut TopicState) -> bool,
    ) -> Vec<SubscriptionKey> {
        let Some(keys) = self.by_account.get(account) else {
            return Vec::new();
        };
        let mut touched = Vec::new();
        for key in keys {
            if let Some(topic) = self.topics.get_mut(key)
                && f(key, &mut topic.state)
            {
                dirty.insert(key.clone());
                touched.push(key.clone());
            }
        }
        touched
    }

    /// Keeps `by_validator` in step with the validators a delegation topic depends on.
    fn reindex_validators(&mut self, key: &SubscriptionKey) {
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        let now = topic.state.validators(key);
        let before = std::mem::replace(&mut topic.validators, now.clone());
        for v in before.iter().filter(|v| !now.contains(v)) {
            if let Some(set) = self.by_validator.get_mut(v) {
                set.remove(key);
                if set.is_empty() {
                    self.by_validator.remove(v);
                }
            }
        }
        for v in now.iter().filter(|v| !before.contains(v)) {
            self.by_validator
                .entry(v.clone())
                .or_default()
                .insert(key.clone());
        }
    }

    /// Publishes a topic's value at the dispatched height if it changed.
    fn publish(&mut self, key: &SubscriptionKey, produced: Instant) {
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        let value = topic.state.value(key, &self.chain, &self.validators);
        if *topic.last == value {
            return;
        }
        topic.last = Arc::new(value);
        let update = Arc::new(Update::new(self.height, topic.last.clone(), produced));
        let kind = key.kind();
        for (_, outbox) in &topic.subscribers {
            if outbox.publish(update.clone()) {
                self.metrics.buffer_overflow(kind).inc();
            }
        }
    }

    async fn on_subscribe(&mut self, batch: Vec<SubscribeRequest>) {
        if self.height == 0 {
            // No committed state to snapshot yet: answer after the first block.
            self.waiting.extend(batch);
            return;
        }
        let height = self.height;
        let new_keys: HashSet<SubscriptionKey> = batch
            .iter()
            .map(|r| r.key.clone())
            .filter(|k| !self.topics.contains_key(k))
            .collect();
        let loaded = load_all(&self.reader, new_keys.into_iter().collect(), height).await;
        let mut failed: HashMap<SubscriptionKey, ReadError> = HashMap::new();
        for (key, result) in loaded {
            match result {
                Ok(state) => self.add_topic(key, state),
                Err(e) => {
                    tracing::warn!(error = %e, ?key, "snapshot read failed");
                    failed.insert(key, e);
                }
            }
        }
        let produced = Instant::now();
        for req in batch {
            if let Some(e) = failed.get(&req.key) {
                let _ = req.reply.send(Err(CloseReason::Failed(e.to_string())));
                continue;
            }
            let Some(topic) = self.topics.get_mut(&req.key) else {
                continue;
            };
            let id = self.next_id;
            self.next_id += 1;
            req.outbox
                .publish(Arc::new(Update::new(height, topic.last.clone(), produced)));
            if req.reply.send(Ok(id)).is_err() {
                // The client left while we read its snapshot.
                if topic.subscribers.is_empty() {
                    self.remove_topic(&req.key);
                }
                continue;
            }
            topic.subscribers.push((id, req.outbox));
            self.subscriptions.insert(id, req.key);
        }
    }

    fn add_topic(&mut self, key: SubscriptionKey, state: TopicState) {
        let last = Arc::new(state.value(&key, &self.chain, &self.validators));
        self.by_account
            .entry(key.account().clone())
            .or_default()
            .insert(key.clone());
        self.topics.insert(
            key.clone(),
            Topic {
                state,
                last,
                subscribers: Vec::new(),
                validators: Vec::new(),
            },
        );
        self.reindex_validators(&key);
    }

    fn remove_topic(&mut self, key: &SubscriptionKey) {
        let Some(topic) = self.topics.remove(key) else {
            return;
        };
        for v in topic.validators {
            if let Some(set) = self.by_validator.get_mut(&v) {
                set.remove(key);
                if set.is_empty() {
                    self.by_validator.remove(&v);
                }
            }
        }
        if let Some(set) = self.by_account.get_mut(key.account()) {
            set.remove(key);
            if set.is_empty() {
                self.by_account.remove(key.account());
            }
        }
    }

    fn on_unsubscribe(&mut self, id: SubscriptionId) {
        let Some(key) = self.subscriptions.remove(&id) else {
            return;
        };
        let Some(topic) = self.topics.get_mut(&key) else {
            return;
        };
        topic.subscribers.retain(|(s, _)| *s != id);
        if topic.subscribers.is_empty() {
            self.remove_topic(&key);
        }
    }

    /// Reloads validators and every topic at `height` and publishes what changed, stamped
    /// with `height`. Topics whose state cannot be read end with an error.
    async fn resync(&mut self, height: i64) {
        self.metrics.resyncs.inc();
        match self.reader.validators(height).await {
            Ok(vs) => self.validators = vs.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "cannot reload validators; delegation balances may be stale until they change")
            }
        }
        let keys: Vec<SubscriptionKey> = self.topics.keys().cloned().collect();
        let loaded = load_all(&self.reader, keys, height).await;
        self.height = height;
        let produced = Instant::now();
        for (key, result) in loaded {
            match result {
                Ok(state) => {
                    if let Some(topic) = self.topics.get_mut(&key) {
                        topic.state = state;
                    }
                    self.reindex_validators(&key);
                    self.publish(&key, produced);
                }
                Err(e) => {
                    tracing::error!(error = %e, ?key, "cannot resynchronise a subscription; closing it");
                    if let Some(topic) = self.topics.get(&key) {
                        for (id, outbox) in &topic.subscribers {
                            outbox.close(CloseReason::Failed(format!(
                                "the stream cannot continue: {e}"
                            )));
                            self.subscriptions.remove(id);
                        }
                    }
                    self.remove_topic(&key);
                }
            }
        }
    }
}

/// Reads the state of `keys` at `height` concurrently.
async fn load_all(
    reader: &Arc<dyn StateReader>,
    keys: Vec<SubscriptionKey>,
    height: i64,
) -> Vec<(SubscriptionKey, Result<TopicState, ReadError>)> {
    let mut set = tokio::task::JoinSet::new();
    for key in keys {
        let reader = reader.clone();
        set.spawn(async move {
            let r = TopicState::load(reader.as_ref(), &key, height).await;
            (key, r)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(v) => out.push(v),
            Err(e) => tracing::error!(error = %e, "snapshot read task failed"),
        }
    }
    out
}

#[cfg(test)]
mod tests;
