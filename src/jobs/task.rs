//! What a task is asked to do ([`TaskSpec`], fixed at submission, templates
//! included) and how far it got ([`TaskState`], rewritten as it runs), and
//! their API 3.0 / event JSON.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::params::{iso_time, Params};
use super::templates::{Kind, SampleType, Template};
use super::JobError;

/// Most time points one time-point subtask may ask for.
pub const MAX_TIME_OFFSETS: usize = 1000;

/// A task: one media file, several subtasks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Bucket of the media.
    pub bucket: String,
    /// Object key of the media.
    pub key: String,
    /// The media's FileId.
    pub file_id: String,
    /// The subtasks, in request order.
    pub subtasks: Vec<Subtask>,
    /// -10..10.
    pub priority: i64,
    /// Which state changes make events.
    pub notify_mode: NotifyMode,
    /// Echoed in results and events.
    pub session_context: String,
    /// The deduplication id, if any.
    pub session_id: String,
}

/// Which state changes of a task make events (`TasksNotifyMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyMode {
    /// Its end only (stored as `""` by earlier versions).
    #[default]
    #[serde(alias = "")]
    Finish,
    /// Its start and its end.
    Change,
    /// None.
    None,
}

impl NotifyMode {
    /// Whether a change to a state that `finished` or not makes an event.
    pub fn wants(self, finished: bool) -> bool {
        match self {
            NotifyMode::None => false,
            NotifyMode::Change => true,
            NotifyMode::Finish => finished,
        }
    }
}

/// One subtask with its template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subtask {
    /// What to make.
    pub work: Work,
    /// The template, as it was at submission.
    pub template: Template,
    /// The subtask's input as the client gave it (echoed as `Input`).
    pub input: Value,
}

/// The kinds of subtask.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Work {
    /// Pictures at these times.
    SnapshotByTimeOffset {
        /// The times, in request order.
        offsets: Vec<Offset>,
    },
    /// Pictures at regular intervals (from the template).
    SampleSnapshot,
    /// Sprites and a WebVTT index (from the template).
    ImageSprite,
    /// One picture, stored as the media's cover.
    CoverBySnapshot {
        /// Where.
        position: Offset,
    },
}

/// A point in the media: seconds, or percent of the duration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Offset {
    /// Seconds from the start.
    Seconds(f64),
    /// Percent of the duration.
    Percent(f64),
}

impl Offset {
    /// Seconds from the start, given the duration.
    pub fn seconds(self, duration: f64) -> f64 {
        match self {
            Offset::Seconds(s) => s,
            Offset::Percent(p) => duration * p / 100.0,
        }
    }

    /// Parses an `ExtTimeOffsetSet` entry: `3.5s` or `10%`.
    pub fn parse_ext(text: &str) -> Option<Self> {
        let text = text.trim();
        let (number, make): (&str, fn(f64) -> Offset) = if let Some(n) = text.strip_suffix('%') {
            (n, Offset::Percent)
        } else if let Some(n) = text.strip_suffix('s') {
            (n, Offset::Seconds)
        } else {
            return None;
        };
        let value: f64 = number.trim().parse().ok()?;
        let ok = value.is_finite()
            && value >= 0.0
            && match make(value) {
                Offset::Percent(p) => p <= 100.0,
                Offset::Seconds(_) => true,
            };
        ok.then(|| make(value))
    }
}

/// The state of a task, saved as it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TaskState {
    /// The media's information once probed (VOD's `MetaData`).
    pub meta: Option<crate::media::MediaInfo>,
    /// One per subtask.
    pub subtasks: Vec<SubtaskState>,
    /// Why the whole task was aborted, if it was.
    pub abort_message: Option<String>,
}

/// Where a subtask is (stored, and shown by VOD, under these names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SubtaskStatus {
    /// Not started.
    #[default]
    Waiting,
    /// Being made.
    Processing,
    /// Made.
    Success,
    /// Failed.
    Fail,
}

impl SubtaskStatus {
    /// Whether the subtask has ended.
    pub fn ended(self) -> bool {
        matches!(self, SubtaskStatus::Success | SubtaskStatus::Fail)
    }
}

