//! Snapshot jobs on a bucket's media queue, as typed operations: submit,
//! read, list and cancel jobs; the queue itself (pause, notification); the
//! media templates jobs may name. The CI wire adapter (`ops::ci`) maps
//! requests onto these and their results onto its XML.
//!
//! A job is a row of the one task table (kind `snapshot`): it is claimed,
//! leased, retried and recovered exactly as a VOD task is
//! ([`super::worker`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::params::now_ms;
use super::snapshot_job::{
    Callback, CallbackFormat, Mode, Outputs, SnapshotJob, SnapshotProgress, SnapshotSettings,
    SpriteLayout, TemplateRef,
};
use super::store::{
    decode_body, Cancellation, JobFilter, QueueRow, TaskKind, TaskRow, TaskStatus, TemplateRow,
};
use super::{JobError, Jobs, Missing};

/// Longest template name, characters.
pub const MAX_TEMPLATE_NAME: usize = 64;
/// Most jobs one read or list returns.
pub const MAX_PAGE: usize = 100;

/// Where a job is, as the media API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Queued.
    Submitted,
    /// Being made.
    Running,
    /// Made; outputs written.
    Success,
    /// Ended without outputs.
    Failed,
    /// Cancelled.
    Cancel,
}

impl JobState {
    fn of(status: TaskStatus, progress: &SnapshotProgress) -> Self {
        match status {
            TaskStatus::Waiting => JobState::Submitted,
            TaskStatus::Processing | TaskStatus::Cancelling => JobState::Running,
            TaskStatus::Finish if progress.failure.is_none() => JobState::Success,
            TaskStatus::Finish | TaskStatus::Aborted => JobState::Failed,
            TaskStatus::Cancelled => JobState::Cancel,
        }
    }

    /// The task statuses shown as this state.
    fn statuses(self) -> &'static [TaskStatus] {
        match self {
            JobState::Submitted => &[TaskStatus::Waiting],
            JobState::Running => &[TaskStatus::Processing, TaskStatus::Cancelling],
            JobState::Success | JobState::Failed => &[TaskStatus::Finish, TaskStatus::Aborted],
            JobState::Cancel => &[TaskStatus::Cancelled],
        }
    }
}

/// A job as it stands.
#[derive(Debug, Clone)]
pub struct JobView {
    /// `j…`.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// What it asks.
    pub job: SnapshotJob,
    /// How far it got.
    pub progress: SnapshotProgress,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms of the first start.
    pub started_ms: Option<i64>,
    /// Unix ms of the end.
    pub ended_ms: Option<i64>,
}

/// A job to submit: the settings inline or from a template.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job, its settings taken from `template_id` when that is set.
    pub job: SnapshotJob,
    /// A template to take the settings from.
    pub template_id: Option<String>,
    /// A key that makes a second submission of the same job find the
    /// first (workflow runs started again).
    pub dedupe: Option<String>,
}

/// Settings to be replaced by a template's at submission.
pub fn placeholder_settings() -> SnapshotSettings {
    SnapshotSettings {
        mode: Mode::Average,
        start: 0.0,
        count: 1,
        width: 0,
        height: 0,
        black: None,
        outputs: Outputs::Pictures,
        sprite: None,
        animation: None,
    }
}

/// A page of listed jobs.
#[derive(Debug, Clone)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobView>,
    /// The token of the next page (empty on the last).
    pub next_token: String,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// Only these states (empty: all).
    pub states: Vec<JobState>,
    /// Created at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Created at or before (unix ms).
    pub until_ms: Option<i64>,
    /// Oldest first.
    pub ascending: bool,
    /// 1..=[`MAX_PAGE`].
    pub size: usize,
    /// The previous page's `next_token`.
    pub next_token: String,
}

/// A bucket's media queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaQueue {
    /// `p…`.
    pub id: String,
    /// Its bucket.
    pub bucket: String,
    /// The queue's settings.
    pub settings: QueueSettings,
    /// Whether it starts no jobs.
    pub paused: bool,
}

/// What a queue keeps besides its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    /// Its name.
    pub name: String,
    /// Its notification of ended jobs.
    pub notify: Option<QueueNotify>,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms.
    pub updated_ms: i64,
}

