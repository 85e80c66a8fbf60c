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
            "CREATE INDEX IF NOT EXISTS fg_tasks_session ON fg_tasks (session_id)".into(),
            format!(
                "CREATE TABLE IF NOT EXISTS fg_templates (
                    kind TEXT NOT NULL,
                    definition {int} NOT NULL,
                    body TEXT NOT NULL,
                    PRIMARY KEY (kind, definition))"
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

    /// Queues a task (status WAITING).
    pub async fn insert_task(&self, task: &TaskRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fg_tasks (task_id, status, priority, file_id, session_id, created_ms,
                                   spec, state)
             VALUES ($1, 'WAITING', $2, $3, $4, $5, $6, $7)",
        )
        .bind(&task.task_id)
        .bind(task.priority)
        .bind(&task.file_id)
        .bind(&task.session_id)
        .bind(task.created_ms)
        .bind(&task.spec)
        .bind(&task.state)
        .execute(&self.pool)
        .await?;
        Ok(())
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
    pub async fn task_by_session(
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

    /// Ends a task leased to `node` with `status` (FINISH or ABORTED);
    /// false if the lease was lost.
    pub async fn finish(
        &self,
        task_id: &str,
        node: &str,
        status: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE fg_tasks SET status = $3, state = $4, finish_ms = $5, lease_owner = NULL
              WHERE task_id = $1 AND lease_owner = $2 AND status = 'PROCESSING'",
        )
        .bind(task_id)
        .bind(node)
        .bind(status)
        .bind(state)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
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
