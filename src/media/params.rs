//! What a snapshot asks for and the bounds it runs under.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (`image/jpeg`), encoded from YUV planes.
    Jpeg,
    /// PNG (`image/png`), 8-bit RGB.
    Png,
}

impl ImageFormat {
    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// Whether to apply the video's rotation metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rotate {
    /// Apply the display matrix (90/180/270 degrees and mirroring), as
    /// players do.
    Auto,
    /// Return the picture as coded.
    Off,
}

/// Which frame a time selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeekMode {
    /// The nearest keyframe at or before the time: fast, decodes one frame.
    Keyframe,
    /// The frame on screen at the time: the last frame whose presentation
    /// time is at or before it.
    ExactFrame,
}

impl SeekMode {
    /// Decoder threads that suit the mode. An exact frame deep in a GOP
    /// decodes a chain of reference frames (the others are skipped), each
    /// waiting on the last, so frame threads overlap only partly: twice as
    /// many threads as cores keeps the cores busy (measured on 1080p H.264,
    /// 2 cores: 1.0 s with 1 thread, 0.80 s with 2 or FFmpeg's automatic 3,
    /// 0.73 s with 4). A keyframe is one frame, where threads only add
    /// start-up cost.
    pub fn decode_threads(self) -> u32 {
        match self {
            Self::ExactFrame => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                u32::try_from(cores * 2).unwrap_or(16).min(16)
            }
            Self::Keyframe => 1,
        }
    }
}

/// A snapshot request (the `ci-process=snapshot` parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotParams {
    /// Seconds from the start of the media (the container's first
    /// timestamp is 0). Past the end selects the last frame.
    pub time: f64,
    /// Output width; 0 follows the displayed aspect ratio (or the video's own
    /// size when `height` is 0 too).
    pub width: u32,
    /// Output height; 0 as for `width`.
    pub height: u32,
    /// JPEG or PNG.
    pub format: ImageFormat,
    /// Apply rotation metadata or not.
    pub rotate: Rotate,
    /// Keyframe or exact frame.
    pub mode: SeekMode,
}

impl SnapshotParams {
    /// The COS defaults at `time`: own size, JPEG, `rotate=auto`,
    /// `mode=exactframe`.
    pub fn at(time: f64) -> Self {
        Self {
            time,
            width: 0,
            height: 0,
            format: ImageFormat::Jpeg,
            rotate: Rotate::Auto,
            mode: SeekMode::ExactFrame,
        }
    }
}

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
    /// resilience). With it off, an exact decode of H.264 cuts reference
    /// pictures nothing wanted uses to their slice headers (see
    /// `reference_plan`), which concealment would otherwise spend time on;
    /// a damaged picture is wrong either way.
    pub conceal_errors: bool,
}

impl Limits {
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
