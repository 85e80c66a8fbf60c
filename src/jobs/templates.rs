//! Screenshot templates: the three VOD kinds, their fields and ranges, the
//! read-only presets.
//!
//! Pure code: what a template is and which values it may take; each wire
//! dialect reads and writes it in its own adapter.

use super::params;
use super::JobError;
use crate::media::{AnimationFormat, Fit, ImageFormat};
use serde::{Deserialize, Serialize};

/// The first Definition given to a custom template (presets are below).
pub const FIRST_CUSTOM_DEFINITION: u64 = 100_001;
/// The Definition of every kind's preset.
pub const PRESET_DEFINITION: u64 = 10;
/// Bounds of a picture side (0 means "follow the source").
pub const SIDE_RANGE: (u32, u32) = (128, 4096);
/// Bounds of a whole sprite side (cell side times cells).
pub const SPRITE_SIDE_RANGE: (u32, u32) = (128, 4096);
/// Bounds of a sprite cell side (0 means "follow the source"): the sheet
/// is what must be 128 or more.
pub const CELL_SIDE_RANGE: (u32, u32) = (8, 4096);

/// Most frames one animated picture may have.
pub const MAX_ANIMATION_FRAMES: usize = 300;
/// Most frame pixels (frames × width × height) one animation may hold
/// while it is made.
pub const MAX_ANIMATION_PIXELS: u64 = 32 * 1024 * 1024;
/// Bounds of an animation's frame rate.
pub const FPS_RANGE: (u32, u32) = (1, 30);

/// The template kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// `SnapshotByTimeOffsetTemplate`: pictures at given times (and covers).
    SnapshotByTimeOffset,
    /// `SampleSnapshotTemplate`: pictures at regular intervals.
    SampleSnapshot,
    /// `ImageSpriteTemplate`: grids of small pictures plus a WebVTT index.
    ImageSprite,
    /// `AnimatedGraphicsTemplate`: animated GIF or WebP previews.
    AnimatedGraphics,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 4] = [
        Kind::SnapshotByTimeOffset,
        Kind::SampleSnapshot,
        Kind::ImageSprite,
        Kind::AnimatedGraphics,
    ];

    /// The name in action names (`Create<name>`, `Describe<name>s`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::SnapshotByTimeOffset => "SnapshotByTimeOffsetTemplate",
            Kind::SampleSnapshot => "SampleSnapshotTemplate",
            Kind::ImageSprite => "ImageSpriteTemplate",
            Kind::AnimatedGraphics => "AnimatedGraphicsTemplate",
        }
    }

    /// The key the store files templates under.
    pub fn key(self) -> &'static str {
        match self {
            Kind::SnapshotByTimeOffset => "time_offset",
            Kind::SampleSnapshot => "sample",
            Kind::ImageSprite => "sprite",
            Kind::AnimatedGraphics => "animated",
        }
    }
}

/// How sampling intervals are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SampleType {
    /// `Interval` percent of the duration.
    Percent,
    /// `Interval` seconds.
    Time,
}

impl SampleType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            SampleType::Percent => "Percent",
            SampleType::Time => "Time",
        }
    }
}

/// A template of any kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// Which kind.
    pub kind: Kind,
    /// Its id.
    pub definition: u64,
    /// A preset (read-only).
    pub preset: bool,
    /// Up to 64 characters.
    pub name: String,
    /// Up to 256 characters.
    pub comment: String,
    /// Picture (cell) width, 0 or 128–4096.
    pub width: u32,
    /// Picture (cell) height, 0 or 128–4096.
    pub height: u32,
    /// Width is the long side and height the short side.
    pub resolution_adaptive: bool,
    /// `jpg`, `png` or `webp`.
    pub format: Format,
    /// How the aspect ratio is handled.
    pub fill: Fill,
    /// Sampled and sprite templates: how the interval is measured.
    pub sample_type: Option<SampleType>,
    /// Sampled and sprite templates: the interval.
    pub sample_interval: u32,
    /// Sprite templates: rows per sprite.
    pub rows: u32,
    /// Sprite templates: columns per sprite.
    pub columns: u32,
    /// Animated templates: frames a second, 1–30.
    #[serde(default)]
    pub fps: u32,
    /// Animated templates: encoder quality, 1–100.
    #[serde(default)]
    pub quality: u32,
    /// Sampled and sprite templates: whether a black frame gives way to
    /// the next lit one (this gateway's `FgBlackFrames`).
    #[serde(default)]
    pub black_frames: BlackFrames,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Last change, Unix milliseconds.
    pub updated_ms: i64,
}

/// Output picture format of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// JPEG.
    Jpg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// GIF (animated templates only).
    Gif,
}

