//! The dispatcher: the single owner of the subscription index. It takes committed blocks in
//! order from the commit hook's bounded queue, decodes each once, keeps it in the replay
//! window, updates the topics the changes touch (indexed by account and by validator), and
//! publishes each changed topic's new value once per block to its subscribers' outboxes.
//!
//! It never waits on a read (DESIGN.md 5.8). A new topic is *loading* while a spawned task
//! reads its state at the dispatched height; blocks that commit meanwhile are kept in the
//! window and applied on top of the read when it returns, and only then does the topic's
//! first value go out, so no change after the snapshot is missed. When blocks were dropped
//! (queue full) or the module joins a running chain, every topic is re-read the same way
//! (a *resync*) while the dispatcher keeps taking blocks. Resumed subscriptions (`since_height`)
//! are replayed from the window by their own tasks and handed over here, at the dispatched
//! height, with their state (see `replay`).

use crate::chain::Chain;
use crate::key::SubscriptionKey;
use crate::metrics::Metrics;
use crate::outbox::{CloseReason, Outbox, Published, shutting_down};
use crate::reader::{ReadError, StateReader};
use crate::topic::{TopicState, Validators, account_of, apply_validator};
use crate::value::{Update, Value};
use crate::window::{ReplayWindow, RetainedBlock};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stream_abci_listener::{Address, BlockCommit, decode_block};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

/// Identifies one subscription (one client stream).
pub(crate) type SubscriptionId = u64;

/// State reads in flight at once (snapshots and resyncs), so a burst of subscribers cannot
/// flood the node's state reader (in plugin mode: the host node's gRPC queries).
const READ_CONCURRENCY: usize = 64;
/// Subscribe / attach commands handled between two looks at the block queue.
const COMMAND_BATCH: usize = 16;

/// A resumed subscription's state at `height`, handed from its replay to the dispatcher.
pub(crate) struct ReplayState {
    pub key: SubscriptionKey,
    pub height: i64,
    pub state: TopicState,
    pub validators: Validators,
}

/// The dispatcher's answer to an attach.
pub(crate) enum AttachReply {
    /// Registered: live updates follow the replay.
    Attached,
    /// Blocks arrived meanwhile: replay them from the window and ask again.
    Behind(ReplayState),
    /// The subscription cannot continue.
    Refused(CloseReason),
}

/// What transports (through the handle) ask of the dispatcher. Bounded queue: callers wait.
pub(crate) enum Command {
    /// A new subscription: its first value (the snapshot) goes into the outbox, then changes.
    /// Answered once it is registered and the snapshot is in the outbox.
    Subscribe {
        id: SubscriptionId,
        key: SubscriptionKey,
        outbox: Arc<Outbox>,
        reply: oneshot::Sender<Result<(), CloseReason>>,
    },
    /// A resumed subscription that has replayed up to `replay.height`.
    Attach {
        id: SubscriptionId,
        outbox: Arc<Outbox>,
        replay: ReplayState,
        reply: oneshot::Sender<AttachReply>,
    },
    /// `/stats`: the most-subscribed topics (computed at most once a second).
    Stats {
        reply: oneshot::Sender<Arc<[TopTopic]>>,
    },
}

/// A topic and how many subscribers follow it.
#[derive(Debug, Clone)]
pub(crate) struct TopTopic {
    pub key: SubscriptionKey,
    pub subscribers: usize,
}

/// How long the dispatcher reuses its last list of most-subscribed topics.
const TOP_TOPICS_TTL: Duration = Duration::from_secs(1);

/// The dispatcher's inputs.
pub(crate) struct Inputs {
    /// Committed blocks from the commit hook (bounded).
    pub blocks: mpsc::Receiver<Arc<BlockCommit>>,
    /// Subscriptions and attaches (bounded; callers wait).
    pub commands: mpsc::Receiver<Command>,
    /// Ended subscriptions (one message per subscription at most).
    pub unsubscribe: mpsc::UnboundedReceiver<SubscriptionId>,
    /// Highest height the commit hook had to drop (queue full); 0 = none.
    pub dropped: watch::Receiver<i64>,
    /// Set to true on node shutdown.
    pub shutdown: watch::Receiver<bool>,
    /// Held by a test to stall the dispatcher before its next block.
    #[cfg(test)]
    pub stall: Arc<std::sync::Mutex<()>>,
}

