//! A custom `AVIOContext` that reads through a [`ByteSource`], and the
//! interrupt callback that bounds how long FFmpeg may work.

use super::source::ByteSource;
use super::{ffi, AvError};
use std::ffi::{c_int, c_void};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Size of the buffer FFmpeg reads through. Every refill is one `read_at`
/// call on the source, so this is also the granularity of reads.
const IO_BUFFER_SIZE: usize = 64 * 1024;

// `whence` values of the seek callback (POSIX values, used by FFmpeg).
const SEEK_SET: c_int = 0;
const SEEK_CUR: c_int = 1;
const SEEK_END: c_int = 2;

/// When to stop: a deadline and a cancel flag (set when the client goes
/// away). Checked by FFmpeg's interrupt callback, before every read of the
/// byte source, and by the decode loop between packets.
///
/// Clones share their state, so [`Interrupt::rearm`] on any clone gives an
/// input kept open across requests the next request's deadline and flag.
#[derive(Debug, Clone)]
pub struct Interrupt {
    armed: Arc<Mutex<Armed>>,
}

#[derive(Debug)]
struct Armed {
    deadline: Instant,
    cancel: Arc<AtomicBool>,
}

impl Interrupt {
    /// Work must stop at `deadline` or as soon as `cancel` becomes true.
    pub fn new(deadline: Instant, cancel: Arc<AtomicBool>) -> Self {
        Self {
            armed: Arc::new(Mutex::new(Armed { deadline, cancel })),
        }
    }

    /// Replaces the deadline and the cancel flag (for every clone).
    pub fn rearm(&self, deadline: Instant, cancel: Arc<AtomicBool>) {
        *self.armed() = Armed { deadline, cancel };
    }

    fn armed(&self) -> std::sync::MutexGuard<'_, Armed> {
        // The guarded values are plain data, valid even after a panic.
        self.armed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the cancel flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.armed().cancel.load(Ordering::Relaxed)
    }

    /// Whether the deadline has passed.
    pub fn is_expired(&self) -> bool {
        Instant::now() >= self.armed().deadline
    }

    /// Whether work must stop for either reason.
    pub fn triggered(&self) -> bool {
        self.is_cancelled() || self.is_expired()
    }
}

/// What the callbacks work on. Lives in its own heap allocation whose address
/// FFmpeg holds as the `opaque` pointer; only the callbacks and
/// [`IoContext`]'s accessors (never at the same time) touch it.
struct IoState {
    source: Box<dyn ByteSource>,
    len: u64,
    pos: u64,
    interrupt: Interrupt,
    error: Option<io::Error>,
    panicked: bool,
}

/// An `AVIOContext` reading from a [`ByteSource`]. Owned by
/// [`super::Input`], which closes the format context before dropping this.
pub(crate) struct IoContext {
    ctx: *mut ffi::AVIOContext,
    state: *mut IoState,
}

impl IoContext {
    /// Allocates the context and its buffer.
    pub(crate) fn new(source: Box<dyn ByteSource>, interrupt: Interrupt) -> Result<Self, AvError> {
        let len = source.len();
        let state = Box::into_raw(Box::new(IoState {
            source,
            len,
            pos: 0,
            interrupt,
            error: None,
            panicked: false,
        }));
        // SAFETY: av_malloc has no preconditions; NULL is checked below.
        let buffer = unsafe { ffi::av_malloc(IO_BUFFER_SIZE) }.cast::<u8>();
        if buffer.is_null() {
            // SAFETY: `state` came from Box::into_raw above and was not shared.
            drop(unsafe { Box::from_raw(state) });
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        // SAFETY: `buffer` is an av_malloc'ed block of IO_BUFFER_SIZE bytes
        // whose ownership passes to the context; `state` stays valid until
        // Drop, which frees the context first. The callbacks match the
        // signatures FFmpeg expects (write is not used: read-only context).
        let ctx = unsafe {
            ffi::avio_alloc_context(
                buffer,
                IO_BUFFER_SIZE as c_int,
                0,
                state.cast::<c_void>(),
                Some(read_callback),
                None,
                Some(seek_callback),
            )
        };
        if ctx.is_null() {
            // SAFETY: the context was not created, so we still own both.
            unsafe {
                ffi::av_free(buffer.cast::<c_void>());
                drop(Box::from_raw(state));
            }
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        Ok(Self { ctx, state })
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut ffi::AVIOContext {
        self.ctx
    }

    /// Takes the last I/O error the source returned, if any.
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        // SAFETY: `state` is valid until Drop; no callback runs while we hold
        // `&mut self` (FFmpeg only calls them from inside our own calls).
        unsafe { (*self.state).error.take() }
    }

    /// Passes a read hint to the source (see [`ByteSource::will_read`]); a
    /// panic in the source is caught and recorded as in the callbacks.
    pub(crate) fn will_read(&mut self, range: std::ops::Range<u64>) {
        // SAFETY: as in `take_error`: `state` is valid until Drop and no
        // callback runs while we hold `&mut self`.
        let state = unsafe { &mut *self.state };
        let hinted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.source.will_read(range);
        }));
        if hinted.is_err() {
            state.panicked = true;
        }
    }

    /// Whether a callback caught a panic from the source.
    pub(crate) fn panicked(&self) -> bool {
        // SAFETY: as in `take_error`.
        unsafe { (*self.state).panicked }
    }
}

