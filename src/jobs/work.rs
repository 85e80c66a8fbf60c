//! The media work of one task, on a job thread: probe the media once, plan
//! every picture of every subtask, decode them all in one forward pass
//! ([`Video::frames_at`]), and write pictures, sprites and WebVTT files to
//! the object store under keys fixed by the task id (so a task that is run
//! again after a crash writes the same objects).
//!
//! A subtask that fails (an output too large for this source, a write that
//! fails) is marked FAIL and the others go on; a source that cannot be read
//! or decoded fails every subtask that is not finished.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::runtime::Handle;

use super::frame_pick;
use super::params::now_ms;
use super::snapshot_job::BlackCheck;
use super::task::{Output, SubtaskState, SubtaskStatus, TaskSpec, TaskState, Work};
use super::templates::{
    BlackFrames, Kind, SampleType, Template, MAX_ANIMATION_FRAMES, MAX_ANIMATION_PIXELS,
};
use crate::av::{Picture, PictureFormat};
use crate::media::compose::{self, Shade};
use crate::media::{
    self, geometry, picture_format_for, AnimationFormat, DecodedFrame, ImageFormat, Limits,
    MediaError, Video,
};
use crate::storage::{Bucket, StorageError};

/// Error numbers of subtask results (VOD's classes).
pub mod codes {
    /// The request cannot be met for this media (e.g. output too large).
    pub const INVALID_PARAMETER: i64 = 40000;
    /// The source is missing, not media, or cannot be decoded.
    pub const SOURCE_FILE_ERROR: i64 = 60000;
    /// Storage or internal failure.
    pub const INTERNAL_ERROR: i64 = 70000;
}

/// What the work needs from the job system.
pub struct WorkContext<'a> {
    /// The bucket of the media and of the outputs.
    pub bucket: Arc<Bucket>,
    /// For storage I/O from the job thread.
    pub handle: Handle,
    /// Deadline, cancel flag, pixel bounds, JPEG quality, threads.
    pub limits: Limits,
    /// Prefix of output keys (ends with `/` or is empty).
    pub output_prefix: &'a str,
    /// Most pictures (or sprite cells) one subtask may make.
    pub max_outputs: usize,
}

/// How the work ended.
#[derive(Debug)]
pub enum WorkEnd {
    /// Every subtask has a final status.
    Done,
    /// The cancel flag was raised (the lease was lost or the gateway is
    /// stopping): leave the task for another attempt.
    Interrupted,
}

/// The directory of a task's outputs.
pub fn output_dir(prefix: &str, spec: &TaskSpec, task_id: &str) -> String {
    format!("{prefix}{}/{task_id}/", spec.file_id)
}

