//! Reconnect delays: exponential backoff with jitter, and the small random source the jitter
//! draws from.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long to wait before each reconnect attempt after consecutive failures.
///
/// Attempt `n` (1-based: the first reconnect after a failure is attempt 1) waits
/// `min(initial * multiplier^(n-1), max)`, the *nominal* delay, scaled by a random factor
/// in `[1 - jitter, 1 + jitter]`. With the defaults (1 s, x2, 60 s, 20%) the delays are
/// 1, 2, 4, 8, 16, 32, 60, 60, ... seconds, each +-20%: never below 0.8 s, never above 72 s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Nominal delay before the first reconnect attempt (default 1 s).
    pub initial: Duration,
    /// Largest nominal delay (default 60 s).
    pub max: Duration,
    /// Growth factor per consecutive failure (default 2.0).
    pub multiplier: f64,
    /// Relative jitter: each delay is the nominal one times a factor drawn uniformly from
    /// `[1 - jitter, 1 + jitter]` (default 0.2), so that clients cut at the same moment do
    /// not all come back at the same moment.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The nominal delay before reconnect attempt `attempt` (1-based; 0 is treated as 1).
    pub fn nominal(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let secs = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        Duration::from_secs_f64(secs.min(self.max.as_secs_f64()))
    }

    /// The bounds any delay before attempt `attempt` falls within: nominal x (1 -+ jitter).
    pub fn bounds(&self, attempt: u32) -> (Duration, Duration) {
        let nominal = self.nominal(attempt).as_secs_f64();
        let jitter = self.jitter.clamp(0.0, 1.0);
        (
            Duration::from_secs_f64(nominal * (1.0 - jitter)),
            Duration::from_secs_f64(nominal * (1.0 + jitter)),
        )
    }

    /// A delay before attempt `attempt`, jittered with `rng`.
    pub(crate) fn delay(&self, attempt: u32, rng: &mut Jitter) -> Duration {
        let (lo, hi) = self.bounds(attempt);
        let (lo, hi) = (lo.as_secs_f64(), hi.as_secs_f64());
        Duration::from_secs_f64(lo + (hi - lo) * rng.unit())
    }
}

/// xorshift64*: enough randomness to spread reconnects, with no dependency. Seeded from the
/// clock and the seed's own address, so two subscriptions started in the same nanosecond
/// still differ.
#[derive(Clone, Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn seeded() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let local = 0u8;
        let place = &local as *const u8 as u64;
        Jitter((nanos ^ place.rotate_left(32)) | 1)
    }

    /// A number uniformly drawn from [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_delays_double_from_one_second_up_to_sixty() {
        let b = Backoff::default();
        let nominal: Vec<u64> = (1..=9).map(|n| b.nominal(n).as_secs()).collect();
        assert_eq!(nominal, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.nominal(0), Duration::from_secs(1));
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jittered_delays_stay_within_twenty_percent_and_spread() {
        let b = Backoff::default();
        let mut rng = Jitter::seeded();
        for attempt in 1..=10 {
            let (lo, hi) = b.bounds(attempt);
            assert_eq!(lo, b.nominal(attempt).mul_f64(0.8));
            assert_eq!(hi, b.nominal(attempt).mul_f64(1.2));
            let delays: Vec<Duration> = (0..200).map(|_| b.delay(attempt, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d >= lo && *d <= hi), "{delays:?}");
            let below = delays.iter().filter(|d| **d < b.nominal(attempt)).count();
            assert!(
                (50..150).contains(&below),
                "not spread: {below} of 200 below nominal"
            );
        }
    }

    #[test]
    fn unit_draws_are_in_range() {
        let mut rng = Jitter(1);
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
