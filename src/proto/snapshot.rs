//! Parameters of `?ci-process=snapshot`, with their documented ranges.
//!
//! | name     | values                         | default      |
//! |----------|--------------------------------|--------------|
//! | `time`   | seconds, finite, 0..=36000000  | required     |
//! | `width`  | integer 0..=4096 (0: follow)   | 0            |
//! | `height` | integer 0..=4096 (0: follow)   | 0            |
//! | `format` | `jpg` (`jpeg`), `png`, `webp`, `avif` | `jpg` |
//! | `rotate` | `auto`, `off`                  | `auto`       |
//! | `mode`   | `keyframe`, `exactframe`       | `exactframe` |
//!
//! framegate's own parameters carry the `fg-` prefix, so no future COS
//! parameter can clash with them:
//!
//! | name           | values                                   | default        |
//! |----------------|------------------------------------------|----------------|
//! | `fg-quality`   | integer 1..=100 (JPEG, WebP, AVIF)       | per format     |
//! | `fg-fit`       | `stretch`, `pad`, `blur`, `crop`         | `stretch`      |
//! | `fg-pad-color` | six hex digits `RRGGBB` (with `pad`)     | `000000`       |
//! | `fg-tonemap`   | `auto` (HDR tone-mapped to SDR), `off`   | `auto`         |
//!
//! `fg-fit` applies when `width` and `height` are both set: `stretch` scales
//! to both (COS's behaviour), `pad` keeps the aspect ratio with bars of the
//! colour, `blur` with bars showing the picture itself blurred (VOD's
//! `gauss`), `crop` fills the size and cuts what overflows, centred.
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
    /// WebP (`image/webp`), lossy, from YUV planes.
    WebP,
    /// AVIF (`image/avif`), one AV1 key frame, from YUV planes.
    Avif,
}

/// Every image format with its names: the one written (first) and the
/// others accepted.
const FORMAT_NAMES: [(ImageFormat, &str, &[&str]); 4] = [
    (ImageFormat::Jpeg, "jpg", &["jpeg"]),
    (ImageFormat::Png, "png", &[]),
    (ImageFormat::WebP, "webp", &[]),
    (ImageFormat::Avif, "avif", &[]),
];

impl ImageFormat {
    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::WebP => "image/webp",
            Self::Avif => "image/avif",
        }
    }

    /// The parameter value and file extension (`jpg`, `png`, `webp`,
    /// `avif`).
    pub fn name(self) -> &'static str {
        FORMAT_NAMES
            .iter()
            .find(|(format, _, _)| *format == self)
            .map_or("jpg", |(_, name, _)| name)
    }

    /// The format a name or file extension means (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        FORMAT_NAMES
            .iter()
            .find(|(_, first, others)| *first == name || others.contains(&name.as_str()))
            .map(|(format, _, _)| *format)
    }

    /// The default quality (1–100) of the lossy formats; PNG has none.
    pub fn default_quality(self) -> Option<u8> {
        match self {
            Self::Jpeg => Some(85),
            Self::WebP => Some(80),
            Self::Avif => Some(60),
            Self::Png => None,
        }
    }
}

/// Whether pictures of HDR (PQ or HLG) sources are tone-mapped to SDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ToneMap {
    /// Tone-mapped, as players show them.
    #[default]
    Auto,
    /// The signal converted as if it were SDR.
    Off,
}

/// How a picture whose width and height are both given fits them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Scale to both sides; the aspect ratio is not kept.
    #[default]
    Stretch,
    /// Keep the aspect ratio; bars of this colour (RGB).
    Pad([u8; 3]),
    /// Keep the aspect ratio; the bars show the picture, stretched and
    /// blurred.
    Blur,
    /// Keep the aspect ratio and fill the size; what overflows is cut,
    /// centred.
    Crop,
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
    /// JPEG, PNG, WebP or AVIF.
    pub format: ImageFormat,
    /// Apply rotation metadata or not.
    pub rotate: Rotate,
    /// Keyframe or exact frame.
    pub mode: SeekMode,
    /// Encoder quality, 1–100 (`None`: the configured or format default).
    pub quality: Option<u8>,
    /// How both sides are met.
    pub fit: Fit,
    /// HDR sources tone-mapped or not.
    pub tone_map: ToneMap,
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
            quality: None,
            fit: Fit::Stretch,
            tone_map: ToneMap::Auto,
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
    let format_text = query.get("format").unwrap_or("jpg");
    let format = ImageFormat::from_name(format_text).ok_or_else(|| {
        invalid(format!(
            "Parameter format must be jpg, png, webp or avif, got {format_text:?}."
        ))
    })?;
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
        quality: quality(query.get("fg-quality"))?,
        fit: fit(query.get("fg-fit"), query.get("fg-pad-color"))?,
        tone_map: match query.get("fg-tonemap").unwrap_or("auto") {
            "auto" => ToneMap::Auto,
            "off" => ToneMap::Off,
            other => {
                return Err(invalid(format!(
                    "Parameter fg-tonemap must be auto or off, got {other:?}."
                )))
            }
        },
    })
}

