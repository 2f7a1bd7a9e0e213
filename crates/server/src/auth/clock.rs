//! The time `Auth` goes by: token `iat`/`exp`, refresh-token expiry, API-key expiry, the
//! credential cache's lifetime and the rate limiters' windows all read one [`Clock`].
//!
//! The server runs on [`Clock::system`]. Tests build their `Auth` with a [`ManualClock`]
//! and move time forward with [`ManualClock::advance`] instead of sleeping. No setting and
//! no request can reach a manual clock: only code that builds `Auth` chooses its clock.

use plinth_core::Timestamp;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// A source of wall-clock and monotonic time.
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    System,
    Manual(ManualClock),
}

impl Clock {
    /// The operating system's clocks.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// Wall-clock time, for what is written down or sent (token claims, expiry dates).
    pub(crate) fn now(&self) -> SystemTime {
        match &self.0 {
            Source::System => SystemTime::now(),
            Source::Manual(m) => m.start_wall + m.elapsed(),
        }
    }

    /// Monotonic time, for what is only measured in this process (cache entries, windows).
    pub(crate) fn instant(&self) -> Instant {
        match &self.0 {
            Source::System => Instant::now(),
            Source::Manual(m) => m.start_instant + m.elapsed(),
        }
    }

    /// Whole seconds since the Unix epoch (JWT `iat` and `exp`).
    pub(crate) fn unix_secs(&self) -> i64 {
        self.now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// The current time as a [`Timestamp`].
    pub(crate) fn timestamp(&self) -> Timestamp {
        Timestamp::from_system(self.now())
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

/// A clock that stands still until told to move: for tests of expiry and windows.
#[derive(Debug, Clone)]
pub struct ManualClock {
    start_wall: SystemTime,
    start_instant: Instant,
    elapsed: Arc<Mutex<Duration>>,
}

impl ManualClock {
    /// A stopped clock showing the current time.
    pub fn new() -> Self {
        Self::starting_at(SystemTime::now())
    }

    /// A stopped clock showing `wall` (in the past, say, to issue what has already expired
    /// by the database's own clock).
    pub fn starting_at(wall: SystemTime) -> Self {
        Self {
            start_wall: wall,
            start_instant: Instant::now(),
            elapsed: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    /// Moves the clock (and every [`Clock`] made from it) forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut e) = self.elapsed.lock() {
            *e += by;
        }
    }

    /// The [`Clock`] to give to `Auth`.
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.clone()))
    }

    /// The time this clock shows.
    pub fn now(&self) -> SystemTime {
        self.clock().now()
    }

    fn elapsed(&self) -> Duration {
        self.elapsed.lock().map_or(Duration::ZERO, |e| *e)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let manual = ManualClock::starting_at(SystemTime::UNIX_EPOCH + Duration::from_secs(100));
        let clock = manual.clock();
        let (wall, mono) = (clock.now(), clock.instant());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now(), wall);
        assert_eq!(clock.instant(), mono);
        assert_eq!(clock.unix_secs(), 100);
        manual.advance(Duration::from_secs(7));
        assert_eq!(clock.unix_secs(), 107);
        assert_eq!(clock.instant() - mono, Duration::from_secs(7));
        assert_eq!(manual.now(), clock.now());
    }
}
