//! Media information (`ci-process=videoinfo`, the VOD `MetaData` object).

use super::geometry::Orientation;
use super::source::ByteSource;
use super::video::open_input;
use super::{Limits, MediaError};
use crate::av::{StreamInfo, StreamKind};
use serde::{Deserialize, Serialize};

/// What a media file contains, with the field names of VOD's `MetaData`.
///
/// `Width`, `Height` and `Rotate` describe the main video stream (coded size;
/// `Rotate` is the clockwise turn players apply, 0/90/180/270). Durations are
/// seconds; bit rates bit/s (0 when the container does not say).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MediaInfo {
    /// Size of the file in bytes.
    pub size: u64,
    /// FFmpeg's demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// Overall bit rate.
    pub bitrate: u64,
    /// Coded height of the main video stream (0 without video).
    pub height: u32,
    /// Coded width of the main video stream (0 without video).
    pub width: u32,
    /// Container duration.
    pub duration: f64,
    /// Clockwise rotation of the main video stream.
    pub rotate: u32,
    /// Video streams (cover pictures excluded).
    pub video_stream_set: Vec<VideoStream>,
    /// Audio streams.
    pub audio_stream_set: Vec<AudioStream>,
    /// Duration of the main video stream.
    pub video_duration: f64,
    /// Duration of the first audio stream.
    pub audio_duration: f64,
}

/// One video stream of [`MediaInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VideoStream {
    /// Bit rate.
    pub bitrate: u64,
    /// Coded height.
    pub height: u32,
    /// Coded width.
    pub width: u32,
    /// FFmpeg's codec name (`h264`, `hevc`, `vp9`…).
    pub codec: String,
    /// Frame rate, truncated to an integer as VOD reports it.
    pub fps: u32,
}

/// One audio stream of [`MediaInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AudioStream {
    /// Bit rate.
    pub bitrate: u64,
    /// Sample rate in Hz.
    pub sampling_rate: u32,
    /// FFmpeg's codec name (`aac`, `opus`…).
    pub codec: String,
    /// Channel count.
    pub channels: u32,
}

/// Reads the container header and stream information (a few packets) of
/// `source`. Fails with `NotMedia`/`Corrupt` for files FFmpeg cannot open;
/// audio-only files are fine.
pub fn probe(source: Box<dyn ByteSource>, limits: &Limits) -> Result<MediaInfo, MediaError> {
    let size = source.len();
    let input = open_input(source, limits)?;
    let streams: Vec<StreamInfo> = (0..input.stream_count()).map(|i| input.stream(i)).collect();
    let main_video = input.best_video_stream().map(|i| &streams[i]);
    let first_audio = streams.iter().find(|s| s.kind == StreamKind::Audio);
    let duration = input.duration_seconds().unwrap_or(0.0);
    let stream_duration = |s: &StreamInfo| {
        let tb = s.time_base;
        s.duration
            .filter(|_| tb.den > 0)
            .map(|d| d as f64 * f64::from(tb.num) / f64::from(tb.den))
            .unwrap_or(duration)
    };
    let bitrate = match u64::try_from(input.bit_rate()) {
        Ok(b) if b > 0 => b,
        _ if duration > 0.0 => (size as f64 * 8.0 / duration) as u64,
        _ => 0,
    };
    Ok(MediaInfo {
        size,
        container: input.format_name(),
        bitrate,
        height: main_video.map_or(0, |s| s.height),
        width: main_video.map_or(0, |s| s.width),
        duration,
        rotate: main_video
            .and_then(|s| s.display_matrix.as_ref())
            .map_or(0, |m| {
                u32::from(Orientation::from_display_matrix(m).clockwise)
            }),
        video_stream_set: streams
            .iter()
            .filter(|s| s.kind == StreamKind::Video && !s.attached_picture)
            .map(|s| VideoStream {
                bitrate: u64::try_from(s.bit_rate).unwrap_or(0),
                height: s.height,
                width: s.width,
                codec: s.codec_name.clone(),
                fps: s.frame_rate.to_f64().map_or(0, |f| f.max(0.0) as u32),
            })
            .collect(),
        audio_stream_set: streams
            .iter()
            .filter(|s| s.kind == StreamKind::Audio)
            .map(|s| AudioStream {
                bitrate: u64::try_from(s.bit_rate).unwrap_or(0),
                sampling_rate: s.sample_rate,
                codec: s.codec_name.clone(),
                channels: s.channels,
            })
            .collect(),
        video_duration: main_video.map_or(0.0, stream_duration),
        audio_duration: first_audio.map_or(0.0, stream_duration),
    })
}
