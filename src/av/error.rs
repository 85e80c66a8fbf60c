//! FFmpeg's negative return codes as a Rust error.

use super::ffi;
use std::ffi::c_int;

/// An error returned by an FFmpeg call.
///
/// `Again` and `Eof` are ordinary states of the send/receive decoding loop,
/// not failures, so they have their own variants and a caller can `match`.
#[derive(Debug, thiserror::Error)]
pub enum AvError {
    /// `AVERROR(EAGAIN)`: feed more input / drain output first.
    #[error("resource temporarily unavailable")]
    Again,
    /// `AVERROR_EOF`: the end of the stream or of the decoder's output.
    #[error("end of stream")]
    Eof,
    /// `AVERROR_EXIT`: the interrupt callback (deadline or cancel flag)
    /// stopped the call.
    #[error("interrupted")]
    Interrupted,
    /// `AVERROR_INVALIDDATA`: the data is not what the demuxer or decoder
    /// expected.
    #[error("invalid data")]
    InvalidData,
    /// No decoder for the stream's codec in the linked FFmpeg.
    #[error("no decoder for codec {0}")]
    DecoderNotFound(String),
    /// No encoder of that name in the linked FFmpeg.
    #[error("no encoder {0} in the linked FFmpeg")]
    EncoderNotFound(String),
    /// The call cannot take this input.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// Reading the byte source failed (the I/O error is kept by the input).
    #[error("I/O error")]
    Io,
    /// Any other FFmpeg error code, with FFmpeg's description.
    #[error("{message} (code {code})")]
    Other {
        /// The negative FFmpeg error code.
        code: i32,
        /// `av_strerror`'s text.
        message: String,
    },
}

impl AvError {
    /// Classifies a negative FFmpeg return code.
    pub(crate) fn from_code(code: c_int) -> Self {
        match code {
            c if c == ffi::AVERROR(ffi::EAGAIN) => Self::Again,
            ffi::AVERROR_EOF => Self::Eof,
            ffi::AVERROR_EXIT => Self::Interrupted,
            ffi::AVERROR_INVALIDDATA => Self::InvalidData,
            c if c == ffi::AVERROR(ffi::EIO) => Self::Io,
            c => Self::Other {
                code: c,
                message: describe(c),
            },
        }
    }

    /// `Ok(value)` for a non-negative return code, the error otherwise.
    pub(crate) fn check(code: c_int) -> Result<c_int, Self> {
        if code < 0 {
            Err(Self::from_code(code))
        } else {
            Ok(code)
        }
    }
}

/// FFmpeg's text for an error code.
fn describe(code: c_int) -> String {
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: `buf` is a writable buffer of the length passed; av_strerror
    // always NUL-terminates within it.
    let rc = unsafe { ffi::av_strerror(code, buf.as_mut_ptr(), buf.len()) };
    if rc < 0 {
        return format!("unknown FFmpeg error {code}");
    }
    // SAFETY: av_strerror wrote a NUL-terminated string into `buf`.
    unsafe { super::c_str(buf.as_ptr()) }
}
