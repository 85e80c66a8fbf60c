//! Snapshot jobs (Cloud Infinite's `Tag=Snapshot`), as typed work: which
//! frames, at which size, as pictures and/or sprite sheets, written where.
//! The ranges of every setting live here, once; the wire adapter
//! (`ops::ci`) only names fields.
//!
//! Pure: no I/O. The media work is in [`super::snapshot_run`].

use serde::{Deserialize, Serialize};

use super::JobError;
use crate::media::{AnimationFormat, MediaDescription};

/// Most pictures one job may ask for.
pub const MAX_COUNT: u64 = 10_000;
/// The smallest and largest picture side (VOD's, the same rule).
pub const PICTURE_SIDE: (u32, u32) = super::templates::SIDE_RANGE;
/// The smallest and largest sprite cell side (VOD's, the same rule).
pub const CELL_SIDE: (u32, u32) = super::templates::CELL_SIDE_RANGE;
/// Padding and margin of sprites, in pixels.
pub const SPRITE_SPACING: (u32, u32) = (0, 1024);
/// Columns and lines of a sprite sheet.
pub const SPRITE_GRID: (u32, u32) = (1, 10_000);
/// Longest `TimeInterval`, seconds.
pub const MAX_INTERVAL: f64 = 3600.0;
/// The placeholder output names number pictures with.
pub const NUMBER: &str = "${Number}";
/// Longest `UserData`, bytes.
pub const MAX_USER_DATA: usize = 1024;
/// Highest job level (priority).
pub const MAX_LEVEL: i64 = 2;

/// Which frames a job takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Mode {
    /// From the start, every `interval` seconds (`None`: consecutive
    /// frames), `count` at most; with `fill_count` a job that would run out
    /// of video spreads `count` pictures over it instead.
    Interval {
        /// Seconds between pictures.
        interval: Option<f64>,
        /// `IsCheckCount`.
        fill_count: bool,
    },
    /// `count` pictures evenly from the start to the end.
    Average,
    /// The keyframes from the start, `count` at most.
    KeyFrame,
    /// The `count` frames where the picture changes most, black ones never
    /// (CI's `SmartCover`).
    SceneChange {
        /// Whether near-identical pictures are dropped.
        duplicates: super::frame_pick::Duplicates,
    },
}

/// When a frame counts as black (`IsCheckBlack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlackCheck {
    /// Percent of pixels that must be dark: 30..=100.
    pub level: u8,
    /// Luma (0..=255, full range) at or below which a pixel is dark.
    pub pixel_threshold: u8,
}

impl Default for BlackCheck {
    /// FFmpeg's `blackframe` defaults.
    fn default() -> Self {
        Self {
            level: Self::DEFAULT_LEVEL,
            pixel_threshold: Self::DEFAULT_PIXEL_THRESHOLD,
        }
    }
}

impl BlackCheck {
    /// `BlackLevel` when the request does not say (FFmpeg's `blackframe`).
    pub const DEFAULT_LEVEL: u8 = 98;
    /// `PixelBlackThreshold` when the request does not say.
    pub const DEFAULT_PIXEL_THRESHOLD: u8 = 32;
}

/// What a job writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outputs {
    /// `OnlySnapshot`: pictures.
    Pictures,
    /// `OnlySprite`: sprite sheets.
    Sprites,
    /// `SnapshotAndSprite`: both.
    PicturesAndSprites,
    /// One animated picture of the frames (CI's `Animation` tag).
    Animation,
}

impl Outputs {
    /// Whether pictures are written.
    pub fn pictures(self) -> bool {
        matches!(self, Outputs::Pictures | Outputs::PicturesAndSprites)
    }

    /// Whether sprite sheets are written.
    pub fn sprites(self) -> bool {
        matches!(self, Outputs::Sprites | Outputs::PicturesAndSprites)
    }
}

/// How a picture is fitted into a sprite cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CellFit {
    /// `DirectScale`: stretched to the cell.
    Stretch,
    /// `MaxWHScaleAndPad`: fitted inside, centred on the background.
    FitAndPad,
    /// `MaxWHScale`: fitted inside; the cell shrinks to the fitted size.
    Fit,
}

