//! The CI media API (Cloud Infinite's dialect, docs/ci-media-api.md): a
//! thin adapter from its XML requests to the typed job core
//! (`jobs::media_queue`) and from the core's results to its XML (and the
//! JSON of callbacks). Errors are `JobError`s and `ApiError`s, mapped to CI
//! codes in `crate::error`, once.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;

use super::document::iso_time;
use super::document::{media_info_nodes, to_json, write_xml, Node};
use super::Ctx;
use crate::auth::{policy, Principal};
use crate::error::{ApiError, ErrorCode};
use crate::jobs::frame_pick::Duplicates;
use crate::jobs::media_queue::{
    placeholder_settings, JobPage, JobQuery, JobState, JobView, MediaQueue, MediaTemplate, NewJob,
    QueueNotify, TemplateCategory, TemplateQuery, MAX_PAGE,
};
use crate::jobs::snapshot_job::{
    check_range, parse_color, AnimationSettings, BlackCheck, Callback, CallbackFormat, CellFit,
    FailureKind, Mode, OutputTarget, Outputs, SnapshotJob, SnapshotSettings, SpriteLayout,
    MAX_LEVEL, MAX_USER_DATA,
};
use crate::jobs::templates::{FPS_RANGE, MAX_ANIMATION_FRAMES};
use crate::jobs::{JobError, Jobs};
use crate::media::{AnimationFormat, ImageFormat};
use crate::proto::ci_route::{CiCall, CiFlag, CiResource, CiTarget};
use crate::proto::xml::XmlWriter;
use crate::server::body::{self, Response};
use crate::storage::{BodyStream, StorageError};

/// Serves one CI call.
pub async fn handle(
    ctx: &Ctx<'_>,
    call: &CiCall,
    method: &Method,
    request: BodyStream,
) -> Result<Response, ApiError> {
    let resource = match &call.target {
        CiTarget::Served(resource) => *resource,
        CiTarget::Unserved(name) => {
            return Err(ApiError::new(
                ErrorCode::NotImplemented,
                format!("The CI API /{name} is not provided by this gateway."),
            ))
        }
    };
    let id = call.id.as_deref();
    match (resource, method, id) {
        (CiResource::Jobs, &Method::POST, None) => create_job(ctx, request).await,
        (CiResource::Jobs, &Method::GET, Some(ids)) => get_jobs(ctx, ids).await,
        (CiResource::Jobs, &Method::GET, None) => list_jobs(ctx).await,
        (CiResource::Jobs, &Method::PUT, Some(id)) if call.flag == Some(CiFlag::Cancel) => {
            ctx.state
                .jobs
                .cancel_snapshot_job(&ctx.bucket.name, id)
                .await?;
            Ok(xml_ok(empty_response()))
        }
        (CiResource::Template, &Method::POST, None) => create_template(ctx, request).await,
        (CiResource::Template, &Method::PUT, Some(id)) => update_template(ctx, id, request).await,
        (CiResource::Template, &Method::GET, None) => list_templates(ctx).await,
        (CiResource::Template, &Method::DELETE, Some(id)) => {
            ctx.state
                .jobs
                .delete_media_template(&ctx.bucket.name, id)
                .await?;
            let mut doc = XmlWriter::new("Response");
            doc.text("TemplateId", id);
            Ok(xml_ok(doc.finish()))
        }
        (CiResource::Queue, &Method::GET, None) => get_queue(ctx).await,
        (CiResource::Queue, &Method::PUT, Some(id)) => update_queue(ctx, id, request).await,
        (CiResource::MediaBucket, &Method::GET, None) => Ok(media_buckets(ctx)),
        (CiResource::Workflow, ..) => {
            super::ci_workflow::workflow(ctx, call, method, request).await
        }
        (CiResource::TriggerWorkflow, _, None) => super::ci_workflow::trigger(ctx, method).await,
        (CiResource::Snapshot, &Method::POST, None) => save_snapshot(ctx, request).await,
        (CiResource::MediaInfo, &Method::POST, None) => media_info(ctx, request).await,
        (CiResource::WorkflowExecution, ..) => {
            super::ci_workflow::execution(ctx, call, method).await
        }
        _ => Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!(
                "{method} is not allowed on this CI resource{}.",
                id.map(|i| format!(" ({i})")).unwrap_or_default()
            ),
        )),
    }
}

pub(super) fn xml_ok(document: String) -> Response {
    super::object::xml(StatusCode::OK, document)
}

fn empty_response() -> String {
    XmlWriter::new("Response").finish()
}

/// Reads and parses an XML request document.
pub(super) async fn document<T: for<'de> Deserialize<'de>>(
    ctx: &Ctx<'_>,
    request: BodyStream,
) -> Result<T, ApiError> {
    let bytes: Bytes =
        body::read_document(request, ctx.state.config.limits.max_document_bytes).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::new(ErrorCode::MalformedXML, "The request is not UTF-8."))?;
    quick_xml::de::from_str(text).map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedXML,
            format!("The XML you provided was not well-formed or did not validate: {e}"),
        )
    })
}

// ---------------------------------------------------------------- requests

/// `<Request>` of `POST /jobs`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JobRequest {
    tag: Option<String>,
    input: Option<InputXml>,
    operation: Option<OperationXml>,
    queue_id: Option<String>,
    call_back: Option<String>,
    call_back_format: Option<String>,
    call_back_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InputXml {
    object: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OperationXml {
    template_id: Option<String>,
    snapshot: Option<SnapshotXml>,
    smart_cover: Option<SmartCoverXml>,
    animation: Option<AnimationXml>,
    output: Option<OutputXml>,
    user_data: Option<String>,
    job_level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct OutputXml {
    pub(super) region: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) object: Option<String>,
    pub(super) sprite_object: Option<String>,
}

/// The `SmartCover` node.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SmartCoverXml {
    format: Option<String>,
    width: Option<String>,
    height: Option<String>,
    count: Option<String>,
    delete_duplicates: Option<String>,
}