/// A queue's notification of ended jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueNotify {
    /// Where.
    pub url: String,
    /// Which events, as the client named them.
    pub events: String,
    /// Body format.
    pub format: CallbackFormat,
    /// Whether it is on.
    pub enabled: bool,
}

/// A media template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaTemplate {
    /// `t…`.
    pub id: String,
    /// Unique per bucket.
    pub name: String,
    /// The `Snapshot` node it holds.
    pub settings: SnapshotSettings,
    /// Built in and read-only.
    pub official: bool,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms.
    pub updated_ms: i64,
}

/// Which templates to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateCategory {
    /// Made by users.
    Custom,
    /// Built in.
    Official,
}

/// A template listing request.
#[derive(Debug, Clone)]
pub struct TemplateQuery {
    /// Custom or official.
    pub category: TemplateCategory,
    /// Only these ids (empty: all).
    pub ids: Vec<String>,
    /// Only names containing this.
    pub name: Option<String>,
    /// 1-based.
    pub page_number: usize,
    /// 1..=[`MAX_PAGE`].
    pub page_size: usize,
}

/// A page of templates.
#[derive(Debug, Clone)]
pub struct TemplatePage {
    /// The templates.
    pub templates: Vec<MediaTemplate>,
    /// How many match.
    pub total: usize,
}

/// A stable id: `prefix` and 32 hex digits of a hash of `seed`.
fn derived_id(prefix: char, seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    format!("{prefix}{}", hex::encode(&digest[..16]))
}

