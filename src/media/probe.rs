//! Media information (`ci-process=videoinfo`, the VOD `MetaData` object).

use super::geometry::Orientation;
use super::source::ByteSource;
use super::video::open_input;
use super::{Limits, MediaError};
use crate::av::{Input, Rational, StreamInfo, StreamKind};
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
        s.duration
            .and_then(|d| stream_seconds(s, d))
            .unwrap_or(duration)
    };
    Ok(MediaInfo {
        size,
        container: input.format_name(),
        bitrate: overall_bitrate(&input, size, duration),
        height: main_video.map_or(0, |s| s.height),
        width: main_video.map_or(0, |s| s.width),
        duration,
        rotate: main_video.map_or(0, rotation),
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

/// Media information in COS's terms (GetMediaInfo): every stream in file
/// order, and the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaDescription {
    /// The streams, in file order.
    pub streams: Vec<StreamDescription>,
    /// The container.
    pub format: FormatDescription,
}

impl MediaDescription {
    /// The duration of the first video stream, else the container's.
    pub fn video_duration(&self) -> f64 {
        self.streams
            .iter()
            .find_map(|s| match s {
                StreamDescription::Video(v) if !v.cover && v.timing.duration > 0.0 => {
                    Some(v.timing.duration)
                }
                _ => None,
            })
            .unwrap_or(self.format.duration)
    }
}

/// One stream of a [`MediaDescription`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamDescription {
    /// A video stream (cover pictures included, as FFmpeg lists them).
    Video(VideoDescription),
    /// An audio stream.
    Audio(AudioDescription),
    /// A subtitle stream.
    Subtitle {
        /// Index in the file.
        index: usize,
        /// Its language tag.
        language: String,
    },
}

/// A video stream's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDescription {
    /// Index in the file.
    pub index: usize,
    /// FFmpeg's codec name, long name, profile and level.
    pub codec: CodecDescription,
    /// Coded size.
    pub width: u32,
    /// Coded size.
    pub height: u32,
    /// Whether it has B-frames (reordering delay).
    pub has_b_frames: bool,
    /// Sample aspect ratio.
    pub sar: Rational,
    /// Display aspect ratio.
    pub dar: Rational,
    /// Pixel format name.
    pub pixel_format: String,
    /// `progressive`, `tt`, … or empty.
    pub field_order: String,
    /// Colour primaries name.
    pub color_primaries: String,
    /// Colour range name.
    pub color_range: String,
    /// Transfer characteristic name.
    pub color_transfer: String,
    /// Frame rate (FFmpeg's guess) and average frame rate.
    pub fps: f64,
    /// Average frame rate.
    pub avg_fps: f64,
    /// Timing: time base, start and duration in seconds.
    pub timing: Timing,
    /// Bit rate, bit/s.
    pub bitrate: u64,
    /// Frames, when the container says (0 otherwise).
    pub frames: u64,
    /// Language tag.
    pub language: String,
    /// The clockwise turn players apply.
    pub rotation: u32,
    /// A still cover picture rather than moving video.
    pub cover: bool,
}

/// An audio stream's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioDescription {
    /// Index in the file.
    pub index: usize,
    /// FFmpeg's codec name, long name, profile and level.
    pub codec: CodecDescription,
    /// Sample format name.
    pub sample_format: String,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u32,
    /// Channel layout description.
    pub channel_layout: String,
    /// Timing: time base, start and duration in seconds.
    pub timing: Timing,
    /// Bit rate, bit/s.
    pub bitrate: u64,
    /// Language tag.
    pub language: String,
}

/// What a stream's codec is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodecDescription {
    /// `h264`, `aac`…
    pub name: String,
    /// FFmpeg's long name.
    pub long_name: String,
    /// The container's tag, as four characters and as a number.
    pub tag: u32,
    /// Profile name.
    pub profile: String,
    /// Level (FFmpeg's number; -99 unknown).
    pub level: i32,
}

impl CodecDescription {
    /// The tag as FFmpeg prints it: printable characters, others as
    /// `[n]`.
    pub fn tag_string(&self) -> String {
        self.tag
            .to_le_bytes()
            .iter()
            .map(|&b| {
                if b.is_ascii_alphanumeric() || b == b' ' || b == b'.' || b == b'_' {
                    char::from(b).to_string()
                } else {
                    format!("[{b}]")
                }
            })
            .collect()
    }
}

/// A stream's clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// The time base of its timestamps.
    pub time_base: Rational,
    /// First timestamp, seconds.
    pub start: f64,
    /// Duration, seconds.
    pub duration: f64,
}