/// Runs `spec`, updating `state` and calling `report` now and then (at most
/// four times a second) and after each subtask ends.
pub fn run(
    ctx: &WorkContext<'_>,
    task_id: &str,
    spec: &TaskSpec,
    state: &mut TaskState,
    report: &mut dyn FnMut(&TaskState),
) -> WorkEnd {
    let started = now_ms();
    for sub in &mut state.subtasks {
        if !sub.status.ended() {
            *sub = SubtaskState {
                status: SubtaskStatus::Processing,
                begin_ms: Some(started),
                ..SubtaskState::default()
            };
        }
    }
    report(state);
    let info = match ctx.handle.block_on(ctx.bucket.head(&spec.key)) {
        Ok(info) => info,
        Err(StorageError::NoSuchKey) => {
            fail_open(
                state,
                codes::SOURCE_FILE_ERROR,
                "SourceFileError.NotFound",
                &format!("the object {:?} does not exist", spec.key),
            );
            return WorkEnd::Done;
        }
        Err(err) => {
            fail_open(
                state,
                codes::INTERNAL_ERROR,
                "InternalError.Storage",
                &format!("reading the object failed: {err}"),
            );
            return WorkEnd::Done;
        }
    };
    let source = || Box::new(ctx.bucket.reader(&spec.key, info.size, ctx.handle.clone()));
    let meta = match media::probe(source(), &ctx.limits) {
        Ok(meta) => meta,
        Err(err) => return media_failure(state, err),
    };
    let duration = if meta.video_duration > 0.0 {
        meta.video_duration
    } else {
        meta.duration
    };
    state.meta = Some(meta);
    let mut video = match Video::open(source(), &ctx.limits) {
        Ok(video) => video,
        Err(err) => return media_failure(state, err),
    };
    let dir = output_dir(ctx.output_prefix, spec, task_id);
    let mut plans: Vec<Plan> = spec
        .subtasks
        .iter()
        .enumerate()
        .map(|(i, sub)| Plan::new(i, sub, duration, &dir, ctx.max_outputs))
        .collect();
    for (plan, st) in plans.iter_mut().zip(&mut state.subtasks) {
        if st.status != SubtaskStatus::Processing {
            plan.done = true;
        } else if let Some((code, ext, message)) = plan.refusal.take() {
            finish(st, code, ext, &message);
            plan.done = true;
        } else if let Err(err) = plan.skip_black(&mut video) {
            return media_failure(state, err);
        }
    }
    // Every picture of every subtask, by time.
    let mut wanted: Vec<(f64, usize, usize)> = plans
        .iter()
        .filter(|p| !p.done)
        .flat_map(|p| p.times.iter().enumerate().map(|(i, &t)| (t, p.index, i)))
        .collect();
    wanted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let times: Vec<f64> = wanted.iter().map(|w| w.0).collect();
    let mut last_report = Instant::now();
    let mut writer = Writer { ctx, spec };
    let result = video.frames_at(&times, &mut |position, frame| {
        let (_, sub, item) = wanted[position];
        let plan = &mut plans[sub];
        if plan.done {
            return Ok(());
        }
        let st = &mut state.subtasks[sub];
        if let Err((code, ext, message)) = plan.take(item, frame, &mut writer) {
            finish(st, code, ext, &message);
            plan.done = true;
        } else if plan.finished() {
            if let Err((code, ext, message)) = plan.complete(&mut writer, duration) {
                finish(st, code, ext, &message);
            } else {
                st.output = plan.output();
                finish(st, 0, "", "");
            }
            plan.done = true;
            report(state);
            last_report = Instant::now();
            return Ok(());
        }
        st.progress = plan.progress();
        if last_report.elapsed() >= Duration::from_millis(250) {
            report(state);
            last_report = Instant::now();
        }
        Ok(())
    });
    if let Err(err) = result {
        return media_failure(state, err);
    }
    for (plan, st) in plans.iter_mut().zip(&mut state.subtasks) {
        if !plan.done {
            // Nothing asked for pictures (an empty sample set) or the data
            // ended early.
            match plan.complete(&mut writer, duration) {
                Ok(()) => {
                    st.output = plan.output();
                    finish(st, 0, "", "");
                }
                Err((code, ext, message)) => finish(st, code, ext, &message),
            }
        }
    }
    WorkEnd::Done
}

fn finish(st: &mut SubtaskState, code: i64, ext: &str, message: &str) {
    st.status = if code == 0 {
        SubtaskStatus::Success
    } else {
        SubtaskStatus::Fail
    };
    st.err_code = code;
    st.err_code_ext = ext.into();
    st.message = message.into();
    if code == 0 {
        st.progress = 100;
    }
    st.finish_ms = Some(now_ms());
}

/// Fails every subtask that has not ended.
fn fail_open(state: &mut TaskState, code: i64, ext: &str, message: &str) {
    for st in &mut state.subtasks {
        if !st.status.ended() {
            finish(st, code, ext, message);
        }
    }
}

fn media_failure(state: &mut TaskState, err: MediaError) -> WorkEnd {
    let (code, ext) = match &err {
        MediaError::Cancelled => return WorkEnd::Interrupted,
        MediaError::NotMedia => (codes::SOURCE_FILE_ERROR, "SourceFileError.NotMedia"),
        MediaError::NoVideoStream => (codes::SOURCE_FILE_ERROR, "SourceFileError.NoVideoStream"),
        MediaError::Corrupt => (codes::SOURCE_FILE_ERROR, "SourceFileError.Corrupt"),
        MediaError::UnsupportedCodec { .. } => {
            (codes::SOURCE_FILE_ERROR, "SourceFileError.UnsupportedCodec")
        }
        MediaError::SourceTooLarge { .. } => (codes::SOURCE_FILE_ERROR, "SourceFileError.TooLarge"),
        MediaError::Timeout => (codes::INTERNAL_ERROR, "InternalError.Timeout"),
        MediaError::Io(_) => (codes::INTERNAL_ERROR, "InternalError.Storage"),
        MediaError::OutputSizeOutOfRange { .. } | MediaError::InvalidParameter { .. } => {
            (codes::INVALID_PARAMETER, "InvalidParameter")
        }
        MediaError::Internal { detail } => {
            tracing::error!(%detail, "media pipeline failure in a job");
            (codes::INTERNAL_ERROR, "InternalError")
        }
    };
    fail_open(state, code, ext, &err.to_string());
    WorkEnd::Done
}