/// A finished read, back from its task.
enum Loaded {
    /// One new topic's state at `height`.
    Topic {
        key: SubscriptionKey,
        generation: u64,
        height: i64,
        result: Result<TopicState, ReadError>,
    },
    /// Validators and every topic at `height` (after a gap).
    Resync {
        generation: u64,
        height: i64,
        validators: Result<Validators, ReadError>,
        topics: Vec<(SubscriptionKey, Result<TopicState, ReadError>)>,
    },
}

/// Whether the topics are current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// No block yet.
    Starting,
    /// Every topic is being re-read; blocks are only kept in the window meanwhile.
    Resyncing { generation: u64 },
    /// Topics follow every block.
    Synced,
}

struct Pending {
    id: SubscriptionId,
    outbox: Arc<Outbox>,
    reply: oneshot::Sender<Result<(), CloseReason>>,
}

struct Topic {
    /// `None` while loading.
    state: Option<TopicState>,
    /// The read in flight; results of older reads are ignored.
    generation: u64,
    /// Value last published (`None` before the first).
    last: Option<Arc<Value>>,
    subscribers: Vec<(SubscriptionId, Arc<Outbox>)>,
    /// Subscribers waiting for the first read.
    pending: Vec<Pending>,
    /// Validators this topic is indexed under in `by_validator`.
    validators: Vec<Address>,
}

/// See the module docs.
pub(crate) struct Dispatcher {
    chain: Arc<Chain>,
    reader: Arc<dyn StateReader>,
    metrics: Arc<Metrics>,
    window: Arc<ReplayWindow>,
    /// The node's runtime: state reads run there, never on the dispatcher's thread.
    runtime: tokio::runtime::Handle,
    reads: Arc<Semaphore>,
    loaded: mpsc::UnboundedSender<Loaded>,
    /// Last dispatched height; 0 before the first block.
    height: i64,
    status: Status,
    /// Tokens and shares of every validator, as of `height` (when synced).
    validators: Validators,
    topics: HashMap<SubscriptionKey, Topic>,
    by_account: HashMap<Address, HashSet<SubscriptionKey>>,
    by_validator: HashMap<Address, HashSet<SubscriptionKey>>,
    subscriptions: HashMap<SubscriptionId, SubscriptionKey>,
    /// Commands that arrived while not synced.
    waiting: Vec<Command>,
    /// Highest height the commit hook dropped.
    dropped_up_to: i64,
    generation: u64,
    /// The last `/stats` answer and when it was computed.
    top_topics: Option<(Instant, Arc<[TopTopic]>)>,
    /// Header time of the last dispatched block (`stream_block_interval_seconds`).
    last_time: Option<std::time::SystemTime>,
}

