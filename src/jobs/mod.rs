//! The typed job core: screenshot work on a durable queue, reached by two
//! wire dialects — the VOD API 3.0 (`ops::vod`: templates, `ProcessMedia`
//! tasks, events, procedures) and the CI media API (`ops::ci`: jobs,
//! templates, queues, workflows). Nothing here reads or writes either
//! dialect's documents; the adapters install renderers for what the core
//! sends by itself (events and callbacks, [`Renderers`]).
//!
//! - [`templates`]: the three template kinds, ranges and presets (pure);
//! - [`task`]: what a VOD task asks for and how far it got;
//! - [`snapshot_job`] / [`snapshot_run`]: the CI screenshot job and its run;
//! - [`media_queue`], [`workflow`]: CI queues, templates, workflows;
//! - [`store`]: SQL tables (SQLite or PostgreSQL); the queue is the task
//!   table, shared by both kinds;
//! - [`worker`]: claims tasks with a lease, runs them on idle-priority
//!   threads, renews the lease, saves progress;
//! - [`work`]: the media side of one VOD task (one pass over the video);
//! - [`events`]: task events, callbacks, pulls;
//! - [`flows`]: procedures (stored task sets) and upload triggers.

pub mod events;
pub mod flows;
pub mod frame_pick;
pub mod media_queue;
pub mod params;
pub mod snapshot_job;
pub mod snapshot_run;
pub mod store;
pub mod task;
pub mod templates;
pub mod upload_session;
pub mod work;
pub mod worker;
pub mod workflow;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;

use crate::config::{BucketAcl, Config, CredentialConfig, EventsConfig, JobsConfig, TriggerConfig};
use crate::presign::{self, PresignRequest, Style};
use params::now_ms;
use store::{Store, StoreError, TaskKind, TaskRow, TaskStatus};
use task::{
    MediaRecord, MediaRef, Subtask, TaskEventRenderer, TaskRequest, TaskSpec, TaskState, TaskView,
    UrlMaker,
};
use templates::{Kind, Template, TemplateFields};

/// Why a job request was refused. `crate::error` maps each to its API 3.0
/// code.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A parameter has a value outside its documented range.
    #[error("{field}: {message}")]
    InvalidParameterValue {
        /// The field, as in `InvalidParameterValue.<field>`.
        field: String,
        /// What is allowed.
        message: String,
    },
    /// A required parameter is absent.
    #[error("the parameter {field} is required")]
    MissingParameter {
        /// Its name.
        field: String,
    },
    /// A parameter has the wrong JSON type or the request is malformed.
    #[error("{message}")]
    InvalidParameter {
        /// What is wrong.
        message: String,
    },
    /// The request names something that does not exist.
    #[error("{message}")]
    NotFound {
        /// What kind of thing.
        what: Missing,
        /// Which one.
        message: String,
    },
    /// The request conflicts with the state of what it names (cancelling
    /// an ended job, changing an official template).
    #[error("{message}")]
    Conflict {
        /// What is wrong.
        message: String,
    },
    /// Something on our side failed (storage, a damaged record).
    #[error("{message}")]
    Internal {
        /// What failed.
        message: String,
    },
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl JobError {
    /// `InvalidParameterValue.<field>` with a message.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::InvalidParameterValue {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// `what` does not exist.
    pub fn missing(what: Missing, message: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            message: message.into(),
        }
    }
}

/// The kinds of things a request may name that do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A template.
    Template,
    /// A VOD task.
    Task,
    /// A media file (FileId).
    File,
    /// A procedure.
    Procedure,
    /// A media queue.
    Queue,
    /// A media job.
    Job,
    /// A workflow.
    Workflow,
    /// An object.
    Object,
    /// A bucket.
    Bucket,
}

