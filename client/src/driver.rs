//! The task behind each subscription: opens streams, resumes them from the last height
//! delivered, resynchronises when the node cannot resume, backs off, fails over, and tells
//! the consumer where it stands.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::attempt::{self, Failure};
use crate::backoff::Jitter;
use crate::config::ClientConfig;
use crate::error::Error;
use crate::state::ConnectionState;
use crate::topic::Topic;
use crate::update::{Update, UpdateKind};

/// A stream open this long counts as healthy even if it carried no update (a quiet account):
/// the next failure starts the backoff from the beginning.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// What the consumer receives.
pub(crate) type Item<V> = Result<Update<V>, Error>;

/// The sequence delivered so far, which decides how the next attempt starts.
#[derive(Debug, Default)]
struct Position {
    /// Height of the last value delivered: the next attempt resumes with
    /// `since_height` = this, so the node replays exactly what came after it.
    last: Option<i64>,
    /// The node said it cannot resume from `last`: the next attempt takes a fresh snapshot
    /// and delivers it as `Resynced`.
    resync: bool,
}

impl Position {
    /// `since_height` for the next attempt (None: snapshot).
    fn since(&self) -> Option<i64> {
        if self.resync { None } else { self.last }
    }

    /// The kind of a value at `height`, or None for a value not newer than the last one
    /// delivered (never delivered twice).
    fn classify(&self, height: i64) -> Option<UpdateKind> {
        match self.last {
            None => Some(UpdateKind::Snapshot),
            Some(last) if height <= last => None,
            Some(last) if self.resync => Some(UpdateKind::Resynced { last_height: last }),
            Some(_) => Some(UpdateKind::Change),
        }
    }
}

/// How an attempt ended.
enum Ended {
    /// The consumer dropped the subscription.
    ConsumerGone,
    /// The stream failed after delivering `delivered` values, having been open `open_for`
    /// (zero if it never opened).
    Failed {
        failure: Failure,
        delivered: usize,
        open_for: Duration,
    },
}

/// Runs a subscription until the consumer drops it or it fails for good.
pub(crate) async fn run<T: Topic>(
    topic: Arc<T>,
    config: Arc<ClientConfig>,
    tx: mpsc::Sender<Item<T::Value>>,
    state: watch::Sender<ConnectionState>,
) {
    let mut position = Position::default();
    let mut jitter = Jitter::seeded();
    // Consecutive failed attempts (what the backoff grows with).
    let mut failures: u32 = 0;
    // Attempts since the subscription was last live (what `Reconnecting` shows).
    let mut reconnects: u32 = 0;
    let mut endpoint = 0usize;
    let mut wait = false;
    loop {
        if wait {
            let delay = config.backoff.delay(failures, &mut jitter);
            tracing::debug!(topic = %topic.describe(), ?delay, failures, "backing off");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = tx.closed() => return,
            }
        }
        let url = config.endpoints[endpoint % config.endpoints.len()].clone();
        let ended = attempt(&*topic, &config, &url, &mut position, &tx, &state).await;
        let (failure, delivered, open_for) = match ended {
            Ended::ConsumerGone => return,
            Ended::Failed {
                failure,
                delivered,
                open_for,
            } => (failure, delivered, open_for),
        };
        if open_for > Duration::ZERO {
            reconnects = 0;
        }
        if delivered > 0 || open_for >= HEALTHY_AFTER {
            failures = 0;
        }
        tracing::info!(topic = %topic.describe(), endpoint = %url, delivered, error = failure.message(), "stream ended");
        match failure {
            Failure::Invalid(message) => {
                state.send_replace(ConnectionState::Failed(message.clone()));
                let _ = tx.send(Err(Error::InvalidRequest(message))).await;
                return;
            }
            Failure::Denied(message) => {
                let error = Error::PermissionDenied(message);
                state.send_replace(ConnectionState::Failed(error.to_string()));
                let _ = tx.send(Err(error)).await;
                return;
            }
            // Resumed and delivered something, then ended (it fell behind): resume again from
            // the new last height, at once and on the same endpoint.
            Failure::Gone(_) if position.since().is_some() && delivered > 0 => wait = false,
            // The node cannot resume from where we are: take a fresh snapshot, at once.
            Failure::Gone(_) if position.since().is_some() => {
                position.resync = true;
                wait = false;
            }
            // Anything else (a snapshot stream should never end with OUT_OF_RANGE; an expired
            // or refused token, for which the next attempt asks the provider again): back off
            // and try the next endpoint.
            failure => {
                failures += 1;
                if config.max_attempts.is_some_and(|max| failures >= max) {
                    let error = Error::GaveUp {
                        attempts: failures,
                        last: failure.message().to_owned(),
                    };
                    state.send_replace(ConnectionState::Failed(error.to_string()));
                    let _ = tx.send(Err(error)).await;
                    return;
                }
                endpoint += 1;
                wait = true;
            }
        }
        reconnects += 1;
        state.send_replace(ConnectionState::Reconnecting {
            attempt: reconnects,
        });
    }
}