impl Dispatcher {
    /// Runs until shutdown, then closes every subscription with `CloseReason::Shutdown`.
    pub async fn run(
        chain: Arc<Chain>,
        reader: Arc<dyn StateReader>,
        metrics: Arc<Metrics>,
        window: Arc<ReplayWindow>,
        runtime: tokio::runtime::Handle,
        mut inputs: Inputs,
    ) {
        let (loaded, mut loaded_rx) = mpsc::unbounded_channel();
        let mut d = Dispatcher {
            chain,
            reader,
            metrics,
            window,
            runtime,
            reads: Arc::new(Semaphore::new(READ_CONCURRENCY)),
            loaded,
            height: 0,
            status: Status::Starting,
            validators: Validators::new(),
            topics: HashMap::new(),
            by_account: HashMap::new(),
            by_validator: HashMap::new(),
            subscriptions: HashMap::new(),
            waiting: Vec::new(),
            dropped_up_to: 0,
            generation: 0,
            top_topics: None,
            last_time: None,
        };
        loop {
            tokio::select! {
                biased; // blocks first: nothing a client does delays a commit's updates
                _ = shutting_down(&mut inputs.shutdown) => break,
                Some(block) = inputs.blocks.recv() => {
                    #[cfg(test)]
                    drop(inputs.stall.lock());
                    d.metrics.dispatcher_lag_blocks.set(inputs.blocks.len() as i64);
                    d.on_block(block);
                    d.catch_up_dropped(inputs.blocks.is_empty());
                }
                Ok(()) = inputs.dropped.changed() => {
                    d.dropped_up_to = d.dropped_up_to.max(*inputs.dropped.borrow_and_update());
                    d.catch_up_dropped(inputs.blocks.is_empty());
                }
                Some(loaded) = loaded_rx.recv() => d.on_loaded(loaded),
                Some(id) = inputs.unsubscribe.recv() => {
                    d.on_unsubscribe(id);
                    while let Ok(id) = inputs.unsubscribe.try_recv() {
                        d.on_unsubscribe(id);
                    }
                }
                Some(cmd) = inputs.commands.recv() => {
                    d.on_command(cmd);
                    // A burst of subscribers is taken in small batches, so that a block
                    // arriving meanwhile waits for a batch at most, not for the burst.
                    for _ in 1..COMMAND_BATCH {
                        let Ok(cmd) = inputs.commands.try_recv() else { break };
                        d.on_command(cmd);
                    }
                }
                else => break,
            }
            d.metrics.dispatched_height.set(d.height);
            d.metrics.topics.set(d.topics.len() as i64);
            d.metrics
                .dispatcher_subscriptions
                .set(d.subscriptions.len() as i64);
        }
        inputs.commands.close();
        while let Ok(cmd) = inputs.commands.try_recv() {
            d.waiting.push(cmd);
        }
        for cmd in d.waiting.drain(..) {
            refuse(cmd, CloseReason::Shutdown);
        }
        for topic in d.topics.into_values() {
            for (_, outbox) in &topic.subscribers {
                outbox.close(CloseReason::Shutdown);
            }
            for p in topic.pending {
                let _ = p.reply.send(Err(CloseReason::Shutdown));
            }
        }
        d.metrics.topics.set(0);
        d.metrics.dispatcher_subscriptions.set(0);
    }

    /// The newest committed block may be one the hook dropped; no later block may come soon
    /// to reveal the gap, so once the queue is drained, catch up from state.
    fn catch_up_dropped(&mut self, queue_empty: bool) {
        if queue_empty && self.dropped_up_to > self.height {
            tracing::warn!(
                from = self.height + 1,
                to = self.dropped_up_to,
                "latest blocks were dropped; resynchronising subscriptions from state"
            );
            self.start_resync(self.dropped_up_to);
        }
    }

