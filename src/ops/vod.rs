//! The VOD API 3.0 dialect of the job core: each action's parameters read
//! into typed requests (serde structs, errors naming the field), the core
//! called, its answer written as VOD's JSON. The transport (TC3 signature,
//! envelope) is `ops::api3`'s; errors map to API 3.0 codes in
//! `crate::error`.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::document::iso_time;
use super::AppState;
use crate::error::Api3Error;
use crate::jobs::events::EventMode;
use crate::jobs::flows::Procedure;
use crate::jobs::store::TaskStatus;
use crate::jobs::task::{
    MediaRef, NotifyMode, Offset, SubtaskRequest, TaskRequest, TaskSpec, TaskState, TaskView,
    UrlMaker, Work,
};
use crate::jobs::templates::{
    BlackFrames, Fill, Format, Kind, SampleType, Template, TemplateFields,
};
use crate::jobs::{JobError, Jobs, TemplateQuery};

/// Every action served, by name (metrics and logs name the others
/// `Api3Other`).
pub const ACTIONS: &[&str] = &[
    "ProcessMedia",
    "ProcessMediaByProcedure",
    "DescribeTaskDetail",
    "DescribeTasks",
    "PullEvents",
    "ConfirmEvents",
    "ModifyEventConfig",
    "DescribeEventConfig",
    "DescribeMediaInfos",
    "CreateProcedureTemplate",
    "DeleteProcedureTemplate",
    "DescribeProcedureTemplates",
    "ApplyUpload",
    "CommitUpload",
    "CreateSnapshotByTimeOffsetTemplate",
    "DescribeSnapshotByTimeOffsetTemplates",
    "ModifySnapshotByTimeOffsetTemplate",
    "DeleteSnapshotByTimeOffsetTemplate",
    "CreateSampleSnapshotTemplate",
    "DescribeSampleSnapshotTemplates",
    "ModifySampleSnapshotTemplate",
    "DeleteSampleSnapshotTemplate",
    "CreateImageSpriteTemplate",
    "DescribeImageSpriteTemplates",
    "ModifyImageSpriteTemplate",
    "DeleteImageSpriteTemplate",
    "CreateAnimatedGraphicsTemplate",
    "DescribeAnimatedGraphicsTemplates",
    "ModifyAnimatedGraphicsTemplate",
    "DeleteAnimatedGraphicsTemplate",
];

/// Most time points one `SnapshotByTimeOffsetTaskSet` entry may ask for.
pub const MAX_TIME_OFFSETS: usize = 1000;

/// Runs one action on its JSON parameters.
pub async fn dispatch(state: &AppState, action: &str, document: &[u8]) -> Result<Value, Api3Error> {
    let jobs = &state.jobs;
    let document = if document.is_empty() {
        b"{}".as_slice()
    } else {
        document
    };
    if let Some((verb, kind)) = template_action(action) {
        return template_call(jobs, verb, kind, document).await;
    }
    let answer = match action {
        "ProcessMedia" => process_media(jobs, parse(document)?).await?,
        "ProcessMediaByProcedure" => process_media_by_procedure(jobs, parse(document)?).await?,
        "DescribeTaskDetail" => describe_task(jobs, parse(document)?).await?,
        "DescribeTasks" => describe_tasks(jobs, parse(document)?).await?,
        "DescribeMediaInfos" => describe_media(jobs, parse(document)?).await?,
        "PullEvents" => pull_events(jobs).await?,
        "ConfirmEvents" => confirm_events(jobs, parse(document)?).await?,
        "ModifyEventConfig" => modify_event_config(jobs, parse(document)?).await?,
        "DescribeEventConfig" => describe_event_config(jobs).await?,
        "CreateProcedureTemplate" => create_procedure(jobs, parse(document)?).await?,
        "DescribeProcedureTemplates" => describe_procedures(jobs, parse(document)?).await?,
        "DeleteProcedureTemplate" => delete_procedure(jobs, parse(document)?).await?,
        "ApplyUpload" => super::vod_upload::apply_upload(state, parse(document)?).await?,
        "CommitUpload" => super::vod_upload::commit_upload(state, parse(document)?).await?,
        _ => {
            return Err(Api3Error::new(
                "InvalidAction",
                format!("The action {action:?} does not exist or is not provided by this gateway."),
            ))
        }
    };
    Ok(answer)
}

/// Reads parameters; a value of the wrong JSON type is an
/// `InvalidParameter` naming its path.
pub(super) fn parse<T: DeserializeOwned>(document: &[u8]) -> Result<T, JobError> {
    let mut reader = serde_json::Deserializer::from_slice(document);
    serde_path_to_error::deserialize(&mut reader).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() || path == "." {
            format!("The body is not a JSON object: {inner}")
        } else {
            format!("{path}: {inner}")
        };
        JobError::InvalidParameter { message }
    })
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, JobError> {
    value.ok_or_else(|| JobError::MissingParameter {
        field: field.to_owned(),
    })
}

// ------------------------------------------------------------- templates

/// What a template action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TemplateVerb {
    Create,
    Describe,
    Modify,
    Delete,
}