/// A fresh id: `prefix` and 32 random hex digits.
pub(super) fn fresh_id(prefix: char) -> String {
    format!("{prefix}{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// The built-in templates.
fn official_templates() -> Vec<MediaTemplate> {
    let snapshot = |count, width| SnapshotSettings {
        mode: Mode::Average,
        start: 0.0,
        count,
        width,
        height: 0,
        black: None,
        outputs: Outputs::Pictures,
        sprite: None,
        animation: None,
    };
    let sprite = SnapshotSettings {
        mode: Mode::Interval {
            interval: Some(10.0),
            fill_count: true,
        },
        outputs: Outputs::Sprites,
        sprite: Some(SpriteLayout {
            cell_width: 160,
            cell_height: 0,
            padding: 0,
            margin: 0,
            color: [0, 0, 0],
            columns: 10,
            lines: 10,
            fit: super::snapshot_job::CellFit::Stretch,
        }),
        ..snapshot(100, 0)
    };
    [
        (
            "t0snapshotcover",
            "Official cover: 1 picture, 1280 wide",
            snapshot(1, 1280),
        ),
        (
            "t0snapshot10",
            "Official snapshot: 10 pictures, 640 wide",
            snapshot(10, 640),
        ),
        (
            "t0sprite10x10",
            "Official sprite: 100 cells of 160 wide",
            sprite,
        ),
    ]
    .into_iter()
    .map(|(id, name, settings)| MediaTemplate {
        id: id.into(),
        name: name.into(),
        settings,
        official: true,
        created_ms: 0,
        updated_ms: 0,
    })
    .collect()
}

impl Jobs {
    /// The id of `bucket`'s media queue.
    pub fn queue_id_of(bucket: &str) -> String {
        derived_id('p', &format!("queue/{bucket}"))
    }

    /// `bucket`'s media queue.
    pub async fn media_queue(&self, bucket: &str) -> Result<MediaQueue, JobError> {
        let id = Self::queue_id_of(bucket);
        let Some(row) = self.store.queue(&id).await? else {
            return Ok(MediaQueue {
                id,
                bucket: bucket.to_owned(),
                settings: QueueSettings {
                    name: "queue-1".into(),
                    notify: None,
                    created_ms: 0,
                    updated_ms: 0,
                },
                paused: false,
            });
        };
        Ok(MediaQueue {
            id,
            bucket: row.bucket,
            settings: decode_body(&row.body)?,
            paused: row.paused,
        })
    }

    /// Checks that `queue_id` is `bucket`'s queue.
    fn check_queue(bucket: &str, queue_id: &str) -> Result<(), JobError> {
        if queue_id != Self::queue_id_of(bucket) {
            return Err(JobError::missing(
                Missing::Queue,
                format!("the bucket {bucket} has no queue {queue_id:?}"),
            ));
        }
        Ok(())
    }

    /// Changes `bucket`'s queue; resuming it wakes the workers.
    pub async fn update_media_queue(
        &self,
        bucket: &str,
        queue_id: &str,
        change: impl FnOnce(&mut MediaQueue),
    ) -> Result<MediaQueue, JobError> {
        Self::check_queue(bucket, queue_id)?;
        let mut queue = self.media_queue(bucket).await?;
        change(&mut queue);
        let now = now_ms();
        if queue.settings.created_ms == 0 {
            queue.settings.created_ms = now;
        }
        queue.settings.updated_ms = now;
        let row = QueueRow {
            queue_id: queue.id.clone(),
            bucket: bucket.to_owned(),
            body: serde_json::to_string(&queue.settings).expect("queue JSON"),
            paused: queue.paused,
        };
        self.store.set_queue(&row, now).await?;
        if !queue.paused {
            self.wake.notify_waiters();
        }
        tracing::info!(queue = %queue.id, paused = queue.paused, "media queue updated");
        Ok(queue)
    }

    // ------------------------------------------------------------ templates

    /// A template of `bucket` (custom) or a built-in one.
    pub async fn media_template(&self, bucket: &str, id: &str) -> Result<MediaTemplate, JobError> {
        if let Some(t) = official_templates().into_iter().find(|t| t.id == id) {
            return Ok(t);
        }
        self.custom_media_templates(bucket)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| {
                JobError::missing(Missing::Template, format!("there is no template {id:?}"))
            })
    }

    async fn custom_media_templates(&self, bucket: &str) -> Result<Vec<MediaTemplate>, JobError> {
        self.store
            .media_templates(bucket)
            .await?
            .iter()
            .map(|row| Ok(decode_body(&row.body)?))
            .collect()
    }

    /// Lists templates.
    pub async fn media_templates(
        &self,
        bucket: &str,
        query: &TemplateQuery,
    ) -> Result<TemplatePage, JobError> {
        let all = match query.category {
            TemplateCategory::Official => official_templates(),
            TemplateCategory::Custom => self.custom_media_templates(bucket).await?,
        };
        let matching: Vec<MediaTemplate> = all
            .into_iter()
            .filter(|t| query.ids.is_empty() || query.ids.contains(&t.id))
            .filter(|t| {
                query
                    .name
                    .as_ref()
                    .is_none_or(|n| t.name.contains(n.as_str()))
            })
            .collect();
        let total = matching.len();
        let skip = (query.page_number.max(1) - 1) * query.page_size;
        Ok(TemplatePage {
            templates: matching
                .into_iter()
                .skip(skip)
                .take(query.page_size)
                .collect(),
            total,
        })
    }

    /// Creates a template.
    pub async fn create_media_template(
        &self,
        bucket: &str,
        name: &str,
        settings: SnapshotSettings,
    ) -> Result<MediaTemplate, JobError> {
        check_template_name(name)?;
        let now = now_ms();
        let template = MediaTemplate {
            id: fresh_id('t'),
            name: name.to_owned(),
            settings,
            official: false,
            created_ms: now,
            updated_ms: now,
        };
        let row = template_row(bucket, &template);
        if !self.store.insert_media_template(&row, now).await? {
            return Err(JobError::invalid(
                "Name",
                format!("a template named {name:?} exists already"),
            ));
        }
        Ok(template)
    }

    /// Replaces a custom template's name and settings.
    pub async fn update_media_template(
        &self,
        bucket: &str,
        id: &str,
        name: &str,
        settings: SnapshotSettings,
    ) -> Result<MediaTemplate, JobError> {
        check_template_name(name)?;
        let mut template = self.writable_template(bucket, id).await?;
        template.name = name.to_owned();
        template.settings = settings;
        template.updated_ms = now_ms();
        if !self
            .store
            .update_media_template(&template_row(bucket, &template), template.updated_ms)
            .await?
        {
            return Err(JobError::invalid(
                "Name",
                format!("a template named {name:?} exists already"),
            ));
        }
        Ok(template)
    }

    /// Deletes a custom template.
    pub async fn delete_media_template(&self, bucket: &str, id: &str) -> Result<(), JobError> {
        self.writable_template(bucket, id).await?;
        self.store.delete_media_template(bucket, id).await?;
        Ok(())
    }

    async fn writable_template(&self, bucket: &str, id: &str) -> Result<MediaTemplate, JobError> {
        let template = self.media_template(bucket, id).await?;
        if template.official {
            return Err(JobError::Conflict {
                message: format!("the official template {id} cannot be changed or deleted"),
            });
        }
        Ok(template)
    }

    // ----------------------------------------------------------------- jobs

    /// Validates and queues a job; returns it as it stands.
    pub async fn submit_snapshot_job(&self, new: NewJob) -> Result<JobView, JobError> {
        let mut job = new.job;
        Self::check_queue(&job.bucket, &job.queue_id)?;
        if let Some(id) = &new.template_id {
            let template = self.media_template(&job.bucket, id).await?;
            job.settings = template.settings;
            job.template = Some(TemplateRef {
                id: template.id,
                name: template.name,
            });
        }
        job.settings.validate("Operation.Snapshot")?;
        if let Some(layout) = &job.settings.sprite {
            layout.validate("Operation.Snapshot.SpriteSnapshotConfig")?;
        }
        job.validate_output()?;
        let id = fresh_id('j');
        let now = now_ms();
        let progress = SnapshotProgress::default();
        let row = TaskRow {
            seq: 0,
            task_id: id.clone(),
            kind: TaskKind::Snapshot,
            status: TaskStatus::Waiting,
            queue_id: Some(job.queue_id.clone()),
            priority: job.level,
            file_id: super::file_id(&job.bucket, &job.key),
            session_id: new.dedupe.clone(),
            created_ms: now,
            begin_ms: None,
            finish_ms: None,
            attempts: 0,
            spec: serde_json::to_string(&job).expect("job JSON"),
            state: serde_json::to_string(&progress).expect("progress JSON"),
        };
        // A dedupe key is never released (the window starts at the
        // beginning of time).
        if let Some(existing) = self.store.insert_task(&row, i64::MIN).await? {
            let (mut found, _) = self.snapshot_jobs(&job.bucket, &[existing]).await?;
            return found.pop().ok_or_else(|| {
                JobError::missing(Missing::Job, "the job submitted before is gone")
            });
        }
        tracing::info!(job = %id, key = %job.key, level = job.level, "snapshot job queued");
        self.wake.notify_one();
        Ok(JobView {
            id,
            state: JobState::Submitted,
            job,
            progress,
            created_ms: now,
            started_ms: None,
            ended_ms: None,
        })
    }

    /// The jobs of `bucket` with these ids, and the ids there are none of.
    pub async fn snapshot_jobs(
        &self,
        bucket: &str,
        ids: &[String],
    ) -> Result<(Vec<JobView>, Vec<String>), JobError> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.snapshot_job(bucket, id).await? {
                Some(view) => found.push(view),
                None => missing.push(id.clone()),
            }
        }
        Ok((found, missing))
    }

    async fn snapshot_job(&self, bucket: &str, id: &str) -> Result<Option<JobView>, JobError> {
        let Some(row) = self.store.task(id).await? else {
            return Ok(None);
        };
        let view = job_view(&row)?;
        Ok(view.filter(|v| v.job.bucket == bucket))
    }

    /// Lists `bucket`'s jobs.
    pub async fn list_snapshot_jobs(
        &self,
        bucket: &str,
        query: &JobQuery,
    ) -> Result<JobPage, JobError> {
        let after_seq = match query.next_token.as_str() {
            "" => None,
            token => Some(token.parse::<i64>().map_err(|_| {
                JobError::invalid("nextToken", "is not a token this gateway gave out")
            })?),
        };
        let mut statuses: Vec<TaskStatus> = query
            .states
            .iter()
            .flat_map(|s| s.statuses().iter().copied())
            .collect();
        statuses.dedup();
        let filter = JobFilter {
            queue_id: Self::queue_id_of(bucket),
            statuses,
            since_ms: query.since_ms,
            until_ms: query.until_ms,
            ascending: query.ascending,
            after_seq,
            // One more than asked says whether there is a next page.
            limit: query.size as i64 + 1,
        };
        let rows = self
            .store
            .tasks_of_queue(TaskKind::Snapshot, &filter)
            .await?;
        let mut jobs = Vec::new();
        let mut last_seq = None;
        for row in rows.iter().take(query.size) {
            // Success and Failed share statuses: keep only what was asked.
            if let Some(view) = job_view(row)? {
                last_seq = Some(row.seq);
                if query.states.is_empty() || query.states.contains(&view.state) {
                    jobs.push(view);
                }
            }
        }
        let next_token = match (rows.len() > query.size, last_seq) {
            (true, Some(seq)) => seq.to_string(),
            _ => String::new(),
        };
        Ok(JobPage { jobs, next_token })
    }

    /// Cancels a job: a queued one never starts; a running one stops before
    /// its next picture and its outputs are removed.
    pub async fn cancel_snapshot_job(&self, bucket: &str, id: &str) -> Result<(), JobError> {
        let not_found =
            || JobError::missing(Missing::Job, format!("there is no job {id:?} in {bucket}"));
        let view = self.snapshot_job(bucket, id).await?.ok_or_else(not_found)?;
        match self.store.cancel(id, now_ms()).await? {
            Cancellation::Cancelled => {
                tracing::info!(job = id, "queued snapshot job cancelled");
                let row = self.store.task(id).await?.ok_or_else(not_found)?;
                if let Some(view) = job_view(&row)? {
                    self.record_job_end(&view).await?;
                }
                Ok(())
            }
            Cancellation::Stopping => {
                tracing::info!(job = id, "running snapshot job asked to stop");
                Ok(())
            }
            Cancellation::TooLate(TaskStatus::Cancelling) => Ok(()),
            Cancellation::TooLate(_) => Err(JobError::Conflict {
                message: format!(
                    "the job {id} has ended ({:?}); only submitted or running jobs can be cancelled",
                    view.state
                ),
            }),
            Cancellation::NotFound => Err(not_found()),
        }
    }

    /// Records the callback of an ended job, if it has somewhere to go
    /// (the job's own `CallBack`, else its queue's notification).
    pub async fn record_job_end(&self, view: &JobView) -> Result<(), JobError> {
        let Some(event) = self.job_end_event(view).await? else {
            return Ok(());
        };
        self.store.insert_event(&event).await?;
        self.event_added();
        Ok(())
    }

    /// The callback event of an ended job, if there is one to send.
    pub async fn job_end_event(
        &self,
        view: &JobView,
    ) -> Result<Option<super::store::NewEvent>, JobError> {
        let callback = match &view.job.callback {
            Some(callback) => Some(callback.clone()),
            None => self
                .media_queue(&view.job.bucket)
                .await?
                .settings
                .notify
                .filter(|n| n.enabled && !n.url.is_empty())
                .map(|n| Callback {
                    url: n.url,
                    format: n.format,
                }),
        };
        let Some(callback) = callback else {
            return Ok(None);
        };
        let (body, content_type) = (self.job_renderer)(view, callback.format);
        Ok(Some(super::store::NewEvent {
            event_id: format!("evt-{}", hex::encode(rand::random::<[u8; 12]>())),
            task_id: view.id.clone(),
            created_ms: now_ms(),
            body,
            push: true,
            target: Some(super::store::PushTarget {
                url: callback.url,
                content_type: content_type.to_owned(),
            }),
        }))
    }
}