impl Format {
    /// The wire value and file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpg => "jpg",
            Format::Png => "png",
            Format::Webp => "webp",
            Format::Gif => "gif",
        }
    }

    /// The media layer's still-picture format (`None` for GIF, which
    /// templates take for animations only).
    pub fn still_format(self) -> Option<ImageFormat> {
        match self {
            Format::Jpg => Some(ImageFormat::Jpeg),
            Format::Png => Some(ImageFormat::Png),
            Format::Webp => Some(ImageFormat::WebP),
            Format::Gif => None,
        }
    }

    /// The media layer's animation format (`None` for still formats).
    pub fn animation_format(self) -> Option<AnimationFormat> {
        match self {
            Format::Gif => Some(AnimationFormat::Gif),
            Format::Webp => Some(AnimationFormat::WebP),
            Format::Jpg | Format::Png => None,
        }
    }
}

/// What sampled pictures do about black frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlackFrames {
    /// Taken as they are (VOD's behaviour).
    #[default]
    Keep,
    /// Replaced by the first frame after them that is not black, before the
    /// next sample (CI's `IsCheckBlack`, FFmpeg `blackframe`'s defaults).
    Skip,
}

/// A template's fill mode (VOD's `FillType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fill {
    /// `stretch`.
    Stretch,
    /// `black`.
    Black,
    /// `white`.
    White,
    /// `gauss`.
    Gauss,
}

impl Fill {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Fill::Stretch => "stretch",
            Fill::Black => "black",
            Fill::White => "white",
            Fill::Gauss => "gauss",
        }
    }

    /// The media layer's fill mode.
    pub fn fit(self) -> Fit {
        match self {
            Fill::Stretch => Fit::Stretch,
            Fill::Black => Fit::Pad([0, 0, 0]),
            Fill::White => Fit::Pad([255, 255, 255]),
            Fill::Gauss => Fit::Blur,
        }
    }
}

/// A template of `kind` with every field at its default (source size,
/// JPG, black fill, no sampling), not yet numbered.
fn blank(kind: Kind) -> Template {
    Template {
        kind,
        definition: 0,
        preset: false,
        name: String::new(),
        comment: String::new(),
        width: 0,
        height: 0,
        resolution_adaptive: true,
        format: Format::Jpg,
        fill: Fill::Black,
        sample_type: None,
        sample_interval: 0,
        rows: 0,
        columns: 0,
        fps: 0,
        quality: 0,
        black_frames: BlackFrames::Keep,
        created_ms: 0,
        updated_ms: 0,
    }
}

/// The preset of `kind` (Definition 10).
pub fn preset(kind: Kind) -> Template {
    let base = Template {
        definition: PRESET_DEFINITION,
        preset: true,
        ..blank(kind)
    };
    match kind {
        Kind::SnapshotByTimeOffset => Template {
            name: "JPG at the source size".into(),
            comment: "Preset: time-point screenshots, JPG, source resolution".into(),
            ..base
        },
        Kind::SampleSnapshot => Template {
            name: "JPG every 10%".into(),
            comment: "Preset: sampled screenshots, JPG, source resolution, every 10%".into(),
            sample_type: Some(SampleType::Percent),
            sample_interval: 10,
            ..base
        },
        Kind::ImageSprite => Template {
            name: "142x80 cells, 10x10, every 10 s".into(),
            comment: "Preset: image sprites of 10x10 JPG cells of 142x80, one every 10 s".into(),
            width: 142,
            height: 80,
            sample_type: Some(SampleType::Time),
            sample_interval: 10,
            rows: 10,
            columns: 10,
            ..base
        },
        Kind::AnimatedGraphics => Template {
            name: "GIF, 10 fps, 320 wide".into(),
            comment: "Preset: animated GIF, 10 frames a second, 320 pixels wide".into(),
            format: Format::Gif,
            width: 320,
            fps: 10,
            quality: 75,
            ..base
        },
    }
}

/// The fields a `Create`/`Modify` call sets: `None` leaves a field as it
/// is (at its default for a new template). Names are the API's, which the
/// errors use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateFields {
    /// Up to 64 characters.
    pub name: Option<String>,
    /// Up to 256 characters.
    pub comment: Option<String>,
    /// Picture or cell width.
    pub width: Option<u64>,
    /// Picture or cell height.
    pub height: Option<u64>,
    /// Width is the long side.
    pub resolution_adaptive: Option<bool>,
    /// Picture format.
    pub format: Option<Format>,
    /// Aspect-ratio handling.
    pub fill: Option<Fill>,
    /// How intervals are measured.
    pub sample_type: Option<SampleType>,
    /// The interval.
    pub sample_interval: Option<u64>,
    /// Sprite rows.
    pub rows: Option<u64>,
    /// Sprite columns.
    pub columns: Option<u64>,
    /// Animation frames a second.
    pub fps: Option<u64>,
    /// Animation quality.
    pub quality: Option<u64>,
    /// Black-frame handling of samples and sprites.
    pub black_frames: Option<BlackFrames>,
}

