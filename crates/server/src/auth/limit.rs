//! A keyed fixed-window rate limiter, and the remembered logins, per process.
//!
//! Each key (an account, a client address, a principal) may make `limit` attempts per
//! window; the window starts at a key's first attempt. Both live in a bounded [`Table`]:
//! keys are fixed-size digests, expired entries leave as their time comes, and a full table
//! refuses new keys instead of growing.

use super::clock::Clock;
use super::table::{Key, Table};
use std::sync::Mutex;
use std::time::Duration;

/// The most keys one limiter (or the remembered logins) holds at once.
pub(crate) const MAX_KEYS: usize = 100_000;

/// Why an attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    /// When to try again (at least a second).
    pub(crate) retry_after: Duration,
    /// The key was new and the table is full of live windows (rather than the key being
    /// over its limit).
    pub(crate) table_full: bool,
    /// The key's first refusal in its window: the moment it became throttled (what the
    /// audit trail records, once per window, however many attempts follow).
    pub(crate) first: bool,
}

/// Counts attempts per key and window.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    window: Duration,
    clock: Clock,
    /// Attempts in the key's current window, which ends at the entry's deadline. Short
    /// critical sections only (a lookup and an increment), never across an await.
    entries: Mutex<Table<u32>>,
}

impl RateLimiter {
    /// `limit` attempts per `window` and key, timed by `clock`; a limit of 0 disables the
    /// limiter.
    pub(crate) fn new(limit: u32, window: Duration, clock: Clock) -> Self {
        Self::with_capacity(limit, window, clock, MAX_KEYS)
    }

    /// As [`Self::new`], holding at most `cap` keys.
    pub(crate) fn with_capacity(limit: u32, window: Duration, clock: Clock, cap: usize) -> Self {
        Self {
            limit,
            window,
            clock,
            entries: Mutex::new(Table::new(cap)),
        }
    }

    /// Whether this limiter counts at all (a limit of 0 turns it off).
    pub(crate) fn enabled(&self) -> bool {
        self.limit != 0
    }

    /// Counts an attempt for `key`; refused when over the limit, or when `key` is new and
    /// the table is full.
    pub(crate) fn check(&self, key: &Key) -> Result<(), Refused> {
        if self.limit == 0 {
            return Ok(());
        }
        let now = self.clock.instant();
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        let refused = |wait: Duration, table_full, first| Refused {
            retry_after: wait.max(Duration::from_secs(1)),
            table_full,
            first,
        };
        match entries.get_mut(key, now) {
            Some(entry) if entry.until > now => {
                if entry.value >= self.limit {
                    // One past the limit marks the window as throttled already.
                    let first = entry.value == self.limit;
                    if first {
                        entry.value += 1;
                    }
                    return Err(refused(entry.until.duration_since(now), false, first));
                }
                entry.value += 1;
                Ok(())
            }
            // Past its window but not dropped yet: a new window.
            Some(entry) => {
                *entry = super::table::Entry {
                    until: now + self.window,
                    value: 1,
                };
                Ok(())
            }
            None => entries
                .insert(*key, now + self.window, 1, now)
                .map_err(|wait| refused(wait, true, false)),
        }
    }

    /// Clears the count of `key` (after a successful login, its failures no longer count);
    /// its window goes on.
    pub(crate) fn reset(&self, key: &Key) {
        let now = self.clock.instant();
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(key, now)
        {
            entry.value = 0;
        }
    }
}

/// The keys (account and address) that logged in successfully within `ttl`.
#[derive(Debug)]
pub(crate) struct Remembered {
    ttl: Duration,
    clock: Clock,
    /// Each entry lives `ttl` after the key's last success.
    entries: Mutex<Table<()>>,
}

impl Remembered {
    /// Remembers keys for `ttl` after their last success; a `ttl` of zero remembers none.
    pub(crate) fn new(ttl: Duration, clock: Clock) -> Self {
        Self::with_capacity(ttl, clock, MAX_KEYS)
    }

    /// As [`Self::new`], holding at most `cap` keys.
    pub(crate) fn with_capacity(ttl: Duration, clock: Clock, cap: usize) -> Self {
        Self {
            ttl,
            clock,
            entries: Mutex::new(Table::new(cap)),
        }
    }

    /// Records a success for `key`. When the table is full the key is not remembered.
    pub(crate) fn remember(&self, key: &Key) {
        if self.ttl.is_zero() {
            return;
        }
        let now = self.clock.instant();
        let until = now + self.ttl;
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        match entries.get_mut(key, now) {
            Some(entry) => entry.until = until,
            None => {
                if entries.insert(*key, until, (), now).is_err() {
                    tracing::debug!("remembered logins are full; this one is not remembered");
                }
            }
        }
    }

