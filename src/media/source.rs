//! The byte source the media layer decodes from.
//!
//! The media pipeline never sees object stores or HTTP: it reads through this
//! trait. `storage::ObjectReader` implements it over ranged GETs of a backing
//! store (with read-ahead and byte counting); [`FileSource`] implements it over
//! a local file for the command line and tests.

use std::fs::File;
use std::io;
use std::path::Path;

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
}

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