/// The `Animation` node.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnimationXml {
    container: Option<ContainerXml>,
    video: Option<AnimationVideoXml>,
    time_interval: Option<TimeIntervalXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerXml {
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnimationVideoXml {
    codec: Option<String>,
    width: Option<String>,
    height: Option<String>,
    fps: Option<String>,
    animate_only_keep_key_frame: Option<String>,
    animate_time_interval_of_frame: Option<String>,
    animate_frames_per_second: Option<String>,
    quality: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TimeIntervalXml {
    start: Option<String>,
    duration: Option<String>,
}

const ANIMATION_FORMATS: [(&str, AnimationFormat); 2] = [
    ("gif", AnimationFormat::Gif),
    ("webp", AnimationFormat::WebP),
];

/// The typed settings of an `Animation` node: frames from `TimeInterval`
/// (every keyframe, one every `AnimateTimeIntervalOfFrame` seconds, or
/// `AnimateFramesPerSecond` (else `Fps`) a second) played at `Fps`.
fn animation_settings(node: &AnimationXml, field: &str) -> Result<SnapshotSettings, JobError> {
    let f = |name: &str| format!("{field}.{name}");
    let format_text = node.container.as_ref().and_then(|c| c.format.clone());
    let format = one_of(
        &f("Container.Format"),
        &format_text,
        &ANIMATION_FORMATS,
        AnimationFormat::Gif,
    )?;
    let default_video = AnimationVideoXml::default();
    let video = node.video.as_ref().unwrap_or(&default_video);
    let v = |name: &str| f(&format!("Video.{name}"));
    if let Some(codec) = video
        .codec
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        if codec != name_of(&ANIMATION_FORMATS, format) {
            return Err(JobError::invalid(
                &v("Codec"),
                "must be the container's format (gif or webp)",
            ));
        }
    }
    let (low, high) = FPS_RANGE;
    let per_second = number::<f64>(
        &v("AnimateFramesPerSecond"),
        &video.animate_frames_per_second,
    )?;
    let fps = match number::<u32>(&v("Fps"), &video.fps)? {
        Some(fps) => fps,
        None => per_second.map_or(10, |p| p.round().clamp(1.0, f64::from(high)) as u32),
    };
    check_range(&v("Fps"), fps, (low, high))?;
    let quality = number::<u8>(&v("Quality"), &video.quality)?.unwrap_or(75);
    check_range(&v("Quality"), quality, (1, 100))?;
    let step = match (
        number::<f64>(
            &v("AnimateTimeIntervalOfFrame"),
            &video.animate_time_interval_of_frame,
        )?,
        per_second,
    ) {
        (Some(interval), _) => interval,
        (None, Some(p)) if p > 0.0 => 1.0 / p,
        (None, Some(_)) => {
            return Err(JobError::invalid(
                &v("AnimateFramesPerSecond"),
                "must be more than 0",
            ))
        }
        (None, None) => 1.0 / f64::from(fps),
    };
    let default_interval = TimeIntervalXml::default();
    let interval = node.time_interval.as_ref().unwrap_or(&default_interval);
    let start = number::<f64>(&f("TimeInterval.Start"), &interval.start)?.unwrap_or(0.0);
    let duration = number::<f64>(&f("TimeInterval.Duration"), &interval.duration)?;
    if duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        return Err(JobError::invalid(
            &f("TimeInterval.Duration"),
            "must be a number of seconds, more than 0",
        ));
    }
    let keyframes = flag(
        &v("AnimateOnlyKeepKeyFrame"),
        &video.animate_only_keep_key_frame,
    )?;
    let frames = match (keyframes, duration) {
        (false, Some(d)) => (d / step).ceil() as u64,
        _ => MAX_ANIMATION_FRAMES as u64,
    };
    if frames > MAX_ANIMATION_FRAMES as u64 {
        return Err(JobError::invalid(
            &f("TimeInterval.Duration"),
            format!("{frames} frames; an animation has at most {MAX_ANIMATION_FRAMES}"),
        ));
    }
    let settings = SnapshotSettings {
        mode: if keyframes {
            Mode::KeyFrame
        } else {
            Mode::Interval {
                interval: Some(step),
                fill_count: false,
            }
        },
        start,
        count: frames.max(1),
        width: number(&v("Width"), &video.width)?.unwrap_or(0),
        height: number(&v("Height"), &video.height)?.unwrap_or(0),
        black: None,
        outputs: Outputs::Animation,
        sprite: None,
        animation: Some(AnimationSettings {
            format,
            fps,
            quality,
            end: duration.map_or(f64::MAX, |d| start + d),
        }),
    };
    settings.validate(field)?;
    Ok(settings)
}

/// Most pictures one `SmartCover` job chooses.
const MAX_SMART_COVERS: u64 = 10;

/// The `Snapshot` node.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnapshotXml {
    mode: Option<String>,
    start: Option<String>,
    time_interval: Option<String>,
    count: Option<String>,
    width: Option<String>,
    height: Option<String>,
    is_check_count: Option<String>,
    is_check_black: Option<String>,
    black_level: Option<String>,
    pixel_black_threshold: Option<String>,
    snapshot_out_mode: Option<String>,
    sprite_snapshot_config: Option<SpriteXml>,
    #[serde(rename = "CIParam")]
    ci_param: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SpriteXml {
    cell_width: Option<String>,
    cell_height: Option<String>,
    padding: Option<String>,
    margin: Option<String>,
    color: Option<String>,
    columns: Option<String>,
    lines: Option<String>,
    scale_method: Option<String>,
}

/// `<Request>` of the template calls.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TemplateRequest {
    tag: Option<String>,
    name: Option<String>,
    snapshot: Option<SnapshotXml>,
}

/// `<Request>` of `PUT /queue/<id>`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QueueRequest {
    name: Option<String>,
    state: Option<String>,
    notify_config: Option<NotifyXml>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct NotifyXml {
    pub(super) url: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    event: Option<String>,
    result_format: Option<String>,
    state: Option<String>,
}

// ------------------------------------------------------ values and ranges

pub(super) fn missing(field: &str) -> JobError {
    JobError::MissingParameter {
        field: field.to_owned(),
    }
}

/// A required text field.
pub(super) fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, JobError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(missing(field)),
    }
}

/// An optional number, named `field` in errors.
fn number<T: std::str::FromStr>(
    field: &str,
    value: &Option<String>,
) -> Result<Option<T>, JobError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            JobError::invalid(field, format!("{text:?} is not a number of the right kind"))
        }),
    }
}

/// An optional `true`/`false`.
fn flag(field: &str, value: &Option<String>) -> Result<bool, JobError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(JobError::invalid(
            field,
            format!("{v:?} is not true or false"),
        )),
    }
}

/// One of `names` (exact), or `default` when absent.
pub(super) fn one_of<T: Copy>(
    field: &str,
    value: &Option<String>,
    names: &[(&str, T)],
    default: T,
) -> Result<T, JobError> {
    let Some(text) = value.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(default);
    };
    names
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let all: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            JobError::invalid(field, format!("{text:?} is not one of {}", all.join(", ")))
        })
}

/// `FgSceneChange` is this gateway's own (namespaced so it never clashes
/// with a mode CI may add): the `Count` frames where the picture changes
/// most, near-duplicates dropped, for sprites (`Tag=SmartCover` gives them
/// as pictures).
const MODES: [(&str, ModeName); 4] = [
    ("Interval", ModeName::Interval),
    ("Average", ModeName::Average),
    ("KeyFrame", ModeName::KeyFrame),
    ("FgSceneChange", ModeName::SceneChange),
];

