//! The replay window: the decoded changes of the most recent committed blocks, each block
//! stored once and shared (behind an `Arc`) by every subscription that replays it. It is how
//! a client that reconnects with `since_height` gets every change it missed (DESIGN.md 5.6),
//! and how a subscription whose snapshot read finished a few blocks late catches up.
//!
//! Bounded twice: `[stream] replay_window` blocks and `replay_memory` bytes (an estimate of the
//! decoded changes' heap size), whichever binds first; the oldest blocks go first. The
//! dispatcher is the only writer; replays read it from their own tasks, holding the lock only
//! to clone a few pointers.

use crate::metrics::Metrics;
use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::{Arc, RwLock};
use stream_abci_listener::{StateChange, UnbondingEntry};

/// One committed block's streamed changes.
#[derive(Debug)]
pub(crate) struct RetainedBlock {
    /// Its height.
    pub height: i64,
    /// Decoded changes, in change-set order.
    pub changes: Vec<StateChange>,
    /// Estimated bytes held.
    bytes: usize,
}

impl RetainedBlock {
    pub fn new(height: i64, changes: Vec<StateChange>) -> RetainedBlock {
        let bytes = size_of::<RetainedBlock>() + changes.iter().map(change_size).sum::<usize>();
        RetainedBlock {
            height,
            changes,
            bytes,
        }
    }
}

/// Heap estimate of a decoded change: the enum plus addresses, denoms, big integers (counted
/// as 32 bytes each, the size of a 256-bit Cosmos `Int`) and unbonding entries.
fn change_size(c: &StateChange) -> usize {
    const BIG: usize = 32;
    let entries = |e: &Option<Vec<UnbondingEntry>>| {
        e.as_ref()
            .map_or(0, |e| e.len() * (size_of::<UnbondingEntry>() + 2 * BIG))
    };
    size_of::<StateChange>()
        + match c {
            StateChange::Balance { address, denom, .. } => {
                address.as_bytes().len() + denom.len() + BIG
            }
            StateChange::Validator { operator, .. } => operator.as_bytes().len() + 2 * BIG,
            StateChange::Delegation {
                delegator,
                validator,
                ..
            } => delegator.as_bytes().len() + validator.as_bytes().len() + BIG,
            StateChange::UnbondingDelegation {
                delegator,
                validator,
                entries: e,
            } => delegator.as_bytes().len() + validator.as_bytes().len() + entries(e),
        }
}

/// Why the window cannot give the blocks asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Evicted {
    /// The oldest height from which the window can still replay.
    pub oldest: i64,
}

#[derive(Default)]
struct Blocks {
    /// Blocks `base + 1 ..= latest`, contiguous.
    blocks: VecDeque<Arc<RetainedBlock>>,
    /// The height whose state, plus the retained blocks, gives every later state: the oldest
    /// `since_height` a replay can start from.
    base: i64,
    /// The newest height the dispatcher has taken (>= base).
    latest: i64,
    /// The state reader's oldest readable height as of the newest block: a replay starts with
    /// a read at its `since_height`, so none can start below this either.
    readable_from: i64,
    bytes: usize,
}

/// See the module docs.
pub(crate) struct ReplayWindow {
    max_blocks: usize,
    max_bytes: usize,
    inner: RwLock<Blocks>,
    metrics: Arc<Metrics>,
}

impl ReplayWindow {
    pub fn new(max_blocks: usize, max_bytes: usize, metrics: Arc<Metrics>) -> ReplayWindow {
        ReplayWindow {
            max_blocks,
            max_bytes,
            inner: RwLock::default(),
            metrics,
        }
    }

    /// Appends the next block (the dispatcher's; heights are contiguous) and evicts what the
    /// bounds no longer allow. `readable_from` is the state reader's oldest readable height,
    /// if it has one, for the oldest-height metric.
    pub fn push(&self, block: Arc<RetainedBlock>, readable_from: Option<i64>) {
        let mut w = self.inner.write().expect("window lock");
        debug_assert_eq!(block.height, w.latest + 1);
        w.latest = block.height;
        w.readable_from = readable_from.unwrap_or(0);
        w.bytes += block.bytes;
        w.blocks.push_back(block);
        while w.blocks.len() > self.max_blocks || w.bytes > self.max_bytes {
            let Some(old) = w.blocks.pop_front() else {
                break;
            };
            w.bytes -= old.bytes;
            w.base = old.height;
        }
        self.observe(&w);
    }

