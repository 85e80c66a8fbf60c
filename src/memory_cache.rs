//! Size-bounded LRUs of bytes kept in memory: encoded snapshots, so the
//! thumbnails a web page requests again and again cost no decode, and small
//! hot objects, so repeated GETs cost no file read.
//!
//! Entries are keyed by what they were made from, including the source
//! object's ETag: when the object changes, its ETag changes and the old
//! entries are never hit again (they age out).
//!
//! [`InFlight`] coalesces identical snapshot requests that arrive while the
//! first is still decoding: they wait for its picture instead of decoding
//! again.

use std::collections::HashMap;
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

/// What an entry costs in memory.
pub trait Weigh {
    /// Bytes the entry holds.
    fn weight(&self) -> usize;
}

impl Weigh for CachedImage {
    fn weight(&self) -> usize {
        self.bytes.len()
    }
}

impl Weigh for Bytes {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// A cache of at most `capacity_bytes`; 0 disables it.
#[derive(Debug)]
pub struct MemoryCache<V> {
    inner: Mutex<Inner<V>>,
    capacity_bytes: usize,
}

/// Encoded snapshots by bucket, key, source ETag and parameters.
pub type SnapshotCache = MemoryCache<CachedImage>;

#[derive(Debug)]
struct Inner<V> {
    entries: LruCache<String, V>,
    bytes: usize,
}

impl<V: Weigh + Clone> MemoryCache<V> {
    /// A cache holding at most `capacity_bytes`.
    pub fn new(capacity_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            capacity_bytes,
        }
    }

    /// The cache key of an entry made from `source_etag` of `bucket/key`
    /// with `params`.
    pub fn key(bucket: &str, key: &str, source_etag: &str, params: &str) -> String {
        format!("{bucket}\n{key}\n{source_etag}\n{params}")
    }

    /// The largest entry kept: a quarter of the capacity.
    pub fn max_entry(&self) -> usize {
        self.capacity_bytes / 4
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner<V>> {
        // Entries are whole values; a panic elsewhere cannot tear one.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached entry, if any (and marks it recently used).
    pub fn get(&self, key: &str) -> Option<V> {
        if self.capacity_bytes == 0 {
            return None;
        }
        self.inner().entries.get(key).cloned()
    }

    /// Stores an entry, evicting the least recently used ones beyond the
    /// capacity. Entries larger than [`MemoryCache::max_entry`] are not kept.
    pub fn put(&self, key: String, value: V) {
        let size = value.weight();
        if self.capacity_bytes == 0 || size > self.max_entry() {
            return;
        }
        let mut inner = self.inner();
        if let Some(old) = inner.entries.put(key, value) {
            inner.bytes -= old.weight();
        }
        inner.bytes += size;
        while inner.bytes > self.capacity_bytes {
            match inner.entries.pop_lru() {
                Some((_, evicted)) => inner.bytes -= evicted.weight(),
                None => break,
            }
        }
    }
}

/// Decodes in progress by cache key, so identical concurrent requests share
/// one decode (whether or not the cache keeps the result).
#[derive(Debug, Default)]
pub struct InFlight {
    decoding: Mutex<HashMap<String, tokio::sync::watch::Receiver<Option<CachedImage>>>>,
}

/// What a request does about a decode: run it, or wait for another's.
pub enum Turn<'a> {
    /// No identical decode is running: run it and [`Leader::finish`].
    Lead(Leader<'a>),
    /// An identical decode is running: [`Follower::wait`] for its picture.
    Follow(Follower),
}

/// The request that runs the decode. Dropping it without finishing (an
/// error, or the client went away) releases the followers empty-handed.
pub struct Leader<'a> {
    flights: &'a InFlight,
    key: String,
    done: tokio::sync::watch::Sender<Option<CachedImage>>,
}

/// A request waiting for an identical decode.
pub struct Follower(tokio::sync::watch::Receiver<Option<CachedImage>>);

impl InFlight {
    fn decoding(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, tokio::sync::watch::Receiver<Option<CachedImage>>>>
    {
        // The map holds whole entries; a panic elsewhere cannot tear one.
        self.decoding.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Joins the decode of `key`: leads it if none is running.
    pub fn join(&self, key: &str) -> Turn<'_> {
        let mut decoding = self.decoding();
        if let Some(running) = decoding.get(key) {
            return Turn::Follow(Follower(running.clone()));
        }
        let (done, waiting) = tokio::sync::watch::channel(None);
        decoding.insert(key.to_owned(), waiting);
        Turn::Lead(Leader {
            flights: self,
            key: key.to_owned(),
            done,
        })
    }
}

impl Leader<'_> {
    /// Hands the picture to every follower.
    pub fn finish(self, image: &CachedImage) {
        self.done.send_replace(Some(image.clone()));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights.decoding().remove(&self.key);
    }
}

impl Follower {
    /// The leader's picture, or `None` if it failed or was dropped (the
    /// follower then decodes on its own, to get its own answer).
    pub async fn wait(mut self) -> Option<CachedImage> {
        match self.0.wait_for(Option::is_some).await {
            Ok(image) => image.clone(),
            Err(_) => None,
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

    #[tokio::test]
    async fn identical_requests_share_one_decode() {
        let flights = InFlight::default();
        let Turn::Lead(leader) = flights.join("k") else {
            panic!("the first request leads");
        };
        let Turn::Follow(follower) = flights.join("k") else {
            panic!("an identical request follows");
        };
        assert!(matches!(flights.join("other"), Turn::Lead(_)));
        let waiting = tokio::spawn(follower.wait());
        leader.finish(&image(7));
        let shared = waiting.await.unwrap().expect("the leader's picture");
        assert_eq!(shared.bytes.len(), 7);
        assert!(
            matches!(flights.join("k"), Turn::Lead(_)),
            "a finished decode is no longer joined"
        );
    }

    #[tokio::test]
    async fn a_failed_leader_releases_its_followers_empty_handed() {
        let flights = InFlight::default();
        let Turn::Lead(leader) = flights.join("k") else {
            panic!("the first request leads");
        };
        let Turn::Follow(follower) = flights.join("k") else {
            panic!("an identical request follows");
        };
        drop(leader);
        assert!(follower.wait().await.is_none());
    }

    #[test]
    fn zero_capacity_disables_the_cache() {
        let cache = SnapshotCache::new(0);
        cache.put("a".into(), image(1));
        assert!(cache.get("a").is_none());
    }
}
