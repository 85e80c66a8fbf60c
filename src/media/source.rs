//! The byte source the media layer decodes from.
//!
//! The media pipeline never sees object stores or HTTP: it reads through this
//! trait. `storage::ObjectReader` implements it over ranged GETs of a backing
//! store (with read-ahead and byte counting); [`FileSource`] implements it over
//! a local file for the command line and tests.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use crate::av::ByteSource;

/// A [`ByteSource`] over a local file.
#[derive(Debug)]
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Self { file, len })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        if offset >= self.len {
            return Ok(0);
        }
        self.file.read_at(buf, offset)
    }
}

impl<S: ByteSource + ?Sized> ByteSource for Box<S> {
    fn len(&self) -> u64 {
        (**self).len()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_at(offset, buf)
    }

    fn will_read(&mut self, range: std::ops::Range<u64>) {
        (**self).will_read(range);
    }
}

/// A [`ByteSource`] over bytes in memory (tests, fuzzing, small uploads).
#[derive(Debug, Clone)]
pub struct MemorySource(bytes::Bytes);

impl MemorySource {
    /// Wraps `data`.
    pub fn new(data: impl Into<bytes::Bytes>) -> Self {
        Self(data.into())
    }
}

impl ByteSource for MemorySource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.0.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// Counters shared between a [`CountingSource`] and whoever wants the
/// figures after the source has been handed to the pipeline.
#[derive(Debug, Default)]
pub struct ReadStats {
    bytes: AtomicU64,
    reads: AtomicU64,
    hints: AtomicU64,
    hinted_bytes: AtomicU64,
}

impl ReadStats {
    /// Bytes returned by `read_at` so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of `read_at` calls so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// Number of read hints (`will_read`) so far.
    pub fn hints(&self) -> u64 {
        self.hints.load(Ordering::Relaxed)
    }

    /// Bytes the read hints covered so far.
    pub fn hinted_bytes(&self) -> u64 {
        self.hinted_bytes.load(Ordering::Relaxed)
    }
}

/// Wraps a source and counts what is read through it.
#[derive(Debug)]
pub struct CountingSource<S> {
    inner: S,
    stats: Arc<ReadStats>,
}

impl<S: ByteSource> CountingSource<S> {
    /// Wraps `inner` with fresh counters.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            stats: Arc::default(),
        }
    }

    /// The counters (keep a clone before boxing the source).
    pub fn stats(&self) -> Arc<ReadStats> {
        Arc::clone(&self.stats)
    }
}

impl<S: ByteSource> ByteSource for CountingSource<S> {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(offset, buf)?;
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn will_read(&mut self, range: std::ops::Range<u64>) {
        self.stats.hints.fetch_add(1, Ordering::Relaxed);
        self.stats
            .hinted_bytes
            .fetch_add(range.end.saturating_sub(range.start), Ordering::Relaxed);
        self.inner.will_read(range);
    }
}
