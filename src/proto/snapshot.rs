//! Parameters of `?ci-process=snapshot`, with their documented ranges.
//!
//! | name     | values                         | default      |
//! |----------|--------------------------------|--------------|
//! | `time`   | seconds, finite, 0..=36000000  | required     |
//! | `width`  | integer 0..=4096 (0: follow)   | 0            |
//! | `height` | integer 0..=4096 (0: follow)   | 0            |
//! | `format` | `jpg` (`jpeg`), `png`          | `jpg`        |
//! | `rotate` | `auto`, `off`                  | `auto`       |
//! | `mode`   | `keyframe`, `exactframe`       | `exactframe` |
//!
//! Anything else is 400 `InvalidArgument` naming the parameter. Other query
//! parameters (signatures, `response-*`) are ignored here.

use super::query::Query;
use super::ProtoError;

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
    /// The parameter's value: `keyframe` or `exactframe`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeekMode::Keyframe => "keyframe",
            SeekMode::ExactFrame => "exactframe",
        }
    }

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

/// The largest output side in pixels.
pub const MAX_SIDE: u32 = 4096;
/// The largest `time` accepted (10,000 hours).
pub const MAX_TIME: f64 = 36_000_000.0;

/// Parses and validates the snapshot parameters of a query.
pub fn parse(query: &Query) -> Result<SnapshotParams, ProtoError> {
    parse_with(|name| query.get(name))
}

/// Parses and validates snapshot parameters that `get` gives by their
/// query names (`time`, `width`, ...): the query's, or the same fields of
/// another document (CI's `POST /snapshot`).
pub fn parse_with<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<SnapshotParams, ProtoError> {
    let query = Getter(get);
    let time_text = query
        .get("time")
        .ok_or_else(|| invalid("Parameter time is required (seconds, e.g. time=1.5)."))?;
    let time = time_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && (0.0..=MAX_TIME).contains(t))
            .ok_or_else(|| {
                invalid(format!(
                    "Parameter time must be a number of seconds from 0 to {MAX_TIME}, got {time_text:?}."
                ))
            })?;
    let side = |name: &str| -> Result<u32, ProtoError> {
        match query.get(name) {
            None | Some("") => Ok(0),
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_SIDE)
                .ok_or_else(|| {
                    invalid(format!(
                        "Parameter {name} must be an integer from 0 to {MAX_SIDE}, got {text:?}."
                    ))
                }),
        }
    };
    let format = match query.get("format").unwrap_or("jpg") {
        "jpg" | "jpeg" => ImageFormat::Jpeg,
        "png" => ImageFormat::Png,
        other => {
            return Err(invalid(format!(
                "Parameter format must be jpg or png, got {other:?}."
            )))
        }
    };
    let rotate = match query.get("rotate").unwrap_or("auto") {
        "auto" => Rotate::Auto,
        "off" => Rotate::Off,
        other => {
            return Err(invalid(format!(
                "Parameter rotate must be auto or off, got {other:?}."
            )))
        }
    };
    let mode = match query.get("mode").unwrap_or("exactframe") {
        "exactframe" => SeekMode::ExactFrame,
        "keyframe" => SeekMode::Keyframe,
        other => {
            return Err(invalid(format!(
                "Parameter mode must be keyframe or exactframe, got {other:?}."
            )))
        }
    };
    Ok(SnapshotParams {
        time,
        width: side("width")?,
        height: side("height")?,
        format,
        rotate,
        mode,
    })
}

/// A parameter source with `Query`'s `get`.
struct Getter<F>(F);

impl<'a, F: Fn(&str) -> Option<&'a str>> Getter<F> {
    fn get(&self, name: &str) -> Option<&'a str> {
        (self.0)(name)
    }
}

/// A canonical text of the parameters, for cache keys and ETags.
pub fn normalized(params: &SnapshotParams) -> String {
    format!(
        "time={}&width={}&height={}&format={}&rotate={}&mode={}",
        params.time,
        params.width,
        params.height,
        match params.format {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        },
        match params.rotate {
            Rotate::Auto => "auto",
            Rotate::Off => "off",
        },
        params.mode.as_str()
    )
}

fn invalid(message: impl Into<String>) -> ProtoError {
    ProtoError::InvalidArgument(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str) -> Result<SnapshotParams, ProtoError> {
        parse(&Query::parse(Some(raw)).unwrap())
    }

    #[test]
    fn defaults_and_full_parameter_sets() {
        let q = check("ci-process=snapshot&time=1.5").unwrap();
        assert_eq!(q, SnapshotParams::at(1.5));
        let q = check("time=3&width=320&height=0&format=png&rotate=off&mode=keyframe").unwrap();
        assert_eq!(
            (q.width, q.format, q.rotate, q.mode),
            (320, ImageFormat::Png, Rotate::Off, SeekMode::Keyframe)
        );
        assert_eq!(
            normalized(&q),
            "time=3&width=320&height=0&format=png&rotate=off&mode=keyframe"
        );
        assert_eq!(check("time=1&width=4096").unwrap().width, 4096);
    }

    #[test]
    fn every_bad_parameter_is_named() {
        for (raw, name) in [
            ("width=3", "time"),
            ("time=", "time"),
            ("time=abc", "time"),
            ("time=-1", "time"),
            ("time=NaN", "time"),
            ("time=inf", "time"),
            ("time=1e300", "time"),
            ("time=1&width=-5", "width"),
            ("time=1&width=4097", "width"),
            ("time=1&height=1.5", "height"),
            ("time=1&format=gif", "format"),
            ("time=1&rotate=90", "rotate"),
            ("time=1&mode=fast", "mode"),
        ] {
            match check(raw) {
                Err(ProtoError::InvalidArgument(message)) => {
                    assert!(
                        message.contains(&format!("Parameter {name}")),
                        "{raw}: {message}"
                    )
                }
                other => panic!("{raw}: {other:?}"),
            }
        }
    }
}
