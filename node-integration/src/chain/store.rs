//! The multi-store: one ordered key/value map per module store (`acc`, `bank`, `staking`),
//! with cheap versions (persistent maps) and a change log in ADR-038 order.

use imbl::OrdMap;
use std::collections::BTreeMap;
use std::ops::Bound;
use stream_abci_listener::StoreKVPair;

/// The module stores, named by their Cosmos SDK store keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StoreKey {
    /// x/auth.
    Acc,
    /// x/bank.
    Bank,
    /// x/staking.
    Staking,
}

impl StoreKey {
    /// Every store, in store-key order.
    pub const ALL: [StoreKey; 3] = [StoreKey::Acc, StoreKey::Bank, StoreKey::Staking];

    /// The SDK store key name (what `StoreKVPair.store_key` carries).
    pub fn name(self) -> &'static str {
        match self {
            StoreKey::Acc => "acc",
            StoreKey::Bank => "bank",
            StoreKey::Staking => "staking",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One store's contents.
pub type Kv = OrdMap<Vec<u8>, Vec<u8>>;

/// All stores at one point in time. Cloning is O(1) (structural sharing), which is what
/// makes per-height versions and per-transaction rollback cheap.
#[derive(Clone, Default, Debug, PartialEq)]
pub struct MultiStore {
    stores: [Kv; 3],
}

impl MultiStore {
    /// Value of `key` in `store`.
    pub fn get(&self, store: StoreKey, key: &[u8]) -> Option<&Vec<u8>> {
        self.stores[store.index()].get(key)
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn prefix<'a>(
        &'a self,
        store: StoreKey,
        prefix: &[u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Vec<u8>)> + 'a {
        let start = prefix.to_vec();
        let p = prefix.to_vec();
        self.stores[store.index()]
            .range((Bound::Included(start), Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(&p))
    }

    fn set(&mut self, store: StoreKey, key: Vec<u8>, value: Vec<u8>) {
        self.stores[store.index()].insert(key, value);
    }

    fn remove(&mut self, store: StoreKey, key: &[u8]) {
        self.stores[store.index()].remove(key);
    }

    /// Applies an ADR-038 change set (used to rebuild state from change sets in tests).
    pub fn apply(&mut self, pairs: &[StoreKVPair]) {
        for p in pairs {
            let Some(store) = StoreKey::ALL.iter().find(|s| s.name() == p.store_key) else {
                continue;
            };
            if p.delete {
                self.remove(*store, &p.key);
            } else {
                self.set(*store, p.key.clone(), p.value.clone());
            }
        }
    }
}

/// A store being written during a block: every write is applied and logged, in order, per
/// store, as the SDK's listening multi-store records them.
#[derive(Clone, Default, Debug)]
pub struct WriteSet {
    state: MultiStore,
    log: BTreeMap<&'static str, Vec<StoreKVPair>>,
}

/// A point to roll a `WriteSet` back to (a failed transaction's writes are discarded).
pub struct Checkpoint {
    state: MultiStore,
    lens: Vec<(&'static str, usize)>,
}

impl WriteSet {
    /// Starts writing on top of committed state.
    pub fn new(base: MultiStore) -> Self {
        Self {
            state: base,
            log: BTreeMap::new(),
        }
    }

    /// Current (uncommitted) state.
    pub fn state(&self) -> &MultiStore {
        &self.state
    }

    /// Sets `key` to `value`.
    pub fn set(&mut self, store: StoreKey, key: Vec<u8>, value: Vec<u8>) {
        self.log.entry(store.name()).or_default().push(StoreKVPair {
            store_key: store.name().into(),
            delete: false,
            key: key.clone(),
            value: value.clone(),
        });
        self.state.set(store, key, value);
    }

    /// Deletes `key` (logged even if absent, as the SDK does).
    pub fn delete(&mut self, store: StoreKey, key: Vec<u8>) {
        self.state.remove(store, &key);
        self.log.entry(store.name()).or_default().push(StoreKVPair {
            store_key: store.name().into(),
            delete: true,
            key,
            value: Vec::new(),
        });
    }

    /// Every entry whose value now differs from `base` (the state the block started from):
    /// its store, key and new value (`None`: deleted), in store and key order.
    pub fn changed_since(&self, base: &MultiStore) -> Vec<(StoreKey, Vec<u8>, Option<Vec<u8>>)> {
        let mut touched = std::collections::BTreeSet::new();
        for pair in self.log.values().flatten() {
            if let Some(store) = StoreKey::ALL.iter().find(|s| s.name() == pair.store_key) {
                touched.insert((*store, pair.key.as_slice()));
            }
        }
        touched
            .into_iter()
            .filter_map(|(store, key)| {
                let now = self.state.get(store, key);
                (now != base.get(store, key)).then(|| (store, key.to_vec(), now.cloned()))
            })
            .collect()
    }

    /// Remembers the current state.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            state: self.state.clone(),
            lens: self.log.iter().map(|(k, v)| (*k, v.len())).collect(),
        }
    }

    /// Discards everything written since `cp`.
    pub fn rollback(&mut self, cp: Checkpoint) {
        self.state = cp.state;
        self.log
            .retain(|k, v| match cp.lens.iter().find(|(n, _)| n == k) {
                Some((_, len)) => {
                    v.truncate(*len);
                    true
                }
                None => false,
            });
    }

    /// Ends the block: the new state and the change set, sorted by store key and in write
    /// order within a store (the SDK's `PopStateCache` order).
    pub fn finish(self) -> (MultiStore, Vec<StoreKVPair>) {
        (self.state, self.log.into_values().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_set_is_sorted_by_store_then_write_order_and_rollback_discards() {
        let mut w = WriteSet::new(MultiStore::default());
        w.set(StoreKey::Staking, vec![2], vec![1]);
        w.set(StoreKey::Bank, vec![9], vec![1]);
        w.set(StoreKey::Bank, vec![1], vec![2]);
        let cp = w.checkpoint();
        w.set(StoreKey::Acc, vec![5], vec![5]);
        w.delete(StoreKey::Bank, vec![9]);
        w.rollback(cp);
        w.delete(StoreKey::Bank, vec![1]);
        let (state, changes) = w.finish();
        let order: Vec<_> = changes
            .iter()
            .map(|p| (p.store_key.as_str(), p.key[0], p.delete))
            .collect();
        assert_eq!(
            order,
            vec![
                ("bank", 9, false),
                ("bank", 1, false),
                ("bank", 1, true),
                ("staking", 2, false)
            ]
        );
        assert_eq!(state.get(StoreKey::Bank, &[9]), Some(&vec![1]));
        assert_eq!(state.get(StoreKey::Acc, &[5]), None);
        let mut rebuilt = MultiStore::default();
        rebuilt.apply(&changes);
        assert_eq!(rebuilt, state);
    }

    #[test]
    fn prefix_scan_stops_at_prefix_end() {
        let mut w = WriteSet::new(MultiStore::default());
        for k in [vec![1, 1], vec![1, 2], vec![2, 0], vec![0, 9]] {
            w.set(StoreKey::Bank, k, vec![]);
        }
        let keys: Vec<_> = w
            .state()
            .prefix(StoreKey::Bank, &[1])
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(keys, vec![vec![1, 1], vec![1, 2]]);
    }
}