#[derive(Debug, Clone, Copy)]
enum ModeName {
    Interval,
    Average,
    KeyFrame,
    SceneChange,
}

const OUT_MODES: [(&str, Outputs); 3] = [
    ("OnlySnapshot", Outputs::Pictures),
    ("OnlySprite", Outputs::Sprites),
    ("SnapshotAndSprite", Outputs::PicturesAndSprites),
];

const SCALE_METHODS: [(&str, CellFit); 3] = [
    ("DirectScale", CellFit::Stretch),
    ("MaxWHScaleAndPad", CellFit::FitAndPad),
    ("MaxWHScale", CellFit::Fit),
];

pub(super) const FORMATS: [(&str, CallbackFormat); 2] =
    [("XML", CallbackFormat::Xml), ("JSON", CallbackFormat::Json)];

pub(super) fn name_of<T: PartialEq + Copy>(names: &[(&'static str, T)], value: T) -> &'static str {
    names
        .iter()
        .find(|(_, v)| *v == value)
        .map(|(n, _)| *n)
        .unwrap_or_default()
}

/// The typed settings of a `Snapshot` node; `field` names it in errors.
fn snapshot_settings(node: &SnapshotXml, field: &str) -> Result<SnapshotSettings, JobError> {
    let f = |name: &str| format!("{field}.{name}");
    if node
        .ci_param
        .as_deref()
        .is_some_and(|p| !p.trim().is_empty())
    {
        return Err(JobError::invalid(
            &f("CIParam"),
            "image processing of snapshot pictures is not supported by this gateway",
        ));
    }
    let count = number::<u64>(&f("Count"), &node.count)?.ok_or_else(|| missing(&f("Count")))?;
    let interval = number::<f64>(&f("TimeInterval"), &node.time_interval)?;
    let mode = match one_of(&f("Mode"), &node.mode, &MODES, ModeName::Interval)? {
        ModeName::Interval => Mode::Interval {
            interval,
            fill_count: flag(&f("IsCheckCount"), &node.is_check_count)?,
        },
        ModeName::Average => Mode::Average,
        ModeName::KeyFrame => Mode::KeyFrame,
        ModeName::SceneChange => Mode::SceneChange {
            duplicates: Duplicates::Delete,
        },
    };
    let black = if flag(&f("IsCheckBlack"), &node.is_check_black)? {
        let level =
            number::<u8>(&f("BlackLevel"), &node.black_level)?.unwrap_or(BlackCheck::DEFAULT_LEVEL);
        let pixel_threshold = number::<u8>(&f("PixelBlackThreshold"), &node.pixel_black_threshold)?
            .unwrap_or(BlackCheck::DEFAULT_PIXEL_THRESHOLD);
        check_range(&f("BlackLevel"), level, (30, 100))?;
        Some(BlackCheck {
            level,
            pixel_threshold,
        })
    } else {
        None
    };
    let outputs = one_of(
        &f("SnapshotOutMode"),
        &node.snapshot_out_mode,
        &OUT_MODES,
        Outputs::Pictures,
    )?;
    let start = number(&f("Start"), &node.start)?.unwrap_or(0.0);
    if matches!(mode, Mode::SceneChange { .. }) && start != 0.0 {
        return Err(JobError::invalid(
            &f("Start"),
            "FgSceneChange looks at the whole video; leave Start out or 0",
        ));
    }
    if matches!(mode, Mode::SceneChange { .. }) && outputs == Outputs::Pictures {
        return Err(JobError::invalid(
            &f("SnapshotOutMode"),
            "FgSceneChange makes sprites (OnlySprite or SnapshotAndSprite); \
             Tag=SmartCover gives scene changes as pictures",
        ));
    }
    let sprite = match (&node.sprite_snapshot_config, outputs.sprites()) {
        (Some(config), true) => Some(sprite_layout(config, &f("SpriteSnapshotConfig"))?),
        _ => None,
    };
    let settings = SnapshotSettings {
        mode,
        start,
        count,
        width: number(&f("Width"), &node.width)?.unwrap_or(0),
        height: number(&f("Height"), &node.height)?.unwrap_or(0),
        black,
        outputs,
        sprite,
        animation: None,
    };
    settings.validate(field)?;
    Ok(settings)
}

fn sprite_layout(node: &SpriteXml, field: &str) -> Result<SpriteLayout, JobError> {
    let f = |name: &str| format!("{field}.{name}");
    let color_text = required(&f("Color"), &node.color)?;
    let color = parse_color(color_text).ok_or_else(|| {
        JobError::invalid(
            &f("Color"),
            format!("{color_text:?} is not a colour name or #RRGGBB"),
        )
    })?;
    let layout = SpriteLayout {
        cell_width: number(&f("CellWidth"), &node.cell_width)?.unwrap_or(0),
        cell_height: number(&f("CellHeight"), &node.cell_height)?.unwrap_or(0),
        padding: number(&f("Padding"), &node.padding)?.unwrap_or(0),
        margin: number(&f("Margin"), &node.margin)?.unwrap_or(0),
        color,
        columns: number(&f("Columns"), &node.columns)?.ok_or_else(|| missing(&f("Columns")))?,
        lines: number(&f("Lines"), &node.lines)?.ok_or_else(|| missing(&f("Lines")))?,
        fit: one_of(
            &f("ScaleMethod"),
            &node.scale_method,
            &SCALE_METHODS,
            CellFit::Stretch,
        )?,
    };
    layout.validate(field)?;
    Ok(layout)
}

/// The job tags this gateway runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobTag {
    Snapshot,
    SmartCover,
    Animation,
}

const TAGS: [(&str, JobTag); 3] = [
    ("Snapshot", JobTag::Snapshot),
    ("SmartCover", JobTag::SmartCover),
    ("Animation", JobTag::Animation),
];

fn job_tag(tag: &Option<String>) -> Result<JobTag, JobError> {
    let name = required("Tag", tag)?;
    TAGS.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            JobError::invalid(
                "Tag",
                format!(
                    "{name:?} is not supported; this gateway runs Snapshot and SmartCover jobs"
                ),
            )
        })
}

/// The tag a job's settings were made from.
fn tag_of(settings: &SnapshotSettings) -> JobTag {
    match (settings.mode, settings.outputs) {
        (Mode::SceneChange { .. }, Outputs::Pictures) => JobTag::SmartCover,
        (_, Outputs::Animation) => JobTag::Animation,
        _ => JobTag::Snapshot,
    }
}