/// One attempt: open a stream on `url` and deliver its values until it ends.
async fn attempt<T: Topic>(
    topic: &T,
    config: &ClientConfig,
    url: &str,
    position: &mut Position,
    tx: &mpsc::Sender<Item<T::Value>>,
    state: &watch::Sender<ConnectionState>,
) -> Ended {
    let since = position.since();
    let opened = tokio::select! {
        opened = attempt::open(topic, config, url, since) => opened,
        _ = tx.closed() => return Ended::ConsumerGone,
    };
    let mut values = match opened {
        Ok(values) => values,
        Err(failure) => {
            return Ended::Failed {
                failure,
                delivered: 0,
                open_for: Duration::ZERO,
            };
        }
    };
    let open_at = Instant::now();
    state.send_replace(ConnectionState::Live {
        endpoint: url.to_owned(),
    });
    tracing::debug!(topic = %topic.describe(), endpoint = url, ?since, "stream open");
    let mut delivered = 0;
    let failed = |failure, delivered| Ended::Failed {
        failure,
        delivered,
        open_for: open_at.elapsed().max(Duration::from_nanos(1)),
    };
    loop {
        let next = async {
            match config.idle_timeout {
                None => Ok(values.next().await),
                Some(limit) => tokio::time::timeout(limit, values.next()).await,
            }
        };
        let next = tokio::select! {
            next = next => next,
            _ = tx.closed() => return Ended::ConsumerGone,
        };
        let (height, value) = match next {
            Err(_) => {
                let limit = config.idle_timeout.unwrap_or_default();
                let why = format!("idle: no update for {limit:?}");
                return failed(Failure::Retry(why), delivered);
            }
            Ok(None) => {
                let why = "the stream ended without a status".to_owned();
                return failed(Failure::Retry(why), delivered);
            }
            Ok(Some(Err(failure))) => return failed(failure, delivered),
            Ok(Some(Ok(item))) => item,
        };
        let Some(kind) = position.classify(height) else {
            tracing::warn!(topic = %topic.describe(), height, last = ?position.last, "dropped a value not newer than the last one delivered");
            continue;
        };
        let update = Update {
            height,
            value,
            kind,
        };
        if tx.send(Ok(update)).await.is_err() {
            return Ended::ConsumerGone;
        }
        position.last = Some(height);
        position.resync = false;
        delivered += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_resume_from_the_last_height_and_never_repeat_one() {
        let mut p = Position::default();
        assert_eq!(p.since(), None);
        assert_eq!(p.classify(10), Some(UpdateKind::Snapshot));
        p.last = Some(10);
        assert_eq!(p.since(), Some(10));
        assert_eq!(p.classify(10), None);
        assert_eq!(p.classify(9), None);
        assert_eq!(p.classify(11), Some(UpdateKind::Change));
        p.resync = true;
        assert_eq!(p.since(), None);
        assert_eq!(
            p.classify(50),
            Some(UpdateKind::Resynced { last_height: 10 })
        );
    }
}
