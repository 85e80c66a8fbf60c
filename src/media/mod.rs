//! The safe media pipeline: probe, seek, decode, rotate, scale, encode.
//!
//! Everything here reads through a [`source::ByteSource`] and calls FFmpeg
//! only through [`crate::av`]. The entry points are [`snapshot`] and
//! [`probe`]; the stages behind them ([`Video::open`], [`Video::frame_at`],
//! [`render`], [`encode`]) are public for benchmarks and batch jobs.
//!
//! Time: `time` is in seconds from the start of the media, where the start
//! is the container's first timestamp (an MPEG-TS that starts at 100 s has
//! its first frame at `time = 0`). Sizes: see [`geometry::output_size`];
//! each output side is bounded by [`Limits::max_output_side`] (4096 by
//! default).

mod av1_syntax;
mod bits;
pub mod compose;
mod disposable;
mod encode;
mod error;
pub mod geometry;
mod gif_encode;
mod h264_syntax;
mod hevc_reference;
mod hevc_syntax;
mod open_cache;
mod param_sets;
mod params;
mod parked;
mod probe;
mod reference_plan;
pub mod source;
pub mod tonemap;
mod video;

pub use crate::proto::snapshot::{Fit, ImageFormat, Rotate, SeekMode, SnapshotParams, ToneMap};
pub use encode::{encode, encode_animation, picture_format_for, AnimationFormat};
pub use error::MediaError;
pub use geometry::Orientation;
pub use open_cache::OpenCache;
pub use params::{
    EncodedImage, Limits, DEFAULT_JPEG_QUALITY, DEFAULT_MAX_OUTPUT_SIDE, DEFAULT_MAX_SOURCE_PIXELS,
};
pub use parked::{ParkedVideos, ParkingBounds};
pub use probe::{
    describe, probe, AudioDescription, AudioStream, CodecDescription, FormatDescription,
    MediaDescription, MediaInfo, StreamDescription, Timing, VideoDescription, VideoStream,
};
pub use video::{ClosingDecoder, DecodedFrame, ExactRuns, FrameTime, OpenedVideo, Video};

use crate::av::Picture;

/// Takes one picture from a video.
///
/// Opens `source`, decodes the frame `params.time` and `params.mode` select
/// (see [`Video::frame_at`]; a time past the end gives the last frame),
/// applies the rotation and the size rules, and encodes JPEG or PNG. Reads
/// only what it needs from `source`, and stops with `Timeout`/`Cancelled`
/// when `limits` say so.
pub fn snapshot(
    source: Box<dyn source::ByteSource>,
    params: &SnapshotParams,
    limits: &Limits,
) -> Result<EncodedImage, MediaError> {
    check_request(params, limits)?;
    let mut video = Video::open(source, limits)?;
    snapshot_of(&mut video, params, limits)
}

/// Takes one picture, as [`snapshot`] does, from a video already open (a
/// cached [`OpenedVideo`], or the same video again).
pub fn snapshot_of(
    video: &mut Video,
    params: &SnapshotParams,
    limits: &Limits,
) -> Result<EncodedImage, MediaError> {
    check_request(params, limits)?;
    let frame = video.frame_at(params.time, params.mode)?;
    let picture = render(&frame, params, limits.max_output_side)?;
    let quality = limits.quality_for(params.format, params.quality);
    let bytes = encode(&picture, params.format, quality)?;
    Ok(EncodedImage {
        bytes,
        content_type: params.format.content_type(),
        width: picture.width,
        height: picture.height,
        pts_seconds: frame.pts_seconds,
    })
}

/// Rejects parameters the pipeline cannot honour before any I/O.
fn check_request(params: &SnapshotParams, limits: &Limits) -> Result<(), MediaError> {
    if !params.time.is_finite() || params.time < 0.0 {
        return Err(MediaError::InvalidParameter { name: "time" });
    }
    let max = limits.max_output_side;
    if params.width > max || params.height > max {
        return Err(MediaError::OutputSizeOutOfRange {
            width: u64::from(params.width),
            height: u64::from(params.height),
            max,
        });
    }
    Ok(())
}

/// Turns a decoded frame into the output picture: applies the size rules to
/// the displayed picture (sample aspect ratio, then rotation unless
/// `Rotate::Off`), scales with swscale into the encoder's layout, then turns
/// the (smaller) scaled picture.
pub fn render(
    frame: &DecodedFrame,
    params: &SnapshotParams,
    max_output_side: u32,
) -> Result<Picture, MediaError> {
    let orientation = match params.rotate {
        Rotate::Auto => frame.orientation,
        Rotate::Off => Orientation::IDENTITY,
    };
    let displayed =
        geometry::displayed_size(frame.coded_size(), frame.sample_aspect_ratio, orientation);
    let size = geometry::output_size(displayed, (params.width, params.height), max_output_side)?;
    let layout = picture_format_for(params.format);
    if params.width > 0 && params.height > 0 {
        compose::fit(
            frame,
            orientation,
            size,
            params.fit,
            layout,
            params.tone_map,
        )
    } else {
        compose::scaled_with(frame, orientation, size, layout, params.tone_map)
    }
}
