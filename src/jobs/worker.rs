//! Workers: each claims the next task (highest priority, then oldest) with a
//! lease, runs its media work on a fresh thread at idle CPU priority, renews
//! the lease and saves progress while it runs, and records the result.
//!
//! A task whose worker died (the gateway was killed) keeps its lease until
//! it runs out, then any gateway takes it over; a gateway that restarts
//! releases its own leases at once (see [`super::Jobs::open`]). Outputs are
//! written under keys fixed by the task id, so doing a task again replaces
//! the same objects. A task started `max_attempts` times without finishing
//! (the work crashed the process each time) is ABORTED.
//!
//! VOD tasks and CI snapshot jobs are rows of the same queue: they share
//! claiming, priorities, leases, restart recovery and job threads; only
//! the work run on the thread and the record of the end differ.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use tracing::Instrument as _;

use super::media_queue::{job_view, JobState, JobView};
use super::params::now_ms;
use super::snapshot_job::{Failure, FailureKind, SnapshotJob, SnapshotProgress};
use super::snapshot_run::{self, RunContext};
use super::store::{NewEvent, Renewal, TaskKind, TaskRow, TaskStatus};
use super::task::{MediaRecord, NotifyMode, SubtaskStatus, TaskSpec, TaskState, Work};
use super::work::{self, WorkContext, WorkEnd};
use super::{decode_task, Jobs};
use crate::config::MediaConfig;
use crate::media::Limits;
use crate::storage::Buckets;

/// What workers need from the gateway they run in.
pub trait JobHost: Send + Sync + 'static {
    /// The job system.
    fn jobs(&self) -> &Jobs;
    /// The buckets inputs and outputs live in.
    fn buckets(&self) -> &Buckets;
    /// Media limits (pixel budget, JPEG quality).
    fn media(&self) -> &MediaConfig;
}

/// Starts the configured number of workers; they stop when
/// [`stop`] is called.
pub fn start<H: JobHost>(host: &Arc<H>) {
    let jobs = host.jobs();
    let count = jobs.config().worker_count();
    tracing::info!(workers = count, node = %jobs.node, "job workers started");
    for n in 0..count {
        let host = host.clone();
        tokio::spawn(async move { worker_loop(host, n).await });
    }
}

/// Asks workers to stop: running tasks are interrupted and handed back to
/// the queue. Waits up to `grace` for them to be handed back.
pub async fn stop(jobs: &Jobs, grace: Duration) {
    jobs.stopping.store(true, Ordering::SeqCst);
    jobs.stopped.notify_waiters();
    let deadline = tokio::time::Instant::now() + grace;
    while jobs.running.load(Ordering::SeqCst) > 0 {
        tokio::select! {
            _ = jobs.task_ended.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!("tasks still running at shutdown; their leases will run out");
                return;
            }
        }
    }
}

