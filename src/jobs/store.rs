//! The durable state of the job system in SQL: tasks (the queue), templates
//! and media records. One code path for SQLite (embedded, the default) and
//! PostgreSQL (shared by several gateways), through sqlx's `Any` driver;
//! only the table definitions and the claim query differ by dialect.
//!
//! Claiming takes the highest-priority, oldest task that is waiting, or
//! whose lease ran out (its worker died), and leases it to this node in one
//! statement: PostgreSQL skips rows other nodes are claiming
//! (`FOR UPDATE SKIP LOCKED`); SQLite serialises writers.

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::metrics::CallbackFailure;

/// A store failure (connection, SQL, or a row that does not decode).
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(#[from] sqlx::Error);

/// Reads a JSON body the store holds (a spec, a state, a template…); a
/// body that does not decode is a store error.
pub fn decode_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError(sqlx::Error::Decode(Box::new(e))))
}

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (a file in the data directory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Where a task is in its life. The wire names of each dialect are mapped
/// from this by its adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    /// Queued, not started.
    Waiting,
    /// Leased to a worker.
    Processing,
    /// Leased to a worker that is asked to stop and clean up.
    Cancelling,
    /// Ended (each output says how).
    Finish,
    /// Given up.
    Aborted,
    /// Cancelled before it ended.
    Cancelled,
}

impl TaskStatus {
    const NAMES: [(TaskStatus, &'static str); 6] = [
        (TaskStatus::Waiting, "WAITING"),
        (TaskStatus::Processing, "PROCESSING"),
        (TaskStatus::Cancelling, "CANCELLING"),
        (TaskStatus::Finish, "FINISH"),
        (TaskStatus::Aborted, "ABORTED"),
        (TaskStatus::Cancelled, "CANCELED"),
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(s, _)| *s == self)
            .map(|(_, n)| *n)
            .expect("every status is named")
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(s, _)| *s)
            .ok_or_else(|| StoreError(sqlx::Error::Decode(format!("task status {name:?}").into())))
    }

    /// Whether the task has ended.
    pub fn ended(self) -> bool {
        matches!(
            self,
            TaskStatus::Finish | TaskStatus::Aborted | TaskStatus::Cancelled
        )
    }
}

/// What kind of work a task row holds (which spec type its JSON is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// A VOD `ProcessMedia` task ([`super::task::TaskSpec`]).
    MediaProcess,
    /// A CI snapshot job ([`super::snapshot_job::SnapshotJob`]).
    Snapshot,
}

impl TaskKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::MediaProcess => "vod",
            TaskKind::Snapshot => "snapshot",
        }
    }

    fn parse(name: &str) -> Result<Self, StoreError> {
        match name {
            "vod" => Ok(TaskKind::MediaProcess),
            "snapshot" => Ok(TaskKind::Snapshot),
            other => Err(StoreError(sqlx::Error::Decode(
                format!("task kind {other:?}").into(),
            ))),
        }
    }
}

/// What the queue holds, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    /// Rows by kind and status.
    pub by_state: Vec<(TaskKind, TaskStatus, i64)>,
    /// When the oldest waiting row was created (Unix milliseconds).
    pub oldest_waiting_ms: Option<i64>,
    /// Events whose callback is still to be delivered.
    pub callbacks_pending: i64,
}

/// What became of a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease is still ours.
    Held,
    /// Ours, and the task was asked to stop (cancelled while running).
    CancelRequested,
    /// Another node has the task.
    Lost,
}

/// What a cancellation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// It was waiting: it is cancelled and will never start.
    Cancelled,
    /// It is running: its worker stops, cleans up and ends it.
    Stopping,
    /// It had already ended (or is already being cancelled).
    TooLate(TaskStatus),
    /// No such task.
    NotFound,
}

/// A filter for listing snapshot jobs.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// The queue.
    pub queue_id: String,
    /// Only these statuses (empty: all).
    pub statuses: Vec<TaskStatus>,
    /// Created at or after (unix ms).
    pub since_ms: Option<i64>,
    /// Created at or before (unix ms).
    pub until_ms: Option<i64>,
    /// Oldest first (else newest first).
    pub ascending: bool,
    /// Continue after this row number.
    pub after_seq: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// A stored media template (CI).
#[derive(Debug, Clone)]
pub struct TemplateRow {
    /// `t…`.
    pub template_id: String,
    /// Its bucket.
    pub bucket: String,
    /// Unique per bucket.
    pub name: String,
    /// JSON of the template.
    pub body: String,
}

/// A stored workflow.
#[derive(Debug, Clone)]
pub struct WorkflowRow {
    /// `w…`.
    pub workflow_id: String,
    /// Its bucket.
    pub bucket: String,
    /// JSON of the workflow.
    pub body: String,
    /// Whether uploads start it.
    pub active: bool,
}

/// A stored workflow run.
#[derive(Debug, Clone)]
pub struct RunRow {
    /// Row number (list cursors).
    pub seq: i64,
    /// `i…`.
    pub run_id: String,
    /// Its workflow.
    pub workflow_id: String,
    /// Its bucket.
    pub bucket: String,
    /// JSON of the run.
    pub body: String,
    /// Unix ms.
    pub created_ms: i64,
}

fn run_row(row: &AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        seq: row.try_get("seq")?,
        run_id: row.try_get("run_id")?,
        workflow_id: row.try_get("workflow_id")?,
        bucket: row.try_get("bucket")?,
        body: row.try_get("body")?,
        created_ms: row.try_get("created_ms")?,
    })
}

/// A media queue's stored state.
#[derive(Debug, Clone)]
pub struct QueueRow {
    /// `p…`.
    pub queue_id: String,
    /// Its bucket.
    pub bucket: String,
    /// JSON of the queue's settings.
    pub body: String,
    /// Whether it starts no jobs.
    pub paused: bool,
}

