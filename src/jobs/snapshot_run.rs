//! The media work of one snapshot job, on a job thread: probe the input,
//! choose the frames (by interval, evenly, consecutive or keyframes,
//! skipping black ones), decode them in one forward pass
//! ([`Video::frames_at`]), and write pictures and sprite sheets.
//!
//! Outputs go to a staging area under the output bucket's reserved prefix
//! (keys fixed by the job id and output number, so a job run again after a
//! crash rewrites the same objects) and are moved to their names by
//! [`publish`] only when the whole job succeeded; [`discard`] removes them
//! after a failure or a cancellation. No client ever sees half a job.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::runtime::Handle;

use super::frame_pick::{first_lit, replace_black, scene_times};
use super::snapshot_job::{
    AnimationSettings, CellFit, Failure, FailureKind, Mode, OutputTarget, SnapshotJob,
    SnapshotProgress, SnapshotSettings, SpriteLayout,
};
use super::templates::{MAX_ANIMATION_FRAMES, MAX_ANIMATION_PIXELS};
use super::work::WorkEnd;
use crate::av::Picture;
use crate::media::compose;
use crate::media::Fit;
use crate::media::{
    self, geometry, picture_format_for, DecodedFrame, FrameTime, ImageFormat, Limits, MediaError,
    Video,
};
use crate::proto::route::RESERVED_PREFIX;
use crate::storage::{Bucket, StorageError};

/// Largest side of a sprite sheet, pixels.
pub const MAX_SHEET_SIDE: u32 = 8192;

/// What the work needs from the job system.
pub struct RunContext<'a> {
    /// The bucket of the input.
    pub input: Arc<Bucket>,
    /// The bucket outputs go to.
    pub output: Arc<Bucket>,
    /// For storage I/O from the job thread.
    pub handle: Handle,
    /// Deadline, cancel flag, pixel bounds, JPEG quality, threads.
    pub limits: Limits,
    /// The job.
    pub job_id: &'a str,
}

/// The two kinds of output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Picture,
    Sheet,
}

/// Where output `n` of `kind` is staged.
fn staging_key(job_id: &str, kind: Kind, n: usize) -> String {
    let letter = match kind {
        Kind::Picture => 'p',
        Kind::Sheet => 's',
    };
    format!("{RESERVED_PREFIX}staging/{job_id}/{letter}{n}")
}

/// The image format an output name asks for by its extension (`.png`,
/// `.webp`, `.avif`), else JPEG.
fn format_of(name: &str) -> ImageFormat {
    name.rsplit_once('.')
        .and_then(|(_, extension)| ImageFormat::from_name(extension))
        .unwrap_or(ImageFormat::Jpeg)
}

fn fail(progress: &mut SnapshotProgress, kind: FailureKind, message: impl Into<String>) -> WorkEnd {
    progress.failure = Some(Failure {
        kind,
        message: message.into(),
    });
    WorkEnd::Done
}

fn media_failure(progress: &mut SnapshotProgress, err: MediaError) -> WorkEnd {
    let kind = match &err {
        MediaError::Cancelled => return WorkEnd::Interrupted,
        MediaError::NotMedia
        | MediaError::NoVideoStream
        | MediaError::Corrupt
        | MediaError::UnsupportedCodec { .. }
        | MediaError::SourceTooLarge { .. } => FailureKind::InputUnusable,
        MediaError::OutputSizeOutOfRange { .. } | MediaError::InvalidParameter { .. } => {
            FailureKind::InvalidSettings
        }
        MediaError::Timeout | MediaError::Io(_) => FailureKind::Internal,
        MediaError::Internal { detail } => {
            tracing::error!(%detail, "media pipeline failure in a snapshot job");
            FailureKind::Internal
        }
    };
    fail(progress, kind, err.to_string())
}