async fn worker_loop<H: JobHost>(host: Arc<H>, n: usize) {
    let jobs = host.jobs();
    let poll = Duration::from_millis(jobs.config.poll_interval_ms.max(50));
    let lease = Duration::from_secs(jobs.config.lease_secs);
    while !jobs.stopping.load(Ordering::SeqCst) {
        let now = now_ms();
        match jobs
            .store
            .claim(&jobs.node, now, now + lease.as_millis() as i64)
            .await
        {
            Ok(Some(row)) => {
                if row.attempts > 1 {
                    crate::metrics::lease_taken_over();
                }
                let span = tracing::info_span!("task", task = %row.task_id, worker = n);
                jobs.running.fetch_add(1, Ordering::SeqCst);
                match row.kind {
                    TaskKind::MediaProcess => run_task(&host, row).instrument(span).await,
                    TaskKind::Snapshot => run_snapshot_job(&host, row).instrument(span).await,
                }
                jobs.running.fetch_sub(1, Ordering::SeqCst);
                jobs.task_ended.notify_waiters();
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "claiming a task failed"),
        }
        tokio::select! {
            _ = jobs.wake.notified() => {}
            _ = jobs.stopped.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// How work run under a lease ended.
enum Leased<T> {
    /// The work returned; `cancelled` if the task was cancelled meanwhile.
    Ended {
        /// What the work returned.
        result: T,
        /// A cancellation arrived while it ran.
        cancelled: bool,
    },
    /// Another node took the task over.
    Lost,
}

/// Runs `work` on a fresh thread (at idle CPU priority when configured)
/// with the job limits, renewing the lease and saving the progress `work`
/// reports (JSON) until it returns.
async fn run_leased<H: JobHost, T: Send + 'static>(
    host: &Arc<H>,
    row: &TaskRow,
    work: impl FnOnce(Limits, &mut dyn FnMut(String)) -> T + Send + 'static,
) -> Leased<T> {
    let jobs = host.jobs();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut limits = Limits::with_timeout(Duration::from_secs(jobs.config.timeout_secs));
    limits.cancel = cancel.clone();
    limits.max_source_pixels = host.media().max_source_pixels;
    limits.jpeg_quality = host.media().jpeg_quality;
    limits.decode_threads = jobs.config.decode_threads;
    // Jobs decode exact frames: see `Limits::conceal_errors`.
    limits.conceal_errors = false;
    let (progress_tx, progress_rx) = watch::channel(None::<String>);
    let (done_tx, done_rx) = oneshot::channel();
    let idle = jobs.config.idle_priority;
    let spawned = std::thread::Builder::new()
        .name("framegate-job".into())
        .spawn(move || {
            if idle {
                lower_priority();
            }
            let mut report = |json: String| {
                let _ = progress_tx.send(Some(json));
            };
            let _ = done_tx.send(work(limits, &mut report));
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start a job thread");
        return Leased::Lost;
    }
    keep_lease(jobs, &row.task_id, &cancel, progress_rx, done_rx).await
}

async fn run_task<H: JobHost>(host: &Arc<H>, row: TaskRow) {
    let jobs = host.jobs();
    let (spec, mut task_state) = match decode_task(&row) {
        Ok(decoded) => decoded,
        Err(err) => {
            tracing::error!(task = %row.task_id, error = %err, "undecodable task; aborting it");
            let state = TaskState {
                abort_message: Some("the stored task is damaged".into()),
                ..TaskState::default()
            };
            finish(
                jobs,
                &row,
                TaskStatus::Aborted,
                &serde_json::to_string(&state).expect("state JSON"),
                now_ms(),
                None,
            )
            .await;
            return;
        }
    };
    if row.attempts > i64::from(jobs.config.max_attempts) {
        tracing::error!(task = %row.task_id, attempts = row.attempts, "task given up");
        task_state.abort_message = Some(format!(
            "the task was started {} times without finishing; it was given up",
            row.attempts - 1
        ));
        end_task(jobs, &row, &spec, &task_state, TaskStatus::Aborted).await;
        return;
    }
    let Some(bucket) = host.buckets().get(&spec.bucket).cloned() else {
        task_state.abort_message = Some(format!("the bucket {} is not configured", spec.bucket));
        end_task(jobs, &row, &spec, &task_state, TaskStatus::Aborted).await;
        return;
    };
    tracing::info!(task = %row.task_id, key = %spec.key, attempt = row.attempts, "task started");
    if row.attempts == 1 && spec.notify_mode == NotifyMode::Change {
        let body = jobs.task_event_body(&row, &spec, &task_state);
        let published = match jobs
            .event_for(&row.task_id, spec.notify_mode, false, body)
            .await
        {
            Ok(event) => jobs.publish(event).await,
            Err(err) => Err(err),
        };
        if let Err(err) = published {
            tracing::warn!(error = %err, "recording the PROCESSING event failed");
        }
    }
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let output_prefix = jobs.config.output_prefix.clone();
    let max_outputs = jobs.config.max_outputs;
    let task_id = row.task_id.clone();
    let outcome = run_leased(host, &row, move |limits, report| {
        let ctx = WorkContext {
            bucket,
            handle,
            limits,
            output_prefix: &output_prefix,
            max_outputs,
        };
        let mut report = |s: &TaskState| {
            if let Ok(json) = serde_json::to_string(s) {
                report(json);
            }
        };
        let end = work::run(&ctx, &task_id, &spec, &mut task_state, &mut report);
        (end, spec, task_state)
    })
    .await;
    let Leased::Ended {
        result: (end, spec, task_state),
        ..
    } = outcome
    else {
        tracing::warn!(task = %row.task_id, "the lease was lost; another worker has the task");
        return;
    };
    match end {
        WorkEnd::Interrupted => {
            hand_back(jobs, &row, serde_json::to_string(&task_state).ok()).await
        }
        WorkEnd::Done => {
            record_cover(jobs, &spec, &task_state).await;
            let failed = task_state
                .subtasks
                .iter()
                .filter(|s| s.status == SubtaskStatus::Fail)
                .count();
            if end_task(jobs, &row, &spec, &task_state, TaskStatus::Finish).await {
                tracing::info!(
                    task = %row.task_id,
                    ms = started.elapsed().as_millis() as u64,
                    subtasks = task_state.subtasks.len(),
                    failed,
                    "task finished"
                );
            }
        }
    }
}

/// Stopping: hands an interrupted task back now rather than when the lease
/// runs out.
async fn hand_back(jobs: &Jobs, row: &TaskRow, progress: Option<String>) {
    let _ = jobs
        .store
        .renew(&row.task_id, &jobs.node, 0, progress.as_deref())
        .await;
    tracing::info!(task = %row.task_id, "task interrupted; it will be resumed");
}

/// Whether the job store answers (readiness).
pub async fn store_reachable(jobs: &Jobs) -> bool {
    jobs.store.ping().await.is_ok()
}

/// The queue's figures for `/metrics` (every gateway sharing the store).
pub async fn backlog(jobs: &Jobs) -> Result<crate::metrics::JobBacklog, super::store::StoreError> {
    let backlog = jobs.store.backlog().await?;
    let oldest = backlog
        .oldest_waiting_ms
        .map_or(0, |created| now_ms().saturating_sub(created).max(0));
    Ok(crate::metrics::JobBacklog {
        by_state: backlog
            .by_state
            .into_iter()
            .map(|(kind, status, n)| (kind.as_str(), status.as_str(), n))
            .collect(),
        oldest_waiting: Duration::from_millis(oldest as u64),
        callbacks_pending: backlog.callbacks_pending,
    })
}

/// Runs a snapshot job: its pictures are staged and published only when
/// it succeeds; a failed or cancelled job's staged outputs are discarded.
async fn run_snapshot_job<H: JobHost>(host: &Arc<H>, row: TaskRow) {
    let jobs = host.jobs();
    let view = match job_view(&row) {
        Ok(Some(view)) => view,
        Ok(None) | Err(_) => {
            tracing::error!(job = %row.task_id, "undecodable snapshot job; aborting it");
            let body = serde_json::to_string(&SnapshotProgress {
                failure: Some(Failure {
                    kind: FailureKind::Internal,
                    message: "the stored job is damaged".into(),
                }),
                ..SnapshotProgress::default()
            })
            .expect("progress JSON");
            finish(jobs, &row, TaskStatus::Aborted, &body, now_ms(), None).await;
            return;
        }
    };
    let (job, progress) = (view.job.clone(), view.progress.clone());
    let buckets = (
        host.buckets().get(&job.bucket).cloned(),
        host.buckets().get(&job.output.bucket).cloned(),
    );
    let (Some(input), Some(output)) = buckets else {
        let message = "the input or output bucket is no longer configured";
        end_failed(jobs, &row, view, FailureKind::Internal, message).await;
        return;
    };
    if row.status == TaskStatus::Cancelling {
        // Its worker died while it was being cancelled.
        snapshot_run::discard(&output, &row.task_id, &progress).await;
        end_snapshot_job(jobs, &row, job, progress, TaskStatus::Cancelled).await;
        return;
    }
    if row.attempts > i64::from(jobs.config.max_attempts) {
        tracing::error!(job = %row.task_id, attempts = row.attempts, "job given up");
        snapshot_run::discard(&output, &row.task_id, &progress).await;
        let message = format!(
            "the job was started {} times without finishing; it was given up",
            row.attempts - 1
        );
        end_failed(jobs, &row, view, FailureKind::Internal, &message).await;
        return;
    }
    tracing::info!(job = %row.task_id, key = %job.key, attempt = row.attempts, "snapshot job started");
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let job_id = row.task_id.clone();
    let work_output = output.clone();
    let outcome = run_leased(host, &row, move |limits, report| {
        let ctx = RunContext {
            input,
            output: work_output,
            handle,
            limits,
            job_id: &job_id,
        };
        let mut progress = SnapshotProgress::default();
        let mut report = |p: &SnapshotProgress| {
            if let Ok(json) = serde_json::to_string(p) {
                report(json);
            }
        };
        let end = snapshot_run::run(&ctx, &job, &mut progress, &mut report);
        (end, job, progress)
    })
    .await;
    let Leased::Ended {
        result: (end, job, mut progress),
        cancelled,
    } = outcome
    else {
        tracing::warn!(job = %row.task_id, "the lease was lost; another worker has the job");
        return;
    };
    if cancelled || asked_to_stop(jobs, &row).await {
        snapshot_run::discard(&output, &row.task_id, &progress).await;
        end_snapshot_job(jobs, &row, job, progress, TaskStatus::Cancelled).await;
        tracing::info!(job = %row.task_id, "snapshot job cancelled; its outputs were removed");
        return;
    }
    if let WorkEnd::Interrupted = end {
        hand_back(jobs, &row, serde_json::to_string(&progress).ok()).await;
        return;
    }
    if progress.failure.is_none() {
        if let Err(err) = snapshot_run::publish(&output, &row.task_id, &progress).await {
            progress.failure = Some(Failure {
                kind: FailureKind::Internal,
                message: format!("moving the outputs to their names failed: {err}"),
            });
        } else {
            progress.percent = 100;
        }
    }
    if progress.failure.is_some() {
        snapshot_run::discard(&output, &row.task_id, &progress).await;
    }
    let pictures = progress.pictures.len() + progress.sprites.len();
    let failed = progress.failure.is_some();
    if end_snapshot_job(jobs, &row, job, progress, TaskStatus::Finish).await {
        tracing::info!(
            job = %row.task_id,
            ms = started.elapsed().as_millis() as u64,
            outputs = pictures,
            failed,
            "snapshot job finished"
        );
    }
}

/// Whether the task was cancelled after its work returned (checked once
/// more before its outputs are published).
async fn asked_to_stop(jobs: &Jobs, row: &TaskRow) -> bool {
    let until = now_ms() + jobs.config.lease_secs as i64 * 1000;
    matches!(
        jobs.store
            .renew(&row.task_id, &jobs.node, until, None)
            .await,
        Ok(Renewal::CancelRequested)
    )
}

async fn end_failed(jobs: &Jobs, row: &TaskRow, view: JobView, kind: FailureKind, message: &str) {
    let mut progress = view.progress;
    progress.failure = Some(Failure {
        kind,
        message: message.to_owned(),
    });
    end_snapshot_job(jobs, row, view.job, progress, TaskStatus::Aborted).await;
}

/// Records the end of a snapshot job with its callback, in one
/// transaction. Returns whether it was recorded.
async fn end_snapshot_job(
    jobs: &Jobs,
    row: &TaskRow,
    job: SnapshotJob,
    progress: SnapshotProgress,
    status: TaskStatus,
) -> bool {
    let now = now_ms();
    let body = serde_json::to_string(&progress).expect("progress JSON");
    let view = JobView {
        id: row.task_id.clone(),
        state: match status {
            TaskStatus::Cancelled => JobState::Cancel,
            _ if progress.failure.is_none() => JobState::Success,
            _ => JobState::Failed,
        },
        job,
        progress,
        created_ms: row.created_ms,
        started_ms: row.begin_ms,
        ended_ms: Some(now),
    };
    let event = match jobs.job_end_event(&view).await {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(job = %row.task_id, error = %err, "building the callback failed");
            None
        }
    };
    finish(jobs, row, status, &body, now, event).await
}

/// Records the end of a VOD task (FINISH or ABORTED) with its event, in one
/// transaction. Returns whether it was recorded (the lease was still ours).
async fn end_task(
    jobs: &Jobs,
    row: &TaskRow,
    spec: &TaskSpec,
    state: &TaskState,
    status: TaskStatus,
) -> bool {
    let now = now_ms();
    let body = serde_json::to_string(state).expect("state JSON");
    let ended = TaskRow {
        status,
        finish_ms: Some(now),
        ..row.clone()
    };
    let event_body = jobs.task_event_body(&ended, spec, state);
    let event = match jobs
        .event_for(&row.task_id, spec.notify_mode, true, event_body)
        .await
    {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(task = %row.task_id, error = %err, "building the event failed");
            None
        }
    };
    finish(jobs, row, status, &body, now, event).await
}

/// Ends a task in the store with its event.
async fn finish(
    jobs: &Jobs,
    row: &TaskRow,
    status: TaskStatus,
    body: &str,
    now: i64,
    event: Option<NewEvent>,
) -> bool {
    match jobs
        .store
        .finish(&row.task_id, &jobs.node, status, body, now, event.as_ref())
        .await
    {
        Ok(true) => {
            jobs.event_added();
            let ran = now.saturating_sub(row.begin_ms.unwrap_or(now)).max(0);
            crate::metrics::job_ended(
                row.kind.as_str(),
                status.as_str(),
                Duration::from_millis(ran as u64),
            );
            true
        }
        Ok(false) => {
            tracing::warn!(task = %row.task_id, "the task ended, but the lease was lost");
            false
        }
        Err(err) => {
            tracing::error!(task = %row.task_id, error = %err, "saving the result failed");
            false
        }
    }
}

/// Renews the lease (saving the latest progress) until the work ends.
/// Raises `cancel` and returns [`Leased::Lost`] if the lease is lost;
/// raises `cancel` when the gateway stops or the task is cancelled.
async fn keep_lease<T>(
    jobs: &Jobs,
    task_id: &str,
    cancel: &Arc<AtomicBool>,
    mut progress: watch::Receiver<Option<String>>,
    mut done: oneshot::Receiver<T>,
) -> Leased<T> {
    let lease = Duration::from_secs(jobs.config.lease_secs);
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    let mut dirty = false;
    let mut cancelled = false;
    loop {
        tokio::select! {
            result = &mut done => {
                return match result {
                    Ok(result) => Leased::Ended { result, cancelled },
                    Err(_) => Leased::Lost,
                };
            }
            changed = progress.changed(), if !dirty => {
                if changed.is_err() {
                    // The thread ended; `done` follows.
                    dirty = true;
                    continue;
                }
                dirty = true;
            }
            _ = tick.tick() => {}
            _ = jobs.stopped.notified() => {}
        }
        if jobs.stopping.load(Ordering::SeqCst) {
            cancel.store(true, Ordering::SeqCst);
        }
        let body = if dirty {
            progress.borrow_and_update().clone()
        } else {
            None
        };
        dirty = false;
        let until = now_ms() + lease.as_millis() as i64;
        match jobs
            .store
            .renew(task_id, &jobs.node, until, body.as_deref())
            .await
        {
            Ok(Renewal::Held) => {}
            Ok(Renewal::CancelRequested) => {
                cancelled = true;
                cancel.store(true, Ordering::SeqCst);
            }
            Ok(Renewal::Lost) => {
                cancel.store(true, Ordering::SeqCst);
                let _ = done.await;
                return Leased::Lost;
            }
            Err(err) => tracing::warn!(error = %err, "renewing a lease failed"),
        }
        // Progress is saved at most four times a second.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Saves a successful cover in the media record.
async fn record_cover(jobs: &Jobs, spec: &TaskSpec, state: &TaskState) {
    let cover = spec
        .subtasks
        .iter()
        .zip(&state.subtasks)
        .filter(|(sub, st)| {
            matches!(sub.work, Work::CoverBySnapshot { .. }) && st.status == SubtaskStatus::Success
        })
        .filter_map(|(_, st)| st.output.images.first())
        .next_back();
    let Ok(Some(media)) = jobs.store.media(&spec.file_id).await else {
        return;
    };
    let mut record: MediaRecord = serde_json::from_str(&media.body).unwrap_or_default();
    if let Some(key) = cover {
        record.cover_key = Some(key.clone());
    }
    if let Some(meta) = &state.meta {
        record.meta = Some(meta.clone());
    }
    let body = serde_json::to_string(&record).expect("record JSON");
    let _ = jobs
        .store
        .update_media(&spec.file_id, &body, now_ms())
        .await;
}

/// Puts the calling thread (and the decoder threads it starts, which
/// inherit the policy) in `SCHED_IDLE`: it gets CPU only when interactive
/// work leaves some.
fn lower_priority() {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    let policy = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(err) =
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, policy)
    {
        tracing::debug!(?err, "cannot lower the job thread's priority");
    }
}
