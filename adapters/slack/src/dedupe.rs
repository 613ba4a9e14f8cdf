//! A bounded, time-limited set of keys already seen, so that Slack's retries (a repeated
//! `event_id`, or the same message delivered as both a mention and a direct message) never
//! produce a second answer.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a key is remembered. Slack retries an unacknowledged event up to three times,
/// the last about five minutes after the first, so an hour leaves a wide margin.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60 * 60);
/// Most keys remembered at once; the oldest are forgotten first.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Keys seen recently.
#[derive(Debug)]
pub struct Dedupe {
    seen: Mutex<Seen>,
    capacity: usize,
    ttl: Duration,
}

#[derive(Debug, Default)]
struct Seen {
    at: HashMap<String, Instant>,
    order: VecDeque<(String, Instant)>,
}

impl Seen {
    /// Forgets the oldest keys while `stale(seen_at, keys_held)` says so.
    fn forget_while(&mut self, stale: impl Fn(Instant, usize) -> bool) {
        while let Some((key, at)) = self.order.front().cloned() {
            if !stale(at, self.order.len()) {
                break;
            }
            self.order.pop_front();
            self.at.remove(&key);
        }
    }
}

impl Default for Dedupe {
    fn default() -> Self {
        Dedupe::new(DEFAULT_CAPACITY, DEFAULT_TTL)
    }
}

impl Dedupe {
    /// A set holding at most `capacity` keys for at most `ttl` each.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Dedupe { seen: Mutex::new(Seen::default()), capacity: capacity.max(1), ttl }
    }

    /// Records `key` and returns true if it was not seen within the time limit.
    pub fn first_seen(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.forget_while(|at, _| now.duration_since(at) >= self.ttl);
        if seen.at.contains_key(key) {
            return false;
        }
        seen.forget_while(|_, len| len >= self.capacity);
        seen.at.insert(key.to_owned(), now);
        seen.order.push_back((key.to_owned(), now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_new_once() {
        let d = Dedupe::default();
        assert!(d.first_seen("Ev1"));
        assert!(!d.first_seen("Ev1"));
        assert!(d.first_seen("Ev2"));
    }

    #[test]
    fn capacity_is_bounded() {
        let d = Dedupe::new(2, DEFAULT_TTL);
        assert!(d.first_seen("a"));
        assert!(d.first_seen("b"));
        assert!(d.first_seen("c"));
        assert!(d.first_seen("a"), "the oldest key was forgotten");
        assert!(!d.first_seen("c"));
    }

    #[test]
    fn keys_expire() {
        let d = Dedupe::new(10, Duration::from_millis(20));
        assert!(d.first_seen("a"));
        std::thread::sleep(Duration::from_millis(30));
        assert!(d.first_seen("a"));
    }
}