/// The state of one subtask.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SubtaskState {
    /// Where it is.
    pub status: SubtaskStatus,
    /// 0, or a VOD-style error number.
    pub err_code: i64,
    /// A dotted error name (`SourceFileError.NotFound`).
    pub err_code_ext: String,
    /// What went wrong.
    pub message: String,
    /// 0..=100.
    pub progress: u8,
    /// Unix ms.
    pub begin_ms: Option<i64>,
    /// Unix ms.
    pub finish_ms: Option<i64>,
    /// What was made: object keys.
    pub output: Output,
}

/// The objects a subtask wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Output {
    /// Picture keys, in output order.
    pub images: Vec<String>,
    /// Time-point screenshots: the requested time of each picture (ms).
    pub time_offsets_ms: Vec<f64>,
    /// Sprites: the WebVTT key.
    pub vtt: Option<String>,
    /// Sprites: the cell size.
    pub cell: Option<(u32, u32)>,
}

/// Makes object keys into URLs.
pub trait UrlMaker {
    /// The URL of `key` in `bucket`.
    fn url(&self, bucket: &str, key: &str) -> String;
}

impl TaskState {
    /// The initial state of `spec`'s subtasks.
    pub fn waiting(spec: &TaskSpec) -> Self {
        Self {
            meta: None,
            subtasks: spec
                .subtasks
                .iter()
                .map(|_| SubtaskState {
                    status: SubtaskStatus::Waiting,
                    ..SubtaskState::default()
                })
                .collect(),
            abort_message: None,
        }
    }

    /// Overall progress, 0..=100.
    pub fn progress(&self) -> u8 {
        if self.subtasks.is_empty() {
            return 0;
        }
        let sum: u32 = self.subtasks.iter().map(|s| u32::from(s.progress)).sum();
        (sum / self.subtasks.len() as u32) as u8
    }
}