/// The stable FileId of an object: 19 decimal digits derived from the
/// bucket and key, as VOD FileIds look.
pub fn file_id(bucket: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(bucket.as_bytes())
        .chain_update(b"/")
        .chain_update(key.as_bytes())
        .finalize();
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    // 10^18 .. 10^19: always 19 digits.
    (1_000_000_000_000_000_000 + n % 9_000_000_000_000_000_000).to_string()
}

/// The job system of one gateway.
pub struct Jobs {
    store: Store,
    config: JobsConfig,
    /// The bucket of `MediaStoragePath` and outputs.
    bucket: String,
    /// This gateway's identity in leases (persisted in the data directory).
    node: String,
    /// Wakes idle workers when a task is queued here.
    wake: Notify,
    /// Wakes everything waiting when the gateway stops.
    stopped: Notify,
    /// `http://host:port` the gateway answers on, once bound.
    endpoint: OnceLock<String>,
    url_credential: Option<CredentialConfig>,
    region: String,
    public_buckets: Vec<String>,
    /// Raised on shutdown: workers stop taking tasks and interrupt theirs.
    stopping: Arc<AtomicBool>,
    /// Tasks running in this gateway, and a signal when one ends.
    running: AtomicUsize,
    task_ended: Notify,
    /// Event settings.
    events: EventsConfig,
    /// Wakes long polls and the callback loop when an event is recorded.
    events_notify: Notify,
    /// Upload rules.
    triggers: Vec<TriggerConfig>,
    /// Renders CI job-end callbacks (the CI adapter's).
    job_renderer: media_queue::JobRenderer,
    /// Renders VOD task events (the VOD adapter's).
    task_renderer: TaskEventRenderer,
}

/// The wire adapters' renderers of what the core sends out by itself:
/// callbacks and events.
#[derive(Debug, Clone, Copy)]
pub struct Renderers {
    /// A CI job's end, for its callback.
    pub job_end: media_queue::JobRenderer,
    /// A VOD task's state change, for its event.
    pub task_event: TaskEventRenderer,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("store", &self.store.dialect())
            .field("bucket", &self.bucket)
            .field("node", &self.node)
            .finish()
    }
}