/// Runs `job`, filling `progress` and calling `report` now and then (at
/// most four times a second).
pub fn run(
    ctx: &RunContext<'_>,
    job: &SnapshotJob,
    progress: &mut SnapshotProgress,
    report: &mut dyn FnMut(&SnapshotProgress),
) -> WorkEnd {
    *progress = SnapshotProgress::default();
    let info = match ctx.handle.block_on(ctx.input.head(&job.key)) {
        Ok(info) => info,
        Err(StorageError::NoSuchKey) => {
            return fail(
                progress,
                FailureKind::InputMissing,
                format!("the input object {:?} does not exist", job.key),
            )
        }
        Err(err) => {
            return fail(
                progress,
                FailureKind::Internal,
                format!("reading the input: {err}"),
            )
        }
    };
    let source = || Box::new(ctx.input.reader(&job.key, info.size, ctx.handle.clone()));
    let info = match media::describe(source(), &ctx.limits) {
        Ok(info) => info,
        Err(err) => return media_failure(progress, err),
    };
    let duration = info.video_duration();
    progress.media_info = Some(info);
    report(progress);
    let mut video = match Video::open(source(), &ctx.limits) {
        Ok(video) => video,
        Err(err) => return media_failure(progress, err),
    };
    let times = match choose_times(&mut video, &job.settings, duration) {
        Ok(times) => times,
        Err(Refusal::Media(err)) => return media_failure(progress, err),
        Err(Refusal::Settings(message)) => {
            return fail(progress, FailureKind::InvalidSettings, message)
        }
    };
    let mut maker = Maker::new(ctx, job, times.len());
    let mut last_report = Instant::now();
    let mut failure = None;
    let result = video.frames_at(&times, &mut |_, frame| {
        if failure.is_some() {
            return Ok(());
        }
        if let Err(refusal) = maker.take(frame, progress) {
            failure = Some(refusal);
            return Ok(());
        }
        progress.percent = (maker.made * 100 / times.len().max(1)).min(99) as u8;
        if last_report.elapsed() >= Duration::from_millis(250) {
            report(progress);
            last_report = Instant::now();
        }
        Ok(())
    });
    if let Err(err) = result {
        return media_failure(progress, err);
    }
    if let Some((kind, message)) = failure {
        return fail(progress, kind, message);
    }
    if maker.made < times.len() {
        return fail(
            progress,
            FailureKind::InputUnusable,
            "the video ended before every picture was taken",
        );
    }
    if let Err((kind, message)) = maker.flush_sheet(progress) {
        return fail(progress, kind, message);
    }
    if let Err((kind, message)) = maker.write_animation(progress) {
        return fail(progress, kind, message);
    }
    WorkEnd::Done
}

/// Why no times could be chosen.
enum Refusal {
    Media(MediaError),
    Settings(String),
}

impl From<MediaError> for Refusal {
    fn from(err: MediaError) -> Self {
        Refusal::Media(err)
    }
}