/// Renders a job-end callback body in a format: the wire adapter's, given
/// to [`Jobs::open`], so the core stays free of wire formats.
pub type JobRenderer = fn(&JobView, CallbackFormat) -> (String, &'static str);

fn check_template_name(name: &str) -> Result<(), JobError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_TEMPLATE_NAME {
        return Err(JobError::invalid(
            "Name",
            format!("must be 1 to {MAX_TEMPLATE_NAME} characters"),
        ));
    }
    Ok(())
}

fn template_row(bucket: &str, template: &MediaTemplate) -> TemplateRow {
    TemplateRow {
        template_id: template.id.clone(),
        bucket: bucket.to_owned(),
        name: template.name.clone(),
        body: serde_json::to_string(template).expect("template JSON"),
    }
}

/// The view of a snapshot job's row (`None` for other kinds).
pub fn job_view(row: &TaskRow) -> Result<Option<JobView>, JobError> {
    if row.kind != TaskKind::Snapshot {
        return Ok(None);
    }
    let job: SnapshotJob = decode_body(&row.spec)?;
    let progress: SnapshotProgress = decode_body(&row.state)?;
    Ok(Some(JobView {
        id: row.task_id.clone(),
        state: JobState::of(row.status, &progress),
        job,
        progress,
        created_ms: row.created_ms,
        started_ms: row.begin_ms,
        ended_ms: row.finish_ms,
    }))
}
