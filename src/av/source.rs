//! The byte source FFmpeg reads from (through a custom I/O context): the
//! media pipeline never sees object stores or HTTP.

use std::io;

/// A random-access, read-only byte source of known length.
///
/// Implementations are used from a blocking decode thread, never from the
/// async reactor, so they may block.
pub trait ByteSource: Send {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// Whether the source is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads up to `buf.len()` bytes starting at `offset`; returns the number
    /// of bytes read, 0 only at or past the end.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// A hint, from the container's index, that the next reads cover
    /// `range`: a source that pays per request (a remote store) may fetch
    /// it in one request instead of growing read-ahead windows. By default
    /// nothing happens; a failure is left for the reads to report.
    fn will_read(&mut self, range: std::ops::Range<u64>) {
        let _ = range;
    }
}