/// The typed settings of a `SmartCover` node: the `Count` frames where the
/// picture changes most, as pictures.
fn smart_cover_settings(
    node: &SmartCoverXml,
    field: &str,
    output: &Option<String>,
) -> Result<SnapshotSettings, JobError> {
    let f = |name: &str| format!("{field}.{name}");
    let count = number::<u64>(&f("Count"), &node.count)?.unwrap_or(1);
    check_range(&f("Count"), count, (1, MAX_SMART_COVERS))?;
    let duplicates = if flag(&f("DeleteDuplicates"), &node.delete_duplicates)? {
        Duplicates::Delete
    } else {
        Duplicates::Keep
    };
    if let Some(format) = node
        .format
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        let wanted = ImageFormat::from_name(format)
            .ok_or_else(|| JobError::invalid(&f("Format"), "must be jpg, png, webp or avif"))?;
        let named = output
            .as_deref()
            .and_then(|o| o.rsplit_once('.'))
            .and_then(|(_, ext)| ImageFormat::from_name(ext));
        if named.is_some_and(|n| n != wanted) {
            return Err(JobError::invalid(
                &f("Format"),
                "differs from the extension of Operation.Output.Object",
            ));
        }
    }
    let settings = SnapshotSettings {
        mode: Mode::SceneChange { duplicates },
        start: 0.0,
        count,
        width: number(&f("Width"), &node.width)?.unwrap_or(0),
        height: number(&f("Height"), &node.height)?.unwrap_or(0),
        black: None,
        outputs: Outputs::Pictures,
        sprite: None,
        animation: None,
    };
    settings.validate(field)?;
    Ok(settings)
}

fn callback(request: &JobRequest) -> Result<Option<Callback>, JobError> {
    match request.call_back_type.as_deref().map(str::trim) {
        None | Some("") | Some("Url") => {}
        Some(other) => {
            return Err(JobError::invalid(
                "CallBackType",
                format!("{other:?} is not supported; use Url"),
            ))
        }
    }
    let format = one_of(
        "CallBackFormat",
        &request.call_back_format,
        &FORMATS,
        CallbackFormat::Xml,
    )?;
    let Some(url) = request
        .call_back
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    check_url("CallBack", url)?;
    Ok(Some(Callback {
        url: url.to_owned(),
        format,
    }))
}

pub(super) fn check_url(field: &str, url: &str) -> Result<(), JobError> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        _ => Err(JobError::invalid(
            field,
            format!("{url:?} is not an http(s) URL"),
        )),
    }
}

// -------------------------------------------------------------------- jobs

async fn create_job(ctx: &Ctx<'_>, request: BodyStream) -> Result<Response, ApiError> {
    let request: JobRequest = document(ctx, request).await?;
    let new = new_job(ctx, &request)?;
    check_input(ctx, &new.job.key, "Input.Object").await?;
    check_output(ctx, &new.job.output, "Operation.Output")?;
    let view = ctx.state.jobs.submit_snapshot_job(new).await?;
    Ok(xml_ok(jobs_document(&[view], &[], None)))
}

/// The typed job of a request (templates are resolved by the core).
fn new_job(ctx: &Ctx<'_>, request: &JobRequest) -> Result<NewJob, JobError> {
    let tag = job_tag(&request.tag)?;
    let key = required(
        "Input.Object",
        &request.input.as_ref().and_then(|i| i.object.clone()),
    )?
    .trim_start_matches('/')
    .to_owned();
    let default_op = OperationXml::default();
    let op = request.operation.as_ref().unwrap_or(&default_op);
    let template_id = op.template_id.clone().filter(|t| !t.trim().is_empty());
    let default_out = OutputXml::default();
    let out = op.output.as_ref().unwrap_or(&default_out);
    let settings = match (tag, &op.snapshot, &template_id) {
        (JobTag::SmartCover | JobTag::Animation, _, Some(_)) => {
            return Err(JobError::invalid(
                "Operation.TemplateId",
                "SmartCover and Animation jobs take their settings inline",
            ))
        }
        (JobTag::Animation, _, None) => animation_settings(
            op.animation
                .as_ref()
                .ok_or_else(|| missing("Operation.Animation"))?,
            "Operation.Animation",
        )?,
        (JobTag::SmartCover, _, None) => smart_cover_settings(
            op.smart_cover
                .as_ref()
                .ok_or_else(|| missing("Operation.SmartCover"))?,
            "Operation.SmartCover",
            &out.object,
        )?,
        (JobTag::Snapshot, Some(node), None) => snapshot_settings(node, "Operation.Snapshot")?,
        (JobTag::Snapshot, None, Some(_)) => placeholder_settings(),
        (JobTag::Snapshot, Some(_), Some(_)) => {
            return Err(JobError::invalid(
                "Operation.TemplateId",
                "give either TemplateId or Snapshot, not both",
            ))
        }
        (JobTag::Snapshot, None, None) => return Err(missing("Operation.Snapshot")),
    };
    let output = OutputTarget {
        bucket: required("Operation.Output.Bucket", &out.bucket)?.to_owned(),
        region: required("Operation.Output.Region", &out.region)?.to_owned(),
        pictures: out
            .object
            .clone()
            .map(|o| o.trim_start_matches('/').to_owned()),
        sprites: out
            .sprite_object
            .clone()
            .map(|o| o.trim_start_matches('/').to_owned()),
    };
    let user_data = op.user_data.clone().unwrap_or_default();
    if user_data.len() > MAX_USER_DATA {
        return Err(JobError::invalid(
            "Operation.UserData",
            format!("is longer than {MAX_USER_DATA} bytes"),
        ));
    }
    let level = number::<i64>("Operation.JobLevel", &op.job_level)?.unwrap_or(0);
    check_range("Operation.JobLevel", level, (0, MAX_LEVEL))?;
    let queue_id = match request.queue_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => Jobs::queue_id_of(&ctx.bucket.name),
    };
    Ok(NewJob {
        job: SnapshotJob {
            bucket: ctx.bucket.name.clone(),
            key,
            settings,
            output,
            template: None,
            user_data,
            level,
            queue_id,
            callback: callback(request)?,
        },
        template_id,
        dedupe: None,
    })
}

/// Checks that the input object exists; `field` names it in errors.
pub(super) async fn check_input(ctx: &Ctx<'_>, key: &str, field: &str) -> Result<(), ApiError> {
    match ctx.bucket.head(key).await {
        Ok(_) => Ok(()),
        Err(StorageError::NoSuchKey) => Err(no_input(key, field)),
        Err(err) => Err(err.into()),
    }
}

