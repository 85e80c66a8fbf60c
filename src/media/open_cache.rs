//! Opened containers kept between requests, so that a repeated snapshot of
//! one object version skips probing, header and index parsing (the whole
//! `moov` of an MP4) and reuses the byte source's read-ahead windows.

use std::collections::VecDeque;
use std::sync::Mutex;

/// A small most-recently-used list of opened values by key. Keys name an
/// object version (bucket, key and ETag), so a changed object is never read
/// through an old entry. A value is taken out while a request uses it
/// (FFmpeg contexts are not shared) and put back afterwards; concurrent
/// requests for one object open their own and may put back several.
pub struct OpenCache<V> {
    entries: Mutex<VecDeque<(String, V)>>,
    capacity: usize,
}

impl<V> std::fmt::Debug for OpenCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<V> OpenCache<V> {
    /// A cache of at most `capacity` values (0 keeps nothing).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, V)>> {
        // Entries are whole values; a panic elsewhere cannot leave one torn.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the most recently used value for `key`, if any.
    pub fn take(&self, key: &str) -> Option<V> {
        let mut entries = self.entries();
        let at = entries.iter().rposition(|(k, _)| k == key)?;
        entries.remove(at).map(|(_, v)| v)
    }

    /// Puts `value` back as the most recently used; the least recently used
    /// beyond the capacity is dropped (outside the lock: closing a context
    /// frees memory).
    pub fn put(&self, key: String, value: V) {
        if self.capacity == 0 {
            return;
        }
        let evicted = {
            let mut entries = self.entries();
            entries.push_back((key, value));
            (entries.len() > self.capacity).then(|| entries.pop_front())
        };
        drop(evicted);
    }

    /// Number of values kept.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::OpenCache;

    #[test]
    fn takes_the_newest_of_a_key_and_evicts_the_oldest() {
        let cache = OpenCache::new(3);
        cache.put("a".into(), 1);
        cache.put("b".into(), 2);
        cache.put("a".into(), 3);
        assert_eq!(cache.take("a"), Some(3));
        assert_eq!(cache.take("a"), Some(1));
        assert_eq!(cache.take("a"), None);
        cache.put("c".into(), 4);
        cache.put("d".into(), 5);
        cache.put("e".into(), 6);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.take("b"), None, "the least recently used went first");
        assert_eq!(cache.take("e"), Some(6));
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let cache = OpenCache::new(0);
        cache.put("a".into(), 1);
        assert!(cache.is_empty());
        assert_eq!(cache.take("a"), None);
    }
}
