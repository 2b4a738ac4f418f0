//! What a subscription yields: a value, the committed height it is current at, and how it
//! relates to the values before it.

/// One value of a subscription, in height order.
#[derive(Clone, Debug, PartialEq)]
pub struct Update<T> {
    /// The committed height the value is current at. Heights strictly increase along a
    /// subscription, across reconnects and endpoints.
    pub height: i64,
    /// The value (the full state of what the subscription follows, never a delta).
    pub value: T,
    /// Where this value stands in the sequence.
    pub kind: UpdateKind,
}

/// Where an [`Update`] stands in its subscription's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateKind {
    /// The first value of the subscription: the state at a committed height, not
    /// necessarily a change at that height.
    Snapshot,
    /// The value changed at this height (the block's final value). After the snapshot, the
    /// changes arrive exactly once each, with none missing, across any number of reconnects
    /// and failovers (see the crate docs for the one exception, [`UpdateKind::Resynced`]).
    Change,
    /// A fresh snapshot that replaces a resume the node could not serve: the node no
    /// longer holds the changes after `last_height` (the height of the previous value
    /// delivered), so changes between `last_height` and this value's height may have been
    /// missed. The value itself is the current state. Never a silent skip.
    Resynced {
        /// The height of the last value delivered before the resync.
        last_height: i64,
    },
}

impl<T> Update<T> {
    /// True for the first value of the subscription.
    pub fn is_snapshot(&self) -> bool {
        self.kind == UpdateKind::Snapshot
    }

    /// Applies `f` to the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Update<U> {
        Update {
            height: self.height,
            value: f(self.value),
            kind: self.kind,
        }
    }
}
