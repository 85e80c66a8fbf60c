//! What a task is asked to do ([`TaskRequest`] as submitted, [`TaskSpec`]
//! once its templates are resolved) and how far it got ([`TaskState`],
//! rewritten as it runs). Typed: the VOD adapter (`ops::vod`) reads and
//! writes them as API 3.0 JSON.

use serde::{Deserialize, Serialize};

use super::templates::{Kind, Template};

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
}

/// One subtask as asked for: the work and the template's Definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskRequest {
    /// What to make.
    pub work: Work,
    /// The template of [`Work::template_kind`].
    pub definition: u64,
}

/// The media a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRef {
    /// A FileId the gateway has recorded.
    FileId(String),
    /// An object key of the job bucket (recorded on first sight).
    Key(String),
}

/// A task as submitted, before its templates are resolved.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The media.
    pub media: MediaRef,
    /// The subtasks, in request order (at least one).
    pub subtasks: Vec<SubtaskRequest>,
    /// -10..=10.
    pub priority: i64,
    /// Which state changes make events.
    pub notify_mode: NotifyMode,
    /// Echoed in results and events, up to 1000 characters.
    pub session_context: String,
    /// Deduplicates submissions for three days, up to 50 characters.
    pub session_id: String,
}

impl TaskRequest {
    /// A request for `subtasks` on `media` with default options.
    pub fn new(media: MediaRef, subtasks: Vec<SubtaskRequest>) -> Self {
        Self {
            media,
            subtasks,
            priority: 0,
            notify_mode: NotifyMode::Finish,
            session_context: String::new(),
            session_id: String::new(),
        }
    }
}

/// The kinds of subtask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// An animated picture of a stretch of the media (frames a second
    /// from the template).
    AnimatedGraphic {
        /// Seconds from the start.
        start: f64,
        /// Seconds from the start, after `start`.
        end: f64,
    },
}

impl Work {
    /// The kind of template the work takes.
    pub fn template_kind(&self) -> Kind {
        match self {
            Work::SnapshotByTimeOffset { .. } | Work::CoverBySnapshot { .. } => {
                Kind::SnapshotByTimeOffset
            }
            Work::SampleSnapshot => Kind::SampleSnapshot,
            Work::ImageSprite => Kind::ImageSprite,
            Work::AnimatedGraphic { .. } => Kind::AnimatedGraphics,
        }
    }
}

/// A point in the media: seconds (as given, or in milliseconds), or
/// percent of the duration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Offset {
    /// Seconds from the start.
    Seconds(f64),
    /// Milliseconds from the start.
    Milliseconds(f64),
    /// Percent of the duration.
    Percent(f64),
}

impl Offset {
    /// Seconds from the start, given the duration.
    pub fn seconds(self, duration: f64) -> f64 {
        match self {
            Offset::Seconds(s) => s,
            Offset::Milliseconds(ms) => ms / 1000.0,
            Offset::Percent(p) => duration * p / 100.0,
        }
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
    /// Sprites: the cell size; animations: the frame size.
    pub cell: Option<(u32, u32)>,
    /// Animations: the file's size in bytes.
    #[serde(default)]
    pub bytes: u64,
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

impl TaskState {
    /// The task's error, VOD style: the abort's, else its first failed
    /// subtask's; `(0, "")` when nothing failed.
    pub fn error(&self) -> (i64, String) {
        let failed = self
            .subtasks
            .iter()
            .find(|s| s.status == SubtaskStatus::Fail);
        match (&self.abort_message, failed) {
            (Some(message), _) => (super::work::codes::INTERNAL_ERROR, message.clone()),
            (None, Some(first)) => (first.err_code, first.message.clone()),
            (None, None) => (0, String::new()),
        }
    }
}

/// What the gateway keeps about a media file besides its key (the body of
/// its media record, under these names since the first version).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MediaRecord {
    /// The key of its cover picture, once a cover subtask made one.
    #[serde(rename = "CoverKey", default, skip_serializing_if = "Option::is_none")]
    pub cover_key: Option<String>,
    /// Its media information, once a task probed it.
    #[serde(rename = "MetaData", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<crate::media::MediaInfo>,
}

/// A task as the adapters show it.
#[derive(Debug, Clone, Copy)]
pub struct TaskView<'a> {
    /// Its row (id, status, times).
    pub row: &'a super::store::TaskRow,
    /// What it asks for.
    pub spec: &'a TaskSpec,
    /// How far it got.
    pub state: &'a TaskState,
}

/// Renders the body of a task's state-change event (a wire format the core
/// does not know; the VOD adapter's).
pub type TaskEventRenderer = fn(&TaskView<'_>, &dyn UrlMaker) -> String;
