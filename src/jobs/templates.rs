//! Screenshot templates: the three VOD kinds, their fields and ranges, the
//! read-only presets, and their API 3.0 JSON.
//!
//! Pure code: parsing and validating API parameters, no storage.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::params::{self, Params};
use super::JobError;
use crate::media::compose::FillType;
use crate::media::ImageFormat;

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

/// The three template kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// `SnapshotByTimeOffsetTemplate`: pictures at given times (and covers).
    SnapshotByTimeOffset,
    /// `SampleSnapshotTemplate`: pictures at regular intervals.
    SampleSnapshot,
    /// `ImageSpriteTemplate`: grids of small pictures plus a WebVTT index.
    ImageSprite,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 3] = [
        Kind::SnapshotByTimeOffset,
        Kind::SampleSnapshot,
        Kind::ImageSprite,
    ];

    /// The name in action names (`Create<name>`, `Describe<name>s`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::SnapshotByTimeOffset => "SnapshotByTimeOffsetTemplate",
            Kind::SampleSnapshot => "SampleSnapshotTemplate",
            Kind::ImageSprite => "ImageSpriteTemplate",
        }
    }

    /// The key the store files templates under.
    pub fn key(self) -> &'static str {
        match self {
            Kind::SnapshotByTimeOffset => "time_offset",
            Kind::SampleSnapshot => "sample",
            Kind::ImageSprite => "sprite",
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
    /// `jpg` or `png`.
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
}

impl Format {
    /// The wire value and file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpg => "jpg",
            Format::Png => "png",
        }
    }

    /// The media layer's format.
    pub fn image_format(self) -> ImageFormat {
        match self {
            Format::Jpg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
        }
    }
}

/// A template's fill mode (stored form of [`FillType`]).
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
    pub fn fill_type(self) -> FillType {
        match self {
            Fill::Stretch => FillType::Stretch,
            Fill::Black => FillType::Black,
            Fill::White => FillType::White,
            Fill::Gauss => FillType::Gauss,
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
    }
}

impl Template {
    /// A new custom template from `Create<Kind>` parameters (Definition and
    /// times are filled in by the caller).
    pub fn create(kind: Kind, p: &Params<'_>) -> Result<Self, JobError> {
        let mut template = blank(kind);
        match kind {
            Kind::SnapshotByTimeOffset => {}
            Kind::SampleSnapshot | Kind::ImageSprite => {
                p.require("SampleType")?;
                p.require("SampleInterval")?;
            }
        }
        if kind == Kind::ImageSprite {
            p.require("RowCount")?;
            p.require("ColumnCount")?;
        }
        template.apply(p)?;
        Ok(template)
    }

    /// Applies `Create`/`Modify` parameters and validates the result.
    pub fn apply(&mut self, p: &Params<'_>) -> Result<(), JobError> {
        if let Some(name) = p.string("Name")? {
            params::check_len("Name", &name, 64)?;
            self.name = name;
        }
        if let Some(comment) = p.string("Comment")? {
            params::check_len("Comment", &comment, 256)?;
            self.comment = comment;
        }
        let range = match self.kind {
            Kind::ImageSprite => CELL_SIDE_RANGE,
            _ => SIDE_RANGE,
        };
        if let Some(width) = p.uint("Width")? {
            self.width = side("Width", width, range)?;
        }
        if let Some(height) = p.uint("Height")? {
            self.height = side("Height", height, range)?;
        }
        if let Some(adaptive) = p.string("ResolutionAdaptive")? {
            self.resolution_adaptive = match adaptive.as_str() {
                "open" => true,
                "close" => false,
                _ => {
                    return Err(JobError::invalid(
                        "ResolutionAdaptive",
                        "must be open or close",
                    ))
                }
            };
        }
        if let Some(format) = p.string("Format")? {
            self.format = match format.as_str() {
                "jpg" => Format::Jpg,
                "png" => Format::Png,
                _ => return Err(JobError::invalid("Format", "must be jpg or png")),
            };
        }
        if let Some(fill) = p.string("FillType")? {
            self.fill = match fill.as_str() {
                "stretch" => Fill::Stretch,
                "black" => Fill::Black,
                "white" => Fill::White,
                "gauss" => Fill::Gauss,
                _ => {
                    return Err(JobError::invalid(
                        "FillType",
                        "must be stretch, black, white or gauss",
                    ))
                }
            };
        }
        if self.kind != Kind::SnapshotByTimeOffset {
            self.apply_sampling(p)?;
        }
        if self.kind == Kind::ImageSprite {
            self.apply_grid(p)?;
        }
        Ok(())
    }