/// The layout of sprite sheets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpriteLayout {
    /// Cell width (0: follows the aspect ratio, or the picture's).
    pub cell_width: u32,
    /// Cell height (0: follows the aspect ratio, or the picture's).
    pub cell_height: u32,
    /// Pixels between cells.
    pub padding: u32,
    /// Pixels around the grid.
    pub margin: u32,
    /// Background, RGB.
    pub color: [u8; 3],
    /// Cells across.
    pub columns: u32,
    /// Cells down.
    pub lines: u32,
    /// How pictures fill cells.
    pub fit: CellFit,
}

impl SpriteLayout {
    /// Cells per sheet.
    pub fn cells(&self) -> usize {
        self.columns as usize * self.lines as usize
    }
}

/// The `Snapshot` node: what a job (or a template) asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSettings {
    /// Which frames.
    pub mode: Mode,
    /// Seconds from the start of the video.
    pub start: f64,
    /// Most pictures.
    pub count: u64,
    /// Picture width (0: follows the height, or the source's).
    pub width: u32,
    /// Picture height (0: follows the width, or the source's).
    pub height: u32,
    /// Skip black frames.
    pub black: Option<BlackCheck>,
    /// Pictures, sprites or both.
    pub outputs: Outputs,
    /// Sprite layout, when sprites are made.
    pub sprite: Option<SpriteLayout>,
    /// The animation, when [`Outputs::Animation`] is made.
    #[serde(default)]
    pub animation: Option<AnimationSettings>,
}

/// How the frames of an animation job are played back.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AnimationSettings {
    /// GIF or WebP.
    pub format: AnimationFormat,
    /// Frames a second when played, 1–30.
    pub fps: u32,
    /// Encoder quality, 1–100.
    pub quality: u8,
    /// Seconds from the start where the frames end (exclusive).
    pub end: f64,
}

/// Where outputs go: a bucket of this gateway and name patterns with
/// [`NUMBER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTarget {
    /// Output bucket.
    pub bucket: String,
    /// Its region, as the client named it.
    pub region: String,
    /// Picture names.
    pub pictures: Option<String>,
    /// Sprite sheet names.
    pub sprites: Option<String>,
}

impl OutputTarget {
    /// The name of output `n` of `pattern`.
    pub fn name(pattern: &str, n: usize) -> String {
        pattern.replace(NUMBER, &n.to_string())
    }

    /// The constant part of `pattern` before [`NUMBER`] (CI's
    /// `ObjectPrefix`).
    pub fn prefix(pattern: &str) -> &str {
        pattern.split(NUMBER).next().unwrap_or(pattern)
    }
}

/// Format of callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallbackFormat {
    /// XML (the default).
    Xml,
    /// JSON.
    Json,
}

/// Where the end of a job is reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// `http://` or `https://` URL.
    pub url: String,
    /// Body format.
    pub format: CallbackFormat,
}

/// The template a job was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    /// `t…`.
    pub id: String,
    /// Its name at submission.
    pub name: String,
}

/// A snapshot job, fixed at submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotJob {
    /// Bucket of the input.
    pub bucket: String,
    /// Key of the input.
    pub key: String,
    /// What to make.
    pub settings: SnapshotSettings,
    /// Where it goes.
    pub output: OutputTarget,
    /// The template it came from, if any.
    pub template: Option<TemplateRef>,
    /// Echoed.
    pub user_data: String,
    /// 0..=[`MAX_LEVEL`]; higher runs first.
    pub level: i64,
    /// The queue (`p…`).
    pub queue_id: String,
    /// Where the end is reported (else the queue's notification).
    pub callback: Option<Callback>,
}

/// How far a job got, saved as it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// 0..=100.
    pub percent: u8,
    /// The input's media information, once probed.
    pub media_info: Option<MediaDescription>,
    /// Picture names written, in order.
    pub pictures: Vec<String>,
    /// Sprite sheet names written, in order.
    pub sprites: Vec<String>,
    /// Why the job failed, if it did.
    pub failure: Option<Failure>,
}

/// Why a job failed: a CI-style code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind of failure.
    pub kind: FailureKind,
    /// What went wrong.
    pub message: String,
}

/// The classes of job failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The input is missing.
    InputMissing,
    /// The input is not a video framegate can decode.
    InputUnusable,
    /// The settings cannot be met for this input.
    InvalidSettings,
    /// Storage or an internal failure.
    Internal,
}