impl TaskSpec {
    /// The file name shown for the media: the key's last segment.
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// Parses a `MediaProcessTask`, resolving each Definition with `lookup`.
pub fn parse_subtasks(
    task: &Value,
    lookup: &mut dyn FnMut(Kind, u64) -> Option<Template>,
) -> Result<Vec<Subtask>, JobError> {
    let p = Params::nested(task, "MediaProcessTask.");
    let mut subtasks = Vec::new();
    // (set, the prefix its fields are named with in errors, template kind)
    let sets = [
        (
            "SnapshotByTimeOffsetTaskSet",
            "SnapshotByTimeOffsetTaskSet.",
            Kind::SnapshotByTimeOffset,
        ),
        (
            "SampleSnapshotTaskSet",
            "SampleSnapshotTaskSet.",
            Kind::SampleSnapshot,
        ),
        (
            "ImageSpriteTaskSet",
            "ImageSpriteTaskSet.",
            Kind::ImageSprite,
        ),
        (
            "CoverBySnapshotTaskSet",
            "CoverBySnapshotTaskSet.",
            Kind::SnapshotByTimeOffset,
        ),
    ];
    for (set, prefix, kind) in sets {
        for input in p.array(set)?.into_iter().flatten() {
            let ip = Params::nested(input, prefix);
            if ip.array("WatermarkSet")?.is_some_and(|w| !w.is_empty()) {
                return Err(JobError::invalid(
                    "WatermarkSet",
                    format!("{set}: watermarks are not provided by this gateway"),
                ));
            }
            let definition = ip
                .uint("Definition")?
                .ok_or_else(|| JobError::MissingParameter {
                    field: format!("{set}.Definition"),
                })?;
            let template = lookup(kind, definition).ok_or_else(|| JobError::NotFound {
                what: super::Missing::Template,
                message: format!(
                    "{set}: there is no {} with Definition {definition}",
                    kind.name()
                ),
            })?;
            let work = match set {
                "SnapshotByTimeOffsetTaskSet" => Work::SnapshotByTimeOffset {
                    offsets: time_offsets(&ip)?,
                },
                "SampleSnapshotTaskSet" => Work::SampleSnapshot,
                "ImageSpriteTaskSet" => Work::ImageSprite,
                _ => Work::CoverBySnapshot {
                    position: cover_position(&ip)?,
                },
            };
            subtasks.push(Subtask {
                work,
                template,
                input: input.clone(),
            });
        }
    }
    for key in [
        "TranscodeTaskSet",
        "AnimatedGraphicTaskSet",
        "AdaptiveDynamicStreamingTaskSet",
    ] {
        if p.array(key)?.is_some_and(|a| !a.is_empty()) {
            return Err(JobError::invalid_raw(
                "InvalidParameterValue.MediaProcessTask",
                format!("{key} is not provided by this gateway; it makes screenshots only"),
            ));
        }
    }
    if subtasks.is_empty() {
        return Err(JobError::MissingParameter {
            field: "MediaProcessTask (at least one screenshot task)".into(),
        });
    }
    Ok(subtasks)
}

fn time_offsets(p: &Params<'_>) -> Result<Vec<Offset>, JobError> {
    let mut offsets = Vec::new();
    if let Some(ext) = p.array("ExtTimeOffsetSet")? {
        for entry in ext {
            let offset = entry.as_str().and_then(Offset::parse_ext).ok_or_else(|| {
                JobError::invalid(
                    "ExtTimeOffsetSet",
                    format!("{entry} is not a time like \"3.5s\" or a percentage like \"10%\""),
                )
            })?;
            offsets.push(offset);
        }
    }
    if let Some(ms) = p.array("TimeOffsetSet")? {
        for entry in ms {
            let value = entry
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    JobError::invalid(
                        "TimeOffsetSet",
                        format!("{entry} is not a time in milliseconds"),
                    )
                })?;
            offsets.push(Offset::Seconds(value / 1000.0));
        }
    }
    if offsets.is_empty() {
        return Err(JobError::MissingParameter {
            field: "SnapshotByTimeOffsetTaskSet.ExtTimeOffsetSet".into(),
        });
    }
    if offsets.len() > MAX_TIME_OFFSETS {
        return Err(JobError::invalid(
            "ExtTimeOffsetSet",
            format!("at most {MAX_TIME_OFFSETS} time points per task"),
        ));
    }
    Ok(offsets)
}

fn cover_position(p: &Params<'_>) -> Result<Offset, JobError> {
    let kind = p
        .string("PositionType")?
        .ok_or_else(|| JobError::MissingParameter {
            field: "CoverBySnapshotTaskSet.PositionType".into(),
        })?;
    let value = p.number("PositionValue")?.unwrap_or(0.0);
    match kind.as_str() {
        "Time" if value >= 0.0 => Ok(Offset::Seconds(value)),
        "Percent" if (0.0..=100.0).contains(&value) => Ok(Offset::Percent(value)),
        "Time" | "Percent" => Err(JobError::invalid(
            "PositionValue",
            "must be at least 0 (seconds) or from 0 to 100 (percent)",
        )),
        _ => Err(JobError::invalid("PositionType", "must be Time or Percent")),
    }
}

/// The VOD `Type` and result field of a subtask.
fn type_names(work: &Work) -> (&'static str, &'static str) {
    match work {
        Work::SnapshotByTimeOffset { .. } => ("SnapshotByTimeOffset", "SnapshotByTimeOffsetTask"),
        Work::SampleSnapshot => ("SampleSnapshot", "SampleSnapshotTask"),
        Work::ImageSprite => ("ImageSprites", "ImageSpriteTask"),
        Work::CoverBySnapshot { .. } => ("CoverBySnapshot", "CoverBySnapshotTask"),
    }
}

