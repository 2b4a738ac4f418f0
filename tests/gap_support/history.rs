//! The standard Cosmos queries' answer (`x-cosmos-block-height`) for every followed stream at
//! every height the transcripts cover, in the canonical form: what the checker holds the
//! streams against.

use std::collections::{BTreeMap, HashMap};

use futures_util::StreamExt;
use serde_json::Value as Json;

use super::target::canonical;
use super::transcript::{End, Start, Transcript};
use crate::stream_support::{StreamKey, standard_value};
use crate::support::TestNode;

/// Queries in flight at once while building the history.
const CONCURRENCY: usize = 24;

/// Value of each stream at each height.
#[derive(Clone, Debug, Default)]
pub struct History {
    values: HashMap<StreamKey, BTreeMap<i64, Json>>,
}

impl History {
    /// Records `value` for `key` at `height`.
    pub fn insert(&mut self, key: &StreamKey, height: i64, value: Json) {
        self.values
            .entry(key.clone())
            .or_default()
            .insert(height, value);
    }

    /// The value of `key` at `height`, if queried.
    pub fn get(&self, key: &StreamKey, height: i64) -> Option<&Json> {
        self.values.get(key).and_then(|v| v.get(&height))
    }

    /// (stream, height) pairs held.
    pub fn len(&self) -> usize {
        self.values.values().map(BTreeMap::len).sum()
    }

    /// Heights at which `key`'s value differs from the height before.
    pub fn change_heights(&self, key: &StreamKey) -> Vec<i64> {
        let Some(v) = self.values.get(key) else {
            return Vec::new();
        };
        v.iter()
            .zip(v.iter().skip(1))
            .filter(|((h0, a), (h1, b))| **h1 == **h0 + 1 && a != b)
            .map(|(_, (h, _))| *h)
            .collect()
    }

    /// Every stream held.
    pub fn keys(&self) -> impl Iterator<Item = &StreamKey> {
        self.values.keys()
    }
}

/// For each stream, the heights the transcripts need: from one below the lowest height a
/// segment starts at to the highest it covers.
pub fn needed(transcripts: &[Transcript]) -> BTreeMap<StreamKey, (i64, i64)> {
    let mut ranges: BTreeMap<StreamKey, (i64, i64)> = BTreeMap::new();
    for t in transcripts {
        for s in &t.segments {
            let mut lo = match s.start {
                Start::Since(h) => Some(h),
                Start::Snapshot => s.messages.first().map(|m| m.height - 1),
            };
            let mut hi = s.messages.iter().map(|m| m.height).max();
            if let End::Stopped { stop_height } = s.end {
                hi = Some(hi.map_or(stop_height, |h| h.max(stop_height)));
            }
            if let (Some(l), Some(h)) = (lo.take(), hi) {
                let r = ranges.entry(t.key.clone()).or_insert((l, h));
                r.0 = r.0.min(l).max(1);
                r.1 = r.1.max(h);
            }
        }
    }
    ranges
}

/// Queries the standard value of every stream at every height of `ranges`.
pub async fn query(node: &TestNode, ranges: &BTreeMap<StreamKey, (i64, i64)>) -> History {
    let jobs: Vec<(StreamKey, i64)> = ranges
        .iter()
        .flat_map(|(k, (lo, hi))| (*lo..=*hi).map(move |h| (k.clone(), h)))
        .collect();
    let answers: Vec<(StreamKey, i64, Json)> = futures_util::stream::iter(jobs)
        .map(|(key, h)| async move {
            let value = canonical(&standard_value(node, &key, h).await);
            (key, h, value)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut history = History::default();
    for (key, h, value) in answers {
        history.insert(&key, h, value);
    }
    history
}
