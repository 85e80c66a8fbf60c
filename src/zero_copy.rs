//! Object bytes that are also a file range, and a TCP stream that sends such
//! bytes with `sendfile(2)` instead of copying them.
//!
//! A whole object held in memory for repeated GETs (the hot-object cache)
//! is made with [`file_bytes`]: the [`Bytes`] hold the data as usual, and a
//! registry notes that this memory equals a range of an open file, for as
//! long as the memory lives. [`SendfileStream`] wraps an accepted socket;
//! when hyper (HTTP/1 or HTTP/2, whatever its framing) writes a slice lying
//! inside registered memory, the stream asks the kernel to send that range
//! of the file instead: the same bytes, taken from the page cache without
//! the copy from user memory into socket buffers that dominated large GETs
//! (about half the CPU of a 3 MiB GET). It does so while the server is
//! busy; with a core to spare, copying is faster for the one response, so
//! registered bytes are copied then. Any other slice is written as is.
//!
//! Why by hand: hyper writes bodies only from memory buffers, and no crate
//! bridges its I/O to `sendfile`. The file behind registered bytes is the
//! version the bytes were read from (objects are replaced by renaming a new
//! file into place, never rewritten), so the substitution never changes
//! what a client receives.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Below this size an object is copied: `sendfile` saves little there, and
/// every registered object holds a file descriptor.
pub const MIN_FILE_BYTES: usize = 1024 * 1024;

/// Registered memory: start address → (length, file, file offset of the
/// first byte).
type Regions = BTreeMap<usize, (usize, Arc<File>, u64)>;

static REGIONS: LazyLock<Mutex<Regions>> = LazyLock::new(Mutex::default);

/// How many regions are registered: with none, writes skip the lock.
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

fn regions() -> std::sync::MutexGuard<'static, Regions> {
    REGIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The owner of registered memory: unregisters it before freeing it.
struct FileBacked {
    data: Vec<u8>,
}

