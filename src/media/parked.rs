//! Decoders parked between requests at the position they reached, so that
//! scrubbing through a video (exact snapshots at increasing times) continues
//! decoding instead of starting again from the keyframe each time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much may stay parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParkingBounds {
    /// Values kept at most (0 keeps nothing).
    pub count: usize,
    /// Sum of the values' estimated sizes kept at most, in bytes.
    pub bytes: u64,
    /// A value unused this long is dropped.
    pub idle: Duration,
}

struct Parked<V> {
    key: String,
    value: V,
    bytes: u64,
    parked_at: Instant,
}

/// Values (videos with their decoders) by key, where a key names an object
/// version (bucket, key and ETag). A value is taken out while one request
/// uses it and parked again afterwards, so it serves one request at a time;
/// several values may be parked under one key (several clients scrubbing the
/// same video). The lock is held only to pick or insert an entry: requests
/// for different videos, or different positions, never wait on each other's
/// decoding. Dropping a value (closing a decoder joins its threads) happens
/// outside the lock.
pub struct ParkedVideos<V> {
    entries: Mutex<Vec<Parked<V>>>,
    bounds: ParkingBounds,
}

impl<V> std::fmt::Debug for ParkedVideos<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedVideos")
            .field("len", &self.len())
            .field("bounds", &self.bounds)
            .finish()
    }
}

impl<V> ParkedVideos<V> {
    /// A place for values within `bounds`.
    pub fn new(bounds: ParkingBounds) -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            bounds,
        }
    }

    /// Whether anything can be parked at all.
    pub fn is_enabled(&self) -> bool {
        self.bounds.count > 0 && self.bounds.bytes > 0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Parked<V>>> {
        // Entries are whole values; a panic elsewhere cannot leave one torn.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a value parked under `key`: of those for which `resumes_from`
    /// gives a position (where the value would continue from), the one with
    /// the latest; else the least recently parked one (whose decoder and
    /// opened container still save a re-open), if any.
    pub fn take(&self, key: &str, resumes_from: impl Fn(&V) -> Option<f64>) -> Option<V> {
        let (taken, expired) = {
            let mut entries = self.entries();
            let expired = expire(&mut entries, Instant::now(), self.bounds.idle);
            let resuming = entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.key == key)
                .filter_map(|(i, e)| resumes_from(&e.value).map(|p| (i, p)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i);
            let at = resuming.or_else(|| entries.iter().position(|e| e.key == key));
            (at.map(|i| entries.remove(i).value), expired)
        };
        drop(expired);
        taken
    }

    /// Parks `value` (estimated at `bytes`) under `key` as the most recently
    /// parked; the least recently parked beyond the bounds are dropped. A
    /// value larger than the whole budget is dropped at once.
    pub fn put(&self, key: String, value: V, bytes: u64) {
        if !self.is_enabled() || bytes > self.bounds.bytes {
            return;
        }
        let evicted = {
            let mut entries = self.entries();
            let mut evicted = expire(&mut entries, Instant::now(), self.bounds.idle);
            entries.push(Parked {
                key,
                value,
                bytes,
                parked_at: Instant::now(),
            });
            let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
            while entries.len() > self.bounds.count || total > self.bounds.bytes {
                let oldest = entries.remove(0);
                total -= oldest.bytes;
                evicted.push(oldest);
            }
            evicted
        };
        drop(evicted);
    }

    /// Drops the values left unused longer than the idle bound; returns how
    /// many.
    pub fn expire_idle(&self) -> usize {
        let expired = expire(&mut self.entries(), Instant::now(), self.bounds.idle);
        expired.len()
    }

    /// Number of values parked.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the entries parked before `now - idle`, for the caller to drop
/// once the lock is released.
fn expire<V>(entries: &mut Vec<Parked<V>>, now: Instant, idle: Duration) -> Vec<Parked<V>> {
    let mut expired = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        if now.saturating_duration_since(entries[i].parked_at) >= idle {
            expired.push(entries.remove(i));
        } else {
            i += 1;
        }
    }
    expired
}

#[cfg(test)]
mod tests {
    use super::{ParkedVideos, ParkingBounds};
    use std::time::Duration;

    fn bounds(count: usize, bytes: u64) -> ParkingBounds {
        ParkingBounds {
            count,
            bytes,
            idle: Duration::from_secs(60),
        }
    }

    /// Values are (name, position); a value resumes from its position when
    /// that is at or before 5.
    fn resumes(v: &(&str, f64)) -> Option<f64> {
        (v.1 <= 5.0).then_some(v.1)
    }

    #[test]
    fn takes_the_latest_position_that_resumes_else_the_oldest() {
        let parked = ParkedVideos::new(bounds(8, 1000));
        parked.put("a".into(), ("a1", 2.0), 10);
        parked.put("a".into(), ("a2", 4.0), 10);
        parked.put("a".into(), ("a3", 9.0), 10);
        parked.put("b".into(), ("b1", 4.5), 10);
        assert_eq!(parked.take("a", resumes), Some(("a2", 4.0)));
        assert_eq!(parked.take("a", resumes), Some(("a1", 2.0)));
        assert_eq!(
            parked.take("a", resumes),
            Some(("a3", 9.0)),
            "no resume: oldest"
        );
        assert_eq!(parked.take("a", resumes), None);
        assert_eq!(parked.len(), 1);
    }

    #[test]
    fn count_and_bytes_evict_the_least_recently_parked() {
        let parked = ParkedVideos::new(bounds(2, 100));
        parked.put("a".into(), ("a", 0.0), 10);
        parked.put("b".into(), ("b", 0.0), 10);
        parked.put("c".into(), ("c", 0.0), 10);
        assert_eq!(parked.take("a", resumes), None, "over the count");
        parked.put("d".into(), ("d", 0.0), 95);
        assert_eq!(parked.len(), 1, "over the bytes");
        assert_eq!(parked.take("d", resumes), Some(("d", 0.0)));
        parked.put("e".into(), ("e", 0.0), 101);
        assert!(parked.is_empty(), "larger than the budget");
    }

    #[test]
    fn idle_values_expire() {
        let parked = ParkedVideos::new(ParkingBounds {
            count: 4,
            bytes: 100,
            idle: Duration::from_millis(30),
        });
        parked.put("a".into(), ("a", 0.0), 10);
        std::thread::sleep(Duration::from_millis(40));
        parked.put("b".into(), ("b", 0.0), 10);
        assert_eq!(parked.take("a", resumes), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(parked.expire_idle(), 1);
        assert!(parked.is_empty());
    }

    #[test]
    fn zero_count_parks_nothing() {
        let parked = ParkedVideos::new(bounds(0, 100));
        assert!(!parked.is_enabled());
        parked.put("a".into(), ("a", 0.0), 1);
        assert!(parked.is_empty());
    }
}