/// A connection pool to the job store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
}

/// One task row.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Row number (the queue's order; list cursors).
    pub seq: i64,
    /// `...-Procedure-...` (VOD) or `j…` (CI) id.
    pub task_id: String,
    /// Which spec type it holds.
    pub kind: TaskKind,
    /// Where it is in its life.
    pub status: TaskStatus,
    /// The media queue (CI jobs).
    pub queue_id: Option<String>,
    /// -10..10; higher runs first.
    pub priority: i64,
    /// The media's FileId.
    pub file_id: String,
    /// The deduplication id given at submission, if any.
    pub session_id: Option<String>,
    /// Unix ms.
    pub created_ms: i64,
    /// Unix ms of the first start.
    pub begin_ms: Option<i64>,
    /// Unix ms of the end.
    pub finish_ms: Option<i64>,
    /// Times a worker took it.
    pub attempts: i64,
    /// What to do (JSON, [`super::task::TaskSpec`]).
    pub spec: String,
    /// How far it got (JSON, [`super::task::TaskState`]).
    pub state: String,
}

const TASK_COLUMNS: &str = "seq, task_id, kind, status, queue_id, priority, file_id, \
                            session_id, created_ms, begin_ms, finish_ms, attempts, spec, state";

fn task_row(row: &AnyRow) -> Result<TaskRow, StoreError> {
    Ok(TaskRow {
        seq: row.try_get("seq")?,
        task_id: row.try_get("task_id")?,
        kind: TaskKind::parse(&row.try_get::<String, _>("kind")?)?,
        status: TaskStatus::parse(&row.try_get::<String, _>("status")?)?,
        queue_id: row.try_get("queue_id")?,
        priority: row.try_get("priority")?,
        file_id: row.try_get("file_id")?,
        session_id: row.try_get("session_id")?,
        created_ms: row.try_get("created_ms")?,
        begin_ms: row.try_get("begin_ms")?,
        finish_ms: row.try_get("finish_ms")?,
        attempts: row.try_get("attempts")?,
        spec: row.try_get("spec")?,
        state: row.try_get("state")?,
    })
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Unique id (receivers deduplicate on it).
    pub event_id: String,
    /// The task it is about.
    pub task_id: String,
    /// Unix ms.
    pub created_ms: i64,
    /// The event JSON.
    pub body: String,
    /// Whether a callback is to be sent.
    pub push: bool,
    /// Where this event's callback goes, when not to the configured
    /// target. Such an event is the callback of one job (CI), not part of
    /// the pullable stream.
    pub target: Option<PushTarget>,
}

/// A callback address of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// `http://` or `https://` URL.
    pub url: String,
    /// The body's media type.
    pub content_type: String,
}

/// An event due for a callback.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Row id.
    pub seq: i64,
    /// The event id.
    pub event_id: String,
    /// The event JSON.
    pub body: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Its own callback address, if it has one.
    pub target: Option<PushTarget>,
}

/// Where an event's callback is (`fg_events.push_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Not pushed (pull only).
    None,
    /// To be delivered (again) at `push_next_ms`.
    Pending,
    /// The receiver took it.
    Delivered,
    /// Given up; pullable.
    Failed,
}

impl PushState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::None => "none",
            PushState::Pending => "pending",
            PushState::Delivered => "delivered",
            PushState::Failed => "failed",
        }
    }
}

async fn insert_event(conn: &mut sqlx::AnyConnection, event: &NewEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fg_events (event_id, task_id, created_ms, body, push_state,
                                target_url, content_type, confirmed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&event.event_id)
    .bind(&event.task_id)
    .bind(event.created_ms)
    .bind(&event.body)
    .bind(
        if event.push {
            PushState::Pending
        } else {
            PushState::None
        }
        .as_str(),
    )
    .bind(event.target.as_ref().map(|t| t.url.clone()))
    .bind(event.target.as_ref().map(|t| t.content_type.clone()))
    // An event with its own target is never pulled: stored as confirmed.
    .bind(i64::from(event.target.is_some()))
    .execute(conn)
    .await?;
    Ok(())
}

/// A media record: what a FileId stands for.
#[derive(Debug, Clone)]
pub struct MediaRow {
    /// The stable id.
    pub file_id: String,
    /// Bucket of the object.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// JSON of its [`super::task::MediaRecord`] (cover key, metadata).
    pub body: String,
}

/// An upload that may start procedures, recorded before its object is
/// committed and removed once they are started: what a gateway stopped
/// between the two finds again when it restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    /// Row number.
    pub seq: i64,
    /// Bucket of the object.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// The procedure the uploader named, if any.
    pub procedure: Option<String>,
}