/// `Create<Kind>`, `Describe<Kind>s`, `Modify<Kind>`, `Delete<Kind>`.
fn template_action(action: &str) -> Option<(TemplateVerb, Kind)> {
    Kind::ALL
        .into_iter()
        .find_map(|kind| {
            let name = kind.name();
            let verb = match action.strip_suffix(name)? {
                "Create" => TemplateVerb::Create,
                "Modify" => TemplateVerb::Modify,
                "Delete" => TemplateVerb::Delete,
                _ => return None,
            };
            Some((verb, kind))
        })
        .or_else(|| {
            let rest = action.strip_prefix("Describe")?.strip_suffix('s')?;
            let kind = Kind::ALL.into_iter().find(|k| k.name() == rest)?;
            Some((TemplateVerb::Describe, kind))
        })
}

/// `Create`/`Modify` parameters of any template kind.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TemplateParams {
    definition: Option<u64>,
    name: Option<String>,
    comment: Option<String>,
    width: Option<u64>,
    height: Option<u64>,
    resolution_adaptive: Option<String>,
    format: Option<String>,
    fill_type: Option<String>,
    sample_type: Option<String>,
    sample_interval: Option<u64>,
    row_count: Option<u64>,
    column_count: Option<u64>,
    fps: Option<u64>,
    quality: Option<u64>,
    fg_black_frames: Option<String>,
}

impl TemplateParams {
    fn fields(&self) -> Result<TemplateFields, JobError> {
        fn pick<T: Copy>(
            value: &Option<String>,
            field: &str,
            choices: &[(&str, T)],
        ) -> Result<Option<T>, JobError> {
            value
                .as_deref()
                .map(|v| choose(field, v, choices))
                .transpose()
        }
        Ok(TemplateFields {
            name: self.name.clone(),
            comment: self.comment.clone(),
            width: self.width,
            height: self.height,
            resolution_adaptive: pick(
                &self.resolution_adaptive,
                "ResolutionAdaptive",
                &[("open", true), ("close", false)],
            )?,
            format: pick(&self.format, "Format", &FORMATS)?,
            fill: pick(&self.fill_type, "FillType", &FILLS)?,
            sample_type: pick(&self.sample_type, "SampleType", &SAMPLE_TYPES)?,
            sample_interval: self.sample_interval,
            rows: self.row_count,
            columns: self.column_count,
            fps: self.fps,
            quality: self.quality,
            black_frames: pick(&self.fg_black_frames, "FgBlackFrames", &BLACK_FRAMES)?,
        })
    }
}

const FORMATS: [(&str, Format); 4] = [
    ("jpg", Format::Jpg),
    ("png", Format::Png),
    ("webp", Format::Webp),
    ("gif", Format::Gif),
];
const FILLS: [(&str, Fill); 4] = [
    ("stretch", Fill::Stretch),
    ("black", Fill::Black),
    ("white", Fill::White),
    ("gauss", Fill::Gauss),
];
/// `FgBlackFrames`, this gateway's own (namespaced so it never clashes
/// with a field VOD may add).
const BLACK_FRAMES: [(&str, BlackFrames); 2] =
    [("keep", BlackFrames::Keep), ("skip", BlackFrames::Skip)];
const SAMPLE_TYPES: [(&str, SampleType); 2] =
    [("Percent", SampleType::Percent), ("Time", SampleType::Time)];

/// The value of `choices` named `value`, else an error listing them.
fn choose<T: Copy>(field: &str, value: &str, choices: &[(&str, T)]) -> Result<T, JobError> {
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            JobError::invalid(field, format!("must be one of {}", names.join(", ")))
        })
}

