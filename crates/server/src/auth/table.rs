//! A bounded table of entries that live until a deadline, keyed by a fixed-size digest: the
//! storage under the rate limiter and the remembered logins.
//!
//! - A [`Key`] is 16 bytes of a SHA-256 digest of the caller's text, so an entry's size does
//!   not depend on anything a client sent.
//! - Every entry's deadline sits in a queue, one queue item per entry. Each call first pops
//!   the items whose deadline has passed from the front of that queue, dropping their
//!   entries (or queueing an entry again at its later deadline, if it was extended since).
//!   An entry is queued once per insertion or extension and popped once, so clean-up costs
//!   O(1) per call amortised, and no call ever scans the table.
//! - The table never holds more than its capacity: when it is full of live entries, a new
//!   key is refused, with the time until the earliest deadline, rather than grown.

use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A table key: a digest of one or more pieces of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key([u8; 16]);

impl Key {
    /// The key of `parts` taken together; each part is length-prefixed, so no two different
    /// lists of parts share a key by concatenation.
    pub(crate) fn of(parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let mut key = [0; 16];
        key.copy_from_slice(&hash.finalize()[..16]);
        Self(key)
    }
}

/// One entry: a value, live until `until` (which its owner may move later, never earlier).
#[derive(Debug)]
pub(crate) struct Entry<V> {
    /// The entry is dropped once this has passed.
    pub(crate) until: Instant,
    /// What the owner keeps.
    pub(crate) value: V,
}

/// At most `cap` entries, each dropped once its deadline has passed.
#[derive(Debug)]
pub(crate) struct Table<V> {
    cap: usize,
    entries: HashMap<Key, Entry<V>>,
    /// One item per entry: the deadline it had when it was queued. Usually in order; an
    /// entry queued again after an extension may sit behind later deadlines, which only
    /// delays its removal.
    deadlines: VecDeque<(Instant, Key)>,
}

impl<V> Table<V> {
    /// An empty table that holds at most `cap` entries.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            entries: HashMap::new(),
            deadlines: VecDeque::new(),
        }
    }

    /// Drops the entries whose deadline has passed, from the front of the queue.
    fn prune(&mut self, now: Instant) {
        while let Some(&(deadline, key)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            match self.entries.get(&key).map(|e| e.until) {
                Some(until) if until > now => self.deadlines.push_back((until, key)),
                _ => {
                    self.entries.remove(&key);
                }
            }
        }
    }

    /// The entry for `key`, if any. It may be past its deadline (not yet dropped): callers
    /// compare `until` with `now` themselves.
    pub(crate) fn get_mut(&mut self, key: &Key, now: Instant) -> Option<&mut Entry<V>> {
        self.prune(now);
        self.entries.get_mut(key)
    }

    /// Adds an entry for `key`, which [`Self::get_mut`] just found absent. `Err(wait)` when
    /// the table is full: the time until its earliest deadline, when room may free up.
    pub(crate) fn insert(
        &mut self,
        key: Key,
        until: Instant,
        value: V,
        now: Instant,
    ) -> Result<(), Duration> {
        self.prune(now);
        if self.entries.contains_key(&key) {
            return Ok(());
        }
        if self.entries.len() >= self.cap {
            return Err(self
                .deadlines
                .front()
                .map_or(Duration::ZERO, |(d, _)| d.saturating_duration_since(now)));
        }
        self.deadlines.push_back((until, key));
        self.entries.insert(key, Entry { until, value });
        Ok(())
    }

    /// How many entries the table holds (live or not yet dropped).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(
            self.entries.len(),
            self.deadlines.len(),
            "one item per entry"
        );
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn keys_are_fixed_size_and_tell_parts_apart() {
        let huge = "x".repeat(1 << 20);
        assert_eq!(std::mem::size_of_val(&Key::of(&[&huge])), 16);
        assert_ne!(Key::of(&["ab", "c"]), Key::of(&["a", "bc"]));
        assert_ne!(Key::of(&["a\nb"]), Key::of(&["a", "b"]));
        assert_eq!(Key::of(&["a", "b"]), Key::of(&["a", "b"]));
    }

    #[test]
    fn a_full_table_refuses_new_keys_until_an_entry_expires() {
        let t0 = Instant::now();
        let mut t = Table::new(3);
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            let at = t0 + SEC * u32::try_from(i).expect("small");
            t.insert(Key::of(&[k]), at + 60 * SEC, (), at)
                .expect("room");
        }
        let now = t0 + 10 * SEC;
        assert_eq!(
            t.insert(Key::of(&["d"]), now + 60 * SEC, (), now),
            Err(50 * SEC),
            "full: refused, until the earliest deadline"
        );
        assert_eq!(t.len(), 3, "never grows past its capacity");
        // A key already present is no new entry.
        assert_eq!(t.insert(Key::of(&["a"]), now + 60 * SEC, (), now), Ok(()));
        // At the first deadline exactly one entry goes, and the new key fits.
        let now = t0 + 60 * SEC;
        t.insert(Key::of(&["d"]), now + 60 * SEC, (), now)
            .expect("room after one expired");
        assert_eq!(t.len(), 3);
        assert!(t.get_mut(&Key::of(&["a"]), now).is_none(), "a expired");
        assert!(t.get_mut(&Key::of(&["b"]), now).is_some(), "b still live");
        assert!(
            t.insert(Key::of(&["e"]), now, (), now).is_err(),
            "full again"
        );
    }

    #[test]
    fn expired_entries_go_as_time_passes_without_a_full_table() {
        let t0 = Instant::now();
        let mut t = Table::new(100);
        for i in 0..10 {
            let at = t0 + SEC * i;
            t.insert(Key::of(&[&i.to_string()]), at + 60 * SEC, (), at)
                .expect("room");
        }
        assert_eq!(t.len(), 10);
        // Each call drops only what has expired, oldest first.
        assert!(t.get_mut(&Key::of(&["x"]), t0 + 64 * SEC).is_none());
        assert_eq!(
            t.len(),
            5,
            "the five entries whose deadline passed are gone"
        );
        assert!(t.get_mut(&Key::of(&["x"]), t0 + 70 * SEC).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn an_extended_entry_lives_until_its_new_deadline() {
        let t0 = Instant::now();
        let mut t = Table::new(10);
        let (a, b) = (Key::of(&["a"]), Key::of(&["b"]));
        t.insert(a, t0 + 60 * SEC, (), t0).expect("room");
        t.insert(b, t0 + 61 * SEC, (), t0).expect("room");
        t.get_mut(&a, t0 + 30 * SEC).expect("live").until = t0 + 90 * SEC;
        assert!(t.get_mut(&a, t0 + 80 * SEC).is_some(), "extended");
        assert!(t.get_mut(&b, t0 + 80 * SEC).is_none(), "b expired");
        assert_eq!(t.len(), 1);
        assert!(
            t.get_mut(&a, t0 + 90 * SEC).is_none(),
            "gone at its new deadline"
        );
        assert_eq!(t.len(), 0);
    }
}
