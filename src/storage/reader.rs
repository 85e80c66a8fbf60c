//! A blocking, random-access view of an object over ranged GETs, for the
//! media layer's decode threads.
//!
//! Reads go through windows with adaptive read-ahead: a read outside the
//! cached windows fetches a new one starting at the read offset; sequential
//! reads double the window size (64 KiB up to 1 MiB), a seek resets it. So
//! parsing a container index costs a few small requests and decoding a run
//! of packets a few larger ones, and a snapshot never downloads the object.
//! The last few windows stay cached, so the demuxer's habit of probing
//! packets and then seeking back over them costs no second fetch.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStore;
use tokio::runtime::Handle;

use super::{key_to_path, Bucket};
use crate::media::source::ByteSource;
use crate::metrics::StoreReader;

const MIN_WINDOW: u64 = 64 * 1024;
const MAX_WINDOW: u64 = 1024 * 1024;
/// A hinted range is fetched in parts of at most this size, all at once.
const HINT_PART: u64 = 2 * 1024 * 1024;
/// Bytes of windows kept for re-reads; the least recently fetched go first.
const CACHED_BYTES: u64 = 8 * 1024 * 1024;

/// Bytes and requests a reader took from the backing store.
#[derive(Debug, Default)]
pub struct ReadStats {
    bytes: AtomicU64,
    requests: AtomicU64,
}

impl ReadStats {
    /// Bytes fetched so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Ranged GETs issued so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// A [`ByteSource`] over one object of a bucket. Must be used from a thread
/// outside the async runtime (it blocks on the runtime `handle`).
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    len: u64,
    handle: Handle,
    /// Fetched windows by start offset, most recent last.
    windows: std::collections::VecDeque<(u64, Bytes)>,
    next_size: u64,
    stats: Arc<ReadStats>,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Bucket {
    /// A reader over `key`, whose size the caller already knows (from
    /// [`Bucket::head`]).
    pub fn reader(&self, key: &str, len: u64, handle: Handle) -> ObjectReader {
        ObjectReader::new(self.data.clone(), key_to_path(key), len, handle)
    }
}

impl ObjectReader {
    /// A reader over `path` of `store`, `len` bytes long.
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, len: u64, handle: Handle) -> Self {
        Self {
            store,
            path,
            len,
            handle,
            windows: std::collections::VecDeque::new(),
            next_size: MIN_WINDOW,
            stats: Arc::default(),
        }
    }

    /// A reader over an object named by URL (`s3://bucket/key`, `gs://...`,
    /// `az://...`, `http(s)://host/path`), configured from the usual
    /// `AWS_*`, `GOOGLE_*`, `AZURE_*` environment variables. Must be called
    /// outside the runtime; it blocks on `handle` for the size.
    pub fn open_url(url: &str, handle: Handle) -> std::io::Result<Self> {
        let parsed =
            url::Url::parse(url).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let options = std::env::vars().filter(|(k, _)| {
            ["AWS_", "GOOGLE_", "AZURE_"]
                .iter()
                .any(|p| k.starts_with(p))
        });
        let options: Vec<(String, String)> =
            options.map(|(k, v)| (k.to_ascii_lowercase(), v)).collect();
        let (store, path) = object_store::parse_url_opts(&parsed, options)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let store: Arc<dyn ObjectStore> = Arc::from(store);
        let head = {
            let store = store.clone();
            let path = path.clone();
            handle
                .block_on(async move { store.head(&path).await })
                .map_err(io::Error::other)?
        };
        Ok(Self::new(store, path, head.size, handle))
    }

    /// Counters shared with the caller, readable while decoding runs.
    pub fn stats(&self) -> Arc<ReadStats> {
        self.stats.clone()
    }

    fn fill(&mut self, offset: u64, wanted: usize) -> io::Result<()> {
        let sequential = self
            .windows
            .back()
            .is_some_and(|(start, data)| offset == start + data.len() as u64);
        self.next_size = if sequential {
            (self.next_size * 2).min(MAX_WINDOW)
        } else {
            MIN_WINDOW
        };
        let end = (offset + self.next_size.max(wanted as u64)).min(self.len);
        self.fetch(offset..end)
    }

    /// Fetches `range` as one window (one ranged GET).
    fn fetch(&mut self, range: std::ops::Range<u64>) -> io::Result<()> {
        self.fetch_parts(vec![range])
    }

    /// Fetches independent `ranges` at once (one ranged GET each, in
    /// parallel: one round trip to a remote store) as consecutive windows.
    fn fetch_parts(&mut self, ranges: Vec<std::ops::Range<u64>>) -> io::Result<()> {
        let starts: Vec<u64> = ranges.iter().map(|r| r.start).collect();
        let store = self.store.clone();
        let path = self.path.clone();
        let parts = self
            .handle
            .block_on(async move {
                let gets = ranges
                    .into_iter()
                    .map(|range| store.get_range(&path, range));
                futures::future::try_join_all(gets).await
            })
            .map_err(io::Error::other)?;
        for (offset, bytes) in starts.into_iter().zip(parts) {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            crate::metrics::store_request(StoreReader::Decode);
            crate::metrics::store_bytes(StoreReader::Decode, bytes.len() as u64);
            self.windows.push_back((offset, bytes));
        }
        let mut total: u64 = self.windows.iter().map(|(_, d)| d.len() as u64).sum();
        while total > CACHED_BYTES && self.windows.len() > 1 {
            if let Some((_, evicted)) = self.windows.pop_front() {
                total -= evicted.len() as u64;
            }
        }
        Ok(())
    }

    /// The cached window holding `offset`, if any.
    fn cached(&self, offset: u64) -> Option<(u64, &Bytes)> {
        self.windows
            .iter()
            .rev()
            .find(|(start, data)| (*start..start + data.len() as u64).contains(&offset))
            .map(|(start, data)| (*start, data))
    }
}