/// Checks that the output bucket exists and the caller may write the
/// outputs there; `field` names the `Output` node in errors. Returns the
/// bucket.
pub(super) fn check_output<'s>(
    ctx: &Ctx<'s>,
    output: &OutputTarget,
    field: &str,
) -> Result<&'s std::sync::Arc<crate::storage::Bucket>, ApiError> {
    let bucket = ctx.state.buckets.get(&output.bucket).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NoSuchBucket,
            format!("{field}.Bucket: there is no bucket {:?}.", output.bucket),
        )
    })?;
    check_writable(ctx, bucket, output, field)?;
    Ok(bucket)
}

/// Checks that the caller may write the job's outputs.
fn check_writable(
    ctx: &Ctx<'_>,
    bucket: &crate::storage::Bucket,
    output: &OutputTarget,
    field: &str,
) -> Result<(), ApiError> {
    let allowed = match ctx.principal {
        Principal::Key(id) => ctx.state.credentials.get(id).is_some_and(|credential| {
            [&output.pictures, &output.sprites]
                .into_iter()
                .flatten()
                .all(|pattern| {
                    let resource = format!("{}/{}", bucket.name, OutputTarget::prefix(pattern));
                    policy::allows(&credential.allow, "cos:PutObject", &resource)
                })
        }),
        Principal::Temporary(_) | Principal::Anonymous => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::AccessDenied,
            format!(
                "{field}: this credential may not write to the bucket {}.",
                bucket.name
            ),
        ))
    }
}

async fn get_jobs(ctx: &Ctx<'_>, ids: &str) -> Result<Response, ApiError> {
    let ids: Vec<String> = ids
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() || ids.len() > MAX_PAGE {
        return Err(ApiError::invalid_argument(format!(
            "jobIds: give 1 to {MAX_PAGE} job ids."
        )));
    }
    let (found, missing) = ctx.state.jobs.snapshot_jobs(&ctx.bucket.name, &ids).await?;
    Ok(xml_ok(jobs_document(&found, &missing, None)))
}

async fn list_jobs(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let q = &ctx.route.query;
    let tag = job_tag(&q.get("tag").map(str::to_owned))
        .map_err(|_| ApiError::invalid_argument("tag: give Snapshot or SmartCover."))?;
    let queue = Jobs::queue_id_of(&ctx.bucket.name);
    if let Some(id) = q.get("queueId").filter(|i| !i.is_empty()) {
        if id != queue {
            return Err(ApiError::new(
                ErrorCode::NoSuchQueue,
                format!("queueId: the bucket has no queue {id:?}."),
            ));
        }
    }
    let states = job_states(q.get("states").unwrap_or_default())?;
    let ascending = oldest_first(q)?;
    let size = page_param(q.get("size"), "size", MAX_PAGE, 10)?;
    let query = JobQuery {
        states,
        since_ms: time_param(q.get("startCreationTime"), "startCreationTime")?,
        until_ms: time_param(q.get("endCreationTime"), "endCreationTime")?,
        ascending,
        size,
        next_token: q.get("nextToken").unwrap_or_default().to_owned(),
    };
    let page: JobPage = ctx
        .state
        .jobs
        .list_snapshot_jobs(&ctx.bucket.name, &query)
        .await?;
    // Both tags share the queue: a page holds the jobs of the tag asked
    // for among `size` jobs, so it may be short.
    let jobs: Vec<JobView> = page
        .jobs
        .into_iter()
        .filter(|view| tag_of(&view.job.settings) == tag)
        .collect();
    Ok(xml_ok(jobs_document(&jobs, &[], Some(&page.next_token))))
}

const STATES: [(&str, Option<JobState>); 7] = [
    ("All", None),
    ("Submitted", Some(JobState::Submitted)),
    ("Running", Some(JobState::Running)),
    ("Success", Some(JobState::Success)),
    ("Failed", Some(JobState::Failed)),
    ("Pause", Some(JobState::Submitted)),
    ("Cancel", Some(JobState::Cancel)),
];

/// The states of a `states` list (`All` or empty: every state).
fn job_states(list: &str) -> Result<Vec<JobState>, ApiError> {
    let mut states = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match STATES.iter().find(|(n, _)| *n == name) {
            Some((_, None)) => return Ok(Vec::new()),
            Some((_, Some(state))) => states.push(*state),
            None => {
                return Err(ApiError::invalid_argument(format!(
                    "states: {name:?} is not one of All, Submitted, Running, Success, Failed, Pause, Cancel."
                )))
            }
        }
    }
    Ok(states)
}

/// An ISO 8601 time with zone, as unix ms.
fn time_param(value: Option<&str>, field: &str) -> Result<Option<i64>, ApiError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .map(|t| Some(t.timestamp_millis()))
        .map_err(|_| {
            ApiError::invalid_argument(format!(
                "{field}: {text:?} is not an ISO 8601 time with a zone."
            ))
        })
}

// ------------------------------------------------- synchronous media calls

/// `<Request>` of `POST /snapshot` (GenerateSnapshot).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SnapshotRequest {
    input: Option<InputXml>,
    time: Option<String>,
    width: Option<String>,
    height: Option<String>,
    mode: Option<String>,
    rotate: Option<String>,
    format: Option<String>,
    output: Option<OutputXml>,
}

/// `POST /snapshot`: the frame `?ci-process=snapshot` would answer, saved
/// as an object (the parameters and their ranges are the query's).
async fn save_snapshot(ctx: &Ctx<'_>, request: BodyStream) -> Result<Response, ApiError> {
    let request: SnapshotRequest = document(ctx, request).await?;
    let key = input_key(&request.input)?;
    let params = crate::proto::snapshot::parse_with(|name| match name {
        "time" => request.time.as_deref(),
        "width" => request.width.as_deref(),
        "height" => request.height.as_deref(),
        "mode" => request.mode.as_deref(),
        "rotate" => request.rotate.as_deref(),
        "format" => request.format.as_deref(),
        _ => None,
    })?;
    let out = request.output.as_ref().ok_or_else(|| missing("Output"))?;
    let output = OutputTarget {
        bucket: required("Output.Bucket", &out.bucket)?.to_owned(),
        region: required("Output.Region", &out.region)?.to_owned(),
        pictures: Some(
            required("Output.Object", &out.object)?
                .trim_start_matches('/')
                .to_owned(),
        ),
        sprites: None,
    };
    let name = output.pictures.clone().unwrap_or_default();
    crate::proto::route::validate_key(&name)
        .map_err(|e| ApiError::invalid_argument(format!("Output.Object: {e}")))?;
    let bucket = check_output(ctx, &output, "Output")?;
    let info = match ctx.bucket.head(&key).await {
        Err(StorageError::NoSuchKey) => return Err(no_input(&key, "Input.Object")),
        other => other?,
    };
    let image = super::media::decode_snapshot(ctx, &key, &info, params).await?;
    bucket
        .put_bytes(&name, image.bytes, image.content_type)
        .await?;
    let mut doc = XmlWriter::new("Response");
    doc.open("Output")
        .text("Region", &output.region)
        .text("Bucket", &output.bucket)
        .text("Object", &name)
        .close();
    Ok(xml_ok(doc.finish()))
}