    /// Forgets every block: changes up to `height` are no longer known one by one (blocks were
    /// dropped, or the module joined a running chain). Replays can start at `height` or later.
    pub fn reset(&self, height: i64) {
        let mut w = self.inner.write().expect("window lock");
        w.blocks.clear();
        w.bytes = 0;
        w.base = height;
        w.latest = height;
        self.observe(&w);
    }

    fn observe(&self, w: &Blocks) {
        // What a resume can really start from (the refusal names the same height).
        self.metrics
            .replay_oldest_height
            .set(w.base.max(w.readable_from));
        self.metrics.replay_window_blocks.set(w.blocks.len() as i64);
        self.metrics.replay_window_bytes.set(w.bytes as i64);
    }

    /// (oldest `since_height` a replay can start from, newest height taken).
    pub fn bounds(&self) -> (i64, i64) {
        let w = self.inner.read().expect("window lock");
        (w.base, w.latest)
    }

    /// Up to `limit` blocks after `height`, oldest first (empty when `height` is the latest).
    pub fn after(&self, height: i64, limit: usize) -> Result<Vec<Arc<RetainedBlock>>, Evicted> {
        let w = self.inner.read().expect("window lock");
        if height < w.base {
            return Err(Evicted { oldest: w.base });
        }
        let skip = (height - w.base) as usize;
        Ok(w.blocks.iter().skip(skip).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stream_abci_listener::{Address, Int};

    fn block(h: i64, n: usize) -> Arc<RetainedBlock> {
        let changes = (0..n)
            .map(|i| StateChange::Balance {
                address: Address::new(vec![i as u8 + 1; 20]).unwrap(),
                denom: "ujuno".into(),
                amount: Int::from(h as u64),
            })
            .collect();
        Arc::new(RetainedBlock::new(h, changes))
    }

    #[test]
    fn keeps_the_newest_blocks_within_count_and_memory() {
        let m = Arc::new(Metrics::default());
        let w = ReplayWindow::new(3, usize::MAX, m.clone());
        for h in 1..=5 {
            w.push(block(h, 1), None);
        }
        assert_eq!(w.bounds(), (2, 5));
        assert_eq!(w.after(1, 10).unwrap_err(), Evicted { oldest: 2 });
        let hs: Vec<i64> = w.after(2, 10).unwrap().iter().map(|b| b.height).collect();
        assert_eq!(hs, vec![3, 4, 5]);
        assert_eq!(w.after(3, 1).unwrap()[0].height, 4);
        assert!(w.after(5, 10).unwrap().is_empty());
        assert_eq!(m.replay_oldest_height.get(), 2);
        assert_eq!(m.replay_window_blocks.get(), 3);

        // Memory binds before the count: only as many 10-change blocks as fit.
        let one = block(1, 10).bytes;
        let w = ReplayWindow::new(1000, 2 * one + one / 2, m.clone());
        for h in 1..=6 {
            w.push(block(h, 10), None);
        }
        assert_eq!(w.bounds(), (4, 6));
        assert!(m.replay_window_bytes.get() as usize <= 2 * one + one / 2);

        w.reset(9);
        assert_eq!(w.bounds(), (9, 9));
        assert_eq!(w.after(8, 1).unwrap_err(), Evicted { oldest: 9 });
        w.push(block(10, 1), None);
        assert_eq!(w.after(9, 5).unwrap().len(), 1);
    }

    #[test]
    fn a_zero_window_keeps_nothing_but_the_height() {
        let w = ReplayWindow::new(0, usize::MAX, Arc::new(Metrics::default()));
        w.push(block(1, 1), None);
        w.push(block(2, 1), None);
        assert_eq!(w.bounds(), (2, 2));
    }

    #[test]
    fn the_oldest_height_metric_is_what_a_resume_can_start_from() {
        // A window longer than the state the reader keeps: the reader binds, and the metric
        // must say so (a resume below it is refused naming the reader's oldest height).
        let m = Arc::new(Metrics::default());
        let w = ReplayWindow::new(100, usize::MAX, m.clone());
        for h in 1..=10 {
            w.push(block(h, 1), Some(h - 3));
        }
        assert_eq!(w.bounds(), (0, 10));
        assert_eq!(m.replay_oldest_height.get(), 7);
        // A reader without a horizon leaves the window's own bound.
        w.push(block(11, 1), None);
        assert_eq!(m.replay_oldest_height.get(), 0);
    }
}