impl ByteSource for ObjectReader {
    fn len(&self) -> u64 {
        self.len
    }

    /// Fetches the hinted range in parts of `HINT_PART` requested all at
    /// once, leaving out what cached windows already hold at its start
    /// (those are kept: they are read first), as much as the cache holds
    /// besides them. Reads past it go on with the largest windows.
    fn will_read(&mut self, range: std::ops::Range<u64>) {
        let mut start = range.start;
        let mut kept = 0;
        while let Some((from, data)) = self.cached(start) {
            start = from + data.len() as u64;
            kept += data.len() as u64;
            // Most recent last: the parts then evict other windows first.
            if let Some(at) = self.windows.iter().position(|(s, _)| *s == from) {
                let window = self.windows.remove(at).expect("found");
                self.windows.push_back(window);
            }
        }
        let end = range
            .end
            .min(self.len)
            .min(start.saturating_add(CACHED_BYTES.saturating_sub(kept)));
        if start >= end {
            return;
        }
        let parts = (start..end)
            .step_by(HINT_PART as usize)
            .map(|start| start..(start + HINT_PART).min(end))
            .collect();
        if self.fetch_parts(parts).is_ok() {
            self.next_size = MAX_WINDOW;
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len || buf.is_empty() {
            return Ok(0);
        }
        if self.cached(offset).is_none() {
            self.fill(offset, buf.len())?;
        }
        let (start, window) = self.cached(offset).expect("just fetched");
        let from = (offset - start) as usize;
        let n = buf.len().min(window.len() - from);
        buf[..n].copy_from_slice(&window[from..from + n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BucketAcl, BucketConfig};
    use crate::storage::PutRequest;
    use futures::StreamExt;

    #[test]
    fn reads_map_to_ranges_with_growing_read_ahead() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let config = BucketConfig {
            name: "t-1".into(),
            store: "memory://".into(),
            acl: BucketAcl::Private,
            anonymous_media: false,
            options: Default::default(),
            cors: Vec::new(),
        };
        let bucket = Bucket::open(&config, std::path::Path::new("/nonexistent")).unwrap();
        let data: Vec<u8> = (0..10_000_000u32).map(|i| (i % 251) as u8).collect();
        let body = futures::stream::once({
            let data = data.clone();
            async move { Ok(Bytes::from(data)) }
        })
        .boxed();
        let request = PutRequest {
            max_len: u64::MAX,
            ..PutRequest::default()
        };
        runtime
            .block_on(bucket.put_object("big", body, request))
            .unwrap();
        let mut reader = bucket.reader("big", data.len() as u64, runtime.handle().clone());
        let stats = reader.stats();
        let mut buf = vec![0u8; 4096];
        // Scattered small reads: small requests.
        for offset in [9_000_000u64, 10, 5_000_000] {
            let n = reader.read_at(offset, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[offset as usize..offset as usize + n]);
        }
        assert_eq!(stats.requests(), 3);
        assert_eq!(stats.bytes(), 3 * MIN_WINDOW);
        // Reading back inside a cached window costs nothing.
        let n = reader.read_at(9_000_100, &mut buf).unwrap();
        assert_eq!(&buf[..n], &data[9_000_100..9_000_100 + n]);
        assert_eq!(stats.requests(), 3);
        // A sequential run: the window grows, few requests.
        let mut offset = 0u64;
        while offset < 8_000_000 {
            let n = reader.read_at(offset, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[offset as usize..offset as usize + n]);
            offset += n as u64;
        }
        assert!(stats.requests() < 3 + 16, "{} requests", stats.requests());
        assert!(stats.bytes() < 3 * MIN_WINDOW + 8_000_000 + MAX_WINDOW);
        assert_eq!(reader.read_at(data.len() as u64, &mut buf).unwrap(), 0);

        // A hinted range comes in parts requested at once and serves the
        // reads in it; reading on past it continues with the largest
        // windows.
        let mut reader = bucket.reader("big", data.len() as u64, runtime.handle().clone());
        let stats = reader.stats();
        let (before, bytes_before) = (stats.requests(), stats.bytes());
        reader.will_read(2_000_000..3_500_000);
        assert_eq!(stats.requests(), before + 1);
        let n = reader.read_at(2_000_000, &mut buf).unwrap();
        assert_eq!(&buf[..n], &data[2_000_000..2_000_000 + n]);
        let mut offset = 2_000_000u64;
        while offset < 3_500_000 {
            let n = reader.read_at(offset, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[offset as usize..offset as usize + n]);
            offset += n as u64;
        }
        assert_eq!(stats.requests(), before + 1);
        reader.read_at(offset, &mut buf).unwrap();
        assert_eq!(stats.requests(), before + 2);
        assert_eq!(stats.bytes() - bytes_before, 1_500_000 + MAX_WINDOW);
        // A range already cached costs nothing.
        reader.will_read(2_100_000..2_200_000);
        assert_eq!(stats.requests(), before + 2);
        // A long range: parts of HINT_PART, as much as the cache holds
        // besides what it holds at the range's start.
        let before = stats.requests();
        reader.will_read(3_000_000..9_000_000);
        let parts = (9_000_000 - (3_500_000 + MAX_WINDOW)).div_ceil(HINT_PART);
        assert_eq!(stats.requests(), before + parts);
        let mut offset = 3_000_000u64;
        while offset < 9_000_000 {
            let n = reader.read_at(offset, &mut buf).unwrap();
            assert_eq!(&buf[..n], &data[offset as usize..offset as usize + n]);
            offset += n as u64;
        }
        assert_eq!(stats.requests(), before + parts);
    }
}