/// `<Request>` of `POST /mediainfo` (GenerateMediaInfo).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MediaInfoRequest {
    input: Option<InputXml>,
}

/// `POST /mediainfo`: the document `?ci-process=videoinfo` answers.
async fn media_info(ctx: &Ctx<'_>, request: BodyStream) -> Result<Response, ApiError> {
    let request: MediaInfoRequest = document(ctx, request).await?;
    let key = input_key(&request.input)?;
    check_input(ctx, &key, "Input.Object").await?;
    let info = super::media::describe(ctx, &key).await?;
    Ok(xml_ok(super::media::media_info_document(&info, false).1))
}

/// `Input.Object`, without a leading `/`.
fn input_key(input: &Option<InputXml>) -> Result<String, JobError> {
    let object = input.as_ref().and_then(|i| i.object.clone());
    Ok(required("Input.Object", &object)?
        .trim_start_matches('/')
        .to_owned())
}

fn no_input(key: &str, field: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NoSuchKey,
        format!("{field}: the object {key:?} does not exist."),
    )
}

// ---------------------------------------------------------------- templates

async fn create_template(ctx: &Ctx<'_>, request: BodyStream) -> Result<Response, ApiError> {
    let request: TemplateRequest = document(ctx, request).await?;
    let (name, settings) = template_fields(&request)?;
    let template = ctx
        .state
        .jobs
        .create_media_template(&ctx.bucket.name, &name, settings)
        .await?;
    Ok(xml_ok(template_document(ctx, &template)))
}

async fn update_template(
    ctx: &Ctx<'_>,
    id: &str,
    request: BodyStream,
) -> Result<Response, ApiError> {
    let request: TemplateRequest = document(ctx, request).await?;
    let (name, settings) = template_fields(&request)?;
    let template = ctx
        .state
        .jobs
        .update_media_template(&ctx.bucket.name, id, &name, settings)
        .await?;
    Ok(xml_ok(template_document(ctx, &template)))
}

fn template_fields(request: &TemplateRequest) -> Result<(String, SnapshotSettings), JobError> {
    if job_tag(&request.tag)? != JobTag::Snapshot {
        return Err(JobError::invalid(
            "Tag",
            "templates are Snapshot templates; SmartCover jobs give their settings inline",
        ));
    }
    let name = required("Name", &request.name)?.to_owned();
    let node = request
        .snapshot
        .as_ref()
        .ok_or_else(|| missing("Snapshot"))?;
    Ok((name, snapshot_settings(node, "Snapshot")?))
}

async fn list_templates(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let q = &ctx.route.query;
    let category = match q.get("category").unwrap_or("Custom") {
        "" | "Custom" => TemplateCategory::Custom,
        "Official" => TemplateCategory::Official,
        other => {
            return Err(ApiError::invalid_argument(format!(
                "category: {other:?} is not Custom or Official."
            )))
        }
    };
    let page_number = page_param(q.get("pageNumber"), "pageNumber", usize::MAX, 1)?;
    let page_size = page_param(q.get("pageSize"), "pageSize", MAX_PAGE, 10)?;
    let query = TemplateQuery {
        category,
        ids: q
            .get("ids")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .map(str::to_owned)
            .collect(),
        name: q.get("name").filter(|n| !n.is_empty()).map(str::to_owned),
        page_number,
        page_size,
    };
    let page = ctx
        .state
        .jobs
        .media_templates(&ctx.bucket.name, &query)
        .await?;
    let mut doc = XmlWriter::new("Response");
    doc.text("TotalCount", page.total.to_string())
        .text("PageNumber", page_number.to_string())
        .text("PageSize", page_size.to_string());
    for template in &page.templates {
        doc.open("TemplateList");
        template_fields_xml(ctx, &mut doc, template);
        doc.close();
    }
    Ok(xml_ok(doc.finish()))
}

/// `orderByTime`: `Desc` (the default) or `Asc`; whether oldest first.
pub(super) fn oldest_first(q: &crate::proto::query::Query) -> Result<bool, ApiError> {
    match q.get("orderByTime").unwrap_or("Desc") {
        "" | "Desc" => Ok(false),
        "Asc" => Ok(true),
        other => Err(ApiError::invalid_argument(format!(
            "orderByTime: {other:?} is not Desc or Asc."
        ))),
    }
}

/// A page number or size from 1 to `max`, `default` when absent.
pub(super) fn page_param(
    value: Option<&str>,
    field: &str,
    max: usize,
    default: usize,
) -> Result<usize, ApiError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_argument(format!("{field}: {text:?} must be from 1 to {max}."))
            }),
    }
}

fn template_document(ctx: &Ctx<'_>, template: &MediaTemplate) -> String {
    let mut doc = XmlWriter::new("Response");
    doc.open("Template");
    template_fields_xml(ctx, &mut doc, template);
    doc.close();
    doc.finish()
}

fn template_fields_xml(ctx: &Ctx<'_>, doc: &mut XmlWriter, template: &MediaTemplate) {
    doc.text("TemplateId", &template.id)
        .text("Name", &template.name)
        .text("Tag", "Snapshot")
        .text(
            "Category",
            if template.official {
                "Official"
            } else {
                "Custom"
            },
        )
        .text("State", "Normal")
        .text("BucketId", &ctx.bucket.name)
        .text("CreateTime", iso_time(template.created_ms))
        .text("UpdateTime", iso_time(template.updated_ms));
    let mut nodes = Vec::new();
    snapshot_nodes(&template.settings, &mut nodes);
    write_xml(doc, &[Node::branch("Snapshot", nodes)]);
}

// ------------------------------------------------------------ queue, bucket

async fn get_queue(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let queue = ctx.state.jobs.media_queue(&ctx.bucket.name).await?;
    let q = &ctx.route.query;
    let wanted = q
        .get("queueIds")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .all(|i| i == queue.id);
    let state_ok = match q.get("state").unwrap_or("All") {
        "" | "All" => true,
        "Active" => !queue.paused,
        "Paused" => queue.paused,
        other => {
            return Err(ApiError::invalid_argument(format!(
                "state: {other:?} is not All, Active or Paused."
            )))
        }
    };
    let mut doc = XmlWriter::new("Response");
    let shown = wanted && state_ok;
    doc.text("TotalCount", if shown { "1" } else { "0" })
        .text("PageNumber", "1")
        .text("PageSize", "10");
    if shown {
        doc.open("QueueList");
        queue_fields(&mut doc, &queue);
        doc.close();
    }
    Ok(xml_ok(doc.finish()))
}

