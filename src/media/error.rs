//! The media layer's error type. `crate::error` maps each variant to a wire
//! code; messages are safe to show to clients (no paths, no FFmpeg internals).

use std::io;

/// Why a snapshot or probe failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The bytes are not a container FFmpeg recognises (or one framegate does
    /// not open, such as playlists).
    #[error("the object is not a recognised media file")]
    NotMedia,
    /// The container has no (moving) video stream.
    #[error("the media file has no video stream")]
    NoVideoStream,
    /// The container or the video data is damaged or truncated.
    #[error("the media file is corrupt or truncated and cannot be decoded")]
    Corrupt,
    /// The linked FFmpeg has no decoder for the video codec.
    #[error("the video codec '{codec}' is not supported")]
    UnsupportedCodec {
        /// FFmpeg's codec name.
        codec: String,
    },
    /// The source picture exceeds the pixel budget; refused before decoding.
    #[error("the video is {width}x{height}, more than the {max_pixels} pixels allowed")]
    SourceTooLarge {
        /// Coded width.
        width: u32,
        /// Coded height.
        height: u32,
        /// The budget (`Limits::max_source_pixels`).
        max_pixels: u64,
    },
    /// The requested or resulting output size is out of range.
    #[error("the output size {width}x{height} is out of range (each side 1 to {max})")]
    OutputSizeOutOfRange {
        /// Requested or computed width.
        width: u64,
        /// Requested or computed height.
        height: u64,
        /// `Limits::max_output_side`.
        max: u32,
    },
    /// A parameter has a value the pipeline cannot use (e.g. a negative or
    /// non-finite time). The HTTP layer validates first; this is the backstop.
    #[error("invalid value for parameter '{name}'")]
    InvalidParameter {
        /// The parameter's wire name.
        name: &'static str,
    },
    /// The deadline passed before the picture was ready.
    #[error("decoding took longer than allowed")]
    Timeout,
    /// The cancel flag was raised (the client went away).
    #[error("the request was cancelled")]
    Cancelled,
    /// Reading the source failed.
    #[error("reading the media source failed")]
    Io(#[source] io::Error),
    /// A bug or resource failure inside the pipeline; `detail` is for logs.
    #[error("internal error in the media pipeline")]
    Internal {
        /// What went wrong, for logs only.
        detail: String,
    },
}

impl MediaError {
    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal {
            detail: detail.to_string(),
        }
    }
}