type Refusal = (i64, &'static str, String);

/// Writes outputs.
struct Writer<'c, 'a> {
    ctx: &'c WorkContext<'a>,
    spec: &'c TaskSpec,
}

impl Writer<'_, '_> {
    fn put(&mut self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Refusal> {
        self.ctx
            .handle
            .block_on(self.ctx.bucket.put_bytes(key, Bytes::from(bytes), content_type))
            .map(drop)
            .map_err(|e| {
                tracing::warn!(key, bucket = %self.spec.bucket, error = %e, "writing a job output failed");
                (
                    codes::INTERNAL_ERROR,
                    "InternalError.Storage",
                    format!("writing {key} failed: {e}"),
                )
            })
    }

    fn encode(&self, picture: &Picture, format: ImageFormat) -> Result<Vec<u8>, Refusal> {
        media::encode(picture, format, self.ctx.limits.quality_for(format, None))
            .map_err(|e| (codes::INTERNAL_ERROR, "InternalError", e.to_string()))
    }
}

/// The files a subtask writes.
#[derive(Debug, Clone, Copy)]
enum Files {
    /// One picture per time, or sprite sheets.
    Still(ImageFormat),
    /// One animated picture of every frame.
    Animated(AnimationFormat),
}

/// One subtask's pictures: when, where they go, what is made so far.
struct Plan<'s> {
    index: usize,
    work: &'s Work,
    template: &'s Template,
    /// What its files are.
    files: Files,
    /// Seconds of each picture (or sprite cell), in output order.
    times: Vec<f64>,
    /// Key stem: `<dir><n>-<kind>-<definition>`.
    stem: String,
    /// Written keys (or None) by output position.
    images: Vec<Option<String>>,
    made: usize,
    /// The output size, fixed by the first frame.
    size: Option<(u32, u32)>,
    /// Sprites: the sheet being filled and its number.
    sheet: Option<Picture>,
    sheets: Vec<String>,
    /// Animations: the frames made so far, and the file's size once written.
    frames: Vec<Picture>,
    bytes: u64,
    vtt: Option<String>,
    refusal: Option<Refusal>,
    done: bool,
    max_side: u32,
}

impl<'s> Plan<'s> {
    fn new(
        index: usize,
        sub: &'s super::task::Subtask,
        duration: f64,
        dir: &str,
        max: usize,
    ) -> Self {
        let template = &sub.template;
        let every = |step: f64| -> Vec<f64> {
            let mut t = Vec::new();
            let mut k = 0u64;
            loop {
                let at = k as f64 * step;
                if (k > 0 && at >= duration) || t.len() > max {
                    break;
                }
                t.push(at);
                k += 1;
            }
            t
        };
        let (kind_name, times) = match &sub.work {
            Work::SnapshotByTimeOffset { offsets } => (
                "snapshot",
                offsets.iter().map(|o| o.seconds(duration)).collect(),
            ),
            Work::CoverBySnapshot { position } => ("cover", vec![position.seconds(duration)]),
            Work::SampleSnapshot => {
                let interval = f64::from(template.sample_interval.max(1));
                let times = match template.sample_type {
                    Some(SampleType::Percent) => {
                        let n = (100 / template.sample_interval.max(1)) as usize;
                        (0..n)
                            .map(|k| duration * k as f64 * interval / 100.0)
                            .collect()
                    }
                    _ => every(interval),
                };
                ("sample", times)
            }
            Work::ImageSprite => ("sprite", every(f64::from(template.sample_interval.max(1)))),
            Work::AnimatedGraphic { start, end } => (
                "animated",
                animation_times(*start, *end, template.fps, duration),
            ),
        };
        let files = match (&sub.work, template.format) {
            (Work::AnimatedGraphic { .. }, format) => {
                format.animation_format().map(Files::Animated)
            }
            (_, format) => format.still_format().map(Files::Still),
        };
        let refusal = if files.is_none() {
            Some((
                codes::INVALID_PARAMETER,
                "InvalidParameterValue.Format",
                format!(
                    "template {} makes {} files, which this task cannot write",
                    template.definition,
                    template.format.as_str()
                ),
            ))
        } else if matches!(sub.work, Work::AnimatedGraphic { .. }) {
            (times.len() > MAX_ANIMATION_FRAMES).then(|| {
                (
                    codes::INVALID_PARAMETER,
                    "InvalidParameter.TooManyFrames",
                    format!(
                        "the animation would have {} frames, more than {MAX_ANIMATION_FRAMES}; \
                         shorten it or lower Fps",
                        times.len()
                    ),
                )
            })
        } else {
            (times.len() > max).then(|| {
                (
                    codes::INVALID_PARAMETER,
                    "InvalidParameter.TooManyImages",
                    format!(
                        "this media would need more than {max} pictures with this template; \
                         use a longer interval"
                    ),
                )
            })
        };
        let count = times.len();
        Self {
            index,
            work: &sub.work,
            template,
            // A refused plan writes nothing, whatever this says.
            files: files.unwrap_or(Files::Still(ImageFormat::Jpeg)),
            times,
            stem: format!("{dir}{index}-{kind_name}-{}", template.definition),
            images: vec![None; count],
            made: 0,
            size: None,
            sheet: None,
            sheets: Vec::new(),
            frames: Vec::new(),
            bytes: 0,
            vtt: None,
            refusal,
            done: false,
            max_side: 4096,
        }
    }

    /// A cover whose frame is black moves to the first lit frame after it
    /// (nobody wants a black cover); so do samples and sprite cells when
    /// their template says `FgBlackFrames=skip`.
    fn skip_black(&mut self, video: &mut Video) -> Result<(), MediaError> {
        let black = BlackCheck::default();
        match (self.work, self.template.black_frames) {
            (Work::CoverBySnapshot { .. }, _) => {
                if let Some(&time) = self.times.first() {
                    self.times[0] = frame_pick::lit_time(video, time, black)?;
                }
            }
            (Work::SampleSnapshot | Work::ImageSprite, BlackFrames::Skip) => {
                let frames = video.frame_times()?;
                frame_pick::replace_black(video, &frames, &mut self.times, black)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn ext(&self) -> &'static str {
        self.template.format.as_str()
    }

    fn layout(&self) -> PictureFormat {
        match self.files {
            Files::Animated(format) => format.layout(),
            Files::Still(format) => picture_format_for(format),
        }
    }

    /// The animation format, for animated work.
    fn animation(&self) -> Option<AnimationFormat> {
        match self.files {
            Files::Animated(format) => Some(format),
            Files::Still(_) => None,
        }
    }

    fn content_type(&self) -> &'static str {
        match self.files {
            Files::Animated(format) => format.content_type(),
            Files::Still(format) => format.content_type(),
        }
    }

    fn finished(&self) -> bool {
        self.made == self.times.len()
    }

    fn progress(&self) -> u8 {
        (self.made * 100 / self.times.len().max(1)).min(99) as u8
    }

    /// The output size for frames like `frame`.
    fn size_for(&mut self, frame: &DecodedFrame, max_side: u32) -> Result<(u32, u32), Refusal> {
        if let Some(size) = self.size {
            return Ok(size);
        }
        let displayed = geometry::displayed_size(
            frame.coded_size(),
            frame.sample_aspect_ratio,
            frame.orientation,
        );
        let t = self.template;
        let size = compose::template_size(displayed, t.width, t.height, t.resolution_adaptive);
        let (cols, rows) = match t.kind {
            Kind::ImageSprite => (t.columns.max(1), t.rows.max(1)),
            _ => (1, 1),
        };
        let total = (
            u64::from(size.0) * u64::from(cols),
            u64::from(size.1) * u64::from(rows),
        );
        let frame_pixels = u64::from(size.0) * u64::from(size.1) * self.times.len() as u64;
        if self.animation().is_some() && frame_pixels > MAX_ANIMATION_PIXELS {
            return Err((
                codes::INVALID_PARAMETER,
                "InvalidParameterValue.OutputSize",
                format!(
                    "{} frames of {}x{} are more than {MAX_ANIMATION_PIXELS} pixels in all; \
                     lower Width/Height, Fps or the duration",
                    self.times.len(),
                    size.0,
                    size.1
                ),
            ));
        }
        if total.0 > u64::from(max_side) || total.1 > u64::from(max_side) {
            return Err((
                codes::INVALID_PARAMETER,
                "InvalidParameterValue.OutputSize",
                format!(
                    "the output would be {}x{}, more than {max_side} pixels on a side; \
                     set Width/Height in the template",
                    total.0, total.1
                ),
            ));
        }
        self.size = Some(size);
        Ok(size)
    }

    /// Makes the picture (or sprite cell) `item` from `frame`.
    fn take(
        &mut self,
        item: usize,
        frame: &DecodedFrame,
        writer: &mut Writer<'_, '_>,
    ) -> Result<(), Refusal> {
        let max_side = writer.ctx.limits.max_output_side.min(self.max_side);
        let size = self.size_for(frame, max_side)?;
        let picture = compose::fitted(frame, size, self.template.fill.fit(), self.layout())
            .map_err(|e| (codes::INTERNAL_ERROR, "InternalError", e.to_string()))?;
        let format = match self.files {
            Files::Animated(_) => {
                self.frames.push(picture);
                self.made += 1;
                return Ok(());
            }
            Files::Still(format) => format,
        };
        if matches!(self.work, Work::ImageSprite) {
            let t = self.template;
            let per_sheet = (t.rows.max(1) * t.columns.max(1)) as usize;
            let cell = item % per_sheet;
            let layout = self.layout();
            let sheet = self.sheet.get_or_insert_with(|| {
                compose::filled(
                    layout,
                    (size.0 * t.columns.max(1), size.1 * t.rows.max(1)),
                    Shade::Black,
                )
            });
            let (x, y) = (
                (cell as u32 % t.columns.max(1)) * size.0,
                (cell as u32 / t.columns.max(1)) * size.1,
            );
            compose::paste(sheet, &picture, x, y);
            self.made += 1;
            if cell + 1 == per_sheet || self.made == self.times.len() {
                self.flush_sheet(writer, format)?;
            }
            return Ok(());
        }
        let bytes = writer.encode(&picture, format)?;
        let key = format!("{}-{item}.{}", self.stem, self.ext());
        writer.put(&key, bytes, self.content_type())?;
        self.images[item] = Some(key);
        self.made += 1;
        Ok(())
    }

    fn flush_sheet(
        &mut self,
        writer: &mut Writer<'_, '_>,
        format: ImageFormat,
    ) -> Result<(), Refusal> {
        let Some(sheet) = self.sheet.take() else {
            return Ok(());
        };
        let bytes = writer.encode(&sheet, format)?;
        let key = format!("{}-{}.{}", self.stem, self.sheets.len(), self.ext());
        writer.put(&key, bytes, self.content_type())?;
        self.sheets.push(key);
        Ok(())
    }

    /// Writes what remains (the last sprite sheet, the WebVTT index).
    fn complete(&mut self, writer: &mut Writer<'_, '_>, duration: f64) -> Result<(), Refusal> {
        let format = match self.files {
            Files::Animated(format) => return self.write_animation(writer, format),
            Files::Still(format) => format,
        };
        if !matches!(self.work, Work::ImageSprite) {
            if self.images.iter().any(Option::is_none) {
                return Err((
                    codes::SOURCE_FILE_ERROR,
                    "SourceFileError.Corrupt",
                    "the media ended before every picture was taken".into(),
                ));
            }
            return Ok(());
        }
        self.flush_sheet(writer, format)?;
        let Some((w, h)) = self.size else {
            return Err((
                codes::SOURCE_FILE_ERROR,
                "SourceFileError.Corrupt",
                "no picture could be decoded".into(),
            ));
        };
        let vtt = sprite_vtt(
            &self.times[..self.made],
            duration,
            (w, h),
            self.template,
            |sheet| {
                self.sheets[sheet]
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            },
        );
        let key = format!("{}.vtt", self.stem);
        writer.put(&key, vtt.into_bytes(), "text/vtt")?;
        self.vtt = Some(key);
        Ok(())
    }

    /// Encodes the frames as one animated picture and writes it.
    fn write_animation(
        &mut self,
        writer: &mut Writer<'_, '_>,
        format: AnimationFormat,
    ) -> Result<(), Refusal> {
        if self.frames.is_empty() || self.made < self.times.len() {
            return Err((
                codes::SOURCE_FILE_ERROR,
                "SourceFileError.Corrupt",
                "the media ended before every frame of the animation was taken".into(),
            ));
        }
        let t = self.template;
        let quality = u8::try_from(t.quality.clamp(1, 100)).unwrap_or(75);
        let bytes = media::encode_animation(&self.frames, format, t.fps, quality)
            .map_err(|e| (codes::INTERNAL_ERROR, "InternalError", e.to_string()))?;
        self.frames.clear();
        let key = format!("{}.{}", self.stem, self.ext());
        self.bytes = bytes.len() as u64;
        writer.put(&key, bytes, self.content_type())?;
        self.images = vec![Some(key)];
        Ok(())
    }

    fn output(&self) -> Output {
        let time_offsets_ms = match self.work {
            Work::SnapshotByTimeOffset { .. } => {
                self.times.iter().map(|t| (t * 1000.0).round()).collect()
            }
            _ => Vec::new(),
        };
        Output {
            images: if matches!(self.work, Work::ImageSprite) {
                self.sheets.clone()
            } else {
                self.images.iter().flatten().cloned().collect()
            },
            time_offsets_ms,
            vtt: self.vtt.clone(),
            cell: self
                .size
                .filter(|_| matches!(self.work, Work::ImageSprite | Work::AnimatedGraphic { .. })),
            bytes: self.bytes,
        }
    }
}

/// The times of an animation's frames: from `start`, one every `1/fps`
/// seconds, before `end` (cut at the media's end); at least one.
fn animation_times(start: f64, end: f64, fps: u32, duration: f64) -> Vec<f64> {
    let step = 1.0 / f64::from(fps.max(1));
    let end = end.min(duration.max(start));
    let mut times = vec![start];
    // Bounded by the frame limit (plus one to tell "too many").
    while times.len() <= MAX_ANIMATION_FRAMES {
        let next = start + times.len() as f64 * step;
        if next >= end - 1e-9 {
            break;
        }
        times.push(next);
    }
    times
}

/// The WebVTT index of sprite cells: cue `k` covers `[times[k], times[k+1])`
/// (the last one runs to `duration`) and points at its cell as
/// `<sheet file>#xywh=x,y,w,h`.
pub fn sprite_vtt(
    times: &[f64],
    duration: f64,
    cell: (u32, u32),
    template: &Template,
    sheet_name: impl Fn(usize) -> String,
) -> String {
    let columns = template.columns.max(1) as usize;
    let per_sheet = columns * template.rows.max(1) as usize;
    let mut out = String::from("WEBVTT\n");
    for (k, &start) in times.iter().enumerate() {
        let end = times.get(k + 1).copied().unwrap_or(duration.max(start));
        let cell_index = k % per_sheet;
        let (x, y) = (
            (cell_index % columns) as u32 * cell.0,
            (cell_index / columns) as u32 * cell.1,
        );
        let _ = write!(
            out,
            "\n{} --> {}\n{}#xywh={x},{y},{},{}\n",
            vtt_time(start),
            vtt_time(end),
            sheet_name(k / per_sheet),
            cell.0,
            cell.1
        );
    }
    out
}

/// `HH:MM:SS.mmm`.
fn vtt_time(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::templates::preset;

    #[test]
    fn vtt_cues_point_at_cells_row_by_row_across_sheets() {
        let mut template = preset(Kind::ImageSprite);
        template.rows = 2;
        template.columns = 2;
        let times: Vec<f64> = (0..5).map(|k| f64::from(k) * 10.0).collect();
        let vtt = sprite_vtt(&times, 47.5, (142, 80), &template, |s| format!("s{s}.jpg"));
        let expected = "WEBVTT\n\n\
            00:00:00.000 --> 00:00:10.000\ns0.jpg#xywh=0,0,142,80\n\n\
            00:00:10.000 --> 00:00:20.000\ns0.jpg#xywh=142,0,142,80\n\n\
            00:00:20.000 --> 00:00:30.000\ns0.jpg#xywh=0,80,142,80\n\n\
            00:00:30.000 --> 00:00:40.000\ns0.jpg#xywh=142,80,142,80\n\n\
            00:00:40.000 --> 00:00:47.500\ns1.jpg#xywh=0,0,142,80\n";
        assert_eq!(vtt, expected);
        assert_eq!(vtt_time(3723.0456), "01:02:03.046");
    }
}