    fn on_block(&mut self, commit: Arc<BlockCommit>) {
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
            self.start_resync(commit.height - 1);
        } else if self.height != 0 && commit.height > self.height + 1 {
            // Blocks were dropped (the queue was full, or a plugin host skipped them): re-read
            // from state, then go on with this block.
            tracing::warn!(
                from = self.height + 1,
                to = commit.height - 1,
                "blocks missing; resynchronising subscriptions from state"
            );
            self.start_resync(commit.height - 1);
        }
        // Block interval, between consecutive heights only (not across dropped blocks).
        if let Some(previous) = self.last_time.filter(|_| commit.height == self.height + 1)
            && let Ok(interval) = commit.time.duration_since(previous)
        {
            self.metrics.block_interval.observe(interval.as_secs_f64());
        }
        self.last_time = Some(commit.time);
        let decoded = decode_block(&commit);
        self.metrics
            .decode_errors
            .inc_by(decoded.errors.len() as u64);
        let block = Arc::new(RetainedBlock::new(commit.height, decoded.changes));
        self.window
            .push(block.clone(), self.reader.earliest_height());
        self.height = commit.height;
        self.metrics.blocks_dispatched.inc();
        match self.status {
            Status::Starting => {
                self.status = Status::Synced;
                self.apply(&block, true);
                self.run_waiting();
            }
            Status::Synced => {
                self.apply(&block, true);
            }
            Status::Resyncing { .. } => {}
        }
    }

    /// Applies a block's changes to validators and live topics; publishes what changed when
    /// `publish` (else the caller publishes).
    fn apply(&mut self, block: &RetainedBlock, publish: bool) -> HashSet<SubscriptionKey> {
        let mut dirty = HashSet::new();
        for change in &block.changes {
            if let Some(operator) = apply_validator(&mut self.validators, change) {
                if let Some(keys) = self.by_validator.get(operator) {
                    dirty.extend(keys.iter().cloned());
                }
                continue;
            }
            let Some(keys) = account_of(change).and_then(|a| self.by_account.get(a)) else {
                continue;
            };
            for key in keys {
                if let Some(state) = self.topics.get_mut(key).and_then(|t| t.state.as_mut())
                    && state.apply(key, change)
                {
                    dirty.insert(key.clone());
                }
            }
        }
        for key in &dirty {
            self.reindex_validators(key);
        }
        if publish {
            let produced = Instant::now();
            for key in &dirty {
                self.publish(key, produced);
            }
        }
        dirty
    }

    /// Keeps `by_validator` in step with the validators a delegation topic depends on.
    fn reindex_validators(&mut self, key: &SubscriptionKey) {
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        let Some(state) = &topic.state else {
            return;
        };
        let now = state.validators(key);
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

    /// Publishes a live topic's value at the dispatched height if it changed.
    fn publish(&mut self, key: &SubscriptionKey, produced: Instant) {
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        let Some(state) = &topic.state else {
            return;
        };
        let value = state.value(key, &self.chain, &self.validators);
        if topic.last.as_deref() == Some(&value) {
            return;
        }
        let value = Arc::new(value);
        topic.last = Some(value.clone());
        let update = Arc::new(Update::new(self.height, value, produced));
        let kind = key.kind();
        for (_, outbox) in &topic.subscribers {
            match outbox.publish(update.clone()) {
                Published::Queued => {}
                Published::Overwrote => {
                    self.metrics.buffer_overflow(kind).inc();
                }
                Published::Overflowed => {
                    self.metrics.replays_refused("fell_behind").inc();
                }
            }
        }
    }

    /// A loading topic's state is current: its waiting subscribers get their first value.
    fn go_live(&mut self, key: &SubscriptionKey) {
        self.reindex_validators(key);
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        let Some(state) = &topic.state else {
            return;
        };
        let value = Arc::new(state.value(key, &self.chain, &self.validators));
        topic.last = Some(value.clone());
        let update = Arc::new(Update::new(self.height, value, Instant::now()));
        for p in topic.pending.drain(..) {
            p.outbox.publish(update.clone());
            // A client that left meanwhile unsubscribes through its registration.
            let _ = p.reply.send(Ok(()));
            topic.subscribers.push((p.id, p.outbox));
        }
    }

    fn on_command(&mut self, cmd: Command) {
        if self.status != Status::Synced && !matches!(cmd, Command::Stats { .. }) {
            self.waiting.push(cmd);
            return;
        }
        match cmd {
            Command::Stats { reply } => {
                let _ = reply.send(self.top_topics());
            }
            Command::Subscribe {
                id,
                key,
                outbox,
                reply,
            } => {
                if outbox.is_abandoned() {
                    return;
                }
                self.subscriptions.insert(id, key.clone());
                let height = self.height;
                let generation = self.next_generation();
                let topic = self.topics.entry(key.clone()).or_insert_with(|| Topic {
                    state: None,
                    generation,
                    last: None,
                    subscribers: Vec::new(),
                    pending: Vec::new(),
                    validators: Vec::new(),
                });
                match (&topic.state, &topic.last) {
                    (Some(_), Some(last)) => {
                        outbox.publish(Arc::new(Update::new(height, last.clone(), Instant::now())));
                        let _ = reply.send(Ok(()));
                        topic.subscribers.push((id, outbox));
                    }
                    _ => {
                        let new = topic.pending.is_empty() && topic.subscribers.is_empty();
                        topic.pending.push(Pending { id, outbox, reply });
                        if new {
                            self.by_account
                                .entry(key.account().clone())
                                .or_default()
                                .insert(key.clone());
                            self.spawn_load(key, generation, height);
                        }
                    }
                }
            }
            Command::Attach {
                id,
                outbox,
                replay,
                reply,
            } => {
                if outbox.is_abandoned() {
                    return;
                }
                if replay.height != self.height {
                    let _ = reply.send(AttachReply::Behind(replay));
                    return;
                }
                let key = replay.key;
                let generation = self.next_generation();
                let topic = self.topics.entry(key.clone()).or_insert_with(|| Topic {
                    state: None,
                    generation,
                    last: None,
                    subscribers: Vec::new(),
                    pending: Vec::new(),
                    validators: Vec::new(),
                });
                if topic.state.is_none() {
                    // New or still loading: the replay's state is current, use it.
                    topic.state = Some(replay.state);
                    self.by_account
                        .entry(key.account().clone())
                        .or_default()
                        .insert(key.clone());
                    self.go_live(&key);
                }
                if let Some(topic) = self.topics.get_mut(&key) {
                    topic.subscribers.push((id, outbox));
                }
                self.subscriptions.insert(id, key);
                let _ = reply.send(AttachReply::Attached);
            }
        }
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// The [`crate::ops::TOP_TOPICS`] topics with the most subscribers, most first.
    fn top_topics(&mut self) -> Arc<[TopTopic]> {
        if let Some((at, top)) = &self.top_topics
            && at.elapsed() < TOP_TOPICS_TTL
        {
            return top.clone();
        }
        let mut all: Vec<(usize, &SubscriptionKey)> = self
            .topics
            .iter()
            .map(|(key, t)| (t.subscribers.len() + t.pending.len(), key))
            .collect();
        let most_first =
            |a: &(usize, &SubscriptionKey), b: &(usize, &SubscriptionKey)| b.0.cmp(&a.0);
        if all.len() > crate::ops::TOP_TOPICS {
            all.select_nth_unstable_by(crate::ops::TOP_TOPICS - 1, most_first);
            all.truncate(crate::ops::TOP_TOPICS);
        }
        all.sort_by(most_first);
        let top: Vec<TopTopic> = all
            .into_iter()
            .map(|(subscribers, key)| TopTopic {
                key: key.clone(),
                subscribers,
            })
            .collect();
        let top: Arc<[TopTopic]> = top.into();
        self.top_topics = Some((Instant::now(), top.clone()));
        top
    }

    fn run_waiting(&mut self) {
        for cmd in std::mem::take(&mut self.waiting) {
            self.on_command(cmd);
        }
    }

    /// Reads one topic's state at `height` off the dispatcher.
    fn spawn_load(&self, key: SubscriptionKey, generation: u64, height: i64) {
        let (reader, reads, loaded) =
            (self.reader.clone(), self.reads.clone(), self.loaded.clone());
        self.runtime.spawn(async move {
            let Some(result) = read_topic(&reader, &reads, &key, height).await else {
                return;
            };
            let _ = loaded.send(Loaded::Topic {
                key,
                generation,
                height,
                result,
            });
        });
    }

    /// Changes up to `height` are not known block by block: re-read validators and every topic
    /// at `height` off the dispatcher. Resumed subscriptions cannot replay across the gap and
    /// end with an explicit error.
    fn start_resync(&mut self, height: i64) {
        let generation = self.next_generation();
        let skipped = (self.height + 1, height);
        self.status = Status::Resyncing { generation };
        self.window.reset(height);
        self.height = height;
        self.metrics.resyncs.inc();
        for topic in self.topics.values_mut() {
            topic.generation = generation;
            topic.subscribers.retain(|(id, outbox)| {
                if !outbox.is_every() {
                    return true;
                }
                outbox.close(CloseReason::OutOfRange(format!(
                    "blocks {}..={} did not reach the stream module (its block queue was full), so \
                     changes cannot be replayed across them; subscribe without since_height for a \
                     fresh snapshot",
                    skipped.0, skipped.1
                )));
                self.metrics.replays_refused("gap").inc();
                self.subscriptions.remove(id);
                false
            });
        }
        let keys: Vec<SubscriptionKey> = self.topics.keys().cloned().collect();
        let (reader, reads, loaded) =
            (self.reader.clone(), self.reads.clone(), self.loaded.clone());
        self.runtime.spawn(async move {
            let validators = read_validators(reader.as_ref(), height).await;
            let topics = load_all(&reader, &reads, keys, height).await;
            let _ = loaded.send(Loaded::Resync {
                generation,
                height,
                validators,
                topics,
            });
        });
    }

    fn on_loaded(&mut self, loaded: Loaded) {
        match loaded {
            Loaded::Topic {
                key,
                generation,
                height,
                result,
            } => self.on_topic_loaded(key, generation, height, result),
            Loaded::Resync {
                generation,
                height,
                validators,
                topics,
            } => self.on_resynced(generation, height, validators, topics),
        }
    }

    fn on_topic_loaded(
        &mut self,
        key: SubscriptionKey,
        generation: u64,
        height: i64,
        result: Result<TopicState, ReadError>,
    ) {
        let Some(topic) = self.topics.get(&key) else {
            return;
        };
        if topic.generation != generation || topic.state.is_some() {
            return;
        }
        let mut state = match result {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(error = %e, ?key, "snapshot read failed");
                self.fail_topic(&key, CloseReason::Failed(e.to_string()));
                return;
            }
        };
        // Blocks committed while the read ran are in the window: apply them on top.
        match self.window.after(height, usize::MAX) {
            Ok(blocks) if blocks.last().map_or(height, |b| b.height) == self.height => {
                for block in &blocks {
                    for change in &block.changes {
                        state.apply(&key, change);
                    }
                }
            }
            _ => {
                // The window no longer reaches back to the read: read again, now.
                let generation = self.next_generation();
                if let Some(topic) = self.topics.get_mut(&key) {
                    topic.generation = generation;
                }
                self.spawn_load(key, generation, self.height);
                return;
            }
        }
        if let Some(topic) = self.topics.get_mut(&key) {
            topic.state = Some(state);
        }
        self.go_live(&key);
    }

    fn on_resynced(
        &mut self,
        generation: u64,
        height: i64,
        validators: Result<Validators, ReadError>,
        topics: Vec<(SubscriptionKey, Result<TopicState, ReadError>)>,
    ) {
        if self.status != (Status::Resyncing { generation }) {
            return;
        }
        match validators {
            Ok(v) => self.validators = v,
            Err(e) => {
                tracing::error!(error = %e, "cannot read validators; ending every subscription");
                let keys: Vec<SubscriptionKey> = self.topics.keys().cloned().collect();
                for key in keys {
                    self.fail_topic(
                        &key,
                        CloseReason::Failed(format!("the stream cannot continue: {e}")),
                    );
                }
                // Nothing to price delegations with: try again from the next block's height.
                self.start_resync(self.height);
                return;
            }
        }
        let mut read: HashSet<SubscriptionKey> = HashSet::new();
        for (key, result) in topics {
            read.insert(key.clone());
            match result {
                Ok(state) => {
                    if let Some(topic) = self.topics.get_mut(&key) {
                        topic.state = Some(state);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, ?key, "cannot resynchronise a subscription; closing it");
                    self.fail_topic(
                        &key,
                        CloseReason::Failed(format!("the stream cannot continue: {e}")),
                    );
                }
            }
        }
        let unread: Vec<SubscriptionKey> = self
            .topics
            .keys()
            .filter(|k| !read.contains(*k))
            .cloned()
            .collect();
        for key in unread {
            self.fail_topic(
                &key,
                CloseReason::Failed("the stream cannot continue: its state read failed".into()),
            );
        }
        let blocks = self
            .window
            .after(height, usize::MAX)
            .expect("the window was reset at the resync height");
        for block in &blocks {
            self.apply(block, false);
        }
        self.status = Status::Synced;
        let produced = Instant::now();
        let keys: Vec<SubscriptionKey> = self.topics.keys().cloned().collect();
        for key in &keys {
            self.reindex_validators(key);
            let loading = self.topics.get(key).is_some_and(|t| !t.pending.is_empty());
            self.publish(key, produced);
            if loading {
                self.go_live(key);
            }
        }
        self.run_waiting();
    }

    /// Ends every subscriber of `key` with `reason` and forgets the topic.
    fn fail_topic(&mut self, key: &SubscriptionKey, reason: CloseReason) {
        let Some(topic) = self.topics.get_mut(key) else {
            return;
        };
        for (id, outbox) in topic.subscribers.drain(..) {
            outbox.close(reason.clone());
            self.subscriptions.remove(&id);
        }
        for p in topic.pending.drain(..) {
            let _ = p.reply.send(Err(reason.clone()));
            self.subscriptions.remove(&p.id);
        }
        self.remove_topic(key);
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
        // Unknown ids are subscriptions the dispatcher never registered: their outbox was
        // abandoned first, so they never will be.
        let Some(key) = self.subscriptions.remove(&id) else {
            return;
        };
        let Some(topic) = self.topics.get_mut(&key) else {
            return;
        };
        topic.subscribers.retain(|(s, _)| *s != id);
        topic.pending.retain(|p| p.id != id);
        if topic.subscribers.is_empty() && topic.pending.is_empty() {
            self.remove_topic(&key);
        }
    }
}

