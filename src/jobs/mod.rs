//! Asynchronous screenshot jobs, VOD style: templates, `ProcessMedia`
//! tasks on a durable queue, their results.
//!
//! - [`templates`]: the three template kinds, ranges and presets (pure);
//! - [`task`]: what a task asks for and how far it got, and their JSON;
//! - [`store`]: SQL tables (SQLite or PostgreSQL) for tasks, templates and
//!   media records; the queue is the task table;
//! - [`worker`]: claims tasks with a lease, runs them on idle-priority
//!   threads, renews the lease, saves progress;
//! - [`work`]: the media side of one task (one pass over the video);
//! - [`events`]: `ProcedureStateChanged` events, callbacks, PullEvents;
//! - [`flows`]: procedures (stored task sets) and upload triggers.
//!
//! [`Jobs`] ties them together for the API 3.0 handlers in
//! `ops::api3`.

pub mod events;
pub mod flows;
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

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;

use crate::config::{BucketAcl, Config, CredentialConfig, EventsConfig, JobsConfig, TriggerConfig};
use crate::presign::{self, PresignRequest, Style};
use params::{iso_time, now_ms, Params};
use store::{Store, StoreError, TaskKind, TaskRow, TaskStatus};
use task::{TaskSpec, TaskState, UrlMaker};
use templates::{Kind, Template};

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
    /// A full error code for cases the variants above do not name.
    #[error("{message}")]
    Coded {
        /// The API 3.0 code.
        code: &'static str,
        /// What is wrong.
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

    /// An error with its full code.
    pub fn invalid_raw(code: &'static str, message: impl Into<String>) -> Self {
        Self::Coded {
            code,
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
    /// Renders job-end callbacks (the wire adapter's).
    job_renderer: media_queue::JobRenderer,
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
    /// held when it last stopped. `job_renderer` makes the bodies of
    /// job-end callbacks (a wire format the core does not know).
    pub async fn open(
        config: &Config,
        job_renderer: media_queue::JobRenderer,
    ) -> Result<Self, String> {
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
            job_renderer,
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

    /// `Create<Kind>`: returns the new Definition.
    pub async fn create_template(&self, kind: Kind, params: &Value) -> Result<Value, JobError> {
        let mut template = Template::create(kind, &Params::new(params))?;
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
        Ok(json!({ "Definition": definition }))
    }

    /// `Describe<Kind>s`: presets and custom templates, filtered and paged.
    pub async fn describe_templates(&self, kind: Kind, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let wanted: Option<Vec<u64>> = p
            .array("Definitions")?
            .map(|a| a.iter().filter_map(Value::as_u64).collect());
        let type_filter = p.string("Type")?;
        if let Some(t) = &type_filter {
            if t != "Preset" && t != "Custom" {
                return Err(JobError::invalid("Type", "must be Preset or Custom"));
            }
        }
        let offset = p.uint("Offset")?.unwrap_or(0) as usize;
        let limit = p.uint("Limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(JobError::invalid("Limit", "must be from 1 to 100"));
        }
        let mut all: Vec<Template> = self
            .all_templates()
            .await?
            .into_values()
            .filter(|t| t.kind == kind)
            .filter(|t| wanted.as_ref().is_none_or(|w| w.contains(&t.definition)))
            .filter(|t| match type_filter.as_deref() {
                Some("Preset") => t.preset,
                Some("Custom") => !t.preset,
                _ => true,
            })
            .collect();
        all.sort_by_key(|t| t.definition);
        let total = all.len();
        let page: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit as usize)
            .map(Template::to_json)
            .collect();
        Ok(json!({ "TotalCount": total, format!("{}Set", kind.name()): page }))
    }

    async fn custom_template(&self, kind: Kind, params: &Value) -> Result<Template, JobError> {
        let p = Params::new(params);
        let definition = p
            .uint("Definition")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "Definition".into(),
            })?;
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

    /// `Modify<Kind>`.
    pub async fn modify_template(&self, kind: Kind, params: &Value) -> Result<Value, JobError> {
        let mut template = self.custom_template(kind, params).await?;
        template.apply(&Params::new(params))?;
        template.updated_ms = now_ms();
        let body = serde_json::to_string(&template).expect("template JSON");
        self.store
            .update_template(kind.key(), template.definition as i64, &body)
            .await?;
        Ok(json!({}))
    }

    /// `Delete<Kind>`.
    pub async fn delete_template(&self, kind: Kind, params: &Value) -> Result<Value, JobError> {
        let template = self.custom_template(kind, params).await?;
        self.store
            .delete_template(kind.key(), template.definition as i64)
            .await?;
        Ok(json!({}))
    }

    // ---------------------------------------------------------------- tasks

    /// `ProcessMedia`: validates, queues, and returns the TaskId at once.
    pub async fn process_media(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let media = self.media_of(&p).await?;
        let task = p
            .object("MediaProcessTask")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "MediaProcessTask".into(),
            })?;
        self.submit(media, task, &p).await
    }

    /// Validates `task` for the media `(bucket, key, file_id)` with the
    /// options in `p` (`TasksPriority`, `TasksNotifyMode`,
    /// `SessionContext`, `SessionId`) and queues it.
    async fn submit(
        &self,
        (bucket, key, file_id): (String, String, String),
        task: &Value,
        p: &Params<'_>,
    ) -> Result<Value, JobError> {
        let all = self.all_templates().await?;
        let subtasks = task::parse_subtasks(task, &mut |kind, def| all.get(&(kind, def)).cloned())?;
        let priority = p.int("TasksPriority")?.unwrap_or(0);
        if !(-10..=10).contains(&priority) {
            return Err(JobError::invalid("TasksPriority", "must be from -10 to 10"));
        }
        let notify_mode = match p.string("TasksNotifyMode")?.as_deref() {
            None | Some("") | Some("Finish") => task::NotifyMode::Finish,
            Some("Change") => task::NotifyMode::Change,
            Some("None") => task::NotifyMode::None,
            Some(_) => {
                return Err(JobError::invalid(
                    "TasksNotifyMode",
                    "must be Finish, Change or None",
                ))
            }
        };
        let session_context = p.string("SessionContext")?.unwrap_or_default();
        params::check_len("SessionContext", &session_context, 1000)?;
        let session_id = p.string("SessionId")?.unwrap_or_default();
        params::check_len("SessionId", &session_id, 50)?;
        let now = now_ms();
        // A SessionId deduplicates submissions for three days.
        let session_since = now - 3 * 24 * 3600 * 1000;
        let spec = TaskSpec {
            bucket,
            key,
            file_id: file_id.clone(),
            subtasks,
            priority,
            notify_mode,
            session_context,
            session_id: session_id.clone(),
        };
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
                    priority,
                    file_id,
                    session_id: (!session_id.is_empty()).then_some(session_id),
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
            return Ok(json!({ "TaskId": existing }));
        }
        tracing::info!(task = %task_id, key = %spec.key, priority, "task queued");
        self.wake.notify_one();
        Ok(json!({ "TaskId": task_id }))
    }

    /// The bucket, key and FileId a request's `FileId` or
    /// `MediaStoragePath` names (recording the media on first sight).
    async fn media_of(&self, p: &Params<'_>) -> Result<(String, String, String), JobError> {
        match (p.string("FileId")?, p.string("MediaStoragePath")?) {
            (Some(id), None) if !id.is_empty() => {
                let media = self
                    .store
                    .media(&id)
                    .await?
                    .ok_or_else(|| JobError::NotFound {
                        what: Missing::File,
                        message: format!("there is no media with FileId {id}"),
                    })?;
                Ok((media.bucket, media.key, media.file_id))
            }
            (None, Some(path)) => {
                let key = path.strip_prefix('/').unwrap_or(&path).to_owned();
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
                let id = file_id(&self.bucket, &key);
                self.store
                    .ensure_media(&id, &self.bucket, &key, now_ms())
                    .await?;
                Ok((self.bucket.clone(), key, id))
            }
            _ => Err(JobError::InvalidParameter {
                message: "give exactly one of FileId and MediaStoragePath".into(),
            }),
        }
    }

    /// `DescribeTaskDetail`.
    pub async fn describe_task(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let task_id = p
            .string("TaskId")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "TaskId".into(),
            })?;
        let row = self
            .store
            .task(&task_id)
            .await?
            .ok_or_else(|| JobError::NotFound {
                what: Missing::Task,
                message: format!("there is no task {task_id}"),
            })?;
        if row.kind != TaskKind::MediaProcess {
            return Err(JobError::missing(
                Missing::Task,
                format!("there is no task {task_id}"),
            ));
        }
        let (spec, state) = decode_task(&row)?;
        Ok(json!({
            "TaskType": "Procedure",
            "Status": vod_status(row.status),
            "CreateTime": iso_time(row.created_ms),
            "BeginProcessTime": row.begin_ms.map(iso_time).unwrap_or_default(),
            "FinishTime": row.finish_ms.map(iso_time).unwrap_or_default(),
            "ProcedureTask": self.procedure_json(&row, &spec, &state),
        }))
    }

    /// `DescribeTasks`: the newest tasks, optionally by status and FileId.
    pub async fn describe_tasks(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let status = match p.string("Status")?.as_deref() {
            None | Some("") => None,
            Some("WAITING") => Some(TaskStatus::Waiting),
            Some("PROCESSING") => Some(TaskStatus::Processing),
            Some("FINISH") => Some(TaskStatus::Finish),
            Some("ABORTED") => Some(TaskStatus::Aborted),
            Some(_) => return Ok(json!({ "TaskSet": [], "ScrollToken": "" })),
        };
        let file_id = p.string("FileId")?;
        let limit = p.uint("Limit")?.unwrap_or(10).clamp(1, 100) as i64;
        let rows = self
            .store
            .tasks(TaskKind::MediaProcess, status, file_id.as_deref(), limit)
            .await?;
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

    /// `DescribeMediaInfos`: what the gateway knows about media by FileId
    /// (name, URL, cover, metadata).
    pub async fn describe_media(&self, params: &Value) -> Result<Value, JobError> {
        let p = Params::new(params);
        let ids = p
            .array("FileIds")?
            .ok_or_else(|| JobError::MissingParameter {
                field: "FileIds".into(),
            })?;
        if ids.len() > 20 {
            return Err(JobError::invalid(
                "FileIds",
                "at most 20 FileIds per request",
            ));
        }
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for id in ids {
            let id = id.as_str().unwrap_or_default();
            match self.store.media(id).await? {
                Some(media) => {
                    let record: Value = serde_json::from_str(&media.body).unwrap_or_default();
                    let cover = record["CoverKey"]
                        .as_str()
                        .map(|k| self.url(&media.bucket, k))
                        .unwrap_or_default();
                    found.push(json!({
                        "FileId": media.file_id,
                        "BasicInfo": {
                            "Name": media.key.rsplit('/').next().unwrap_or_default(),
                            "MediaUrl": self.url(&media.bucket, &media.key),
                            "CoverUrl": cover,
                            "StoragePath": format!("/{}", media.key),
                            "Type": media.key.rsplit('.').next().unwrap_or_default(),
                        },
                        "MetaData": record.get("MetaData").cloned().unwrap_or(json!({})),
                    }));
                }
                None => missing.push(id.to_owned()),
            }
        }
        Ok(json!({ "MediaInfoSet": found, "NotExistFileIdSet": missing }))
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
                let params = json!({"Name": "demo-previews", "SampleType": "Time",
                    "SampleInterval": 1, "RowCount": 5, "ColumnCount": 5, "Width": 160,
                    "Height": 0});
                self.create_template(Kind::ImageSprite, &params).await?["Definition"]
                    .as_u64()
                    .unwrap_or_default()
            }
        };
        let params = json!({
            "MediaStoragePath": format!("/{key}"),
            "MediaProcessTask": {"ImageSpriteTaskSet": [{"Definition": definition}]},
            "SessionId": format!("demo-{}", &etag[..etag.len().min(40)]),
            "TasksNotifyMode": "None",
        });
        let answer = self.process_media(&params).await?;
        Ok(answer["TaskId"].as_str().unwrap_or_default().to_owned())
    }

    /// The `ProcedureTask` / `ProcedureStateChangeEvent` object of a task.
    pub fn procedure_json(&self, row: &TaskRow, spec: &TaskSpec, state: &TaskState) -> Value {
        let failed = state
            .subtasks
            .iter()
            .find(|s| s.status == task::SubtaskStatus::Fail);
        let (err_code, message) = match (&state.abort_message, failed) {
            (Some(message), _) => (work::codes::INTERNAL_ERROR, message.clone()),
            (None, Some(first)) => (first.err_code, first.message.clone()),
            (None, None) => (0, String::new()),
        };
        json!({
            "TaskId": row.task_id,
            "Status": vod_status(row.status),
            "ErrCode": err_code,
            "Message": message,
            "FileId": spec.file_id,
            "FileName": spec.file_name(),
            "FileUrl": self.url(&spec.bucket, &spec.key),
            "MetaData": state.meta.as_ref().map_or(json!({}), |m| json!(m)),
            "MediaProcessResultSet": task::result_set(spec, state, self),
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

/// VOD's name of a task status.
fn vod_status(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Waiting => "WAITING",
        TaskStatus::Processing | TaskStatus::Cancelling => "PROCESSING",
        TaskStatus::Finish | TaskStatus::Cancelled => "FINISH",
        TaskStatus::Aborted => "ABORTED",
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