    /// Whether `key` succeeded within `ttl`.
    pub(crate) fn knows(&self, key: &Key) -> bool {
        let now = self.clock.instant();
        self.entries
            .lock()
            .ok()
            .and_then(|mut entries| entries.get_mut(key, now).map(|e| e.until > now))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::clock::ManualClock;

    fn k(s: &str) -> Key {
        Key::of(&[s])
    }

    fn over(retry_after: Duration) -> Result<(), Refused> {
        Err(Refused {
            retry_after,
            table_full: false,
            first: false,
        })
    }

    fn first_over(retry_after: Duration) -> Result<(), Refused> {
        Err(Refused {
            retry_after,
            table_full: false,
            first: true,
        })
    }

    #[test]
    fn limits_per_key_and_window() {
        let l = RateLimiter::new(2, Duration::from_secs(60), Clock::system());
        assert!(l.check(&k("a")).is_ok());
        assert!(l.check(&k("a")).is_ok());
        let refused = l.check(&k("a")).expect_err("third attempt refused");
        assert!(!refused.table_full);
        assert!(refused.first, "the first refusal of the window");
        assert!(
            !l.check(&k("a")).expect_err("fourth refused").first,
            "later refusals are not the first"
        );
        let retry = refused.retry_after;
        assert!(retry <= Duration::from_secs(60) && retry >= Duration::from_secs(1));
        assert!(l.check(&k("b")).is_ok(), "other keys unaffected");
        l.reset(&k("a"));
        assert!(l.check(&k("a")).is_ok());
        assert!(
            RateLimiter::new(0, Duration::from_secs(1), Clock::system())
                .check(&k("x"))
                .is_ok(),
            "0 disables"
        );
    }

    #[test]
    fn the_window_rolls_over_by_the_injected_clock() {
        let manual = ManualClock::new();
        let l = RateLimiter::new(1, Duration::from_secs(60), manual.clock());
        assert!(l.check(&k("k")).is_ok());
        manual.advance(Duration::from_secs(20));
        assert_eq!(
            l.check(&k("k")),
            first_over(Duration::from_secs(40)),
            "retry when the window ends"
        );
        manual.advance(Duration::from_secs(39));
        assert_eq!(
            l.check(&k("k")),
            over(Duration::from_secs(1)),
            "at least a second"
        );
        manual.advance(Duration::from_secs(1));
        assert!(l.check(&k("k")).is_ok(), "a new window starts at 60 s");
        assert_eq!(
            l.check(&k("k")),
            first_over(Duration::from_secs(60)),
            "and counts again, a new first refusal"
        );
    }

    #[test]
    fn a_reset_clears_the_count_but_not_the_window() {
        let manual = ManualClock::new();
        let l = RateLimiter::new(2, Duration::from_secs(60), manual.clock());
        assert!(l.check(&k("k")).is_ok());
        assert!(l.check(&k("k")).is_ok());
        manual.advance(Duration::from_secs(10));
        l.reset(&k("k"));
        assert!(l.check(&k("k")).is_ok());
        assert!(l.check(&k("k")).is_ok());
        assert_eq!(l.check(&k("k")), first_over(Duration::from_secs(50)));
    }

    #[test]
    fn a_full_limiter_refuses_new_keys_and_keeps_counting_old_ones() {
        let manual = ManualClock::new();
        let l = RateLimiter::with_capacity(2, Duration::from_secs(60), manual.clock(), 3);
        for key in ["a", "b", "c"] {
            assert!(l.check(&k(key)).is_ok());
            manual.advance(Duration::from_secs(5));
        }
        // Three live windows: a fourth key is refused until the first window ends (at 60 s;
        // it is 15 s now), and the table does not grow.
        assert_eq!(
            l.check(&k("d")),
            Err(Refused {
                retry_after: Duration::from_secs(45),
                table_full: true,
                first: false,
            })
        );
        assert_eq!(l.entries.lock().expect("lock").len(), 3);
        // Known keys keep their own count meanwhile.
        assert!(l.check(&k("a")).is_ok());
        assert_eq!(l.check(&k("a")), first_over(Duration::from_secs(45)));
        // When the first window ends its entry goes, and a new key fits.
        manual.advance(Duration::from_secs(45));
        assert!(l.check(&k("d")).is_ok());
        assert!(l.check(&k("e")).is_err(), "full again: b, c and d are live");
        assert_eq!(l.entries.lock().expect("lock").len(), 3);
        // A flood of distinct keys never takes the table past its capacity.
        for i in 0..1000 {
            let _ = l.check(&k(&format!("flood{i}")));
        }
        assert_eq!(l.entries.lock().expect("lock").len(), 3);
    }

    #[test]
    fn expired_windows_leave_the_table_as_time_passes() {
        let manual = ManualClock::new();
        let l = RateLimiter::with_capacity(5, Duration::from_secs(60), manual.clock(), 100);
        for i in 0..50 {
            assert!(l.check(&k(&format!("k{i}"))).is_ok());
        }
        manual.advance(Duration::from_secs(30));
        for i in 0..20 {
            assert!(l.check(&k(&format!("later{i}"))).is_ok());
        }
        assert_eq!(l.entries.lock().expect("lock").len(), 70);
        // The first 50 windows end at 60 s: the next call drops exactly them, with room to
        // spare, though the table was never full.
        manual.advance(Duration::from_secs(30));
        assert!(l.check(&k("k0")).is_ok(), "a new window for k0");
        assert_eq!(l.entries.lock().expect("lock").len(), 21);
    }

    #[test]
    fn remembered_keys_last_their_time_after_the_last_success() {
        let manual = ManualClock::new();
        let day = Duration::from_secs(24 * 3600);
        let r = Remembered::with_capacity(30 * day, manual.clock(), 2);
        r.remember(&k("a"));
        assert!(r.knows(&k("a")));
        assert!(!r.knows(&k("b")));
        manual.advance(20 * day);
        r.remember(&k("a"));
        r.remember(&k("b"));
        r.remember(&k("c"));
        assert!(!r.knows(&k("c")), "full: not remembered");
        manual.advance(20 * day);
        assert!(
            r.knows(&k("a")),
            "30 days after its last success, not its first"
        );
        assert!(r.knows(&k("b")));
        manual.advance(10 * day);
        assert!(!r.knows(&k("a")));
        assert!(!r.knows(&k("b")));
        assert_eq!(r.entries.lock().expect("lock").len(), 0, "and forgotten");
        assert!(
            !{
                let off = Remembered::new(Duration::ZERO, manual.clock());
                off.remember(&k("a"));
                off.knows(&k("a"))
            },
            "a zero time remembers nothing"
        );
    }
}