impl Template {
    /// A new custom template of `kind` (Definition and times are filled in
    /// by the caller).
    pub fn create(kind: Kind, fields: &TemplateFields) -> Result<Self, JobError> {
        let missing = |field: &str| JobError::MissingParameter {
            field: field.to_owned(),
        };
        if matches!(kind, Kind::SampleSnapshot | Kind::ImageSprite) {
            fields.sample_type.ok_or_else(|| missing("SampleType"))?;
            fields
                .sample_interval
                .ok_or_else(|| missing("SampleInterval"))?;
        }
        if kind == Kind::ImageSprite {
            fields.rows.ok_or_else(|| missing("RowCount"))?;
            fields.columns.ok_or_else(|| missing("ColumnCount"))?;
        }
        let mut template = blank(kind);
        if kind == Kind::AnimatedGraphics {
            fields.fps.ok_or_else(|| missing("Fps"))?;
            template.format = Format::Gif;
            template.quality = 75;
        }
        template.apply(fields)?;
        Ok(template)
    }

    /// Applies `fields` and validates the result.
    pub fn apply(&mut self, fields: &TemplateFields) -> Result<(), JobError> {
        if let Some(name) = &fields.name {
            params::check_len("Name", name, 64)?;
            self.name.clone_from(name);
        }
        if let Some(comment) = &fields.comment {
            params::check_len("Comment", comment, 256)?;
            self.comment.clone_from(comment);
        }
        let range = match self.kind {
            Kind::ImageSprite => CELL_SIDE_RANGE,
            _ => SIDE_RANGE,
        };
        if let Some(width) = fields.width {
            self.width = side("Width", width, range)?;
        }
        if let Some(height) = fields.height {
            self.height = side("Height", height, range)?;
        }
        if let Some(adaptive) = fields.resolution_adaptive {
            self.resolution_adaptive = adaptive;
        }
        if let Some(format) = fields.format {
            let animated = self.kind == Kind::AnimatedGraphics;
            let allowed = match format {
                Format::Gif => animated,
                Format::Webp => true,
                Format::Jpg | Format::Png => !animated,
            };
            if !allowed {
                return Err(JobError::invalid(
                    "Format",
                    if animated {
                        "must be gif or webp"
                    } else {
                        "must be jpg, png or webp"
                    },
                ));
            }
            self.format = format;
        }
        if let Some(fill) = fields.fill {
            self.fill = fill;
        }
        if matches!(self.kind, Kind::SampleSnapshot | Kind::ImageSprite) {
            self.apply_sampling(fields)?;
        } else if fields.black_frames.is_some() {
            return Err(JobError::invalid(
                "FgBlackFrames",
                "only sampled-snapshot and image-sprite templates take it",
            ));
        }
        if self.kind == Kind::AnimatedGraphics {
            self.apply_animation(fields)?;
        }
        if self.kind == Kind::ImageSprite {
            self.apply_grid(fields)?;
        }
        Ok(())
    }

    fn apply_sampling(&mut self, fields: &TemplateFields) -> Result<(), JobError> {
        if let Some(black_frames) = fields.black_frames {
            self.black_frames = black_frames;
        }
        if let Some(sample_type) = fields.sample_type {
            if sample_type == SampleType::Percent && self.kind == Kind::ImageSprite {
                return Err(JobError::invalid(
                    "SampleType",
                    "image sprites sample by Time only",
                ));
            }
            self.sample_type = Some(sample_type);
        }
        if let Some(interval) = fields.sample_interval {
            self.sample_interval = u32::try_from(interval).unwrap_or(u32::MAX);
        }
        let (low, high) = match self.sample_type {
            Some(SampleType::Percent) => (1, 100),
            _ => (1, 86_400),
        };
        if !(low..=high).contains(&self.sample_interval) {
            return Err(JobError::invalid(
                "SampleInterval",
                format!(
                    "must be from {low} to {high} ({})",
                    match self.sample_type {
                        Some(SampleType::Percent) => "percent",
                        _ => "seconds",
                    }
                ),
            ));
        }
        Ok(())
    }

    fn apply_animation(&mut self, fields: &TemplateFields) -> Result<(), JobError> {
        let (low, high) = FPS_RANGE;
        if let Some(fps) = fields.fps {
            if !(u64::from(low)..=u64::from(high)).contains(&fps) {
                return Err(JobError::invalid(
                    "Fps",
                    format!("must be from {low} to {high}"),
                ));
            }
            self.fps = fps as u32;
        }
        if let Some(quality) = fields.quality {
            if !(1..=100).contains(&quality) {
                return Err(JobError::invalid("Quality", "must be from 1 to 100"));
            }
            self.quality = quality as u32;
        }
        Ok(())
    }

