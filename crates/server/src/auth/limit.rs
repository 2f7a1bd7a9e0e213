//! A keyed fixed-window rate limiter, per process.
//!
//! Each key (an account, a client address, a principal) may make `limit` attempts per
//! window; the window starts at a key's first attempt. Memory is bounded by sweeping expired
//! windows once the table grows past a threshold.

use super::clock::Clock;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sweep expired entries once the table holds this many keys.
const SWEEP_AT: usize = 10_000;

/// Counts attempts per key and window.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    clock: Clock,
    /// Short critical sections only (a lookup and an increment), never across an await.
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    /// `limit` attempts per `window` and key, timed by `clock`; a limit of 0 disables the
    /// limiter.
    pub(crate) fn new(limit: u32, window: Duration, clock: Clock) -> Self {
        Self {
            limit,
            window,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`; `Err(retry_after)` when over the limit.
    pub(crate) fn check(&self, key: &str) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = self.clock.instant();
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        if entries.len() >= SWEEP_AT {
            let window = self.window;
            entries.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = entries.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(self
                .window
                .saturating_sub(now.duration_since(entry.0))
                .max(Duration::from_secs(1)));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Forgets `key` (after a successful login, its failures no longer count).
    pub(crate) fn reset(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clock::ManualClock;

    #[test]
    fn limits_per_key_and_window() {
        let l = RateLimiter::new(2, Duration::from_secs(60), Clock::system());
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let retry = l.check("a").expect_err("third attempt refused");
        assert!(retry <= Duration::from_secs(60) && retry >= Duration::from_secs(1));
        assert!(l.check("b").is_ok(), "other keys unaffected");
        l.reset("a");
        assert!(l.check("a").is_ok());
        assert!(
            RateLimiter::new(0, Duration::from_secs(1), Clock::system())
                .check("x")
                .is_ok(),
            "0 disables"
        );
    }

    #[test]
    fn the_window_rolls_over_by_the_injected_clock() {
        let manual = ManualClock::new();
        let l = RateLimiter::new(1, Duration::from_secs(60), manual.clock());
        assert!(l.check("k").is_ok());
        manual.advance(Duration::from_secs(20));
        assert_eq!(
            l.check("k"),
            Err(Duration::from_secs(40)),
            "retry when the window ends"
        );
        manual.advance(Duration::from_secs(39));
        assert_eq!(
            l.check("k"),
            Err(Duration::from_secs(1)),
            "at least a second"
        );
        manual.advance(Duration::from_secs(1));
        assert!(l.check("k").is_ok(), "a new window starts at 60 s");
        assert!(l.check("k").is_err(), "and counts again");
    }
}