/// The times of the pictures, ascending, in output order.
fn choose_times(
    video: &mut Video,
    settings: &SnapshotSettings,
    duration: f64,
) -> Result<Vec<f64>, Refusal> {
    let needs_frames = matches!(
        settings.mode,
        Mode::KeyFrame | Mode::Interval { interval: None, .. } | Mode::SceneChange { .. }
    ) || settings.black.is_some();
    let frames = if needs_frames {
        video.frame_times()?
    } else {
        Vec::new()
    };
    let mut start = settings.start;
    if let Some(black) = settings.black.filter(|_| start == 0.0) {
        start = first_lit(video, &frames, 0, black)?.map_or(0.0, |i| frames[i].seconds);
    }
    if start >= duration.max(f64::MIN_POSITIVE) {
        return Err(Refusal::Settings(format!(
            "Start ({start} s) is not before the end of the video ({duration:.3} s)"
        )));
    }
    let count = settings.count as usize;
    let from = |frames: &[FrameTime], keyframes_only: bool| -> Vec<f64> {
        frames
            .iter()
            .filter(|f| f.seconds >= start - 1e-6 && (f.keyframe || !keyframes_only))
            .take(count)
            .map(|f| f.seconds)
            .collect()
    };
    let average = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|k| start + k as f64 * (duration - start) / n as f64)
            .collect()
    };
    let mut times = match settings.mode {
        Mode::SceneChange { duplicates } => {
            // The search skips black frames itself.
            let times = scene_times(video, &frames, duration, count, duplicates)?;
            if times.is_empty() {
                return Err(Refusal::Settings("no frame of the video is lit".into()));
            }
            return Ok(times);
        }
        Mode::Average => average(count),
        Mode::KeyFrame => from(&frames, true),
        Mode::Interval { interval: None, .. } => from(&frames, false),
        Mode::Interval {
            interval: Some(step),
            fill_count,
        } => {
            let fits = (0..count)
                .map(|k| start + k as f64 * step)
                .take_while(|&t| t < duration)
                .collect::<Vec<_>>();
            if fill_count && fits.len() < count {
                average(count)
            } else {
                fits
            }
        }
    };
    if let Some(animation) = settings.animation {
        times.retain(|&t| t < animation.end - 1e-9);
        times.truncate(MAX_ANIMATION_FRAMES);
    }
    if let Some(black) = settings.black {
        replace_black(video, &frames, &mut times, black)?;
    }
    if times.is_empty() {
        return Err(Refusal::Settings(
            "no frame of the video matches the settings".into(),
        ));
    }
    Ok(times)
}

type Refused = (FailureKind, String);

/// Makes pictures and sprite cells from frames, in output order.
struct Maker<'c, 'a> {
    ctx: &'c RunContext<'a>,
    job: &'c SnapshotJob,
    total: usize,
    made: usize,
    /// Picture size, fixed by the first frame.
    size: Option<(u32, u32)>,
    /// Cell size and the size of the picture inside it.
    cell: Option<((u32, u32), (u32, u32))>,
    sheet: Option<Picture>,
    cells_on_sheet: usize,
    /// An animation's frames so far.
    frames: Vec<Picture>,
}

impl<'c, 'a> Maker<'c, 'a> {
    fn new(ctx: &'c RunContext<'a>, job: &'c SnapshotJob, total: usize) -> Self {
        Self {
            ctx,
            job,
            total,
            made: 0,
            size: None,
            cell: None,
            sheet: None,
            cells_on_sheet: 0,
            frames: Vec::new(),
        }
    }

    fn settings(&self) -> &SnapshotSettings {
        &self.job.settings
    }

    fn layout(&self) -> Option<SpriteLayout> {
        self.settings()
            .sprite
            .filter(|_| self.settings().outputs.sprites())
    }

    fn take(
        &mut self,
        frame: &DecodedFrame,
        progress: &mut SnapshotProgress,
    ) -> Result<(), Refused> {
        let displayed = geometry::displayed_size(
            frame.coded_size(),
            frame.sample_aspect_ratio,
            frame.orientation,
        );
        if self.settings().outputs.pictures() {
            self.picture(frame, displayed, progress)?;
        }
        if let Some(animation) = self.settings().animation {
            self.animation_frame(frame, displayed, animation)?;
        }
        if let Some(layout) = self.layout() {
            self.sprite_cell(frame, displayed, layout, progress)?;
        }
        self.made += 1;
        Ok(())
    }

    fn picture(
        &mut self,
        frame: &DecodedFrame,
        displayed: (u32, u32),
        progress: &mut SnapshotProgress,
    ) -> Result<(), Refused> {
        let (width, height) = (self.settings().width, self.settings().height);
        let size = *self
            .size
            .get_or_insert_with(|| picture_size(displayed, width, height));
        let pattern = self.job.output.pictures.as_deref().unwrap_or_default();
        let name = OutputTarget::name(pattern, self.made);
        let format = format_of(&name);
        let picture = compose::fitted(frame, size, Fit::Stretch, picture_format_for(format))
            .map_err(internal)?;
        self.write(Kind::Picture, self.made, &picture, format)?;
        progress.pictures.push(name);
        Ok(())
    }