/// The `MediaProcessResultSet` of a task, URLs made by `urls`.
pub fn result_set(spec: &TaskSpec, state: &TaskState, urls: &dyn UrlMaker) -> Vec<Value> {
    let url = |key: &String| urls.url(&spec.bucket, key);
    spec.subtasks
        .iter()
        .zip(&state.subtasks)
        .map(|(sub, st)| {
            let (type_name, field) = type_names(&sub.work);
            let definition = sub.template.definition;
            let out = &st.output;
            let output = match &sub.work {
                Work::SnapshotByTimeOffset { .. } => json!({
                    "Definition": definition,
                    "PicInfoSet": out.images.iter().zip(&out.time_offsets_ms).map(|(k, t)| json!({
                        "TimeOffset": t, "Url": url(k), "WaterMarkDefinition": [],
                    })).collect::<Vec<_>>(),
                }),
                Work::SampleSnapshot => json!({
                    "Definition": definition,
                    "SampleType": sub.template.sample_type.map_or("Percent", SampleType::as_str),
                    "Interval": sub.template.sample_interval,
                    "ImageUrlSet": out.images.iter().map(url).collect::<Vec<_>>(),
                    "WaterMarkDefinition": [],
                }),
                Work::ImageSprite => {
                    let (w, h) = out
                        .cell
                        .unwrap_or((sub.template.width, sub.template.height));
                    json!({
                        "Definition": definition,
                        "Height": h,
                        "Width": w,
                        "TotalCount": out.images.len(),
                        "ImageUrlSet": out.images.iter().map(url).collect::<Vec<_>>(),
                        "WebVttUrl": out.vtt.as_ref().map(url).unwrap_or_default(),
                    })
                }
                Work::CoverBySnapshot { .. } => json!({
                    "CoverUrl": out.images.first().map(url).unwrap_or_default(),
                }),
            };
            let mut input = sub.input.clone();
            if let Value::Object(map) = &mut input {
                map.entry("Definition").or_insert(json!(definition));
            }
            let mut result = Map::new();
            result.insert("Status".into(), json!(st.status));
            result.insert("ErrCodeExt".into(), json!(st.err_code_ext));
            result.insert("ErrCode".into(), json!(st.err_code));
            result.insert("Message".into(), json!(st.message));
            result.insert("Input".into(), input);
            result.insert("Output".into(), output);
            result.insert("Progress".into(), json!(st.progress));
            result.insert(
                "BeginProcessTime".into(),
                json!(st.begin_ms.map(iso_time).unwrap_or_default()),
            );
            result.insert(
                "FinishTime".into(),
                json!(st.finish_ms.map(iso_time).unwrap_or_default()),
            );
            json!({ "Type": type_name, field: Value::Object(result) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_offsets_take_seconds_and_percentages() {
        assert_eq!(Offset::parse_ext("3.5s"), Some(Offset::Seconds(3.5)));
        assert_eq!(Offset::parse_ext("10%"), Some(Offset::Percent(10.0)));
        assert_eq!(Offset::parse_ext("101%"), None);
        assert_eq!(Offset::parse_ext("-1s"), None);
        assert_eq!(Offset::parse_ext("3.5"), None);
        assert_eq!(Offset::parse_ext("nans"), None);
        assert_eq!(Offset::Percent(50.0).seconds(10.0), 5.0);
    }

    #[test]
    fn subtasks_resolve_templates_and_refuse_unknown_ones() {
        let task = json!({
            "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s", "50%"],
                                             "TimeOffsetSet": [2500]}],
            "CoverBySnapshotTaskSet": [{"Definition": 10, "PositionType": "Percent", "PositionValue": 50}],
        });
        let mut lookup = |kind, def| (def == 10).then(|| super::super::templates::preset(kind));
        let subtasks = parse_subtasks(&task, &mut lookup).unwrap();
        assert_eq!(subtasks.len(), 2);
        match &subtasks[0].work {
            Work::SnapshotByTimeOffset { offsets } => assert_eq!(
                offsets,
                &[
                    Offset::Seconds(1.0),
                    Offset::Percent(50.0),
                    Offset::Seconds(2.5)
                ]
            ),
            other => panic!("{other:?}"),
        }
        let bad = json!({"SampleSnapshotTaskSet": [{"Definition": 7}]});
        let err = parse_subtasks(&bad, &mut lookup).unwrap_err();
        assert_eq!(err.code(), "ResourceNotFound.TemplateNotExist");
        let err = parse_subtasks(&json!({}), &mut lookup).unwrap_err();
        assert_eq!(err.code(), "MissingParameter");
    }
}