    fn apply_grid(&mut self, fields: &TemplateFields) -> Result<(), JobError> {
        for (field, slot, count) in [
            ("RowCount", &mut self.rows, fields.rows),
            ("ColumnCount", &mut self.columns, fields.columns),
        ] {
            if let Some(count) = count {
                if !(1..=100).contains(&count) {
                    return Err(JobError::invalid(field, "must be from 1 to 100"));
                }
                *slot = count as u32;
            }
        }
        let (low, high) = SPRITE_SIDE_RANGE;
        for (field, cell, count) in [
            ("Width", self.width, self.columns),
            ("Height", self.height, self.rows),
        ] {
            let total = u64::from(cell) * u64::from(count);
            if cell != 0 && !(u64::from(low)..=u64::from(high)).contains(&total) {
                return Err(JobError::invalid(
                    field,
                    format!(
                        "the sprite's {} ({cell} x {count} = {total}) must be from {low} to {high}",
                        if field == "Width" { "width" } else { "height" }
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A picture side: 0 or 128–4096.
fn side(field: &'static str, value: u64, (low, high): (u32, u32)) -> Result<u32, JobError> {
    if value == 0 || (u64::from(low)..=u64::from(high)).contains(&value) {
        Ok(value as u32)
    } else {
        Err(JobError::invalid(
            field,
            format!("must be 0 (follow the source) or from {low} to {high}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(sample_type: SampleType, interval: u64) -> TemplateFields {
        TemplateFields {
            sample_type: Some(sample_type),
            sample_interval: Some(interval),
            ..TemplateFields::default()
        }
    }

    fn code(result: Result<Template, JobError>) -> String {
        result.unwrap_err().code()
    }

    #[test]
    fn presets_are_numbered_10_and_match_vod() {
        let sprite = preset(Kind::ImageSprite);
        assert_eq!(sprite.definition, 10);
        assert_eq!(
            (sprite.width, sprite.height, sprite.rows, sprite.columns),
            (142, 80, 10, 10)
        );
        assert_eq!(sprite.sample_type, Some(SampleType::Time));
        let sample = preset(Kind::SampleSnapshot);
        assert_eq!(
            (sample.sample_type, sample.sample_interval),
            (Some(SampleType::Percent), 10)
        );
        let shot = preset(Kind::SnapshotByTimeOffset);
        assert_eq!((shot.width, shot.height, shot.format), (0, 0, Format::Jpg));
    }

    #[test]
    fn ranges_are_checked_with_the_field_named() {
        let width = |width| TemplateFields {
            width: Some(width),
            ..TemplateFields::default()
        };
        let shot = Kind::SnapshotByTimeOffset;
        assert_eq!(
            code(Template::create(shot, &width(100))),
            "InvalidParameterValue.Width"
        );
        let tall = TemplateFields {
            height: Some(5000),
            ..TemplateFields::default()
        };
        assert_eq!(
            code(Template::create(shot, &tall)),
            "InvalidParameterValue.Height"
        );
        let no_interval = TemplateFields {
            sample_type: Some(SampleType::Percent),
            ..TemplateFields::default()
        };
        assert_eq!(
            code(Template::create(Kind::SampleSnapshot, &no_interval)),
            "MissingParameter"
        );
        assert_eq!(
            code(Template::create(
                Kind::SampleSnapshot,
                &sampled(SampleType::Percent, 101)
            )),
            "InvalidParameterValue.SampleInterval"
        );
        let ok = Template::create(Kind::SampleSnapshot, &sampled(SampleType::Time, 101)).unwrap();
        assert_eq!(ok.sample_interval, 101);
    }

    #[test]
    fn sprite_totals_stay_within_4096() {
        let grid = |columns| TemplateFields {
            rows: Some(10),
            columns: Some(columns),
            width: Some(128),
            height: Some(128),
            ..sampled(SampleType::Time, 5)
        };
        assert_eq!(
            code(Template::create(Kind::ImageSprite, &grid(40))),
            "InvalidParameterValue.Width"
        );
        assert!(Template::create(Kind::ImageSprite, &grid(32)).is_ok());
        let by_percent = TemplateFields {
            rows: Some(1),
            columns: Some(1),
            ..sampled(SampleType::Percent, 5)
        };
        assert_eq!(
            code(Template::create(Kind::ImageSprite, &by_percent)),
            "InvalidParameterValue.SampleType"
        );
    }
}
