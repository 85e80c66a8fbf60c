//! Thin RAII wrappers over the FFmpeg C libraries (`ffmpeg-sys-next`).
//!
//! Architecture Invariant: this module is the only place in the crate with
//! `unsafe` code, and no `ffmpeg_sys_next` type appears in its public API. Every
//! wrapper owns exactly one FFmpeg object and frees it in `Drop`; every
//! callback FFmpeg calls into Rust (`io`, the interrupt callback) catches
//! panics so none unwinds across the FFI boundary.
//!
//! None of the wrappers is `Sync`. `Input`, `Decoder`, `Frame` and `Packet`
//! are `Send` (each says why): an opened input, or a whole video with its
//! decoder parked at the position it reached, is kept between requests and
//! resumed on whichever pool worker takes the next one; calls on one object
//! are never concurrent.
//!
//! The code is written against the API common to FFmpeg 5.1 (Debian 12) up to
//! 7.1 (the newest release `ffmpeg-sys-next` 7.1 binds): it avoids fields and
//! functions that were added after 5.1 or removed before 7.1.

#![allow(unsafe_code)]

mod codec;
mod encoder;
mod error;
mod format;
mod frame;
mod io;
mod packet;
mod scale;
mod source;

pub use codec::{Decoder, Discard};
pub use encoder::{encode_animated_webp, encode_image, ImageCodec};
pub use error::AvError;
pub use format::{Input, OpenError, StreamDetails, StreamInfo, StreamKind};
pub use frame::{Frame, Transfer};
pub use io::Interrupt;
pub use packet::Packet;
pub use scale::{scale_to_wide_rgb, Picture, PictureFormat, Plane, Scaler, WideRgb};
pub use source::ByteSource;

use ffmpeg_sys_next as ffi;
use std::sync::Once;

/// A rational number as FFmpeg uses for time bases and aspect ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rational {
    /// Numerator.
    pub num: i32,
    /// Denominator.
    pub den: i32,
}

impl Rational {
    /// The value as a float, or `None` when the denominator or numerator is
    /// zero (FFmpeg's "unknown").
    pub fn to_f64(self) -> Option<f64> {
        if self.num == 0 || self.den == 0 {
            None
        } else {
            Some(f64::from(self.num) / f64::from(self.den))
        }
    }

    /// `num/den` in lowest terms (`0/1` when either is 0 or they do not
    /// fit an `i32`).
    pub fn reduced(num: i64, den: i64) -> Self {
        fn gcd(a: i64, b: i64) -> i64 {
            if b == 0 {
                a.abs()
            } else {
                gcd(b, a % b)
            }
        }
        let g = gcd(num, den);
        match (
            g,
            i32::try_from(num / g.max(1)),
            i32::try_from(den / g.max(1)),
        ) {
            (1.., Ok(num), Ok(den)) if num != 0 && den != 0 => Self { num, den },
            _ => Self { num: 0, den: 1 },
        }
    }

    fn from_ffi(r: ffi::AVRational) -> Self {
        Self {
            num: r.num,
            den: r.den,
        }
    }
}

/// How much FFmpeg itself may print on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibraryLog {
    /// Nothing (the default: failures surface as errors instead).
    Quiet,
    /// Errors only.
    Errors,
    /// Warnings and errors.
    Warnings,
    /// Verbose output, for debugging a problem file.
    Verbose,
}

static QUIET_BY_DEFAULT: Once = Once::new();

/// Makes FFmpeg quiet unless [`set_library_log`] said otherwise; called by
/// every entry point before the first FFmpeg call.
pub(crate) fn init() {
    QUIET_BY_DEFAULT.call_once(|| apply_log_level(LibraryLog::Quiet));
}

/// Sets FFmpeg's own log level (a process-wide setting).
pub fn set_library_log(level: LibraryLog) {
    // Mark the default as done first so a later `init` cannot override us.
    QUIET_BY_DEFAULT.call_once(|| ());
    apply_log_level(level);
}

fn apply_log_level(level: LibraryLog) {
    let level = match level {
        LibraryLog::Quiet => ffi::AV_LOG_QUIET,
        LibraryLog::Errors => ffi::AV_LOG_ERROR,
        LibraryLog::Warnings => ffi::AV_LOG_WARNING,
        LibraryLog::Verbose => ffi::AV_LOG_VERBOSE,
    };
    // SAFETY: av_log_set_level only stores an integer in a global; it has no
    // preconditions.
    unsafe { ffi::av_log_set_level(level) };
}

/// The versions of the FFmpeg libraries linked at run time, for logs.
pub fn library_versions() -> String {
    fn split(v: u32) -> String {
        format!("{}.{}.{}", v >> 16, (v >> 8) & 0xff, v & 0xff)
    }
    // SAFETY: the version functions take no arguments and return constants.
    let (f, c, s) = unsafe {
        (
            ffi::avformat_version(),
            ffi::avcodec_version(),
            ffi::swscale_version(),
        )
    };
    format!(
        "libavformat {} libavcodec {} libswscale {}",
        split(f),
        split(c),
        split(s)
    )
}

/// Copies a C string owned by FFmpeg into a `String` (empty for NULL).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that stays valid for
/// the duration of the call.
unsafe fn c_str(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the caller guarantees a valid NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A heap value handed to FFmpeg as a raw `opaque` pointer.
///
/// Unlike a `Box`, moving an `Owned` does not assert unique access to the
/// value, so the pointer FFmpeg holds stays valid while the owner moves.
/// Only shared access is offered.
pub(crate) struct Owned<T>(std::ptr::NonNull<T>);

impl<T> Owned<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(std::ptr::NonNull::from(Box::leak(Box::new(value))))
    }

    pub(crate) fn as_ptr(&self) -> *mut T {
        self.0.as_ptr()
    }

    pub(crate) fn get(&self) -> &T {
        // SAFETY: the pointer came from a leaked Box and is freed only in
        // Drop; FFmpeg only reads through its copy of it.
        unsafe { self.0.as_ref() }
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::leak in `new` and is freed once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}