async fn update_queue(ctx: &Ctx<'_>, id: &str, request: BodyStream) -> Result<Response, ApiError> {
    let request: QueueRequest = document(ctx, request).await?;
    let paused = match request.state.as_deref().map(str::trim) {
        None | Some("") => None,
        Some("Active") => Some(false),
        Some("Paused") => Some(true),
        Some(other) => {
            return Err(
                JobError::invalid("State", format!("{other:?} is not Active or Paused")).into(),
            )
        }
    };
    let notify = match &request.notify_config {
        Some(n) => Some(queue_notify(n)?),
        None => None,
    };
    let name = request.name.clone().filter(|n| !n.trim().is_empty());
    let queue = ctx
        .state
        .jobs
        .update_media_queue(&ctx.bucket.name, id, move |queue| {
            if let Some(name) = name {
                queue.settings.name = name;
            }
            if let Some(paused) = paused {
                queue.paused = paused;
            }
            if let Some(notify) = notify {
                queue.settings.notify = Some(notify);
            }
        })
        .await?;
    let mut doc = XmlWriter::new("Response");
    doc.open("Queue");
    queue_fields(&mut doc, &queue);
    doc.close();
    Ok(xml_ok(doc.finish()))
}

pub(super) fn queue_notify(node: &NotifyXml) -> Result<QueueNotify, JobError> {
    match node.kind.as_deref().map(str::trim) {
        None | Some("") | Some("Url") => {}
        Some(other) => {
            return Err(JobError::invalid(
                "NotifyConfig.Type",
                format!("{other:?} is not supported; use Url"),
            ))
        }
    }
    let enabled = match node.state.as_deref().map(str::trim) {
        None | Some("") | Some("On") => true,
        Some("Off") => false,
        Some(other) => {
            return Err(JobError::invalid(
                "NotifyConfig.State",
                format!("{other:?} is not On or Off"),
            ))
        }
    };
    let url = node.url.clone().unwrap_or_default().trim().to_owned();
    if enabled {
        check_url("NotifyConfig.Url", &url)?;
    }
    Ok(QueueNotify {
        url,
        events: node.event.clone().unwrap_or_else(|| "TaskFinish".into()),
        format: one_of(
            "NotifyConfig.ResultFormat",
            &node.result_format,
            &FORMATS,
            CallbackFormat::Xml,
        )?,
        enabled,
    })
}

fn queue_fields(doc: &mut XmlWriter, queue: &MediaQueue) {
    let s = &queue.settings;
    doc.text("QueueId", &queue.id)
        .text("Name", &s.name)
        .text("State", if queue.paused { "Paused" } else { "Active" })
        .text("MaxSize", "10000")
        .text("MaxConcurrent", "10")
        .text("Category", "TranscodingQueue")
        .text("BucketId", &queue.bucket)
        .text("CreateTime", iso_time(s.created_ms))
        .text("UpdateTime", iso_time(s.updated_ms));
    doc.open("NotifyConfig");
    match &s.notify {
        Some(n) => {
            doc.text("Url", &n.url)
                .text("Type", "Url")
                .text("Event", &n.events)
                .text("ResultFormat", name_of(&FORMATS, n.format))
                .text("State", if n.enabled { "On" } else { "Off" });
        }
        None => {
            doc.text("State", "Off");
        }
    }
    doc.close();
}

fn media_buckets(ctx: &Ctx<'_>) -> Response {
    let names = ctx.state.buckets.names();
    let mut doc = XmlWriter::new("Response");
    doc.text("TotalCount", names.len().to_string())
        .text("PageNumber", "1")
        .text("PageSize", names.len().max(1).to_string());
    for name in names {
        doc.open("MediaBucketList");
        doc.text("BucketId", name)
            .text("Name", name)
            .text("Region", &ctx.state.config.region)
            .text("CreateTime", "");
        doc.close();
    }
    xml_ok(doc.finish())
}

// ------------------------------------------------------- the job document

fn jobs_document(jobs: &[JobView], missing: &[String], next_token: Option<&str>) -> String {
    let mut doc = XmlWriter::new("Response");
    for job in jobs {
        write_xml(&mut doc, &[Node::branch("JobsDetail", job_nodes(job))]);
    }
    for id in missing {
        doc.text("NonExistJobIds", id);
    }
    if let Some(token) = next_token {
        doc.text("NextToken", token);
    }
    doc.finish()
}

pub(super) fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Submitted => "Submitted",
        JobState::Running => "Running",
        JobState::Success => "Success",
        JobState::Failed => "Failed",
        JobState::Cancel => "Cancel",
    }
}

/// The media API's error code of a failed job.
pub(super) fn failure_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::InputMissing => "InputObjectNotExist",
        FailureKind::InputUnusable => "InvalidInputMedia",
        FailureKind::InvalidSettings => "InvalidParameter",
        FailureKind::Internal => "InternalError",
    }
}

/// `JobsDetail`.
fn job_nodes(view: &JobView) -> Vec<Node> {
    let job = &view.job;
    let (code, message) = match (&view.progress.failure, view.state) {
        (Some(f), _) => (failure_code(f.kind), f.message.clone()),
        (None, JobState::Cancel) => ("Cancelled", "the job was cancelled".to_owned()),
        (None, _) => ("Success", String::new()),
    };
    let mut nodes = vec![
        Node::leaf("Code", code),
        Node::leaf("Message", message),
        Node::leaf("JobId", &view.id),
        Node::leaf("Tag", name_of(&TAGS, tag_of(&job.settings))),
        Node::leaf("State", state_name(view.state)),
        Node::leaf("Progress", view.progress.percent),
        Node::leaf("CreationTime", iso_time(view.created_ms)),
        Node::leaf(
            "StartTime",
            view.started_ms.map(iso_time).unwrap_or_default(),
        ),
        Node::leaf("EndTime", view.ended_ms.map(iso_time).unwrap_or_default()),
        Node::leaf("QueueId", &job.queue_id),
        Node::leaf("QueueType", "Common"),
        Node::branch(
            "Input",
            vec![
                Node::leaf("Object", &job.key),
                Node::leaf("Region", &job.output.region),
                Node::leaf("BucketId", &job.bucket),
            ],
        ),
    ];
    let mut operation = Vec::new();
    if let Some(t) = &job.template {
        operation.push(Node::leaf("TemplateId", &t.id));
        operation.push(Node::leaf("TemplateName", &t.name));
    }
    match (
        tag_of(&job.settings),
        job.settings.mode,
        job.settings.animation,
    ) {
        (JobTag::SmartCover, Mode::SceneChange { duplicates }, _) => operation.push(Node::branch(
            "SmartCover",
            smart_cover_nodes(job, duplicates),
        )),
        (_, _, Some(animation)) => operation.push(Node::branch(
            "Animation",
            animation_nodes(&job.settings, animation),
        )),
        _ => {
            let mut snapshot = Vec::new();
            snapshot_nodes(&job.settings, &mut snapshot);
            operation.push(Node::branch("Snapshot", snapshot));
        }
    }
    let out = &job.output;
    let mut output = vec![
        Node::leaf("Region", &out.region),
        Node::leaf("Bucket", &out.bucket),
    ];
    if let Some(p) = &out.pictures {
        output.push(Node::leaf("Object", p));
    }
    if let Some(p) = &out.sprites {
        output.push(Node::leaf("SpriteObject", p));
    }
    operation.push(Node::branch("Output", output));
    operation.push(Node::leaf("UserData", &job.user_data));
    operation.push(Node::leaf("JobLevel", job.level));
    if let Some(info) = &view.progress.media_info {
        operation.push(Node::branch("MediaInfo", media_info_nodes(info)));
    }
    if view.state == JobState::Success {
        operation.push(Node::branch("MediaResult", media_result(view)));
    }
    nodes.push(Node::branch("Operation", operation));
    nodes
}