    fn sprite_cell(
        &mut self,
        frame: &DecodedFrame,
        displayed: (u32, u32),
        layout: SpriteLayout,
        progress: &mut SnapshotProgress,
    ) -> Result<(), Refused> {
        let (cell, inner) = *self.cell.get_or_insert_with(|| {
            let picture = self.size.unwrap_or_else(|| {
                let s = &self.job.settings;
                compose::template_size(displayed, s.width, s.height, false)
            });
            let asked = match (layout.cell_width, layout.cell_height) {
                (0, 0) => picture,
                (w, h) => compose::template_size(displayed, w, h, false),
            };
            match layout.fit {
                CellFit::Stretch => (asked, asked),
                CellFit::FitAndPad => (asked, compose::fit_inside(displayed, asked)),
                CellFit::Fit => {
                    let fitted = compose::fit_inside(displayed, asked);
                    (fitted, fitted)
                }
            }
        });
        let name = self.sheet_name(progress.sprites.len());
        let pf = picture_format_for(format_of(&name));
        if self.sheet.is_none() {
            let left = self.total - self.made;
            let cells = left.min(layout.cells());
            let lines = cells.div_ceil(layout.columns as usize) as u32;
            let sheet = sheet_size(layout, cell, lines);
            if sheet.0 > MAX_SHEET_SIDE || sheet.1 > MAX_SHEET_SIDE {
                return Err((
                    FailureKind::InvalidSettings,
                    format!(
                        "a sprite sheet would be {}x{}, more than {MAX_SHEET_SIDE} pixels on a side; \
                         use smaller cells or fewer columns or lines",
                        sheet.0, sheet.1
                    ),
                ));
            }
            self.sheet = Some(compose::colored(pf, sheet, layout.color));
            self.cells_on_sheet = 0;
        }
        let content = compose::fitted(frame, inner, Fit::Stretch, pf).map_err(internal)?;
        let n = self.cells_on_sheet as u32;
        let (col, line) = (n % layout.columns, n / layout.columns);
        let x = layout.margin + col * (cell.0 + layout.padding) + (cell.0 - inner.0) / 2;
        let y = layout.margin + line * (cell.1 + layout.padding) + (cell.1 - inner.1) / 2;
        let sheet = self.sheet.as_mut().expect("a sheet is open");
        compose::paste(sheet, &content, x, y);
        self.cells_on_sheet += 1;
        if self.cells_on_sheet == layout.cells() {
            self.flush_sheet(progress)?;
        }
        Ok(())
    }

    fn animation_frame(
        &mut self,
        frame: &DecodedFrame,
        displayed: (u32, u32),
        animation: AnimationSettings,
    ) -> Result<(), Refused> {
        let (width, height) = (self.settings().width, self.settings().height);
        let size = *self
            .size
            .get_or_insert_with(|| picture_size(displayed, width, height));
        let pixels = u64::from(size.0) * u64::from(size.1) * self.total as u64;
        if pixels > MAX_ANIMATION_PIXELS {
            return Err((
                FailureKind::InvalidSettings,
                format!(
                    "{} frames of {}x{} are more than {MAX_ANIMATION_PIXELS} pixels in all; \
                     lower Width/Height, the frame rate or Duration",
                    self.total, size.0, size.1
                ),
            ));
        }
        let picture = compose::fitted(frame, size, Fit::Stretch, animation.format.layout())
            .map_err(internal)?;
        self.frames.push(picture);
        Ok(())
    }

    /// Encodes the frames taken as the job's one animation, if it makes one.
    fn write_animation(&mut self, progress: &mut SnapshotProgress) -> Result<(), Refused> {
        let Some(animation) = self.settings().animation else {
            return Ok(());
        };
        let bytes = media::encode_animation(
            &self.frames,
            animation.format,
            animation.fps,
            animation.quality,
        )
        .map_err(internal)?;
        self.frames.clear();
        let name = self.job.output.pictures.clone().unwrap_or_default();
        self.put(Kind::Picture, 0, bytes, animation.format.content_type())?;
        progress.pictures.push(name);
        Ok(())
    }

