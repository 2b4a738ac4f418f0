//! The node's commit timeline: its latest height sampled continuously while the clients run,
//! each sample stamped with when the query was *sent*. A message that arrived at `t` is from a
//! committed height only if every later query answers at least that height, so the first
//! sample sent after `t` bounds it (soundly: a slow sample only loosens the bound).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::TestNode;

/// (query sent at, height answered), in order.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    samples: Vec<(Instant, i64)>,
}

impl Timeline {
    /// Adds a sample (sent at `at`, answered `height`); samples come in order.
    pub fn record(&mut self, at: Instant, height: i64) {
        self.samples.push((at, height));
    }

    /// The height answered by the first query sent at or after `t`.
    pub fn committed_after(&self, t: Instant) -> Option<i64> {
        let i = self.samples.partition_point(|(at, _)| *at < t);
        self.samples.get(i).map(|(_, h)| *h)
    }

    /// The newest height seen.
    pub fn latest(&self) -> Option<i64> {
        self.samples.last().map(|(_, h)| *h)
    }

    /// Samples taken.
    pub fn len(&self) -> usize {
        self.samples.len()
    }
}

/// Samples the node's height every `every` until `stop` is set; the timeline is shared so
/// clients can read the latest height meanwhile.
pub async fn sample(
    node: &TestNode,
    every: Duration,
    timeline: Arc<Mutex<Timeline>>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let sent = Instant::now();
        if let Ok(block) = node.latest_block().await {
            timeline
                .lock()
                .expect("timeline lock")
                .record(sent, block.height);
        }
        if *stop.borrow() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