fn quality(text: Option<&str>) -> Result<Option<u8>, ProtoError> {
    let Some(text) = text else {
        return Ok(None);
    };
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|q| (1..=100).contains(q))
        .map(Some)
        .ok_or_else(|| {
            invalid(format!(
                "Parameter fg-quality must be an integer from 1 to 100, got {text:?}."
            ))
        })
}

fn fit(name: Option<&str>, color: Option<&str>) -> Result<Fit, ProtoError> {
    let fit = match name.unwrap_or("stretch") {
        "stretch" => Fit::Stretch,
        "pad" => Fit::Pad(pad_color(color)?),
        "blur" => Fit::Blur,
        "crop" => Fit::Crop,
        other => {
            return Err(invalid(format!(
                "Parameter fg-fit must be stretch, pad, blur or crop, got {other:?}."
            )))
        }
    };
    if color.is_some() && !matches!(fit, Fit::Pad(_)) {
        return Err(invalid("Parameter fg-pad-color goes with fg-fit=pad only."));
    }
    Ok(fit)
}

fn pad_color(text: Option<&str>) -> Result<[u8; 3], ProtoError> {
    let Some(text) = text else {
        return Ok([0, 0, 0]);
    };
    let hex = text.strip_prefix('#').unwrap_or(text);
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
    };
    match (hex.len(), channel(0), channel(2), channel(4)) {
        (6, Some(r), Some(g), Some(b)) => Ok([r, g, b]),
        _ => Err(invalid(format!(
            "Parameter fg-pad-color must be six hex digits RRGGBB, got {text:?}."
        ))),
    }
}

/// A parameter source with `Query`'s `get`.
struct Getter<F>(F);

impl<'a, F: Fn(&str) -> Option<&'a str>> Getter<F> {
    fn get(&self, name: &str) -> Option<&'a str> {
        (self.0)(name)
    }
}

/// A canonical text of the parameters, for cache keys and ETags.
/// framegate's own parameters appear only when they are not the
/// defaults, so the texts of COS requests stay as they were.
pub fn normalized(params: &SnapshotParams) -> String {
    let mut text = format!(
        "time={}&width={}&height={}&format={}&rotate={}&mode={}",
        params.time,
        params.width,
        params.height,
        params.format.name(),
        match params.rotate {
            Rotate::Auto => "auto",
            Rotate::Off => "off",
        },
        params.mode.as_str()
    );
    if let Some(quality) = params.quality {
        text.push_str(&format!("&fg-quality={quality}"));
    }
    match params.fit {
        Fit::Stretch => {}
        Fit::Pad([r, g, b]) => {
            text.push_str(&format!("&fg-fit=pad&fg-pad-color={r:02x}{g:02x}{b:02x}"))
        }
        Fit::Blur => text.push_str("&fg-fit=blur"),
        Fit::Crop => text.push_str("&fg-fit=crop"),
    }
    if params.tone_map == ToneMap::Off {
        text.push_str("&fg-tonemap=off");
    }
    text
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
        let q =
            check("time=1&format=WEBP&fg-quality=70&fg-fit=pad&fg-pad-color=%23FF8000").unwrap();
        assert_eq!(
            (q.format, q.quality, q.fit),
            (ImageFormat::WebP, Some(70), Fit::Pad([255, 128, 0]))
        );
        assert_eq!(
            normalized(&q),
            "time=1&width=0&height=0&format=webp&rotate=auto&mode=exactframe\
             &fg-quality=70&fg-fit=pad&fg-pad-color=ff8000"
        );
        assert_eq!(
            check("time=1&format=avif").unwrap().format,
            ImageFormat::Avif
        );
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
            ("time=1&fg-quality=0", "fg-quality"),
            ("time=1&fg-quality=101", "fg-quality"),
            ("time=1&fg-fit=cover", "fg-fit"),
            ("time=1&fg-tonemap=on", "fg-tonemap"),
            ("time=1&fg-fit=pad&fg-pad-color=fff", "fg-pad-color"),
            ("time=1&fg-fit=crop&fg-pad-color=ffffff", "fg-pad-color"),
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