/// Checks that `value` lies in `range`, naming `field` when it does not.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    (min, max): (T, T),
) -> Result<T, JobError> {
    if value < min || value > max {
        return Err(JobError::invalid(
            field,
            format!("{value} is out of range; it must be from {min} to {max}"),
        ));
    }
    Ok(value)
}

impl SnapshotSettings {
    /// Checks the rules that span fields; `field` prefixes the names in
    /// errors (`Operation.Snapshot`).
    pub fn validate(&self, field: &str) -> Result<(), JobError> {
        check_range(&format!("{field}.Count"), self.count, (1, MAX_COUNT))?;
        if !(self.start.is_finite() && self.start >= 0.0) {
            return Err(JobError::invalid(
                &format!("{field}.Start"),
                "must be a number of seconds, 0 or more",
            ));
        }
        if let Mode::Interval {
            interval: Some(i), ..
        } = self.mode
        {
            if !(i > 0.0 && i <= MAX_INTERVAL) {
                return Err(JobError::invalid(
                    &format!("{field}.TimeInterval"),
                    format!(
                        "{i} is out of range; it must be more than 0 and at most {MAX_INTERVAL}"
                    ),
                ));
            }
        }
        for (name, side) in [("Width", self.width), ("Height", self.height)] {
            if side != 0 {
                check_range(&format!("{field}.{name}"), side, PICTURE_SIDE)?;
            }
        }
        if self.outputs.sprites() && self.sprite.is_none() {
            return Err(JobError::MissingParameter {
                field: format!("{field}.SpriteSnapshotConfig"),
            });
        }
        Ok(())
    }
}

impl SpriteLayout {
    /// Checks every range; `field` prefixes the names in errors.
    pub fn validate(&self, field: &str) -> Result<(), JobError> {
        for (name, side) in [
            ("CellWidth", self.cell_width),
            ("CellHeight", self.cell_height),
        ] {
            if side != 0 {
                check_range(&format!("{field}.{name}"), side, CELL_SIDE)?;
            }
        }
        check_range(&format!("{field}.Padding"), self.padding, SPRITE_SPACING)?;
        check_range(&format!("{field}.Margin"), self.margin, SPRITE_SPACING)?;
        check_range(&format!("{field}.Columns"), self.columns, SPRITE_GRID)?;
        check_range(&format!("{field}.Lines"), self.lines, SPRITE_GRID)?;
        Ok(())
    }
}

impl SnapshotJob {
    /// Checks the output names against the settings: several pictures (or
    /// sheets) need [`NUMBER`] in their name.
    pub fn validate_output(&self) -> Result<(), JobError> {
        let s = &self.settings;
        let many_pictures = s.count > 1 && s.outputs != Outputs::Animation;
        let many_sheets = s.sprite.is_some_and(|l| s.count > l.cells() as u64);
        let checks = [
            (
                s.outputs.pictures() || s.outputs == Outputs::Animation,
                "Object",
                &self.output.pictures,
                many_pictures,
            ),
            (
                s.outputs.sprites(),
                "SpriteObject",
                &self.output.sprites,
                many_sheets,
            ),
        ];
        for (wanted, name, pattern, many) in checks {
            if !wanted {
                continue;
            }
            let field = format!("Operation.Output.{name}");
            let Some(pattern) = pattern else {
                return Err(JobError::MissingParameter { field });
            };
            if pattern.is_empty() {
                return Err(JobError::invalid(&field, "must not be empty"));
            }
            if many && !pattern.contains(NUMBER) {
                return Err(JobError::invalid(
                    &field,
                    format!("the job makes several outputs, so the name must contain {NUMBER}"),
                ));
            }
            crate::proto::route::validate_key(&OutputTarget::name(pattern, 0))
                .map_err(|e| JobError::invalid(&field, e.to_string()))?;
        }
        Ok(())
    }
}