/// The wire name of a choice.
fn name_of<T: PartialEq + Copy>(value: T, choices: &[(&'static str, T)]) -> &'static str {
    choices
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(name, _)| *name)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeTemplatesParams {
    definitions: Option<Vec<u64>>,
    r#type: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

async fn template_call(
    jobs: &Jobs,
    verb: TemplateVerb,
    kind: Kind,
    document: &[u8],
) -> Result<Value, Api3Error> {
    let answer = match verb {
        TemplateVerb::Create => {
            let params: TemplateParams = parse(document)?;
            let definition = jobs.create_template(kind, &params.fields()?).await?;
            json!({ "Definition": definition })
        }
        TemplateVerb::Describe => describe_templates(jobs, kind, parse(document)?).await?,
        TemplateVerb::Modify => {
            let params: TemplateParams = parse(document)?;
            let definition = required(params.definition, "Definition")?;
            jobs.modify_template(kind, definition, &params.fields()?)
                .await?;
            json!({})
        }
        TemplateVerb::Delete => {
            let params: TemplateParams = parse(document)?;
            let definition = required(params.definition, "Definition")?;
            jobs.delete_template(kind, definition).await?;
            json!({})
        }
    };
    Ok(answer)
}

async fn describe_templates(
    jobs: &Jobs,
    kind: Kind,
    params: DescribeTemplatesParams,
) -> Result<Value, JobError> {
    let preset = params
        .r#type
        .as_deref()
        .map(|t| choose("Type", t, &[("Preset", true), ("Custom", false)]))
        .transpose()?;
    let limit = params.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(JobError::invalid("Limit", "must be from 1 to 100"));
    }
    let query = TemplateQuery {
        definitions: params.definitions,
        preset,
    };
    let all = jobs.templates(kind, &query).await?;
    let page: Vec<Value> = all
        .iter()
        .skip(params.offset.unwrap_or(0) as usize)
        .take(limit as usize)
        .map(template_json)
        .collect();
    Ok(json!({ "TotalCount": all.len(), format!("{}Set", kind.name()): page }))
}

/// A template as VOD shows it.
fn template_json(t: &Template) -> Value {
    let mut v = Map::new();
    v.insert("Definition".into(), json!(t.definition));
    v.insert(
        "Type".into(),
        json!(if t.preset { "Preset" } else { "Custom" }),
    );
    v.insert("Name".into(), json!(t.name));
    v.insert("Comment".into(), json!(t.comment));
    v.insert("Width".into(), json!(t.width));
    v.insert("Height".into(), json!(t.height));
    v.insert(
        "ResolutionAdaptive".into(),
        json!(if t.resolution_adaptive {
            "open"
        } else {
            "close"
        }),
    );
    v.insert("Format".into(), json!(name_of(t.format, &FORMATS)));
    v.insert("FillType".into(), json!(name_of(t.fill, &FILLS)));
    if let Some(sample_type) = t.sample_type {
        v.insert(
            "SampleType".into(),
            json!(name_of(sample_type, &SAMPLE_TYPES)),
        );
        v.insert("SampleInterval".into(), json!(t.sample_interval));
        v.insert(
            "FgBlackFrames".into(),
            json!(name_of(t.black_frames, &BLACK_FRAMES)),
        );
    }
    if t.kind == Kind::ImageSprite {
        v.insert("RowCount".into(), json!(t.rows));
        v.insert("ColumnCount".into(), json!(t.columns));
    }
    if t.kind == Kind::AnimatedGraphics {
        v.insert("Fps".into(), json!(t.fps));
        v.insert("Quality".into(), json!(t.quality));
    }
    v.insert("CreateTime".into(), json!(iso_time(t.created_ms)));
    v.insert("UpdateTime".into(), json!(iso_time(t.updated_ms)));
    Value::Object(v)
}

// ----------------------------------------------------------------- tasks

/// A `MediaProcessTask`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MediaProcessTask {
    snapshot_by_time_offset_task_set: Option<Vec<TimeOffsetInput>>,
    sample_snapshot_task_set: Option<Vec<DefinitionInput>>,
    image_sprite_task_set: Option<Vec<DefinitionInput>>,
    cover_by_snapshot_task_set: Option<Vec<CoverInput>>,
    animated_graphic_task_set: Option<Vec<AnimatedInput>>,
    transcode_task_set: Option<Vec<IgnoredAny>>,
    adaptive_dynamic_streaming_task_set: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DefinitionInput {
    definition: Option<u64>,
    watermark_set: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TimeOffsetInput {
    definition: Option<u64>,
    ext_time_offset_set: Option<Vec<String>>,
    time_offset_set: Option<Vec<f64>>,
    watermark_set: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CoverInput {
    definition: Option<u64>,
    position_type: Option<String>,
    position_value: Option<f64>,
    watermark_set: Option<Vec<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnimatedInput {
    definition: Option<u64>,
    start_time_offset: Option<f64>,
    end_time_offset: Option<f64>,
}

impl AnimatedInput {
    fn work(&self) -> Result<Work, JobError> {
        let field = |name: &str| format!("AnimatedGraphicTaskSet.{name}");
        let start = required(self.start_time_offset, &field("StartTimeOffset"))?;
        let end = required(self.end_time_offset, &field("EndTimeOffset"))?;
        if !(start.is_finite() && start >= 0.0) {
            return Err(JobError::invalid(
                "StartTimeOffset",
                "must be a number of seconds, at least 0",
            ));
        }
        if !(end.is_finite() && end > start) {
            return Err(JobError::invalid(
                "EndTimeOffset",
                "must be a number of seconds after StartTimeOffset",
            ));
        }
        Ok(Work::AnimatedGraphic { start, end })
    }
}

impl MediaProcessTask {
    /// The subtasks, in VOD's set order.
    fn subtasks(&self) -> Result<Vec<SubtaskRequest>, JobError> {
        for (set, given) in [
            ("TranscodeTaskSet", &self.transcode_task_set),
            (
                "AdaptiveDynamicStreamingTaskSet",
                &self.adaptive_dynamic_streaming_task_set,
            ),
        ] {
            if given.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(JobError::invalid(
                    "MediaProcessTask",
                    format!("{set} is not provided by this gateway; it makes screenshots only"),
                ));
            }
        }
        let mut subtasks = Vec::new();
        for input in self.snapshot_by_time_offset_task_set.iter().flatten() {
            let set = "SnapshotByTimeOffsetTaskSet";
            no_watermarks(set, &input.watermark_set)?;
            subtasks.push(SubtaskRequest {
                definition: definition(set, input.definition)?,
                work: Work::SnapshotByTimeOffset {
                    offsets: time_offsets(input)?,
                },
            });
        }
        for (set, inputs, work) in [
            (
                "SampleSnapshotTaskSet",
                &self.sample_snapshot_task_set,
                Work::SampleSnapshot,
            ),
            (
                "ImageSpriteTaskSet",
                &self.image_sprite_task_set,
                Work::ImageSprite,
            ),
        ] {
            for input in inputs.iter().flatten() {
                no_watermarks(set, &input.watermark_set)?;
                subtasks.push(SubtaskRequest {
                    definition: definition(set, input.definition)?,
                    work: work.clone(),
                });
            }
        }
        for input in self.animated_graphic_task_set.iter().flatten() {
            subtasks.push(SubtaskRequest {
                definition: definition("AnimatedGraphicTaskSet", input.definition)?,
                work: input.work()?,
            });
        }
        for input in self.cover_by_snapshot_task_set.iter().flatten() {
            let set = "CoverBySnapshotTaskSet";
            no_watermarks(set, &input.watermark_set)?;
            subtasks.push(SubtaskRequest {
                definition: definition(set, input.definition)?,
                work: Work::CoverBySnapshot {
                    position: cover_position(input)?,
                },
            });
        }
        Ok(subtasks)
    }
}

fn definition(set: &str, value: Option<u64>) -> Result<u64, JobError> {
    required(value, &format!("{set}.Definition"))
}

fn no_watermarks(set: &str, watermarks: &Option<Vec<IgnoredAny>>) -> Result<(), JobError> {
    if watermarks.as_ref().is_some_and(|w| !w.is_empty()) {
        return Err(JobError::invalid(
            "WatermarkSet",
            format!("{set}: watermarks are not provided by this gateway"),
        ));
    }
    Ok(())
}

/// Parses an `ExtTimeOffsetSet` entry: `3.5s` or `10%`.
fn parse_ext_offset(text: &str) -> Option<Offset> {
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
            _ => true,
        };
    ok.then(|| make(value))
}

fn time_offsets(input: &TimeOffsetInput) -> Result<Vec<Offset>, JobError> {
    let mut offsets = Vec::new();
    for entry in input.ext_time_offset_set.iter().flatten() {
        offsets.push(parse_ext_offset(entry).ok_or_else(|| {
            JobError::invalid(
                "ExtTimeOffsetSet",
                format!("{entry:?} is not a time like \"3.5s\" or a percentage like \"10%\""),
            )
        })?);
    }
    for &ms in input.time_offset_set.iter().flatten() {
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(JobError::invalid(
                "TimeOffsetSet",
                format!("{ms} is not a time in milliseconds"),
            ));
        }
        offsets.push(Offset::Milliseconds(ms));
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

fn cover_position(input: &CoverInput) -> Result<Offset, JobError> {
    let kind = required(
        input.position_type.as_deref(),
        "CoverBySnapshotTaskSet.PositionType",
    )?;
    let value = input.position_value.unwrap_or(0.0);
    match kind {
        "Time" if value >= 0.0 => Ok(Offset::Seconds(value)),
        "Percent" if (0.0..=100.0).contains(&value) => Ok(Offset::Percent(value)),
        "Time" | "Percent" => Err(JobError::invalid(
            "PositionValue",
            "must be at least 0 (seconds) or from 0 to 100 (percent)",
        )),
        _ => Err(JobError::invalid("PositionType", "must be Time or Percent")),
    }
}

/// `ProcessMedia` and `ProcessMediaByProcedure` parameters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessMediaParams {
    file_id: Option<String>,
    media_storage_path: Option<String>,
    media_process_task: Option<MediaProcessTask>,
    procedure_name: Option<String>,
    tasks_priority: Option<i64>,
    tasks_notify_mode: Option<String>,
    session_context: Option<String>,
    session_id: Option<String>,
}

const NOTIFY_MODES: [(&str, NotifyMode); 3] = [
    ("Finish", NotifyMode::Finish),
    ("Change", NotifyMode::Change),
    ("None", NotifyMode::None),
];

impl ProcessMediaParams {
    /// The media and options, with no subtasks yet.
    fn request(&self) -> Result<TaskRequest, JobError> {
        let media = match (&self.file_id, &self.media_storage_path) {
            (Some(id), None) if !id.is_empty() => MediaRef::FileId(id.clone()),
            (None, Some(path)) => MediaRef::Key(path.strip_prefix('/').unwrap_or(path).to_owned()),
            _ => {
                return Err(JobError::InvalidParameter {
                    message: "give exactly one of FileId and MediaStoragePath".into(),
                })
            }
        };
        let notify_mode = match self.tasks_notify_mode.as_deref() {
            None | Some("") => NotifyMode::Finish,
            Some(mode) => choose("TasksNotifyMode", mode, &NOTIFY_MODES)?,
        };
        Ok(TaskRequest {
            priority: self.tasks_priority.unwrap_or(0),
            notify_mode,
            session_context: self.session_context.clone().unwrap_or_default(),
            session_id: self.session_id.clone().unwrap_or_default(),
            ..TaskRequest::new(media, Vec::new())
        })
    }
}

async fn process_media(jobs: &Jobs, params: ProcessMediaParams) -> Result<Value, JobError> {
    let mut request = params.request()?;
    let task = required(params.media_process_task.as_ref(), "MediaProcessTask")?;
    request.subtasks = task.subtasks()?;
    let task_id = jobs.submit(request).await?;
    Ok(json!({ "TaskId": task_id }))
}

async fn process_media_by_procedure(
    jobs: &Jobs,
    params: ProcessMediaParams,
) -> Result<Value, JobError> {
    let name = required(params.procedure_name.as_deref(), "ProcedureName")?;
    let task_id = jobs.submit_procedure(name, params.request()?).await?;
    Ok(json!({ "TaskId": task_id }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskIdParams {
    task_id: Option<String>,
}

async fn describe_task(jobs: &Jobs, params: TaskIdParams) -> Result<Value, JobError> {
    let task_id = required(params.task_id, "TaskId")?;
    let (row, spec, state) = jobs.task(&task_id).await?;
    let view = TaskView {
        row: &row,
        spec: &spec,
        state: &state,
    };
    Ok(json!({
        "TaskType": "Procedure",
        "Status": vod_status(row.status),
        "CreateTime": iso_time(row.created_ms),
        "BeginProcessTime": row.begin_ms.map(iso_time).unwrap_or_default(),
        "FinishTime": row.finish_ms.map(iso_time).unwrap_or_default(),
        "ProcedureTask": procedure_task(&view, jobs),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeTasksParams {
    status: Option<String>,
    file_id: Option<String>,
    limit: Option<u64>,
}

const STATUSES: [(&str, TaskStatus); 4] = [
    ("WAITING", TaskStatus::Waiting),
    ("PROCESSING", TaskStatus::Processing),
    ("FINISH", TaskStatus::Finish),
    ("ABORTED", TaskStatus::Aborted),
];

async fn describe_tasks(jobs: &Jobs, params: DescribeTasksParams) -> Result<Value, JobError> {
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(name) => match STATUSES.iter().find(|(n, _)| *n == name) {
            Some((_, status)) => Some(*status),
            // VOD answers an empty list for a status it does not know.
            None => return Ok(json!({ "TaskSet": [], "ScrollToken": "" })),
        },
    };
    let limit = params.limit.unwrap_or(10).clamp(1, 100) as i64;
    let rows = jobs.tasks(status, params.file_id.as_deref(), limit).await?;
    let set: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "TaskId": r.task_id,
                "Status": vod_status(r.status),
                "FileId": r.file_id,
                "TaskType": "Procedure",
                "CreateTime": iso_time(r.created_ms),
                "BeginProcessTime": r.begin_ms.map(iso_time).unwrap_or_default(),
                "FinishTime": r.finish_ms.map(iso_time).unwrap_or_default(),
                "SessionId": r.session_id.clone().unwrap_or_default(),
            })
        })
        .collect();
    Ok(json!({ "TaskSet": set, "ScrollToken": "" }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeMediaParams {
    file_ids: Option<Vec<String>>,
}

async fn describe_media(jobs: &Jobs, params: DescribeMediaParams) -> Result<Value, JobError> {
    let ids = required(params.file_ids, "FileIds")?;
    if ids.len() > 20 {
        return Err(JobError::invalid(
            "FileIds",
            "at most 20 FileIds per request",
        ));
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        let Some((media, record)) = jobs.media_record(&id).await? else {
            missing.push(id);
            continue;
        };
        let cover = record
            .cover_key
            .as_deref()
            .map(|k| jobs.url(&media.bucket, k))
            .unwrap_or_default();
        found.push(json!({
            "FileId": media.file_id,
            "BasicInfo": {
                "Name": media.key.rsplit('/').next().unwrap_or_default(),
                "MediaUrl": jobs.url(&media.bucket, &media.key),
                "CoverUrl": cover,
                "StoragePath": format!("/{}", media.key),
                "Type": media.key.rsplit('.').next().unwrap_or_default(),
            },
            "MetaData": record.meta.as_ref().map_or(json!({}), |m| json!(m)),
        }));
    }
    Ok(json!({ "MediaInfoSet": found, "NotExistFileIdSet": missing }))
}

/// VOD's name of a task status.
fn vod_status(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Waiting => "WAITING",
        TaskStatus::Processing | TaskStatus::Cancelling => "PROCESSING",
        TaskStatus::Finish | TaskStatus::Cancelled => "FINISH",
        TaskStatus::Aborted => "ABORTED",
    }
}

/// The `ProcedureTask` / `ProcedureStateChangeEvent` object of a task.
fn procedure_task(view: &TaskView<'_>, urls: &dyn UrlMaker) -> Value {
    let TaskView { row, spec, state } = *view;
    let (err_code, message) = state.error();
    json!({
        "TaskId": row.task_id,
        "Status": vod_status(row.status),
        "ErrCode": err_code,
        "Message": message,
        "FileId": spec.file_id,
        "FileName": spec.file_name(),
        "FileUrl": urls.url(&spec.bucket, &spec.key),
        "MetaData": state.meta.as_ref().map_or(json!({}), |m| json!(m)),
        "MediaProcessResultSet": result_set(spec, state, urls),
        "AiContentReviewResultSet": [],
        "AiAnalysisResultSet": [],
        "AiRecognitionResultSet": [],
        "TasksPriority": spec.priority,
        "TasksNotifyMode": spec.notify_mode,
        "SessionContext": spec.session_context,
        "SessionId": spec.session_id,
        "Operator": "",
        "OperationType": "",
    })
}

/// The body of a task's `ProcedureStateChanged` event (installed in the
/// core as its task-event renderer).
pub fn render_task_event(view: &TaskView<'_>, urls: &dyn UrlMaker) -> String {
    json!({
        "EventType": "ProcedureStateChanged",
        "ProcedureStateChangeEvent": procedure_task(view, urls),
    })
    .to_string()
}

/// The VOD `Type` and result field of a subtask.
fn type_names(work: &Work) -> (&'static str, &'static str) {
    match work {
        Work::SnapshotByTimeOffset { .. } => ("SnapshotByTimeOffset", "SnapshotByTimeOffsetTask"),
        Work::SampleSnapshot => ("SampleSnapshot", "SampleSnapshotTask"),
        Work::ImageSprite => ("ImageSprites", "ImageSpriteTask"),
        Work::CoverBySnapshot { .. } => ("CoverBySnapshot", "CoverBySnapshotTask"),
        Work::AnimatedGraphic { .. } => ("AnimatedGraphics", "AnimatedGraphicTask"),
    }
}

/// A subtask's `Input` (and a procedure's task entry), from what it does.
fn subtask_input(work: &Work, definition: u64) -> Value {
    match work {
        Work::SnapshotByTimeOffset { offsets } => {
            let ext: Vec<String> = offsets
                .iter()
                .filter_map(|o| match o {
                    Offset::Seconds(s) => Some(format!("{s}s")),
                    Offset::Percent(p) => Some(format!("{p}%")),
                    Offset::Milliseconds(_) => None,
                })
                .collect();
            let ms: Vec<f64> = offsets
                .iter()
                .filter_map(|o| match o {
                    Offset::Milliseconds(ms) => Some(*ms),
                    _ => None,
                })
                .collect();
            let mut input = json!({ "Definition": definition });
            if !ext.is_empty() {
                input["ExtTimeOffsetSet"] = json!(ext);
            }
            if !ms.is_empty() {
                input["TimeOffsetSet"] = json!(ms);
            }
            input
        }
        Work::SampleSnapshot | Work::ImageSprite => json!({ "Definition": definition }),
        Work::CoverBySnapshot { position } => {
            let (kind, value) = match position {
                Offset::Percent(p) => ("Percent", *p),
                Offset::Seconds(s) => ("Time", *s),
                Offset::Milliseconds(ms) => ("Time", ms / 1000.0),
            };
            json!({ "Definition": definition, "PositionType": kind, "PositionValue": value })
        }
        Work::AnimatedGraphic { start, end } => json!({
            "Definition": definition, "StartTimeOffset": start, "EndTimeOffset": end,
        }),
    }
}

/// The subtask's output as VOD shows it.
fn subtask_output(
    sub: &crate::jobs::task::Subtask,
    st: &crate::jobs::task::SubtaskState,
    url: &dyn Fn(&String) -> String,
) -> Value {
    let definition = sub.template.definition;
    let out = &st.output;
    match &sub.work {
        Work::SnapshotByTimeOffset { .. } => json!({
            "Definition": definition,
            "PicInfoSet": out.images.iter().zip(&out.time_offsets_ms).map(|(k, t)| json!({
                "TimeOffset": t, "Url": url(k), "WaterMarkDefinition": [],
            })).collect::<Vec<_>>(),
        }),
        Work::SampleSnapshot => json!({
            "Definition": definition,
            "SampleType": name_of(sub.template.sample_type.unwrap_or(SampleType::Percent), &SAMPLE_TYPES),
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
        Work::AnimatedGraphic { start, end } => {
            let (w, h) = out.cell.unwrap_or_default();
            let seconds = (end - start).max(1e-3);
            json!({
                "Url": out.images.first().map(url).unwrap_or_default(),
                "Definition": definition,
                "Container": sub.template.format.as_str(),
                "Width": w,
                "Height": h,
                "Bitrate": (out.bytes as f64 * 8.0 / seconds).round() as u64,
                "Size": out.bytes,
                "Md5": "",
                "StartTimeOffset": start,
                "EndTimeOffset": end,
            })
        }
    }
}

/// The `MediaProcessResultSet` of a task.
fn result_set(spec: &TaskSpec, state: &TaskState, urls: &dyn UrlMaker) -> Vec<Value> {
    let url = |key: &String| urls.url(&spec.bucket, key);
    spec.subtasks
        .iter()
        .zip(&state.subtasks)
        .map(|(sub, st)| {
            let (type_name, field) = type_names(&sub.work);
            let result = json!({
                "Status": st.status,
                "ErrCodeExt": st.err_code_ext,
                "ErrCode": st.err_code,
                "Message": st.message,
                "Input": subtask_input(&sub.work, sub.template.definition),
                "Output": subtask_output(sub, st, &url),
                "Progress": st.progress,
                "BeginProcessTime": st.begin_ms.map(iso_time).unwrap_or_default(),
                "FinishTime": st.finish_ms.map(iso_time).unwrap_or_default(),
            });
            json!({ "Type": type_name, field: result })
        })
        .collect()
}

// ---------------------------------------------------------------- events

async fn pull_events(jobs: &Jobs) -> Result<Value, JobError> {
    let set: Vec<Value> = jobs
        .pull_events()
        .await?
        .into_iter()
        .map(|pulled| {
            let mut event: Value = serde_json::from_str(&pulled.body).unwrap_or(json!({}));
            event["EventHandle"] = json!(pulled.handle);
            event
        })
        .collect();
    Ok(json!({ "EventSet": set }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfirmEventsParams {
    event_handles: Option<Vec<String>>,
}

async fn confirm_events(jobs: &Jobs, params: ConfirmEventsParams) -> Result<Value, JobError> {
    let handles = required(params.event_handles, "EventHandles")?;
    jobs.confirm_events(&handles).await?;
    Ok(json!({}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EventConfigParams {
    mode: Option<String>,
    notification_url: Option<String>,
}

const EVENT_MODES: [(&str, EventMode); 2] = [("PUSH", EventMode::Push), ("PULL", EventMode::Pull)];

async fn modify_event_config(jobs: &Jobs, params: EventConfigParams) -> Result<Value, JobError> {
    let mode = params
        .mode
        .as_deref()
        .map(|m| choose("Mode", m, &EVENT_MODES))
        .transpose()?;
    jobs.set_callback_target(mode, params.notification_url)
        .await?;
    Ok(json!({}))
}

async fn describe_event_config(jobs: &Jobs) -> Result<Value, JobError> {
    let target = jobs.callback_target().await?;
    Ok(json!({
        "Mode": name_of(target.mode, &EVENT_MODES),
        "NotificationUrl": target.url,
        "UploadMediaCompleteEventSwitch": "OFF",
        "DeleteMediaCompleteEventSwitch": "OFF",
        "PersistenceCompleteEventSwitch": "OFF",
    }))
}

// ------------------------------------------------------------ procedures

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcedureParams {
    name: Option<String>,
    comment: Option<String>,
    media_process_task: Option<MediaProcessTask>,
}

async fn create_procedure(jobs: &Jobs, params: ProcedureParams) -> Result<Value, JobError> {
    let name = required(params.name, "Name")?;
    let task = required(params.media_process_task, "MediaProcessTask")?;
    jobs.create_procedure(&name, &params.comment.unwrap_or_default(), task.subtasks()?)
        .await?;
    Ok(json!({}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeProceduresParams {
    names: Option<Vec<String>>,
    offset: Option<u64>,
    limit: Option<u64>,
}

async fn describe_procedures(
    jobs: &Jobs,
    params: DescribeProceduresParams,
) -> Result<Value, JobError> {
    let all = jobs.procedures(params.names.as_deref()).await?;
    let limit = params.limit.unwrap_or(10).clamp(1, 100) as usize;
    let set: Vec<Value> = all
        .iter()
        .skip(params.offset.unwrap_or(0) as usize)
        .take(limit)
        .map(|p| {
            json!({
                "Name": p.name, "Type": "Custom", "Comment": p.comment,
                "MediaProcessTask": media_process_task(&p.subtasks),
                "CreateTime": iso_time(p.created_ms),
                "UpdateTime": iso_time(p.updated_ms),
            })
        })
        .collect();
    Ok(json!({ "TotalCount": all.len(), "ProcedureTemplateSet": set }))
}

/// A procedure's subtasks as a `MediaProcessTask`.
fn media_process_task(subtasks: &[SubtaskRequest]) -> Value {
    let mut task = Map::new();
    for sub in subtasks {
        let set = match sub.work {
            Work::SnapshotByTimeOffset { .. } => "SnapshotByTimeOffsetTaskSet",
            Work::SampleSnapshot => "SampleSnapshotTaskSet",
            Work::ImageSprite => "ImageSpriteTaskSet",
            Work::CoverBySnapshot { .. } => "CoverBySnapshotTaskSet",
            Work::AnimatedGraphic { .. } => "AnimatedGraphicTaskSet",
        };
        if let Value::Array(entries) = task.entry(set).or_insert_with(|| json!([])) {
            entries.push(subtask_input(&sub.work, sub.definition));
        }
    }
    Value::Object(task)
}

async fn delete_procedure(jobs: &Jobs, params: ProcedureParams) -> Result<Value, JobError> {
    jobs.delete_procedure(&required(params.name, "Name")?)
        .await?;
    Ok(json!({}))
}

/// A procedure as versions before the typed core stored it: VOD's own
/// parameters.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoredVodProcedure {
    name: String,
    #[serde(default)]
    comment: String,
    media_process_task: MediaProcessTask,
    #[serde(default)]
    create_ms: i64,
    #[serde(default)]
    update_ms: i64,
}

/// At start-up: rewrites the procedures earlier versions stored as VOD
/// JSON in the core's form. Returns how many were rewritten; a row that is
/// neither form is left as it is, with a warning.
pub async fn upgrade_procedures(jobs: &Jobs) -> Result<usize, JobError> {
    let mut upgraded = 0;
    for (name, body) in jobs.stored_procedures().await? {
        if serde_json::from_str::<Procedure>(&body).is_ok() {
            continue;
        }
        let legacy = serde_json::from_str::<StoredVodProcedure>(&body)
            .map_err(|e| e.to_string())
            .and_then(|p| {
                let subtasks = p.media_process_task.subtasks().map_err(|e| e.to_string())?;
                Ok(Procedure {
                    name: p.name,
                    comment: p.comment,
                    subtasks,
                    created_ms: p.create_ms,
                    updated_ms: p.update_ms,
                })
            });
        match legacy {
            Ok(procedure) => {
                jobs.replace_procedure(&procedure).await?;
                upgraded += 1;
            }
            Err(err) => {
                tracing::warn!(procedure = %name, error = %err, "a stored procedure cannot be read")
            }
        }
    }
    Ok(upgraded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_offsets_take_seconds_and_percentages() {
        assert_eq!(parse_ext_offset("3.5s"), Some(Offset::Seconds(3.5)));
        assert_eq!(parse_ext_offset("10%"), Some(Offset::Percent(10.0)));
        assert_eq!(parse_ext_offset("101%"), None);
        assert_eq!(parse_ext_offset("-1s"), None);
        assert_eq!(parse_ext_offset("3.5"), None);
        assert_eq!(parse_ext_offset("nans"), None);
        assert_eq!(Offset::Percent(50.0).seconds(10.0), 5.0);
    }

    fn task(value: Value) -> Result<Vec<SubtaskRequest>, JobError> {
        parse::<MediaProcessTask>(value.to_string().as_bytes())?.subtasks()
    }

    #[test]
    fn media_process_tasks_read_into_subtasks_and_back() {
        let given = json!({
            "SnapshotByTimeOffsetTaskSet": [{"Definition": 10, "ExtTimeOffsetSet": ["1s", "50%"],
                                             "TimeOffsetSet": [2500.0]}],
            "CoverBySnapshotTaskSet": [{"Definition": 10, "PositionType": "Percent",
                                        "PositionValue": 50.0}],
        });
        let subtasks = task(given.clone()).unwrap();
        assert_eq!(
            subtasks[0].work,
            Work::SnapshotByTimeOffset {
                offsets: vec![
                    Offset::Seconds(1.0),
                    Offset::Percent(50.0),
                    Offset::Milliseconds(2500.0)
                ]
            }
        );
        assert_eq!(media_process_task(&subtasks), given);
    }

    #[test]
    fn wrong_types_and_values_name_the_field() {
        let err = task(json!({"SampleSnapshotTaskSet": [{"Definition": "ten"}]})).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        assert!(
            err.to_string()
                .contains("SampleSnapshotTaskSet[0].Definition"),
            "{err}"
        );
        let err = task(json!({"SnapshotByTimeOffsetTaskSet": [{"Definition": 10,
            "ExtTimeOffsetSet": ["soon"]}]}))
        .unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.ExtTimeOffsetSet");
        let err = task(json!({"TranscodeTaskSet": [{"Definition": 10}]})).unwrap_err();
        assert_eq!(err.code(), "InvalidParameterValue.MediaProcessTask");
        let err = task(json!({"ImageSpriteTaskSet": [{}]})).unwrap_err();
        assert_eq!(err.code(), "MissingParameter");
    }

    #[test]
    fn template_actions_are_recognised() {
        assert_eq!(
            template_action("CreateImageSpriteTemplate"),
            Some((TemplateVerb::Create, Kind::ImageSprite))
        );
        assert_eq!(
            template_action("DescribeSampleSnapshotTemplates"),
            Some((TemplateVerb::Describe, Kind::SampleSnapshot))
        );
        assert_eq!(template_action("DescribeSampleSnapshotTemplate"), None);
        assert_eq!(template_action("ProcessMedia"), None);
    }

    #[test]
    fn every_status_has_a_vod_name() {
        let names: Vec<&str> = [
            TaskStatus::Waiting,
            TaskStatus::Cancelling,
            TaskStatus::Cancelled,
            TaskStatus::Aborted,
        ]
        .into_iter()
        .map(vod_status)
        .collect();
        assert_eq!(names, ["WAITING", "PROCESSING", "FINISH", "ABORTED"]);
    }
}
