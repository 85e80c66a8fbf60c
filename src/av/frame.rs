//! `AVFrame`: one decoded picture.

use super::{ffi, AvError, Rational};

/// An owned, reusable `AVFrame`.
pub struct Frame(*mut ffi::AVFrame);

// SAFETY: a `Frame` owns its `AVFrame` exclusively; the picture buffers it
// references are reference counted with atomic counts, so dropping or
// unreferencing them on another thread than the one that decoded them is
// allowed. Nothing is shared without `&mut self`.
unsafe impl Send for Frame {}

impl Frame {
    /// Allocates an empty frame.
    pub fn new() -> Result<Self, AvError> {
        // SAFETY: no preconditions; NULL is checked.
        let f = unsafe { ffi::av_frame_alloc() };
        if f.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        Ok(Self(f))
    }

    /// Width in pixels (0 for an empty frame).
    pub fn width(&self) -> u32 {
        // SAFETY: reading a plain field of a valid frame.
        u32::try_from(unsafe { (*self.0).width }).unwrap_or(0)
    }

    /// Height in pixels (0 for an empty frame).
    pub fn height(&self) -> u32 {
        // SAFETY: reading a plain field of a valid frame.
        u32::try_from(unsafe { (*self.0).height }).unwrap_or(0)
    }

    /// Whether the frame holds a picture.
    pub fn is_empty(&self) -> bool {
        // SAFETY: reading a plain field of a valid frame.
        unsafe { (*self.0).data[0].is_null() }
    }

    /// The presentation time in the stream's time base: FFmpeg's best effort
    /// (which repairs missing or broken timestamps), else the raw pts.
    pub fn timestamp(&self) -> Option<i64> {
        // SAFETY: reading plain fields of a valid frame.
        let (best, pts) = unsafe { ((*self.0).best_effort_timestamp, (*self.0).pts) };
        [best, pts].into_iter().find(|&v| v != ffi::AV_NOPTS_VALUE)
    }

    /// The sample aspect ratio the decoder reported (`0/1` when unknown).
    pub fn sample_aspect_ratio(&self) -> Rational {
        // SAFETY: reading a plain field of a valid frame.
        Rational::from_ffi(unsafe { (*self.0).sample_aspect_ratio })
    }

    /// Moves the picture of `other` into `self` (which is cleared first);
    /// `other` is left empty.
    pub fn take_from(&mut self, other: &mut Frame) {
        // SAFETY: both frames are valid; av_frame_move_ref requires an
        // unreferenced destination, which av_frame_unref ensures.
        unsafe {
            ffi::av_frame_unref(self.0);
            ffi::av_frame_move_ref(self.0, other.0);
        }
    }

    /// A new frame referencing the same picture buffers (no pixel copy).
    pub fn try_clone(&self) -> Result<Frame, AvError> {
        // SAFETY: `self.0` is a valid frame; av_frame_clone allocates a new
        // frame holding new references to its buffers, or returns NULL.
        let f = unsafe { ffi::av_frame_clone(self.0) };
        if f.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        Ok(Self(f))
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::AVFrame {
        self.0
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut ffi::AVFrame {
        self.0
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from av_frame_alloc and is freed once.
        unsafe { ffi::av_frame_free(&mut self.0) }
    }
}
