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

/// A store failure (connection, SQL, or a row that does not decode).
#[derive(Debug, thiserror::Error)]
#[error("job store: {0}")]
pub struct StoreError(#[from] sqlx::Error);

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (a file in the data directory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
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
    /// `...-Procedure-...` id.
    pub task_id: String,
    /// WAITING, PROCESSING, FINISH or ABORTED.
    pub status: String,
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

const TASK_COLUMNS: &str = "task_id, status, priority, file_id, session_id, created_ms, \
                            begin_ms, finish_ms, attempts, spec, state";

fn task_row(row: &AnyRow) -> Result<TaskRow, StoreError> {
    Ok(TaskRow {
        task_id: row.try_get("task_id")?,
        status: row.try_get("status")?,
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
}

async fn insert_event(conn: &mut sqlx::AnyConnection, event: &NewEvent) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fg_events (event_id, task_id, created_ms, body, push_state)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&event.event_id)
    .bind(&event.task_id)
    .bind(event.created_ms)
    .bind(&event.body)
    .bind(if event.push { "pending" } else { "none" })
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
    /// JSON: cover key, metadata ([`super::task::MediaRecord`]).
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
                    status TEXT NOT NULL,
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
        ];
        for statement in statements {
            // Two gateways creating the tables of a fresh PostgreSQL
            // database at once may race; the loser finds them there.
            if let Err(err) = sqlx::query(&statement).execute(&self.pool).await {
                if self.dialect == Dialect::Sqlite {
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
                                   spec, state)
             VALUES ($1, 'WAITING', $2, $3, $4, $5, $6, $7)
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(&task.task_id)
        .bind(task.priority)
        .bind(&task.file_id)
        .bind(&task.session_id)
        .bind(task.created_ms)
        .bind(&task.spec)
        .bind(&task.state)
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

    /// The newest tasks, optionally only those of `status` and `file_id`.
    pub async fn tasks(
        &self,
        status: Option<&str>,
        file_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TASK_COLUMNS} FROM fg_tasks
             WHERE ($1 = '' OR status = $1) AND ($2 = '' OR file_id = $2)
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(status.unwrap_or_default())
        .bind(file_id.unwrap_or_default())
        .bind(limit)
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
        let row = sqlx::query(&format!(
            "UPDATE fg_tasks
                SET status = 'PROCESSING', lease_owner = $1, lease_until = $3,
                    attempts = attempts + 1, begin_ms = COALESCE(begin_ms, $2)
              WHERE seq = (SELECT seq FROM fg_tasks
                            WHERE status = 'WAITING'
                               OR (status = 'PROCESSING' AND lease_until < $2)
                            ORDER BY priority DESC, seq
                            LIMIT 1 {lock})
                AND (status = 'WAITING' OR (status = 'PROCESSING' AND lease_until < $2))
             RETURNING {TASK_COLUMNS}"
        ))
        .bind(node)
        .bind(now_ms)
        .bind(lease_until_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(task_row).transpose()
    }

    /// Extends `node`'s lease on a task and saves its progress; false if
    /// the lease was lost (another node took the task over).
    pub async fn renew(
        &self,
        task_id: &str,
        node: &str,
        lease_until_ms: i64,
        state: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE fg_tasks SET lease_until = $3, state = COALESCE($4, state)
              WHERE task_id = $1 AND lease_owner = $2 AND status = 'PROCESSING'",
        )
        .bind(task_id)
        .bind(node)
        .bind(lease_until_ms)
        .bind(state)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends a task leased to `node` with `status` (FINISH or ABORTED) and
    /// records its event, in one transaction; false (and no event) if the
    /// lease was lost.
    pub async fn finish(
        &self,
        task_id: &str,
        node: &str,
        status: &str,
        state: &str,
        now_ms: i64,
        event: Option<&NewEvent>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE fg_tasks SET status = $3, state = $4, finish_ms = $5, lease_owner = NULL
              WHERE task_id = $1 AND lease_owner = $2 AND status = 'PROCESSING'",
        )
        .bind(task_id)
        .bind(node)
        .bind(status)
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
    /// handle (`<event id>.<now>`).
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
                             ORDER BY seq LIMIT $3 {lock})
                AND confirmed = 0 AND visible_ms <= $1
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
                 RETURNING seq, event_id, body, push_attempts",
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
                }));
            }
        }
        Ok(None)
    }

    /// Records the outcome of a delivery attempt: `state` is `delivered`,
    /// `pending` (retry at `next_ms`) or `failed` (given up).
    pub async fn delivery_result(
        &self,
        seq: i64,
        state: &str,
        next_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE fg_events SET push_state = $2, push_next_ms = $3, push_error = $4,
                    push_attempts = push_attempts + 1
              WHERE seq = $1",
        )
        .bind(seq)
        .bind(state)
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

    /// One procedure's JSON.
    pub async fn procedure(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM fg_procedures WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("body")).transpose()?)
    }

    /// Every procedure's JSON, by name.
    pub async fn procedures(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT body FROM fg_procedures ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get("body").map_err(StoreError::from))
            .collect()
    }

    /// Deletes a procedure; false if there is none.
    pub async fn delete_procedure(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM fg_procedures WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
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

    /// Makes every task leased to `node` claimable now. A node calls this
    /// when it starts: whatever it held before is no longer being worked on.
    pub async fn release_node(&self, node: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE fg_tasks SET lease_until = 0 WHERE lease_owner = $1 AND status = 'PROCESSING'",
        )
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
