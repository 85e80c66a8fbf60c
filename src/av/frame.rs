//! `AVFrame`: one decoded picture.

use super::{ffi, AvError, Rational};

/// How a picture's samples map to light.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// A standard-dynamic-range curve (BT.709, sRGB, BT.601, or unknown).
    Sdr,
    /// SMPTE ST 2084 (PQ): absolute light up to 10,000 cd/m² (HDR10).
    Pq,
    /// ARIB STD-B67 (HLG): relative scene light.
    Hlg,
}

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

    /// How the picture's samples map to light.
    pub fn transfer(&self) -> Transfer {
        // SAFETY: reading a plain field of a valid frame.
        match unsafe { (*self.0).color_trc } {
            ffi::AVColorTransferCharacteristic::AVCOL_TRC_SMPTE2084 => Transfer::Pq,
            ffi::AVColorTransferCharacteristic::AVCOL_TRC_ARIB_STD_B67 => Transfer::Hlg,
            _ => Transfer::Sdr,
        }
    }

    /// Whether the picture's primaries are BT.2020's.
    pub fn is_bt2020(&self) -> bool {
        // SAFETY: reading a plain field of a valid frame.
        unsafe { (*self.0).color_primaries == ffi::AVColorPrimaries::AVCOL_PRI_BT2020 }
    }

    /// The brightest light the stream says it holds, in cd/m²: its content
    /// light level (MaxCLL), else its mastering display's peak.
    pub fn peak_luminance(&self) -> Option<f64> {
        let max_cll = self
            .side_data(
                ffi::AVFrameSideDataType::AV_FRAME_DATA_CONTENT_LIGHT_LEVEL,
                8,
            )
            .map(|d| u32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
            .filter(|&nits| nits > 0);
        if let Some(nits) = max_cll {
            return Some(f64::from(nits));
        }
        // AVMasteringDisplayMetadata: primaries (6 AVRationals), white point
        // (2), min_luminance, max_luminance at byte 72, then has_primaries
        // and has_luminance (ints) at 80 and 84.
        let data = self.side_data(
            ffi::AVFrameSideDataType::AV_FRAME_DATA_MASTERING_DISPLAY_METADATA,
            88,
        )?;
        let int =
            |at: usize| i32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let peak = Rational {
            num: int(72),
            den: int(76),
        }
        .to_f64()?;
        (int(84) != 0 && peak > 0.0).then_some(peak)
    }

    /// The payload of the side data of `kind`, when it has at least
    /// `min_len` bytes.
    fn side_data(&self, kind: ffi::AVFrameSideDataType, min_len: usize) -> Option<&[u8]> {
        // SAFETY: `self.0` is a valid frame; the side data it returns (or
        // NULL) lives as long as the frame and holds `size` bytes at `data`;
        // it is only read while `self` is borrowed.
        unsafe {
            let side = ffi::av_frame_get_side_data(self.0, kind);
            if side.is_null() || (*side).data.is_null() {
                return None;
            }
            let len = (*side).size;
            (len >= min_len).then(|| std::slice::from_raw_parts((*side).data, len))
        }
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