impl Store {
    /// Connects to `url` (`sqlite://...` or `postgres://...`) and creates
    /// the tables if needed.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("postgres") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        };
        let options = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(30));
        let options = if dialect == Dialect::Sqlite {
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL: readers do not block the writer; a committed
                    // transaction survives a killed process.
                    sqlx::query("PRAGMA journal_mode=WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous=NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout=10000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(url).await?;
        let store = Self { pool, dialect };
        store.migrate().await?;
        Ok(store)
    }

    /// The SQLite URL of `file` (created if missing).
    pub fn sqlite_url(file: &Path) -> String {
        format!("sqlite://{}?mode=rwc", file.display())
    }

    /// Which dialect this store speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let (serial, int) = match self.dialect {
            Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"),
            Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BIGINT"),
        };
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS fg_tasks (
                    seq {serial},
                    task_id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL DEFAULT 'vod',
                    status TEXT NOT NULL,
                    queue_id TEXT,
                    priority {int} NOT NULL,
                    file_id TEXT NOT NULL,
                    session_id TEXT,
                    created_ms {int} NOT NULL,
                    begin_ms {int},
                    finish_ms {int},
                    lease_owner TEXT,
                    lease_until {int} NOT NULL DEFAULT 0,
                    attempts {int} NOT NULL DEFAULT 0,
                    spec TEXT NOT NULL,
                    state TEXT NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS fg_tasks_queue ON fg_tasks (status, priority, seq)".into(),
            // Stores made before CI jobs (the statements fail harmlessly
            // where the columns exist).
            "ALTER TABLE fg_tasks ADD COLUMN kind TEXT NOT NULL DEFAULT 'vod'".into(),
            "ALTER TABLE fg_tasks ADD COLUMN queue_id TEXT".into(),
            "CREATE INDEX IF NOT EXISTS fg_tasks_media_queue ON fg_tasks (queue_id, seq)".into(),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_media_templates (
                    template_id TEXT PRIMARY KEY,
                    bucket TEXT NOT NULL,
                    name TEXT NOT NULL,
                    body TEXT NOT NULL,
                    updated_ms {int} NOT NULL,
                    UNIQUE (bucket, name))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_workflows (
                    workflow_id TEXT PRIMARY KEY,
                    bucket TEXT NOT NULL,
                    body TEXT NOT NULL,
                    active {int} NOT NULL,
                    updated_ms {int} NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_workflow_runs (
                    seq {serial},
                    run_id TEXT NOT NULL UNIQUE,
                    workflow_id TEXT NOT NULL,
                    bucket TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_ms {int} NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS fg_workflow_runs_of ON fg_workflow_runs (workflow_id, seq)"
                .into(),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_queues (
                    queue_id TEXT PRIMARY KEY,
                    bucket TEXT NOT NULL,
                    body TEXT NOT NULL,
                    paused {int} NOT NULL DEFAULT 0,
                    updated_ms {int} NOT NULL)"
            ),
            // One task per SessionId: the unique index makes deduplication
            // hold across concurrent submissions and gateways (NULLs, tasks
            // without one, never conflict).
            "DROP INDEX IF EXISTS fg_tasks_session".into(),
            "CREATE UNIQUE INDEX IF NOT EXISTS fg_tasks_session_id ON fg_tasks (session_id)".into(),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_templates (
                    kind TEXT NOT NULL,
                    definition {int} NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (kind, definition))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_events (
                    seq {serial},
                    event_id TEXT NOT NULL UNIQUE,
                    task_id TEXT NOT NULL,
                    created_ms {int} NOT NULL,
                    body TEXT NOT NULL,
                    handle TEXT,
                    visible_ms {int} NOT NULL DEFAULT 0,
                    confirmed {int} NOT NULL DEFAULT 0,
                    push_state TEXT NOT NULL,
                    push_attempts {int} NOT NULL DEFAULT 0,
                    push_next_ms {int} NOT NULL DEFAULT 0,
                    push_error TEXT)"
            ),
            "CREATE INDEX IF NOT EXISTS fg_events_pull ON fg_events (confirmed, visible_ms, seq)"
                .into(),
            "CREATE INDEX IF NOT EXISTS fg_events_push ON fg_events (push_state, push_next_ms)"
                .into(),
            "CREATE INDEX IF NOT EXISTS fg_events_handle ON fg_events (handle)".into(),
            "ALTER TABLE fg_events ADD COLUMN target_url TEXT".into(),
            "ALTER TABLE fg_events ADD COLUMN content_type TEXT".into(),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_procedures (
                    name TEXT PRIMARY KEY,
                    body TEXT NOT NULL,
                    updated_ms {int} NOT NULL)"
            ),
            "CREATE TABLE IF NOT EXISTS fg_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
                .into(),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_uploads (
                    seq {serial},
                    node TEXT NOT NULL,
                    bucket TEXT NOT NULL,
                    object_key TEXT NOT NULL,
                    procedure TEXT,
                    created_ms {int} NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_media (
                    file_id TEXT PRIMARY KEY,
                    bucket TEXT NOT NULL,
                    object_key TEXT NOT NULL,
                    body TEXT NOT NULL,
                    updated_ms {int} NOT NULL)"
            ),
            // VOD upload sessions (ApplyUpload → CommitUpload): `state` is
            // open, committed or abandoned (being swept); `start_pending`
            // says a commit's procedure may not have been queued yet.
            format!(
                "CREATE TABLE IF NOT EXISTS fg_vod_uploads (
                    session_key TEXT PRIMARY KEY,
                    state TEXT NOT NULL,
                    expires_ms {int} NOT NULL,
                    created_ms {int} NOT NULL,
                    committed_ms {int},
                    start_pending {int} NOT NULL DEFAULT 0,
                    body TEXT NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS fg_vod_uploads_sweep ON fg_vod_uploads (state, expires_ms)"
                .into(),
        ];
        for statement in statements {
            // Two gateways creating the tables of a fresh PostgreSQL
            // database at once may race; the loser finds them there.
            if let Err(err) = sqlx::query(&statement).execute(&self.pool).await {
                if self.dialect == Dialect::Sqlite && !statement.starts_with("ALTER") {
                    return Err(err.into());
                }
                tracing::debug!(%err, "table creation raced");
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ templates

    /// Stores a new template of `kind`, numbering it after the largest
    /// Definition so far (at least `first`). `body` gets the number.
    pub async fn insert_template(
        &self,
        kind: &str,
        first: i64,
        body: impl Fn(i64) -> String,
    ) -> Result<i64, StoreError> {
        let mut attempt = 0;
        loop {
            let max: Option<i64> =
                sqlx::query("SELECT MAX(definition) AS m FROM fg_templates WHERE kind = $1")
                    .bind(kind)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("m")?;
            let definition = max.map_or(first, |m| (m + 1).max(first));
            let inserted = sqlx::query(
                "INSERT INTO fg_templates (kind, definition, body) VALUES ($1, $2, $3)",
            )
            .bind(kind)
            .bind(definition)
            .bind(body(definition))
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => return Ok(definition),
                // Another gateway took the number: try the next one.
                Err(_) if attempt < 5 => attempt += 1,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// One template's JSON.
    pub async fn template(
        &self,
        kind: &str,
        definition: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM fg_templates WHERE kind = $1 AND definition = $2")
            .bind(kind)
            .bind(definition)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Every template of `kind`, by Definition.
    pub async fn templates(&self, kind: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT body FROM fg_templates WHERE kind = $1 ORDER BY definition")
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("body").map_err(StoreError::from))
            .collect()
    }

    /// Replaces a template's JSON; false if there is none.
    pub async fn update_template(
        &self,
        kind: &str,
        definition: i64,
        body: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE fg_templates SET body = $3 WHERE kind = $1 AND definition = $2")
                .bind(kind)
                .bind(definition)
                .bind(body)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes a template; false if there is none.
    pub async fn delete_template(&self, kind: &str, definition: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM fg_templates WHERE kind = $1 AND definition = $2")
            .bind(kind)
            .bind(definition)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // -------------------------------------------------------------- uploads

    /// Records that `node` is committing an upload of `bucket/key` that
    /// starts procedures (`procedure`: the one the uploader named). Returns
    /// the row number.
    pub async fn insert_upload(
        &self,
        node: &str,
        bucket: &str,
        key: &str,
        procedure: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO fg_uploads (node, bucket, object_key, procedure, created_ms)
             VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        )
        .bind(node)
        .bind(bucket)
        .bind(key)
        .bind(procedure)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("seq")?)
    }

    /// Removes an upload record.
    pub async fn delete_upload(&self, seq: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM fg_uploads WHERE seq = $1")
            .bind(seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The uploads `node` recorded and did not finish, oldest first.
    pub async fn uploads_of(&self, node: &str) -> Result<Vec<UploadRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, bucket, object_key, procedure FROM fg_uploads
             WHERE node = $1 ORDER BY seq",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(UploadRow {
                    seq: row.try_get("seq")?,
                    bucket: row.try_get("bucket")?,
                    key: row.try_get("object_key")?,
                    procedure: row.try_get("procedure")?,
                })
            })
            .collect()
    }

    // ---------------------------------------------------------------- media

    /// Records (or keeps) what `file_id` stands for.
    pub async fn ensure_media(
        &self,
        file_id: &str,
        bucket: &str,
        key: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_media (file_id, bucket, object_key, body, updated_ms)
             VALUES ($1, $2, $3, '{}', $4) ON CONFLICT (file_id) DO NOTHING",
        )
        .bind(file_id)
        .bind(bucket)
        .bind(key)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The media record of `file_id`.
    pub async fn media(&self, file_id: &str) -> Result<Option<MediaRow>, StoreError> {
        let row = sqlx::query(
            "SELECT file_id, bucket, object_key, body FROM fg_media WHERE file_id = $1",
        )
        .bind(file_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(MediaRow {
                file_id: r.try_get("file_id")?,
                bucket: r.try_get("bucket")?,
                key: r.try_get("object_key")?,
                body: r.try_get("body")?,
            })
        })
        .transpose()
    }

    /// Replaces the JSON of a media record.
    pub async fn update_media(
        &self,
        file_id: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE fg_media SET body = $2, updated_ms = $3 WHERE file_id = $1")
            .bind(file_id)
            .bind(body)
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---------------------------------------------------------------- tasks

    /// Queues a task (status WAITING) and returns `None`; or, when a task
    /// with the same session id was queued at or after `session_since_ms`,
    /// queues nothing and returns that task's id. A session id last used
    /// before the window is released for the new task.
    pub async fn insert_task(
        &self,
        task: &TaskRow,
        session_since_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        if let Some(session) = &task.session_id {
            sqlx::query(
                "UPDATE fg_tasks SET session_id = NULL WHERE session_id = $1 AND created_ms < $2",
            )
            .bind(session)
            .bind(session_since_ms)
            .execute(&self.pool)
            .await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO fg_tasks (task_id, status, priority, file_id, session_id, created_ms,
                                   spec, state, kind, queue_id)
             VALUES ($1, 'WAITING', $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(&task.task_id)
        .bind(task.priority)
        .bind(&task.file_id)
        .bind(&task.session_id)
        .bind(task.created_ms)
        .bind(&task.spec)
        .bind(&task.state)
        .bind(task.kind.as_str())
        .bind(&task.queue_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(None);
        }
        // Only the session id can conflict (task ids are random).
        let existing = match &task.session_id {
            Some(session) => self.task_by_session(session, i64::MIN).await?,
            None => None,
        };
        existing
            .map(Some)
            .ok_or_else(|| StoreError(sqlx::Error::Protocol("the task was not queued".into())))
    }

    /// One task.
    pub async fn task(&self, task_id: &str) -> Result<Option<TaskRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM fg_tasks WHERE task_id = $1"
        ))
        .bind(task_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_row).transpose()
    }

    /// The newest tasks of `kind`, optionally only those of `status` and
    /// `file_id`.
    pub async fn tasks(
        &self,
        kind: TaskKind,
        status: Option<TaskStatus>,
        file_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM fg_tasks
             WHERE kind = $4 AND ($1 = '' OR status = $1) AND ($2 = '' OR file_id = $2)
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(status.map(TaskStatus::as_str).unwrap_or_default())
        .bind(file_id.unwrap_or_default())
        .bind(limit)
        .bind(kind.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_row).collect()
    }

    /// The task an earlier submission with `session_id` (at or after
    /// `since_ms`) created.
    async fn task_by_session(
        &self,
        session_id: &str,
        since_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT task_id FROM fg_tasks WHERE session_id = $1 AND created_ms >= $2
             ORDER BY seq LIMIT 1",
        )
        .bind(session_id)
        .bind(since_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("task_id")).transpose()?)
    }

    /// Leases the next task to `node` until `lease_until_ms`: the highest
    /// priority, then the oldest, among waiting tasks and tasks whose lease
    /// ran out.
    pub async fn claim(
        &self,
        node: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<TaskRow>, StoreError> {
        let lock = match self.dialect {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        // Waiting tasks of paused queues stay; a task being cancelled whose
        // worker died is taken to be cleaned up and ended.
        let claimable = "((status = 'WAITING' AND NOT EXISTS (
                              SELECT 1 FROM fg_queues q
                               WHERE q.queue_id = fg_tasks.queue_id AND q.paused = 1))
                          OR (status IN ('PROCESSING', 'CANCELLING') AND lease_until < $2))";
        let row = sqlx::query(&format!(
            "UPDATE fg_tasks
                SET status = CASE WHEN status = 'CANCELLING' THEN 'CANCELLING'
                                  ELSE 'PROCESSING' END,
                    lease_owner = $1, lease_until = $3,
                    attempts = attempts + 1, begin_ms = COALESCE(begin_ms, $2)
              WHERE seq = (SELECT seq FROM fg_tasks
                            WHERE {claimable}
                            ORDER BY priority DESC, seq
                            LIMIT 1 {lock})
                AND {claimable}
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(node)
        .bind(now_ms)
        .bind(lease_until_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_row).transpose()
    }

    /// Extends `node`'s lease on a task and saves its progress; says
    /// whether the lease was lost (another node took the task over) or the
    /// task was asked to stop.
    pub async fn renew(
        &self,
        task_id: &str,
        node: &str,
        lease_until_ms: i64,
        state: Option<&str>,
    ) -> Result<Renewal, StoreError> {
        let row = sqlx::query(
            "UPDATE fg_tasks SET lease_until = $3, state = COALESCE($4, state)
              WHERE task_id = $1 AND lease_owner = $2
                AND status IN ('PROCESSING', 'CANCELLING')
             RETURNING status",
        )
        .bind(task_id)
        .bind(node)
        .bind(lease_until_ms)
        .bind(state)
        .fetch_optional(&self.pool)
        .await?;
        let status = row.map(|r| r.try_get::<String, _>("status")).transpose()?;
        Ok(
            match status.as_deref().map(TaskStatus::parse).transpose()? {
                Some(TaskStatus::Cancelling) => Renewal::CancelRequested,
                Some(_) => Renewal::Held,
                None => Renewal::Lost,
            },
        )
    }

    /// Cancels a task: a waiting one at once, a running one by asking its
    /// worker to stop.
    pub async fn cancel(&self, task_id: &str, now_ms: i64) -> Result<Cancellation, StoreError> {
        let waiting = sqlx::query(
            "UPDATE fg_tasks SET status = 'CANCELED', finish_ms = $2
              WHERE task_id = $1 AND status = 'WAITING'",
        )
        .bind(task_id)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        if waiting.rows_affected() > 0 {
            return Ok(Cancellation::Cancelled);
        }
        let running = sqlx::query(
            "UPDATE fg_tasks SET status = 'CANCELLING'
              WHERE task_id = $1 AND status = 'PROCESSING'",
        )
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        if running.rows_affected() > 0 {
            return Ok(Cancellation::Stopping);
        }
        Ok(match self.task(task_id).await? {
            Some(row) => Cancellation::TooLate(row.status),
            None => Cancellation::NotFound,
        })
    }

    /// Tasks of `kind` matching `filter`, in queue order.
    pub async fn tasks_of_queue(
        &self,
        kind: TaskKind,
        filter: &JobFilter,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let mut sql = format!(
            "SELECT {TASK_COLUMNS} FROM fg_tasks WHERE kind = $1 AND queue_id = $2
               AND created_ms >= $3 AND created_ms <= $4"
        );
        let order = if filter.ascending { "ASC" } else { "DESC" };
        if filter.after_seq.is_some() {
            sql.push_str(if filter.ascending {
                " AND seq > $5"
            } else {
                " AND seq < $5"
            });
        }
        if !filter.statuses.is_empty() {
            let names: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(" AND status IN ({})", names.join(", ")));
        }
        sql.push_str(&format!(
            " ORDER BY seq {order} LIMIT {}",
            filter.limit.max(1)
        ));
        let mut query = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(&filter.queue_id)
            .bind(filter.since_ms.unwrap_or(i64::MIN))
            .bind(filter.until_ms.unwrap_or(i64::MAX));
        if let Some(seq) = filter.after_seq {
            query = query.bind(seq);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(task_row).collect()
    }

    /// Ends a task leased to `node` with `status` (FINISH, ABORTED, or
    /// CANCELED, the only end of a task being cancelled) and records its
    /// event, in one transaction; false (and no event) if the lease was
    /// lost or a cancellation came first.
    pub async fn finish(
        &self,
        task_id: &str,
        node: &str,
        status: TaskStatus,
        state: &str,
        now_ms: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE fg_tasks SET status = $3, state = $4, finish_ms = $5, lease_owner = NULL
              WHERE task_id = $1 AND lease_owner = $2
                AND (status = 'PROCESSING' OR ($3 = 'CANCELED' AND status = 'CANCELLING'))",
        )
        .bind(task_id)
        .bind(node)
        .bind(status.as_str())
        .bind(state)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(event) = event {
            insert_event(&mut tx, event).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records an event outside a task transition.
    pub async fn insert_event(&self, event: &NewEvent) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_event(&mut conn, event).await
    }

    // --------------------------------------------------------------- events

    /// Leases up to `limit` events that are not confirmed and not hidden,
    /// oldest first, hiding them until `visible_ms`. Each gets a new
    /// handle (`<event id>.<now>`). Events for callbacks are not pulled
    /// (VOD keeps the two modes apart) unless their callback was given up.
    pub async fn pull_events(
        &self,
        now_ms: i64,
        visible_ms: i64,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let lock = match self.dialect {
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
            Dialect::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "UPDATE fg_events
                SET handle = event_id || '.' || CAST($1 AS TEXT), visible_ms = $2
              WHERE seq IN (SELECT seq FROM fg_events
                             WHERE confirmed = 0 AND visible_ms <= $1
                               AND push_state IN ('none', 'failed')
                             ORDER BY seq LIMIT $3 {lock})
                AND confirmed = 0 AND visible_ms <= $1
                AND push_state IN ('none', 'failed')
             RETURNING seq, handle, body"
        ))
        .bind(now_ms)
        .bind(visible_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut events: Vec<(i64, String, String)> = rows
            .iter()
            .map(|r| Ok((r.try_get("seq")?, r.try_get("handle")?, r.try_get("body")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        events.sort_by_key(|e| e.0);
        Ok(events.into_iter().map(|(_, h, b)| (h, b)).collect())
    }

    /// Confirms pulled events by handle; returns how many were confirmed.
    pub async fn confirm_events(&self, handles: &[String]) -> Result<u64, StoreError> {
        let mut confirmed = 0;
        for handle in handles {
            let done = sqlx::query("UPDATE fg_events SET confirmed = 1 WHERE handle = $1")
                .bind(handle)
                .execute(&self.pool)
                .await?;
            confirmed += done.rows_affected();
        }
        Ok(confirmed)
    }

    /// Takes the next event due for a callback, holding it until
    /// `hold_until_ms` (so another gateway does not send it at the same
    /// time). An event waits while an earlier event of its task is pending.
    pub async fn next_delivery(
        &self,
        now_ms: i64,
        hold_until_ms: i64,
    ) -> Result<Option<Delivery>, StoreError> {
        let candidates = sqlx::query(
            "SELECT seq FROM fg_events e
              WHERE push_state = 'pending' AND push_next_ms <= $1
                AND NOT EXISTS (SELECT 1 FROM fg_events p
                                 WHERE p.task_id = e.task_id AND p.seq < e.seq
                                   AND p.push_state = 'pending')
              ORDER BY seq LIMIT 8",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        for candidate in candidates {
            let seq: i64 = candidate.try_get("seq")?;
            let row = sqlx::query(
                "UPDATE fg_events SET push_next_ms = $3
                  WHERE seq = $1 AND push_state = 'pending' AND push_next_ms <= $2
                 RETURNING seq, event_id, body, push_attempts, target_url, content_type",
            )
            .bind(seq)
            .bind(now_ms)
            .bind(hold_until_ms)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return Ok(Some(Delivery {
                    seq: row.try_get("seq")?,
                    event_id: row.try_get("event_id")?,
                    body: row.try_get("body")?,
                    attempts: row.try_get("push_attempts")?,
                    target: match (
                        row.try_get::<Option<String>, _>("target_url")?,
                        row.try_get::<Option<String>, _>("content_type")?,
                    ) {
                        (Some(url), content_type) => Some(PushTarget {
                            url,
                            content_type: content_type.unwrap_or_else(|| "application/json".into()),
                        }),
                        (None, _) => None,
                    },
                }));
            }
        }
        Ok(None)
    }

    /// Records the outcome of a delivery attempt (`next_ms`: when a
    /// pending one is tried again).
    pub async fn delivery_result(
        &self,
        seq: i64,
        state: PushState,
        next_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        match state {
            PushState::Failed => crate::metrics::callback_failed(CallbackFailure::GivenUp),
            PushState::Pending => crate::metrics::callback_failed(CallbackFailure::Retry),
            PushState::Delivered | PushState::None => {}
        }
        sqlx::query(
            "UPDATE fg_events SET push_state = $2, push_next_ms = $3, push_error = $4,
                    push_attempts = push_attempts + 1
              WHERE seq = $1",
        )
        .bind(seq)
        .bind(state.as_str())
        .bind(next_ms)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes events older than `before_ms`; returns how many.
    pub async fn expire_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM fg_events WHERE created_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // ----------------------------------------------------------- procedures

    /// Creates a procedure; false if the name is taken.
    pub async fn insert_procedure(
        &self,
        name: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO fg_procedures (name, body, updated_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(body)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One procedure's stored body.
    pub async fn procedure(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM fg_procedures WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Every procedure's stored body, by name.
    pub async fn procedures(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT body FROM fg_procedures ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("body").map_err(StoreError::from))
            .collect()
    }

    /// Every procedure's name and stored body, by name.
    pub async fn procedure_rows(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT name, body FROM fg_procedures ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("body")?)))
            .collect()
    }

    /// Rewrites a procedure's body.
    pub async fn replace_procedure(
        &self,
        name: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE fg_procedures SET body = $1, updated_ms = $2 WHERE name = $3")
            .bind(body)
            .bind(now_ms)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes a procedure; false if there is none.
    pub async fn delete_procedure(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM fg_procedures WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ------------------------------------------------------ media templates

    /// Stores a new media template; false if its name is taken in the
    /// bucket.
    pub async fn insert_media_template(
        &self,
        row: &TemplateRow,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO fg_media_templates (template_id, bucket, name, body, updated_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&row.template_id)
        .bind(&row.bucket)
        .bind(&row.name)
        .bind(&row.body)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Replaces a media template; false if there is none (or the new name
    /// is taken).
    pub async fn update_media_template(
        &self,
        row: &TemplateRow,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "SELECT 1 AS one FROM fg_media_templates
              WHERE bucket = $1 AND name = $2 AND template_id <> $3",
        )
        .bind(&row.bucket)
        .bind(&row.name)
        .bind(&row.template_id)
        .fetch_optional(&self.pool)
        .await?;
        if taken.is_some() {
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE fg_media_templates SET name = $3, body = $4, updated_ms = $5
              WHERE template_id = $1 AND bucket = $2",
        )
        .bind(&row.template_id)
        .bind(&row.bucket)
        .bind(&row.name)
        .bind(&row.body)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The media templates of `bucket`, oldest first.
    pub async fn media_templates(&self, bucket: &str) -> Result<Vec<TemplateRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT template_id, bucket, name, body FROM fg_media_templates
              WHERE bucket = $1 ORDER BY template_id",
        )
        .bind(bucket)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TemplateRow {
                    template_id: r.try_get("template_id")?,
                    bucket: r.try_get("bucket")?,
                    name: r.try_get("name")?,
                    body: r.try_get("body")?,
                })
            })
            .collect()
    }

    /// Deletes a media template of `bucket`; false if there was none.
    pub async fn delete_media_template(
        &self,
        bucket: &str,
        template_id: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM fg_media_templates WHERE bucket = $1 AND template_id = $2")
                .bind(bucket)
                .bind(template_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    // ------------------------------------------------------------ workflows

    /// Stores a workflow (new or changed).
    pub async fn put_workflow(&self, row: &WorkflowRow, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_workflows (workflow_id, bucket, body, active, updated_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (workflow_id) DO UPDATE
                SET body = excluded.body, active = excluded.active,
                    updated_ms = excluded.updated_ms",
        )
        .bind(&row.workflow_id)
        .bind(&row.bucket)
        .bind(&row.body)
        .bind(i64::from(row.active))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The workflows of `bucket` (only the active ones with `active_only`),
    /// oldest first.
    pub async fn workflows(
        &self,
        bucket: &str,
        active_only: bool,
    ) -> Result<Vec<WorkflowRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT workflow_id, bucket, body, active FROM fg_workflows
              WHERE bucket = $1 AND (active = 1 OR $2 = 0) ORDER BY workflow_id",
        )
        .bind(bucket)
        .bind(i64::from(active_only))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WorkflowRow {
                    workflow_id: r.try_get("workflow_id")?,
                    bucket: r.try_get("bucket")?,
                    body: r.try_get("body")?,
                    active: r.try_get::<i64, _>("active")? != 0,
                })
            })
            .collect()
    }

    /// Deletes a workflow of `bucket`; false if there was none.
    pub async fn delete_workflow(&self, bucket: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM fg_workflows WHERE bucket = $1 AND workflow_id = $2")
            .bind(bucket)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Records a workflow run; false if a run with its id exists (it was
    /// started already).
    pub async fn insert_run(&self, row: &RunRow) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO fg_workflow_runs (run_id, workflow_id, bucket, body, created_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO NOTHING",
        )
        .bind(&row.run_id)
        .bind(&row.workflow_id)
        .bind(&row.bucket)
        .bind(&row.body)
        .bind(row.created_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// One workflow run.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, run_id, workflow_id, bucket, body, created_ms
               FROM fg_workflow_runs WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_row).transpose()
    }

    /// Runs of a workflow, newest first (oldest first with `ascending`),
    /// after the row `after_seq`.
    pub async fn runs(
        &self,
        workflow_id: &str,
        ascending: bool,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let (order, cmp) = if ascending {
            ("ASC", ">")
        } else {
            ("DESC", "<")
        };
        let after = match after_seq {
            Some(_) => format!(" AND seq {cmp} $2"),
            None => String::new(),
        };
        let sql = format!(
            "SELECT seq, run_id, workflow_id, bucket, body, created_ms FROM fg_workflow_runs
              WHERE workflow_id = $1{after} ORDER BY seq {order} LIMIT {}",
            limit.max(1)
        );
        let mut query = sqlx::query(&sql).bind(workflow_id);
        if let Some(seq) = after_seq {
            query = query.bind(seq);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(run_row).collect()
    }

    // --------------------------------------------------------------- queues

    /// A media queue's stored state, if it was ever changed.
    pub async fn queue(&self, queue_id: &str) -> Result<Option<QueueRow>, StoreError> {
        let row =
            sqlx::query("SELECT queue_id, bucket, body, paused FROM fg_queues WHERE queue_id = $1")
                .bind(queue_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(QueueRow {
                queue_id: r.try_get("queue_id")?,
                bucket: r.try_get("bucket")?,
                body: r.try_get("body")?,
                paused: r.try_get::<i64, _>("paused")? != 0,
            })
        })
        .transpose()
    }

    /// Stores a media queue's state.
    pub async fn set_queue(&self, row: &QueueRow, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_queues (queue_id, bucket, body, paused, updated_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (queue_id) DO UPDATE
                SET body = excluded.body, paused = excluded.paused,
                    updated_ms = excluded.updated_ms",
        )
        .bind(&row.queue_id)
        .bind(&row.bucket)
        .bind(&row.body)
        .bind(i64::from(row.paused))
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------- settings

    /// A run-time setting (e.g. the event configuration).
    pub async fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM fg_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets a run-time setting.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Rows by kind and status, the creation time of the oldest waiting
    /// row and the number of events waiting for a callback: what
    /// `/metrics` reports of the queue.
    pub async fn backlog(&self) -> Result<Backlog, StoreError> {
        let rows =
            sqlx::query("SELECT kind, status, COUNT(*) AS n FROM fg_tasks GROUP BY kind, status")
                .fetch_all(&self.pool)
                .await?;
        // Every kind and status, 0 when no row has it.
        let mut by_state: Vec<(TaskKind, TaskStatus, i64)> =
            [TaskKind::MediaProcess, TaskKind::Snapshot]
                .into_iter()
                .flat_map(|kind| TaskStatus::NAMES.map(|(status, _)| (kind, status, 0)))
                .collect();
        for row in rows {
            let kind = TaskKind::parse(&row.try_get::<String, _>("kind")?)?;
            let status = TaskStatus::parse(&row.try_get::<String, _>("status")?)?;
            let n = row.try_get::<i64, _>("n")?;
            if let Some(entry) = by_state
                .iter_mut()
                .find(|(k, s, _)| *k == kind && *s == status)
            {
                entry.2 = n;
            }
        }
        let oldest_waiting_ms =
            sqlx::query("SELECT MIN(created_ms) AS t FROM fg_tasks WHERE status = 'WAITING'")
                .fetch_one(&self.pool)
                .await?
                .try_get::<Option<i64>, _>("t")?;
        let callbacks_pending =
            sqlx::query("SELECT COUNT(*) AS n FROM fg_events WHERE push_state = 'pending'")
                .fetch_one(&self.pool)
                .await?
                .try_get::<i64, _>("n")?;
        Ok(Backlog {
            by_state,
            oldest_waiting_ms,
            callbacks_pending,
        })
    }

    /// Whether the store answers a trivial query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Makes every task leased to `node` claimable now. A node calls this
    /// when it starts: whatever it held before is no longer being worked on.
    pub async fn release_node(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE fg_tasks SET lease_until = 0
              WHERE lease_owner = $1 AND status IN ('PROCESSING', 'CANCELLING')",
        )
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// A VOD upload session as stored: its typed body is the core's
/// (`jobs::upload_session`), kept as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSessionRow {
    /// The `VodSessionKey`.
    pub session_key: String,
    /// `open`, `committed` or `abandoned`.
    pub state: String,
    /// When its credential expires (Unix ms).
    pub expires_ms: i64,
    /// Whether a commit's procedure may not have been queued yet.
    pub start_pending: bool,
    /// The session (JSON).
    pub body: String,
}

const SESSION_COLUMNS: &str = "session_key, state, expires_ms, start_pending, body";

fn session_row(row: &AnyRow) -> Result<UploadSessionRow, StoreError> {
    Ok(UploadSessionRow {
        session_key: row.try_get("session_key")?,
        state: row.try_get("state")?,
        expires_ms: row.try_get("expires_ms")?,
        start_pending: row.try_get::<i64, _>("start_pending")? != 0,
        body: row.try_get("body")?,
    })
}

/// VOD upload sessions (`fg_vod_uploads`) and the gateway-wide secrets.
impl Store {
    /// The setting `name`, set to `value` first if it has none: every
    /// gateway of a shared store gets the value the first one wrote.
    pub async fn setting_or_insert(&self, name: &str, value: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO fg_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT value FROM fg_settings WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Records a new, open upload session.
    pub async fn insert_upload_session(
        &self,
        session_key: &str,
        body: &str,
        expires_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_vod_uploads (session_key, state, expires_ms, created_ms, body)
             VALUES ($1, 'open', $2, $3, $4)",
        )
        .bind(session_key)
        .bind(expires_ms)
        .bind(now_ms)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One upload session.
    pub async fn upload_session(
        &self,
        session_key: &str,
    ) -> Result<Option<UploadSessionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM fg_vod_uploads WHERE session_key = $1"
        ))
        .bind(session_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    /// Commits an open session whose grace ends after `now_ms`: state
    /// committed, and (with `start_pending`) its procedure owed, in one
    /// write. Returns whether this call committed it.
    pub async fn commit_upload_session(
        &self,
        session_key: &str,
        start_pending: bool,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE fg_vod_uploads SET state = 'committed', committed_ms = $2, start_pending = $3
              WHERE session_key = $1 AND state = 'open' AND expires_ms + $4 > $2",
        )
        .bind(session_key)
        .bind(now_ms)
        .bind(i64::from(start_pending))
        .bind(grace_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The procedure of a committed session is queued.
    pub async fn upload_session_started(&self, session_key: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE fg_vod_uploads SET start_pending = 0 WHERE session_key = $1")
            .bind(session_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Committed sessions whose procedure may not have been queued, for
    /// commits made before `before_ms`.
    pub async fn pending_upload_starts(
        &self,
        before_ms: i64,
    ) -> Result<Vec<UploadSessionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM fg_vod_uploads
              WHERE state = 'committed' AND start_pending = 1 AND committed_ms < $1"
        ))
        .bind(before_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_row).collect()
    }

    /// Marks open sessions that expired before `before_ms` abandoned (they
    /// can no longer be committed) and returns every abandoned session,
    /// including those a sweep stopped in the middle of.
    pub async fn abandon_upload_sessions(
        &self,
        before_ms: i64,
    ) -> Result<Vec<UploadSessionRow>, StoreError> {
        sqlx::query(
            "UPDATE fg_vod_uploads SET state = 'abandoned'
              WHERE state = 'open' AND expires_ms < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM fg_vod_uploads WHERE state = 'abandoned'"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_row).collect()
    }

    /// Removes a session row.
    pub async fn delete_upload_session(&self, session_key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM fg_vod_uploads WHERE session_key = $1")
            .bind(session_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes committed sessions committed before `before_ms` whose
    /// procedure is queued. Returns how many.
    pub async fn forget_committed_uploads(&self, before_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM fg_vod_uploads
              WHERE state = 'committed' AND start_pending = 0 AND committed_ms < $1",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records what `file_id` stands for with `body` unless it is known
    /// (an existing record, and what tasks wrote into it, is kept).
    pub async fn insert_media(
        &self,
        file_id: &str,
        bucket: &str,
        key: &str,
        body: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_media (file_id, bucket, object_key, body, updated_ms)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (file_id) DO NOTHING",
        )
        .bind(file_id)
        .bind(bucket)
        .bind(key)
        .bind(body)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