/// Parses a colour: an FFmpeg colour name (case-insensitive), `#RRGGBB` or
/// `0xRRGGBB`.
pub fn parse_color(text: &str) -> Option<[u8; 3]> {
    let text = text.trim();
    let hex = text
        .strip_prefix('#')
        .or_else(|| text.strip_prefix("0x"))
        .or_else(|| text.strip_prefix("0X"));
    if let Some(hex) = hex {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u32::from_str_radix(hex, 16).ok()?;
        return Some([(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    COLOR_NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map(|&(_, v)| [(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

/// FFmpeg's colour names (libavutil/parseutils.c, the CSS/X11 set).
const COLOR_NAMES: [(&str, u32); 140] = [
    ("AliceBlue", 0xF0F8FF),
    ("AntiqueWhite", 0xFAEBD7),
    ("Aqua", 0x00FFFF),
    ("Aquamarine", 0x7FFFD4),
    ("Azure", 0xF0FFFF),
    ("Beige", 0xF5F5DC),
    ("Bisque", 0xFFE4C4),
    ("Black", 0x000000),
    ("BlanchedAlmond", 0xFFEBCD),
    ("Blue", 0x0000FF),
    ("BlueViolet", 0x8A2BE2),
    ("Brown", 0xA52A2A),
    ("BurlyWood", 0xDEB887),
    ("CadetBlue", 0x5F9EA0),
    ("Chartreuse", 0x7FFF00),
    ("Chocolate", 0xD2691E),
    ("Coral", 0xFF7F50),
    ("CornflowerBlue", 0x6495ED),
    ("Cornsilk", 0xFFF8DC),
    ("Crimson", 0xDC143C),
    ("Cyan", 0x00FFFF),
    ("DarkBlue", 0x00008B),
    ("DarkCyan", 0x008B8B),
    ("DarkGoldenRod", 0xB8860B),
    ("DarkGray", 0xA9A9A9),
    ("DarkGreen", 0x006400),
    ("DarkKhaki", 0xBDB76B),
    ("DarkMagenta", 0x8B008B),
    ("DarkOliveGreen", 0x556B2F),
    ("Darkorange", 0xFF8C00),
    ("DarkOrchid", 0x9932CC),
    ("DarkRed", 0x8B0000),
    ("DarkSalmon", 0xE9967A),
    ("DarkSeaGreen", 0x8FBC8F),
    ("DarkSlateBlue", 0x483D8B),
    ("DarkSlateGray", 0x2F4F4F),
    ("DarkTurquoise", 0x00CED1),
    ("DarkViolet", 0x9400D3),
    ("DeepPink", 0xFF1493),
    ("DeepSkyBlue", 0x00BFFF),
    ("DimGray", 0x696969),
    ("DodgerBlue", 0x1E90FF),
    ("FireBrick", 0xB22222),
    ("FloralWhite", 0xFFFAF0),
    ("ForestGreen", 0x228B22),
    ("Fuchsia", 0xFF00FF),
    ("Gainsboro", 0xDCDCDC),
    ("GhostWhite", 0xF8F8FF),
    ("Gold", 0xFFD700),
    ("GoldenRod", 0xDAA520),
    ("Gray", 0x808080),
    ("Green", 0x008000),
    ("GreenYellow", 0xADFF2F),
    ("HoneyDew", 0xF0FFF0),
    ("HotPink", 0xFF69B4),
    ("IndianRed", 0xCD5C5C),
    ("Indigo", 0x4B0082),
    ("Ivory", 0xFFFFF0),
    ("Khaki", 0xF0E68C),
    ("Lavender", 0xE6E6FA),
    ("LavenderBlush", 0xFFF0F5),
    ("LawnGreen", 0x7CFC00),
    ("LemonChiffon", 0xFFFACD),
    ("LightBlue", 0xADD8E6),
    ("LightCoral", 0xF08080),
    ("LightCyan", 0xE0FFFF),
    ("LightGoldenRodYellow", 0xFAFAD2),
    ("LightGreen", 0x90EE90),
    ("LightGrey", 0xD3D3D3),
    ("LightPink", 0xFFB6C1),
    ("LightSalmon", 0xFFA07A),
    ("LightSeaGreen", 0x20B2AA),
    ("LightSkyBlue", 0x87CEFA),
    ("LightSlateGray", 0x778899),
    ("LightSteelBlue", 0xB0C4DE),
    ("LightYellow", 0xFFFFE0),
    ("Lime", 0x00FF00),
    ("LimeGreen", 0x32CD32),
    ("Linen", 0xFAF0E6),
    ("Magenta", 0xFF00FF),
    ("Maroon", 0x800000),
    ("MediumAquaMarine", 0x66CDAA),
    ("MediumBlue", 0x0000CD),
    ("MediumOrchid", 0xBA55D3),
    ("MediumPurple", 0x9370D8),
    ("MediumSeaGreen", 0x3CB371),
    ("MediumSlateBlue", 0x7B68EE),
    ("MediumSpringGreen", 0x00FA9A),
    ("MediumTurquoise", 0x48D1CC),
    ("MediumVioletRed", 0xC71585),
    ("MidnightBlue", 0x191970),
    ("MintCream", 0xF5FFFA),
    ("MistyRose", 0xFFE4E1),
    ("Moccasin", 0xFFE4B5),
    ("NavajoWhite", 0xFFDEAD),
    ("Navy", 0x000080),
    ("OldLace", 0xFDF5E6),
    ("Olive", 0x808000),
    ("OliveDrab", 0x6B8E23),
    ("Orange", 0xFFA500),
    ("OrangeRed", 0xFF4500),
    ("Orchid", 0xDA70D6),
    ("PaleGoldenRod", 0xEEE8AA),
    ("PaleGreen", 0x98FB98),
    ("PaleTurquoise", 0xAFEEEE),
    ("PaleVioletRed", 0xD87093),
    ("PapayaWhip", 0xFFEFD5),
    ("PeachPuff", 0xFFDAB9),
    ("Peru", 0xCD853F),
    ("Pink", 0xFFC0CB),
    ("Plum", 0xDDA0DD),
    ("PowderBlue", 0xB0E0E6),
    ("Purple", 0x800080),
    ("Red", 0xFF0000),
    ("RosyBrown", 0xBC8F8F),
    ("RoyalBlue", 0x4169E1),
    ("SaddleBrown", 0x8B4513),
    ("Salmon", 0xFA8072),
    ("SandyBrown", 0xF4A460),
    ("SeaGreen", 0x2E8B57),
    ("SeaShell", 0xFFF5EE),
    ("Sienna", 0xA0522D),
    ("Silver", 0xC0C0C0),
    ("SkyBlue", 0x87CEEB),
    ("SlateBlue", 0x6A5ACD),
    ("SlateGray", 0x708090),
    ("Snow", 0xFFFAFA),
    ("SpringGreen", 0x00FF7F),
    ("SteelBlue", 0x4682B4),
    ("Tan", 0xD2B48C),
    ("Teal", 0x008080),
    ("Thistle", 0xD8BFD8),
    ("Tomato", 0xFF6347),
    ("Turquoise", 0x40E0D0),
    ("Violet", 0xEE82EE),
    ("Wheat", 0xF5DEB3),
    ("White", 0xFFFFFF),
    ("WhiteSmoke", 0xF5F5F5),
    ("Yellow", 0xFFFF00),
    ("YellowGreen", 0x9ACD32),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_by_name_and_hex() {
        assert_eq!(parse_color("white"), Some([255, 255, 255]));
        assert_eq!(parse_color("Red"), Some([255, 0, 0]));
        assert_eq!(parse_color("#10a0FF"), Some([0x10, 0xa0, 0xff]));
        assert_eq!(parse_color("0x000080"), Some([0, 0, 0x80]));
        assert_eq!(parse_color("#12345"), None);
        assert_eq!(parse_color("notacolour"), None);
    }

    #[test]
    fn output_names_number_from_zero() {
        assert_eq!(OutputTarget::name("a/s-${Number}.jpg", 0), "a/s-0.jpg");
        assert_eq!(OutputTarget::prefix("a/s-${Number}.jpg"), "a/s-");
    }

    fn settings() -> SnapshotSettings {
        SnapshotSettings {
            mode: Mode::Average,
            start: 0.0,
            count: 4,
            width: 0,
            height: 0,
            black: None,
            outputs: Outputs::Pictures,
            sprite: None,
            animation: None,
        }
    }

    #[test]
    fn ranges_name_their_field() {
        let mut s = settings();
        s.count = 0;
        let err = s.validate("Operation.Snapshot").unwrap_err();
        assert!(
            err.to_string().contains("Operation.Snapshot.Count"),
            "{err}"
        );
        let mut s = settings();
        s.width = 100;
        assert!(s
            .validate("Operation.Snapshot")
            .unwrap_err()
            .to_string()
            .contains("Width"));
        let mut s = settings();
        s.mode = Mode::Interval {
            interval: Some(0.0),
            fill_count: false,
        };
        assert!(s
            .validate("S")
            .unwrap_err()
            .to_string()
            .contains("S.TimeInterval"));
    }
}