impl Drop for IoContext {
    fn drop(&mut self) {
        // SAFETY: `ctx` is a live context we allocated; its buffer may have
        // been replaced by FFmpeg, so free the current one through the
        // context. Nothing else references the context any more (the owning
        // Input closed its format context before dropping us). After the
        // context is gone no callback can run, so the state can be freed.
        unsafe {
            ffi::av_freep(std::ptr::addr_of_mut!((*self.ctx).buffer).cast::<c_void>());
            ffi::avio_context_free(&mut self.ctx);
            drop(Box::from_raw(self.state));
        }
    }
}

/// FFmpeg's read callback: fills `buf` from the source at the current
/// position.
unsafe extern "C" fn read_callback(opaque: *mut c_void, buf: *mut u8, buf_size: c_int) -> c_int {
    let state = opaque.cast::<IoState>();
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `opaque` is the IoState pointer registered in
        // IoContext::new, valid while the context exists; FFmpeg calls the
        // callbacks from the one thread driving the context, one at a time,
        // and no other reference to the state is alive during a callback.
        let state = unsafe { &mut *state };
        if state.interrupt.triggered() {
            return ffi::AVERROR_EXIT;
        }
        let Ok(size) = usize::try_from(buf_size) else {
            return ffi::AVERROR(ffi::EINVAL);
        };
        if size == 0 {
            return 0;
        }
        if state.pos >= state.len {
            return ffi::AVERROR_EOF;
        }
        // SAFETY: FFmpeg passes a writable buffer of `buf_size` bytes that
        // nothing else accesses during the call.
        let out = unsafe { std::slice::from_raw_parts_mut(buf, size) };
        loop {
            match state.source.read_at(state.pos, out) {
                Ok(0) => return ffi::AVERROR_EOF,
                Ok(n) => {
                    let n = n.min(size);
                    state.pos += n as u64;
                    // n <= size, which came from a c_int.
                    return n as c_int;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    state.error = Some(e);
                    return ffi::AVERROR(ffi::EIO);
                }
            }
        }
    }));
    result.unwrap_or_else(|_| {
        // SAFETY: the closure's borrow ended with the unwind; the state is
        // still valid (see above).
        unsafe { (*state).panicked = true };
        ffi::AVERROR(ffi::EIO)
    })
}

/// FFmpeg's seek callback: moves the position or answers the size.
unsafe extern "C" fn seek_callback(opaque: *mut c_void, offset: i64, whence: c_int) -> i64 {
    let state = opaque.cast::<IoState>();
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in read_callback.
        let state = unsafe { &mut *state };
        let einval = i64::from(ffi::AVERROR(ffi::EINVAL));
        let len = i64::try_from(state.len).unwrap_or(i64::MAX);
        if whence & ffi::AVSEEK_SIZE != 0 {
            return len;
        }
        let pos = i64::try_from(state.pos).unwrap_or(i64::MAX);
        let base = match whence & !ffi::AVSEEK_FORCE {
            SEEK_SET => 0,
            SEEK_CUR => pos,
            SEEK_END => len,
            _ => return einval,
        };
        match base.checked_add(offset) {
            Some(new) if new >= 0 => {
                state.pos = new as u64;
                new
            }
            _ => einval,
        }
    }));
    result.unwrap_or_else(|_| {
        // SAFETY: as in read_callback.
        unsafe { (*state).panicked = true };
        i64::from(ffi::AVERROR(ffi::EIO))
    })
}

/// FFmpeg's interrupt callback: non-zero stops the blocking call with
/// `AVERROR_EXIT`.
pub(crate) unsafe extern "C" fn interrupt_callback(opaque: *mut c_void) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `opaque` points to the Interrupt boxed in Input, which
        // outlives the format context; it is only read.
        let interrupt = unsafe { &*opaque.cast::<Interrupt>() };
        c_int::from(interrupt.triggered())
    }))
    .unwrap_or(1)
}
