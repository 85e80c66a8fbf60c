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

/// The largest output side in pixels.
pub const MAX_SIDE: u32 = 4096;
/// The largest `time` accepted (10,000 hours).
pub const MAX_TIME: f64 = 36_000_000.0;

/// Output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
}

/// Whether to apply the stream's display matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// Apply it (the picture as players show it).
    Auto,
    /// The coded picture.
    Off,
}

/// Which frame `time` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The nearest keyframe at or before `time`.
    Keyframe,
    /// The frame on screen at `time`.
    ExactFrame,
}

/// A validated snapshot request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SnapshotQuery {
    /// Seconds from the start of the media.
    pub time: f64,
    /// Output width (0: from height and aspect, or the source's).
    pub width: u32,
    /// Output height (0: from width and aspect, or the source's).
    pub height: u32,
    /// Image format.
    pub format: Format,
    /// Rotation handling.
    pub rotation: Rotation,
    /// Frame selection.
    pub mode: Mode,
}

impl SnapshotQuery {
    /// Parses and validates the parameters.
    pub fn parse(query: &Query) -> Result<Self, ProtoError> {
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
            "jpg" | "jpeg" => Format::Jpeg,
            "png" => Format::Png,
            other => {
                return Err(invalid(format!(
                    "Parameter format must be jpg or png, got {other:?}."
                )))
            }
        };
        let rotation = match query.get("rotate").unwrap_or("auto") {
            "auto" => Rotation::Auto,
            "off" => Rotation::Off,
            other => {
                return Err(invalid(format!(
                    "Parameter rotate must be auto or off, got {other:?}."
                )))
            }
        };
        let mode = match query.get("mode").unwrap_or("exactframe") {
            "exactframe" => Mode::ExactFrame,
            "keyframe" => Mode::Keyframe,
            other => {
                return Err(invalid(format!(
                    "Parameter mode must be keyframe or exactframe, got {other:?}."
                )))
            }
        };
        Ok(Self {
            time,
            width: side("width")?,
            height: side("height")?,
            format,
            rotation,
            mode,
        })
    }

    /// A canonical text of the parameters, for cache keys and ETags.
    pub fn normalized(&self) -> String {
        format!(
            "time={}&width={}&height={}&format={}&rotate={}&mode={}",
            self.time,
            self.width,
            self.height,
            match self.format {
                Format::Jpeg => "jpg",
                Format::Png => "png",
            },
            match self.rotation {
                Rotation::Auto => "auto",
                Rotation::Off => "off",
            },
            match self.mode {
                Mode::Keyframe => "keyframe",
                Mode::ExactFrame => "exactframe",
            }
        )
    }
}

fn invalid(message: impl Into<String>) -> ProtoError {
    ProtoError::InvalidArgument(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<SnapshotQuery, ProtoError> {
        SnapshotQuery::parse(&Query::parse(Some(raw)).unwrap())
    }

    #[test]
    fn defaults_and_full_parameter_sets() {
        let q = parse("ci-process=snapshot&time=1.5").unwrap();
        assert_eq!(
            q,
            SnapshotQuery {
                time: 1.5,
                width: 0,
                height: 0,
                format: Format::Jpeg,
                rotation: Rotation::Auto,
                mode: Mode::ExactFrame
            }
        );
        let q = parse("time=3&width=320&height=0&format=png&rotate=off&mode=keyframe").unwrap();
        assert_eq!(
            (q.width, q.format, q.rotation, q.mode),
            (320, Format::Png, Rotation::Off, Mode::Keyframe)
        );
        assert_eq!(
            q.normalized(),
            "time=3&width=320&height=0&format=png&rotate=off&mode=keyframe"
        );
        assert_eq!(parse("time=1&width=4096").unwrap().width, 4096);
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
            match parse(raw) {
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