/// Answers a command that will not be served.
fn refuse(cmd: Command, reason: CloseReason) {
    match cmd {
        Command::Stats { .. } => {}
        Command::Subscribe { reply, .. } => {
            let _ = reply.send(Err(reason));
        }
        Command::Attach { reply, .. } => {
            let _ = reply.send(AttachReply::Refused(reason));
        }
    }
}

/// Every validator at `height`, retried a few times (a resync cannot price delegations
/// without them).
async fn read_validators(reader: &dyn StateReader, height: i64) -> Result<Validators, ReadError> {
    let mut attempt = 0;
    loop {
        match reader.validators(height).await {
            Ok(vs) => return Ok(vs.into_iter().collect()),
            Err(e) if attempt >= 2 => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "reading validators failed; retrying");
                attempt += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Reads `key`'s state at `height` once one of the [`READ_CONCURRENCY`] read slots is free;
/// `None` if the slots are gone (the dispatcher is shutting down).
async fn read_topic(
    reader: &Arc<dyn StateReader>,
    reads: &Arc<Semaphore>,
    key: &SubscriptionKey,
    height: i64,
) -> Option<Result<TopicState, ReadError>> {
    let _permit = reads.clone().acquire_owned().await.ok()?;
    Some(TopicState::load(reader.as_ref(), key, height).await)
}

/// Reads the state of `keys` at `height` concurrently (at most [`READ_CONCURRENCY`] at once).
async fn load_all(
    reader: &Arc<dyn StateReader>,
    reads: &Arc<Semaphore>,
    keys: Vec<SubscriptionKey>,
    height: i64,
) -> Vec<(SubscriptionKey, Result<TopicState, ReadError>)> {
    let mut set = tokio::task::JoinSet::new();
    for key in keys {
        let (reader, reads) = (reader.clone(), reads.clone());
        set.spawn(async move {
            let r = read_topic(&reader, &reads, &key, height).await?;
            Some((key, r))
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Some(v)) => out.push(v),
            Ok(None) => {} // shutting down
            Err(e) => tracing::error!(error = %e, "state read task failed"),
        }
    }
    out
}

#[cfg(test)]
mod tests;