impl Jobs {
    /// Opens the job store of `config` and takes back the tasks this node
    /// held when it last stopped. `renderers` make the bodies of events
    /// and callbacks (wire formats the core does not know).
    pub async fn open(config: &Config, renderers: Renderers) -> Result<Self, String> {
        let jobs = config.jobs.clone();
        let url = if jobs.store == "sqlite" {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| format!("data directory {}: {e}", config.data_dir.display()))?;
            Store::sqlite_url(&config.data_dir.join("jobs.sqlite3"))
        } else {
            jobs.store.clone()
        };
        let store = Store::open(&url)
            .await
            .map_err(|e| format!("cannot open the job store: {e}"))?;
        let node = node_id(&config.data_dir)
            .map_err(|e| format!("node id in {}: {e}", config.data_dir.display()))?;
        let released = store
            .release_node(&node)
            .await
            .map_err(|e| format!("job store: {e}"))?;
        if released > 0 {
            tracing::info!(
                tasks = released,
                "resuming tasks interrupted by the last stop"
            );
        }
        let url_credential = match &jobs.url_credential {
            Some(id) => Some(
                config
                    .credentials
                    .iter()
                    .find(|c| &c.secret_id == id)
                    .cloned()
                    .ok_or_else(|| format!("jobs.url_credential {id:?} is not a credential"))?,
            ),
            None => config.credentials.first().cloned(),
        };
        Ok(Self {
            store,
            bucket: jobs
                .bucket
                .clone()
                .unwrap_or_else(|| config.default_bucket.clone()),
            config: jobs,
            node,
            wake: Notify::new(),
            stopped: Notify::new(),
            endpoint: OnceLock::new(),
            url_credential,
            region: config.region.clone(),
            public_buckets: config
                .buckets
                .iter()
                .filter(|b| b.acl != BucketAcl::Private)
                .map(|b| b.name.clone())
                .collect(),
            stopping: Arc::new(AtomicBool::new(false)),
            running: AtomicUsize::new(0),
            task_ended: Notify::new(),
            events: config.events.clone(),
            events_notify: Notify::new(),
            triggers: config.triggers.clone(),
            job_renderer: renderers.job_end,
            task_renderer: renderers.task_event,
        })
    }

    /// Records the address the gateway answers on (for output URLs).
    pub fn set_endpoint(&self, address: std::net::SocketAddr) {
        let host = if address.ip().is_unspecified() {
            format!("127.0.0.1:{}", address.port())
        } else {
            address.to_string()
        };
        let _ = self.endpoint.set(format!("http://{host}"));
    }

    /// The job configuration.
    pub fn config(&self) -> &JobsConfig {
        &self.config
    }

    // ------------------------------------------------------------ templates

    async fn all_templates(&self) -> Result<HashMap<(Kind, u64), Template>, JobError> {
        let mut map = HashMap::new();
        for kind in Kind::ALL {
            map.insert(
                (kind, templates::PRESET_DEFINITION),
                templates::preset(kind),
            );
            for body in self.store.templates(kind.key()).await? {
                if let Ok(t) = serde_json::from_str::<Template>(&body) {
                    map.insert((kind, t.definition), t);
                }
            }
        }
        Ok(map)
    }

    /// Creates a custom template; returns its Definition.
    pub async fn create_template(
        &self,
        kind: Kind,
        fields: &TemplateFields,
    ) -> Result<u64, JobError> {
        let mut template = Template::create(kind, fields)?;
        let now = now_ms();
        template.created_ms = now;
        template.updated_ms = now;
        let definition = self
            .store
            .insert_template(
                kind.key(),
                templates::FIRST_CUSTOM_DEFINITION as i64,
                |definition| {
                    let t = Template {
                        definition: definition as u64,
                        ..template.clone()
                    };
                    serde_json::to_string(&t).expect("template JSON")
                },
            )
            .await?;
        Ok(definition as u64)
    }

    /// The presets and custom templates of `kind` that `wanted` selects,
    /// by Definition.
    pub async fn templates(
        &self,
        kind: Kind,
        wanted: &TemplateQuery,
    ) -> Result<Vec<Template>, JobError> {
        let mut all: Vec<Template> = self
            .all_templates()
            .await?
            .into_values()
            .filter(|t| t.kind == kind)
            .filter(|t| {
                wanted
                    .definitions
                    .as_ref()
                    .is_none_or(|w| w.contains(&t.definition))
            })
            .filter(|t| wanted.preset.is_none_or(|preset| t.preset == preset))
            .collect();
        all.sort_by_key(|t| t.definition);
        Ok(all)
    }

    async fn custom_template(&self, kind: Kind, definition: u64) -> Result<Template, JobError> {
        if definition == templates::PRESET_DEFINITION {
            return Err(JobError::invalid(
                "Definition",
                "preset templates are read-only; create a custom template instead",
            ));
        }
        let body = self
            .store
            .template(kind.key(), definition as i64)
            .await?
            .ok_or_else(|| JobError::NotFound {
                what: Missing::Template,
                message: format!("there is no {} with Definition {definition}", kind.name()),
            })?;
        Ok(store::decode_body(&body)?)
    }

    /// Changes a custom template.
    pub async fn modify_template(
        &self,
        kind: Kind,
        definition: u64,
        fields: &TemplateFields,
    ) -> Result<(), JobError> {
        let mut template = self.custom_template(kind, definition).await?;
        template.apply(fields)?;
        template.updated_ms = now_ms();
        let body = serde_json::to_string(&template).expect("template JSON");
        self.store
            .update_template(kind.key(), template.definition as i64, &body)
            .await?;
        Ok(())
    }

    /// Deletes a custom template.
    pub async fn delete_template(&self, kind: Kind, definition: u64) -> Result<(), JobError> {
        let template = self.custom_template(kind, definition).await?;
        self.store
            .delete_template(kind.key(), template.definition as i64)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- tasks

    /// Validates a task, resolves its templates and queues it; returns its
    /// TaskId at once (an earlier task's, for a repeated SessionId).
    pub async fn submit(&self, request: TaskRequest) -> Result<String, JobError> {
        // Everything is checked before the media is recorded: a refused
        // request writes nothing.
        if !(-10..=10).contains(&request.priority) {
            return Err(JobError::invalid("TasksPriority", "must be from -10 to 10"));
        }
        params::check_len("SessionContext", &request.session_context, 1000)?;
        params::check_len("SessionId", &request.session_id, 50)?;
        let subtasks = self.resolve_subtasks(&request.subtasks).await?;
        let (bucket, key, file_id) = self.resolve_media(&request.media).await?;
        let spec = TaskSpec {
            bucket,
            key,
            file_id,
            subtasks,
            priority: request.priority,
            notify_mode: request.notify_mode,
            session_context: request.session_context,
            session_id: request.session_id,
        };
        self.queue_task(spec).await
    }

    /// The subtasks with their templates, as they are now.
    async fn resolve_subtasks(
        &self,
        requests: &[task::SubtaskRequest],
    ) -> Result<Vec<Subtask>, JobError> {
        if requests.is_empty() {
            return Err(JobError::MissingParameter {
                field: "MediaProcessTask (at least one screenshot task)".into(),
            });
        }
        let all = self.all_templates().await?;
        requests
            .iter()
            .map(|sub| {
                let kind = sub.work.template_kind();
                let template = all.get(&(kind, sub.definition)).cloned().ok_or_else(|| {
                    JobError::missing(
                        Missing::Template,
                        format!(
                            "there is no {} with Definition {}",
                            kind.name(),
                            sub.definition
                        ),
                    )
                })?;
                check_animation(&sub.work, &template)?;
                Ok(Subtask {
                    work: sub.work.clone(),
                    template,
                })
            })
            .collect()
    }

    /// Checks that subtasks name templates that exist.
    pub async fn check_subtasks(&self, requests: &[task::SubtaskRequest]) -> Result<(), JobError> {
        self.resolve_subtasks(requests).await.map(drop)
    }

    async fn queue_task(&self, spec: TaskSpec) -> Result<String, JobError> {
        let now = now_ms();
        // A SessionId deduplicates submissions for three days.
        let session_since = now - 3 * 24 * 3600 * 1000;
        let state = TaskState::waiting(&spec);
        let task_id = format!(
            "{}-Procedure-{}t0",
            self.config.app_id,
            hex::encode(rand::random::<[u8; 16]>())
        );
        let duplicate = self
            .store
            .insert_task(
                &TaskRow {
                    seq: 0,
                    task_id: task_id.clone(),
                    kind: TaskKind::MediaProcess,
                    status: TaskStatus::Waiting,
                    queue_id: None,
                    priority: spec.priority,
                    file_id: spec.file_id.clone(),
                    session_id: (!spec.session_id.is_empty()).then(|| spec.session_id.clone()),
                    created_ms: now,
                    begin_ms: None,
                    finish_ms: None,
                    attempts: 0,
                    spec: serde_json::to_string(&spec).expect("spec JSON"),
                    state: serde_json::to_string(&state).expect("state JSON"),
                },
                session_since,
            )
            .await?;
        if let Some(existing) = duplicate {
            tracing::info!(task = %existing, session = %spec.session_id, "duplicate submission");
            return Ok(existing);
        }
        tracing::info!(task = %task_id, key = %spec.key, priority = spec.priority, "task queued");
        self.wake.notify_one();
        Ok(task_id)
    }

    /// The bucket, key and FileId `media` names (recording a key's media on
    /// first sight).
    pub async fn resolve_media(
        &self,
        media: &MediaRef,
    ) -> Result<(String, String, String), JobError> {
        match media {
            MediaRef::FileId(id) => {
                let media = self.store.media(id).await?.ok_or_else(|| {
                    JobError::missing(Missing::File, format!("there is no media with FileId {id}"))
                })?;
                Ok((media.bucket, media.key, media.file_id))
            }
            MediaRef::Key(key) => {
                if key.is_empty()
                    || key.len() > 850
                    || key
                        .split('/')
                        .any(|s| s.is_empty() || s == "." || s == "..")
                {
                    return Err(JobError::invalid(
                        "MediaStoragePath",
                        "must be an object key such as /videos/clip.mp4",
                    ));
                }
                let id = file_id(&self.bucket, key);
                self.store
                    .ensure_media(&id, &self.bucket, key, now_ms())
                    .await?;
                Ok((self.bucket.clone(), key.clone(), id))
            }
        }
    }

    /// A VOD task (with its spec and state) by TaskId.
    pub async fn task(&self, task_id: &str) -> Result<(TaskRow, TaskSpec, TaskState), JobError> {
        let not_found = || JobError::missing(Missing::Task, format!("there is no task {task_id}"));
        let row = self.store.task(task_id).await?.ok_or_else(not_found)?;
        if row.kind != TaskKind::MediaProcess {
            return Err(not_found());
        }
        let (spec, state) = decode_task(&row)?;
        Ok((row, spec, state))
    }

    /// The newest VOD tasks, optionally by status and FileId (rows only).
    pub async fn tasks(
        &self,
        status: Option<TaskStatus>,
        file_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskRow>, JobError> {
        Ok(self
            .store
            .tasks(TaskKind::MediaProcess, status, file_id, limit)
            .await?)
    }

    /// What the gateway knows about a media file: bucket, key and record;
    /// `None` for an unknown FileId.
    pub async fn media_record(
        &self,
        file_id: &str,
    ) -> Result<Option<(store::MediaRow, MediaRecord)>, JobError> {
        Ok(self.store.media(file_id).await?.map(|row| {
            let record = serde_json::from_str(&row.body).unwrap_or_default();
            (row, record)
        }))
    }

    /// The bucket and WebVTT key of the newest successful sprite output for
    /// a media file.
    pub async fn latest_sprite_vtt(
        &self,
        file_id: &str,
    ) -> Result<Option<(String, String)>, JobError> {
        for row in self
            .store
            .tasks(
                TaskKind::MediaProcess,
                Some(TaskStatus::Finish),
                Some(file_id),
                50,
            )
            .await?
        {
            let (spec, state) = decode_task(&row)?;
            let found = spec
                .subtasks
                .iter()
                .zip(&state.subtasks)
                .filter(|(sub, st)| {
                    matches!(sub.work, task::Work::ImageSprite)
                        && st.status == task::SubtaskStatus::Success
                })
                .find_map(|(_, st)| st.output.vtt.clone());
            if let Some(vtt) = found {
                return Ok(Some((spec.bucket, vtt)));
            }
        }
        Ok(None)
    }

    /// Queues (once per object version) the sprite job of the demo page
    /// for `key`: 160-pixel cells, one a second, under a custom template
    /// named `demo-previews` (created on first use).
    pub async fn ensure_demo_previews(&self, key: &str, etag: &str) -> Result<String, JobError> {
        let existing = self
            .store
            .templates(Kind::ImageSprite.key())
            .await?
            .iter()
            .filter_map(|b| serde_json::from_str::<Template>(b).ok())
            .find(|t| t.name == "demo-previews")
            .map(|t| t.definition);
        let definition = match existing {
            Some(d) => d,
            None => {
                let fields = TemplateFields {
                    name: Some("demo-previews".into()),
                    sample_type: Some(templates::SampleType::Time),
                    sample_interval: Some(1),
                    rows: Some(5),
                    columns: Some(5),
                    width: Some(160),
                    height: Some(0),
                    ..TemplateFields::default()
                };
                self.create_template(Kind::ImageSprite, &fields).await?
            }
        };
        let sprites = task::SubtaskRequest {
            work: task::Work::ImageSprite,
            definition,
        };
        let request = TaskRequest {
            session_id: format!("demo-{}", &etag[..etag.len().min(40)]),
            notify_mode: task::NotifyMode::None,
            ..TaskRequest::new(MediaRef::Key(key.to_owned()), vec![sprites])
        };
        self.submit(request).await
    }

    /// The body of the event for a task's state, made by the installed
    /// renderer.
    pub fn task_event_body(&self, row: &TaskRow, spec: &TaskSpec, state: &TaskState) -> String {
        (self.task_renderer)(&TaskView { row, spec, state }, self)
    }
}

/// Refuses an animation of more frames than one may have (checked again,
/// against the media's real length, when it runs).
fn check_animation(work: &task::Work, template: &Template) -> Result<(), JobError> {
    if let task::Work::AnimatedGraphic { start, end } = work {
        let frames = ((end - start) * f64::from(template.fps.max(1))).ceil();
        if frames > templates::MAX_ANIMATION_FRAMES as f64 {
            return Err(JobError::invalid(
                "EndTimeOffset",
                format!(
                    "{frames} frames at {} fps; an animation has at most {}",
                    template.fps,
                    templates::MAX_ANIMATION_FRAMES
                ),
            ));
        }
    }
    Ok(())
}

/// Which templates a listing selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateQuery {
    /// These Definitions only.
    pub definitions: Option<Vec<u64>>,
    /// Presets only (`Some(true)`) or custom ones only (`Some(false)`).
    pub preset: Option<bool>,
}