/// The container's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormatDescription {
    /// Streams.
    pub streams: usize,
    /// Programs (MPEG-TS).
    pub programs: usize,
    /// FFmpeg's demuxer name and long name.
    pub name: String,
    /// FFmpeg's long name.
    pub long_name: String,
    /// Start, seconds.
    pub start: f64,
    /// Duration, seconds.
    pub duration: f64,
    /// Bit rate, bit/s.
    pub bitrate: u64,
    /// Bytes.
    pub size: u64,
}

/// Describes `source` as COS's GetMediaInfo does (header and stream
/// information only).
pub fn describe(
    source: Box<dyn ByteSource>,
    limits: &Limits,
) -> Result<MediaDescription, MediaError> {
    let size = source.len();
    let input = open_input(source, limits)?;
    let duration = input.duration_seconds().unwrap_or(0.0);
    let streams = (0..input.stream_count())
        .map(|i| input.stream(i))
        .filter_map(|s| describe_stream(&s, duration))
        .collect();
    Ok(MediaDescription {
        streams,
        format: FormatDescription {
            streams: input.stream_count(),
            programs: input.program_count(),
            name: input.format_name(),
            long_name: input.format_long_name(),
            start: input.start_seconds().unwrap_or(0.0),
            duration,
            bitrate: overall_bitrate(&input, size, duration),
            size,
        },
    })
}

/// The container's bit rate, else the file's size over its duration
/// (bit/s; 0 when neither is known).
fn overall_bitrate(input: &Input, size: u64, duration: f64) -> u64 {
    match u64::try_from(input.bit_rate()) {
        Ok(b) if b > 0 => b,
        _ if duration > 0.0 => (size as f64 * 8.0 / duration) as u64,
        _ => 0,
    }
}

/// A timestamp of stream `s` in seconds (`None` without a time base).
fn stream_seconds(s: &StreamInfo, ts: i64) -> Option<f64> {
    let tb = s.time_base;
    (tb.den > 0).then(|| ts as f64 * f64::from(tb.num) / f64::from(tb.den))
}

/// The clockwise turn players apply to stream `s`.
fn rotation(s: &StreamInfo) -> u32 {
    s.display_matrix.as_ref().map_or(0, |m| {
        u32::from(Orientation::from_display_matrix(m).clockwise)
    })
}

fn describe_stream(s: &StreamInfo, container_duration: f64) -> Option<StreamDescription> {
    let timing = Timing {
        time_base: s.time_base,
        start: s
            .start_time
            .and_then(|t| stream_seconds(s, t))
            .unwrap_or(0.0),
        duration: s
            .duration
            .and_then(|d| stream_seconds(s, d))
            .unwrap_or(container_duration),
    };
    let d = &s.details;
    let codec = CodecDescription {
        name: s.codec_name.clone(),
        long_name: d.codec_long_name.clone(),
        tag: d.codec_tag,
        profile: d.profile.clone(),
        level: d.level,
    };
    let bitrate = u64::try_from(s.bit_rate).unwrap_or(0);
    Some(match s.kind {
        StreamKind::Video => {
            let sar = match s.sample_aspect_ratio.to_f64() {
                Some(r) if r > 0.0 => s.sample_aspect_ratio,
                _ => Rational { num: 1, den: 1 },
            };
            StreamDescription::Video(VideoDescription {
                index: s.index,
                codec,
                width: s.width,
                height: s.height,
                has_b_frames: d.video_delay > 0,
                sar,
                dar: Rational::reduced(
                    i64::from(s.width) * i64::from(sar.num),
                    i64::from(s.height) * i64::from(sar.den),
                ),
                pixel_format: d.sample_format.clone(),
                field_order: d.field_order.clone(),
                color_primaries: d.color_primaries.clone(),
                color_range: d.color_range.clone(),
                color_transfer: d.color_transfer.clone(),
                fps: s.frame_rate.to_f64().unwrap_or(0.0),
                avg_fps: d.avg_frame_rate.to_f64().unwrap_or(0.0),
                timing,
                bitrate,
                frames: u64::try_from(d.frame_count).unwrap_or(0),
                language: d.language.clone(),
                rotation: rotation(s),
                cover: s.attached_picture,
            })
        }
        StreamKind::Audio => StreamDescription::Audio(AudioDescription {
            index: s.index,
            codec,
            sample_format: d.sample_format.clone(),
            sample_rate: s.sample_rate,
            channels: s.channels,
            channel_layout: d.channel_layout.clone(),
            timing,
            bitrate,
            language: d.language.clone(),
        }),
        StreamKind::Subtitle => StreamDescription::Subtitle {
            index: s.index,
            language: d.language.clone(),
        },
        StreamKind::Other => return None,
    })
}