impl AsRef<[u8]> for FileBacked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for FileBacked {
    fn drop(&mut self) {
        if regions().remove(&(self.data.as_ptr() as usize)).is_some() {
            REGISTERED.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `data`, read from `file` at `offset`, as [`Bytes`] that a
/// [`SendfileStream`] sends from the file. `file` must not change while the
/// bytes live (it is a version of an object, replaced only by a rename).
/// Empty data is returned as plain bytes.
pub fn file_bytes(data: Vec<u8>, file: Arc<File>, offset: u64) -> Bytes {
    if data.is_empty() {
        return Bytes::new();
    }
    // The heap buffer does not move with the Vec, so its address is the
    // key for as long as `FileBacked` owns it.
    regions().insert(data.as_ptr() as usize, (data.len(), file, offset));
    REGISTERED.fetch_add(1, Ordering::Relaxed);
    Bytes::from_owner(FileBacked { data })
}

/// The file range equal to `slice` (at most its length), if `slice` starts
/// inside registered memory.
fn file_range(slice: &[u8]) -> Option<(Arc<File>, u64, usize)> {
    if REGISTERED.load(Ordering::Relaxed) == 0 || slice.is_empty() {
        return None;
    }
    let at = slice.as_ptr() as usize;
    let regions = regions();
    let (&start, (len, file, offset)) = regions.range(..=at).next_back()?;
    let skip = at - start;
    (skip < *len).then(|| {
        let count = slice.len().min(len - skip);
        (Arc::clone(file), offset + skip as u64, count)
    })
}

/// When registered bytes are sent with `sendfile` (`limits.sendfile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendfileMode {
    /// While at least as many other requests are being handled as there are
    /// cores (copying is faster with a core to spare).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never: registered bytes are copied like any others.
    Off,
}

/// Requests whose handlers are running.
static HANDLING: AtomicUsize = AtomicUsize::new(0);

/// Counts a request as being handled until dropped: how busy the server is
/// decides between copying and `sendfile` (see [`SendfileStream`]).
#[derive(Debug)]
pub struct Handling(());

impl Handling {
    /// Counts one request until the guard is dropped.
    pub fn begin() -> Self {
        HANDLING.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        HANDLING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted TCP connection whose writes of registered bytes become
/// `sendfile` calls while at least as many other requests are being handled
/// as there are cores. Below that a core is free, and copying from memory is
/// faster for this response: this side copies into the socket while the
/// reader copies out, in parallel, where `sendfile` leaves the one copy to
/// the reader alone. Under load, `sendfile` halves the CPU a large GET costs.
#[derive(Debug)]
pub struct SendfileStream {
    stream: TcpStream,
    /// Requests being handled from which `sendfile` is used.
    sendfile_from: usize,
}

impl SendfileStream {
    /// Wraps an accepted socket.
    pub fn new(stream: TcpStream, mode: SendfileMode) -> Self {
        let sendfile_from = match mode {
            SendfileMode::Auto => std::thread::available_parallelism().map_or(1, |n| n.get()),
            SendfileMode::Always => 0,
            SendfileMode::Off => usize::MAX,
        };
        Self {
            stream,
            sendfile_from,
        }
    }

    /// Runs the non-blocking `send` once the socket is writable, again
    /// after each spurious wake-up.
    fn poll_send(
        &self,
        cx: &mut Context<'_>,
        mut send: impl FnMut() -> rustix::io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            match self
                .stream
                .try_io(Interest::WRITABLE, || send().map_err(io::Error::from))
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }

    fn poll_sendfile(
        &self,
        cx: &mut Context<'_>,
        file: &File,
        mut offset: u64,
        count: usize,
    ) -> Poll<io::Result<usize>> {
        let sent = ready!(self.poll_send(cx, || {
            rustix::fs::sendfile(&self.stream, file, Some(&mut offset), count)
        }));
        // The file ended early (it cannot, short of damage on disk): fail
        // rather than let the client wait for missing bytes.
        Poll::Ready(match sent {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            other => other,
        })
    }

    /// Writes `bufs` marked MSG_MORE: a response head that file bytes
    /// follow leaves in full segments with the body.
    fn poll_send_more(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_send(cx, || {
            rustix::net::sendmsg(
                &self.stream,
                bufs,
                &mut rustix::net::SendAncillaryBuffer::default(),
                rustix::net::SendFlags::MORE | rustix::net::SendFlags::NOSIGNAL,
            )
        })
    }
}

impl AsyncRead for SendfileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let bufs = match bufs.iter().position(|b| !b.is_empty()) {
            Some(first) => &bufs[first..],
            None => return Poll::Ready(Ok(0)),
        };
        let registered = bufs
            .iter()
            .enumerate()
            .find_map(|(i, b)| Some((i, file_range(b)?)));
        match registered {
            Some(_) if HANDLING.load(Ordering::Relaxed) < self.sendfile_from => {
                Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
            }
            Some((0, (file, offset, count))) => self.poll_sendfile(cx, &file, offset, count),
            Some((at, _)) => self.poll_send_more(cx, &bufs[..at]),
            None => Pin::new(&mut self.stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn temp_file(data: &[u8]) -> (tempfile::TempPath, Arc<File>) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(data).unwrap();
        let path = file.into_temp_path();
        let file = Arc::new(File::open(&path).unwrap());
        (path, file)
    }

    #[test]
    fn slices_of_registered_bytes_map_to_the_file() {
        let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
        let (_path, file) = temp_file(&data);
        let bytes = file_bytes(data.clone(), file, 0);
        let (_, offset, count) = file_range(&bytes.slice(100..900)).unwrap();
        assert_eq!((offset, count), (100, 800));
        assert!(file_range(&data).is_none(), "a copy is not registered");
        let start = bytes.as_ptr() as usize;
        drop(bytes);
        assert!(
            !regions().contains_key(&start),
            "freed memory is unregistered"
        );
    }

    #[tokio::test]
    async fn registered_ranges_are_sent_from_the_file() {
        // The registered memory is zeros while the file holds a pattern
        // (breaking the invariant on purpose), so what arrives tells which
        // path sent each part: the registered range must come from the file,
        // the other slices from memory, in order, with partial writes.
        let pattern: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8 + 1).collect();
        let (_path, file) = temp_file(&pattern);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let zeros = file_bytes(vec![0; pattern.len()], file, 0);
        let sender = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut stream = SendfileStream::new(socket, SendfileMode::Always);
            let parts = [
                Bytes::from_static(b"HEAD\r\n"),
                zeros.slice(10..),
                Bytes::from(vec![0u8; 5]),
            ];
            let mut slices: Vec<&[u8]> = parts.iter().map(|b| &b[..]).collect();
            while !slices.is_empty() {
                let io: Vec<IoSlice<'_>> = slices.iter().map(|s| IoSlice::new(s)).collect();
                let mut n = stream.write_vectored(&io).await.unwrap();
                while n > 0 {
                    let take = n.min(slices[0].len());
                    slices[0] = &slices[0][take..];
                    n -= take;
                    if slices[0].is_empty() {
                        slices.remove(0);
                    }
                }
            }
            stream.shutdown().await.unwrap();
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        sender.await.unwrap();
        let mut want = b"HEAD\r\n".to_vec();
        want.extend_from_slice(&pattern[10..]);
        want.extend_from_slice(&[0; 5]);
        assert_eq!(got.len(), want.len());
        assert!(got == want, "bytes differ");
    }
}
