//! The bounds a snapshot or probe runs under (what it asks for is
//! `proto::snapshot`'s).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default pixel budget: 8K UHD (7680x4320).
pub const DEFAULT_MAX_SOURCE_PIXELS: u64 = 7680 * 4320;
/// The default and documented bound on each output side.
pub const DEFAULT_MAX_OUTPUT_SIDE: u32 = 4096;
/// The default JPEG quality.
pub const DEFAULT_JPEG_QUALITY: u8 = 85;

/// Bounds on one snapshot or probe.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Work stops with [`super::MediaError::Timeout`] at this instant.
    pub deadline: Instant,
    /// Raising this flag stops work with [`super::MediaError::Cancelled`].
    pub cancel: Arc<AtomicBool>,
    /// Videos with more coded pixels per frame are refused before decoding.
    pub max_source_pixels: u64,
    /// Bound on each side of the output picture.
    pub max_output_side: u32,
    /// JPEG quality, 1 to 100.
    pub jpeg_quality: u8,
    /// Decoder threads; 0 lets FFmpeg pick one per core. The server runs
    /// one decode per core already, so its default is 1.
    pub decode_threads: u32,
    /// Whether the decoder conceals damaged data (FFmpeg's error
    /// resilience). With it off, an exact decode of H.264 or HEVC cuts reference
    /// pictures nothing wanted uses to their slice headers (see
    /// `reference_plan`), which concealment would otherwise spend time on;
    /// a damaged picture is wrong either way.
    pub conceal_errors: bool,
}

impl Limits {
    /// The encoder quality of `format`: the one asked for, else the
    /// configured JPEG quality for JPEG, else the format's default.
    pub fn quality_for(&self, format: super::ImageFormat, requested: Option<u8>) -> u8 {
        requested.unwrap_or(match format {
            super::ImageFormat::Jpeg => self.jpeg_quality,
            other => other.default_quality().unwrap_or(100),
        })
    }

    /// Defaults with a deadline `timeout` from now and a fresh cancel flag.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + timeout,
            cancel: Arc::new(AtomicBool::new(false)),
            max_source_pixels: DEFAULT_MAX_SOURCE_PIXELS,
            max_output_side: DEFAULT_MAX_OUTPUT_SIDE,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            decode_threads: 1,
            conceal_errors: true,
        }
    }
}

/// An encoded snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedImage {
    /// The JPEG or PNG file.
    pub bytes: Vec<u8>,
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Presentation time of the frame shown, on the same scale as
    /// [`SnapshotParams::time`].
    pub pts_seconds: f64,
}