    fn apply_sampling(&mut self, p: &Params<'_>) -> Result<(), JobError> {
        if let Some(sample_type) = p.string("SampleType")? {
            self.sample_type = Some(match sample_type.as_str() {
                "Percent" if self.kind == Kind::ImageSprite => {
                    return Err(JobError::invalid(
                        "SampleType",
                        "image sprites sample by Time only",
                    ))
                }
                "Percent" => SampleType::Percent,
                "Time" => SampleType::Time,
                _ => return Err(JobError::invalid("SampleType", "must be Percent or Time")),
            });
        }
        if let Some(interval) = p.uint("SampleInterval")? {
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

    fn apply_grid(&mut self, p: &Params<'_>) -> Result<(), JobError> {
        for (field, slot) in [
            ("RowCount", &mut self.rows),
            ("ColumnCount", &mut self.columns),
        ] {
            if let Some(count) = p.uint(field)? {
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

    /// The API 3.0 JSON of the template (`SnapshotByTimeOffsetTemplate`,
    /// `SampleSnapshotTemplate` or `ImageSpriteTemplate`).
    pub fn to_json(&self) -> Value {
        let mut v = Map::new();
        v.insert("Definition".into(), json!(self.definition));
        v.insert(
            "Type".into(),
            json!(if self.preset { "Preset" } else { "Custom" }),
        );
        v.insert("Name".into(), json!(self.name));
        v.insert("Comment".into(), json!(self.comment));
        v.insert("Width".into(), json!(self.width));
        v.insert("Height".into(), json!(self.height));
        v.insert(
            "ResolutionAdaptive".into(),
            json!(if self.resolution_adaptive {
                "open"
            } else {
                "close"
            }),
        );
        v.insert("Format".into(), json!(self.format.as_str()));
        v.insert("FillType".into(), json!(self.fill.as_str()));
        if let Some(sample_type) = self.sample_type {
            v.insert("SampleType".into(), json!(sample_type.as_str()));
            v.insert("SampleInterval".into(), json!(self.sample_interval));
        }
        if self.kind == Kind::ImageSprite {
            v.insert("RowCount".into(), json!(self.rows));
            v.insert("ColumnCount".into(), json!(self.columns));
        }
        v.insert(
            "CreateTime".into(),
            json!(params::iso_time(self.created_ms)),
        );
        v.insert(
            "UpdateTime".into(),
            json!(params::iso_time(self.updated_ms)),
        );
        Value::Object(v)
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

    fn create(kind: Kind, v: Value) -> Result<Template, JobError> {
        Template::create(kind, &Params::new(&v))
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
        let err = create(Kind::SnapshotByTimeOffset, json!({"Width": 100})).unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.Width");
        let err = create(Kind::SnapshotByTimeOffset, json!({"Height": 5000})).unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.Height");
        let err = create(Kind::SnapshotByTimeOffset, json!({"FillType": "blur"})).unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.FillType");
        let err = create(Kind::SampleSnapshot, json!({"SampleType": "Percent"})).unwrap_err();
        assert_eq!(err.code(), "MissingParameter");
        let err = create(
            Kind::SampleSnapshot,
            json!({"SampleType": "Percent", "SampleInterval": 101}),
        )
        .unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.SampleInterval");
        let ok = create(
            Kind::SampleSnapshot,
            json!({"SampleType": "Time", "SampleInterval": 101, "Width": 0, "Height": 128}),
        )
        .unwrap();
        assert_eq!(ok.sample_interval, 101);
    }

    #[test]
    fn sprite_totals_stay_within_4096() {
        let base = json!({"SampleType": "Time", "SampleInterval": 5, "RowCount": 10,
                          "ColumnCount": 40, "Width": 128, "Height": 128});
        let err = create(Kind::ImageSprite, base.clone()).unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.Width");
        let mut fine = base;
        fine["ColumnCount"] = json!(32);
        assert!(create(Kind::ImageSprite, fine).is_ok());
        let err = create(
            Kind::ImageSprite,
            json!({"SampleType": "Percent", "SampleInterval": 5, "RowCount": 1, "ColumnCount": 1}),
        )
        .unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.SampleType");
    }
}
