//! A size-bounded LRU of encoded snapshots, so the thumbnails a web page
//! requests again and again cost no decode.
//!
//! Entries are keyed by bucket, key, the source object's ETag and the
//! normalised parameters: when the object changes, its ETag changes and the
//! old entries are never hit again (they age out).

use std::sync::Mutex;

use bytes::Bytes;
use lru::LruCache;

/// What a cached snapshot answers with.
#[derive(Debug, Clone)]
pub struct CachedImage {
    /// The encoded picture.
    pub bytes: Bytes,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// The shown frame's time in seconds.
    pub pts_seconds: f64,
}

/// The cache. `capacity_bytes == 0` disables it.
#[derive(Debug)]
pub struct SnapshotCache {
    inner: Mutex<Inner>,
    capacity_bytes: usize,
}

#[derive(Debug)]
struct Inner {
    entries: LruCache<String, CachedImage>,
    bytes: usize,
}

impl SnapshotCache {
    /// A cache holding at most `capacity_bytes` of images.
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity_bytes,
        }
    }

    /// The cache key of a snapshot.
    pub fn key(bucket: &str, key: &str, source_etag: &str, params: &str) -> String {
        format!("{bucket}\n{key}\n{source_etag}\n{params}")
    }

    /// The cached image, if any (and marks it recently used).
    pub fn get(&self, key: &str) -> Option<CachedImage> {
        if self.capacity_bytes == 0 {
            return None;
        }
        let mut inner = self.inner.lock().expect("cache lock");
        inner.entries.get(key).cloned()
    }

    /// Stores an image, evicting the least recently used ones beyond the
    /// capacity. Images larger than a quarter of the capacity are not kept.
    pub fn put(&self, key: String, image: CachedImage) {
        let size = image.bytes.len();
        if self.capacity_bytes == 0 || size > self.capacity_bytes / 4 {
            return;
        }
        let mut inner = self.inner.lock().expect("cache lock");
        if let Some(old) = inner.entries.put(key, image) {
            inner.bytes -= old.bytes.len();
        }
        inner.bytes += size;
        while inner.bytes > self.capacity_bytes {
            match inner.entries.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.bytes.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(size: usize) -> CachedImage {
        CachedImage {
            bytes: Bytes::from(vec![0u8; size]),
            content_type: "image/jpeg",
            pts_seconds: 0.0,
        }
    }

    #[test]
    fn evicts_least_recently_used_beyond_capacity() {
        let cache = SnapshotCache::new(100);
        cache.put("a".into(), image(20));
        cache.put("b".into(), image(20));
        cache.put("c".into(), image(20));
        assert!(cache.get("a").is_some()); // a is now the most recent
        cache.put("d".into(), image(25));
        cache.put("e".into(), image(25));
        assert!(cache.get("b").is_none(), "b was the least recently used");
        assert!(cache.get("a").is_some());
        assert!(cache.get("e").is_some());
        cache.put("huge".into(), image(26));
        assert!(
            cache.get("huge").is_none(),
            "over a quarter of the capacity"
        );
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let cache = SnapshotCache::new(0);
        cache.put("a".into(), image(1));
        assert!(cache.get("a").is_none());
    }
}