    fn sheet_name(&self, n: usize) -> String {
        let pattern = self.job.output.sprites.as_deref().unwrap_or_default();
        OutputTarget::name(pattern, n)
    }

    /// Writes the open sprite sheet, if any.
    fn flush_sheet(&mut self, progress: &mut SnapshotProgress) -> Result<(), Refused> {
        let Some(sheet) = self.sheet.take() else {
            return Ok(());
        };
        let n = progress.sprites.len();
        let name = self.sheet_name(n);
        self.write(Kind::Sheet, n, &sheet, format_of(&name))?;
        progress.sprites.push(name);
        Ok(())
    }

    fn write(
        &self,
        kind: Kind,
        n: usize,
        picture: &Picture,
        format: ImageFormat,
    ) -> Result<(), Refused> {
        let bytes = media::encode(picture, format, self.ctx.limits.quality_for(format, None))
            .map_err(internal)?;
        self.put(kind, n, bytes, format.content_type())
    }

    /// Stages output `n` of `kind`.
    fn put(&self, kind: Kind, n: usize, bytes: Vec<u8>, content_type: &str) -> Result<(), Refused> {
        let key = staging_key(self.ctx.job_id, kind, n);
        self.ctx
            .handle
            .block_on(
                self.ctx
                    .output
                    .put_bytes(&key, Bytes::from(bytes), content_type),
            )
            .map(drop)
            .map_err(|e| {
                (
                    FailureKind::Internal,
                    format!("writing an output failed: {e}"),
                )
            })
    }
}

/// The size of the pictures `width` x `height` asks for (0: follow the
/// aspect ratio), at most 4096 a side.
fn picture_size(displayed: (u32, u32), width: u32, height: u32) -> (u32, u32) {
    let size = compose::template_size(displayed, width, height, false);
    if size.0 > 4096 || size.1 > 4096 {
        compose::fit_inside(size, (4096, 4096))
    } else {
        size
    }
}

fn internal(err: MediaError) -> Refused {
    (FailureKind::Internal, err.to_string())
}

/// The size of a sheet of `lines` lines of `cell`s.
fn sheet_size(layout: SpriteLayout, cell: (u32, u32), lines: u32) -> (u32, u32) {
    let side =
        |n: u32, cell: u32| 2 * layout.margin + n * cell + n.saturating_sub(1) * layout.padding;
    (side(layout.columns, cell.0), side(lines, cell.1))
}

/// Moves a succeeded job's staged outputs to their names in the output
/// bucket.
pub async fn publish(
    output: &Bucket,
    job_id: &str,
    progress: &SnapshotProgress,
) -> Result<(), StorageError> {
    let outputs = [
        (Kind::Picture, &progress.pictures),
        (Kind::Sheet, &progress.sprites),
    ];
    for (kind, names) in outputs {
        for (n, name) in names.iter().enumerate() {
            let staged = staging_key(job_id, kind, n);
            output.copy_from(output, &staged, name, None).await?;
            output.delete(&staged).await?;
        }
    }
    Ok(())
}

/// Removes what a failed or cancelled job staged: the outputs `progress`
/// names and, for what a crashed run may have written after its last saved
/// progress, a few more.
pub async fn discard(output: &Bucket, job_id: &str, progress: &SnapshotProgress) {
    const SLACK: usize = 16;
    let outputs = [
        (Kind::Picture, progress.pictures.len()),
        (Kind::Sheet, progress.sprites.len()),
    ];
    for (kind, written) in outputs {
        for n in 0..written + SLACK {
            if let Err(err) = output.delete(&staging_key(job_id, kind, n)).await {
                tracing::warn!(job = job_id, error = %err, "removing a staged output failed");
            }
        }
    }
}