fn media_result(view: &JobView) -> Vec<Node> {
    let out = &view.job.output;
    let files = |names: &[String], pattern: &Option<String>| {
        let mut nodes = vec![
            Node::leaf("Bucket", &out.bucket),
            Node::leaf("Region", &out.region),
        ];
        nodes.extend(names.iter().map(|n| Node::leaf("ObjectName", n)));
        let prefix = pattern
            .as_deref()
            .map(OutputTarget::prefix)
            .unwrap_or_default();
        nodes.push(Node::leaf("ObjectPrefix", prefix));
        nodes
    };
    let mut output_file = files(&view.progress.pictures, &out.pictures);
    if !view.progress.sprites.is_empty() {
        output_file.push(Node::branch(
            "SpriteOutputFile",
            files(&view.progress.sprites, &out.sprites),
        ));
    }
    vec![Node::branch("OutputFile", output_file)]
}

fn animation_nodes(s: &SnapshotSettings, a: AnimationSettings) -> Vec<Node> {
    let format = name_of(&ANIMATION_FORMATS, a.format);
    let mut video = vec![Node::leaf("Codec", format)];
    if s.width != 0 {
        video.push(Node::leaf("Width", s.width));
    }
    if s.height != 0 {
        video.push(Node::leaf("Height", s.height));
    }
    video.push(Node::leaf("Fps", a.fps));
    video.push(Node::leaf(
        "AnimateOnlyKeepKeyFrame",
        s.mode == Mode::KeyFrame,
    ));
    if let Mode::Interval {
        interval: Some(step),
        ..
    } = s.mode
    {
        video.push(Node::leaf("AnimateTimeIntervalOfFrame", step));
    }
    video.push(Node::leaf("Quality", a.quality));
    let mut interval = vec![Node::leaf("Start", s.start)];
    if a.end < f64::MAX {
        interval.push(Node::leaf("Duration", a.end - s.start));
    }
    vec![
        Node::branch("Container", vec![Node::leaf("Format", format)]),
        Node::branch("Video", video),
        Node::branch("TimeInterval", interval),
    ]
}

fn smart_cover_nodes(job: &SnapshotJob, duplicates: Duplicates) -> Vec<Node> {
    let s = &job.settings;
    let format = job
        .output
        .pictures
        .as_deref()
        .and_then(|o| o.rsplit_once('.'))
        .and_then(|(_, ext)| ImageFormat::from_name(ext))
        .unwrap_or(ImageFormat::Jpeg);
    let mut nodes = vec![Node::leaf("Format", format.name())];
    if s.width != 0 {
        nodes.push(Node::leaf("Width", s.width));
    }
    if s.height != 0 {
        nodes.push(Node::leaf("Height", s.height));
    }
    nodes.push(Node::leaf("Count", s.count));
    nodes.push(Node::leaf(
        "DeleteDuplicates",
        duplicates == Duplicates::Delete,
    ));
    nodes
}

fn snapshot_nodes(s: &SnapshotSettings, nodes: &mut Vec<Node>) {
    let (mode, interval, fill) = match s.mode {
        Mode::Interval {
            interval,
            fill_count,
        } => ("Interval", interval, fill_count),
        Mode::Average => ("Average", None, false),
        Mode::KeyFrame => ("KeyFrame", None, false),
        Mode::SceneChange { .. } => ("FgSceneChange", None, false),
    };
    nodes.push(Node::leaf("Mode", mode));
    nodes.push(Node::leaf("Start", s.start));
    if let Some(i) = interval {
        nodes.push(Node::leaf("TimeInterval", i));
    }
    nodes.push(Node::leaf("Count", s.count));
    if s.width != 0 {
        nodes.push(Node::leaf("Width", s.width));
    }
    if s.height != 0 {
        nodes.push(Node::leaf("Height", s.height));
    }
    nodes.push(Node::leaf("IsCheckCount", fill));
    nodes.push(Node::leaf("IsCheckBlack", s.black.is_some()));
    if let Some(b) = s.black {
        nodes.push(Node::leaf("BlackLevel", b.level));
        nodes.push(Node::leaf("PixelBlackThreshold", b.pixel_threshold));
    }
    nodes.push(Node::leaf(
        "SnapshotOutMode",
        name_of(&OUT_MODES, s.outputs),
    ));
    if let Some(l) = &s.sprite {
        let [r, g, b] = l.color;
        nodes.push(Node::branch(
            "SpriteSnapshotConfig",
            vec![
                Node::leaf("CellWidth", l.cell_width),
                Node::leaf("CellHeight", l.cell_height),
                Node::leaf("Padding", l.padding),
                Node::leaf("Margin", l.margin),
                Node::leaf("Color", format!("#{r:02X}{g:02X}{b:02X}")),
                Node::leaf("Columns", l.columns),
                Node::leaf("Lines", l.lines),
                Node::leaf("ScaleMethod", name_of(&SCALE_METHODS, l.fit)),
            ],
        ));
    }
}

/// The body of a job-end callback: `Response{EventName=TaskFinish,
/// JobsDetail}` as XML or JSON (installed into the job core at start).
pub fn render_job_end(view: &JobView, format: CallbackFormat) -> (String, &'static str) {
    let nodes = vec![
        Node::leaf("EventName", "TaskFinish"),
        Node::branch("JobsDetail", job_nodes(view)),
    ];
    match format {
        CallbackFormat::Xml => {
            let mut doc = XmlWriter::new("Response");
            write_xml(&mut doc, &nodes);
            (doc.finish(), "application/xml")
        }
        CallbackFormat::Json => (to_json(&nodes).to_string(), "application/json"),
    }
}