impl UrlMaker for Jobs {
    /// Path-style URLs: plain for public buckets, else pre-signed (COS
    /// q-sign) for `url_expiry_secs`, made when the result is read so they
    /// are always fresh.
    fn url(&self, bucket: &str, key: &str) -> String {
        let endpoint = self
            .config
            .url_base
            .clone()
            .or_else(|| self.endpoint.get().cloned())
            .unwrap_or_else(|| "http://127.0.0.1:8080".into());
        let endpoint = endpoint.trim_end_matches('/');
        let plain = || {
            format!(
                "{endpoint}/{bucket}/{}",
                crate::proto::sign::uri_encode(key.as_bytes(), true)
            )
        };
        if self.public_buckets.iter().any(|b| b == bucket) {
            return plain();
        }
        let Some(credential) = &self.url_credential else {
            return plain();
        };
        let request = PresignRequest {
            endpoint,
            method: "GET",
            bucket: Some(bucket),
            key,
            params: &[],
            expires_in: Duration::from_secs(self.config.url_expiry_secs),
            region: &self.region,
        };
        presign::presign(credential, &request, Style::Cos, SystemTime::now()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot pre-sign an output URL");
            plain()
        })
    }
}

/// The spec and state of a task row.
fn decode_task(row: &TaskRow) -> Result<(TaskSpec, TaskState), JobError> {
    let spec: TaskSpec = store::decode_body(&row.spec)?;
    let state: TaskState = store::decode_body(&row.state)?;
    Ok((spec, state))
}

/// This gateway's node id, made once and kept in `data_dir/node-id`.
fn node_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            std::fs::create_dir_all(data_dir)?;
            let id = format!("node-{}", hex::encode(rand::random::<[u8; 8]>()));
            std::fs::write(&path, &id)?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_stable_19_digit_numbers() {
        let a = file_id("demo-1250000000", "videos/a.mp4");
        assert_eq!(a, file_id("demo-1250000000", "videos/a.mp4"));
        assert_ne!(a, file_id("demo-1250000000", "videos/b.mp4"));
        assert_eq!(a.len(), 19);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
    }
}
