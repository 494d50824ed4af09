//! How a [`crate::ReconnectingClient`] paces its attempts to reconnect: exponential
//! backoff, bounded, with optional jitter, and an optional limit on attempts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The reconnect policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectOptions {
    /// Wait before the first attempt after a drop. Default 50 ms.
    pub initial_delay: Duration,
    /// The wait doubles after each failed attempt, up to this. Default 2 s.
    pub max_delay: Duration,
    /// Spread each wait uniformly over `[delay/2, delay]`, so that many clients of a
    /// restarting daemon do not all dial at the same instant. Default on.
    pub jitter: bool,
    /// Give up after this many failed attempts in a row (`None`: never). After giving
    /// up, calls and streams fail with [`Error::ReconnectFailed`](crate::Error). Default
    /// `None`.
    pub max_attempts: Option<u32>,
}

impl ReconnectOptions {
    /// Default `initial_delay`.
    pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_millis(50);
    /// Default `max_delay`.
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);

    /// The wait before attempt number `attempt` (0 for the first after a drop),
    /// before jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The wait before attempt number `attempt`, with jitter if enabled.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        if !self.jitter {
            return base;
        }
        jittered(base, random_u64())
    }

    /// True once `failed` attempts in a row exhaust `max_attempts`.
    pub fn exhausted(&self, failed: u32) -> bool {
        self.max_attempts.is_some_and(|max| failed >= max)
    }
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        Self {
            initial_delay: Self::DEFAULT_INITIAL_DELAY,
            max_delay: Self::DEFAULT_MAX_DELAY,
            jitter: true,
            max_attempts: None,
        }
    }
}

/// `base` spread over `[base/2, base]` by `rnd`.
fn jittered(base: Duration, rnd: u64) -> Duration {
    let half = base / 2;
    let span = (base - half).as_nanos() as u64;
    if span == 0 {
        return base;
    }
    half + Duration::from_nanos(rnd % (span + 1))
}

/// A random number without a dependency: the std hasher is randomly keyed per
/// `RandomState`, and a counter makes successive values differ.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: bool) -> ReconnectOptions {
        ReconnectOptions {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            jitter,
            max_attempts: Some(3),
        }
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        let p = policy(false);
        let got: Vec<u64> = (0..6).map(|a| p.delay(a).as_millis() as u64).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.base_delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_within_half_and_full_delay() {
        let p = policy(true);
        for attempt in 0..8 {
            let base = p.base_delay(attempt);
            for _ in 0..50 {
                let d = p.delay(attempt);
                assert!(d >= base / 2 && d <= base, "{d:?} vs {base:?}");
            }
        }
        assert_eq!(jittered(Duration::ZERO, 7), Duration::ZERO);
        assert_eq!(
            jittered(Duration::from_millis(10), 0),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn attempts_are_limited_only_when_asked() {
        let p = policy(false);
        assert!(!p.exhausted(2));
        assert!(p.exhausted(3));
        assert!(!ReconnectOptions::default().exhausted(u32::MAX));
    }
}
