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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{oneshot, watch};
use tracing::Instrument as _;

use super::params::now_ms;
use super::store::TaskRow;
use super::task::{TaskSpec, TaskState, Work};
use super::work::{self, WorkContext, WorkEnd};
use super::{decode_task, Jobs};
use crate::media::Limits;
use crate::ops::AppState;

/// Starts the configured number of workers; they stop when
/// [`stop`] is called.
pub fn start(state: &Arc<AppState>) {
    let count = state.jobs.config().worker_count();
    tracing::info!(workers = count, node = %state.jobs.node, "job workers started");
    for n in 0..count {
        let state = state.clone();
        tokio::spawn(async move { worker_loop(state, n).await });
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

async fn worker_loop(state: Arc<AppState>, n: usize) {
    let jobs = &state.jobs;
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
                let span = tracing::info_span!("task", task = %row.task_id, worker = n);
                jobs.running.fetch_add(1, Ordering::SeqCst);
                run_task(&state, row).instrument(span).await;
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

async fn run_task(state: &Arc<AppState>, row: TaskRow) {
    let jobs = &state.jobs;
    let (spec, mut task_state) = match decode_task(&row) {
        Ok(decoded) => decoded,
        Err(err) => {
            tracing::error!(task = %row.task_id, error = %err, "undecodable task; aborting it");
            let state = json!({"subtasks": [], "abort_message": "the stored task is damaged"});
            let _ = jobs
                .store
                .finish(
                    &row.task_id,
                    &jobs.node,
                    "ABORTED",
                    &state.to_string(),
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
        end_task(jobs, &row, &spec, &task_state, "ABORTED").await;
        return;
    }
    let Some(bucket) = state.buckets.get(&spec.bucket).cloned() else {
        task_state.abort_message = Some(format!("the bucket {} is not configured", spec.bucket));
        end_task(jobs, &row, &spec, &task_state, "ABORTED").await;
        return;
    };
    tracing::info!(task = %row.task_id, key = %spec.key, attempt = row.attempts, "task started");
    if row.attempts == 1 && spec.notify_mode == "Change" {
        let procedure = jobs.procedure_json(&row, &spec, &task_state);
        let published = match jobs
            .event_for(&row.task_id, &spec.notify_mode, false, procedure)
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
    let cancel = Arc::new(AtomicBool::new(false));
    let mut limits = Limits::with_timeout(Duration::from_secs(jobs.config.timeout_secs));
    limits.cancel = cancel.clone();
    limits.max_source_pixels = state.config.media.max_source_pixels;
    limits.jpeg_quality = state.config.media.jpeg_quality;
    limits.decode_threads = jobs.config.decode_threads;
    // Jobs decode exact frames: see `Limits::conceal_errors`.
    limits.conceal_errors = false;
    let (progress_tx, progress_rx) = watch::channel(None::<String>);
    let (done_tx, done_rx) = oneshot::channel();
    let handle = tokio::runtime::Handle::current();
    let idle = jobs.config.idle_priority;
    let output_prefix = jobs.config.output_prefix.clone();
    let max_outputs = jobs.config.max_outputs;
    let task_id = row.task_id.clone();
    let spawned = std::thread::Builder::new()
        .name("framegate-job".into())
        .spawn(move || {
            if idle {
                lower_priority();
            }
            let ctx = WorkContext {
                bucket,
                handle,
                limits,
                output_prefix: &output_prefix,
                max_outputs,
            };
            let mut report = |s: &TaskState| {
                let _ = progress_tx.send(serde_json::to_string(s).ok());
            };
            let end = work::run(&ctx, &task_id, &spec, &mut task_state, &mut report);
            let _ = done_tx.send((end, spec, task_state));
        });
    if let Err(err) = spawned {
        tracing::error!(error = %err, "cannot start a job thread");
        return;
    }
    let outcome = keep_lease(jobs, &row.task_id, &cancel, progress_rx, done_rx).await;
    let Some((end, spec, task_state)) = outcome else {
        tracing::warn!(task = %row.task_id, "the lease was lost; another worker has the task");
        return;
    };
    match end {
        WorkEnd::Interrupted => {
            // Stopping: hand the task back now rather than when the lease
            // runs out.
            let body = serde_json::to_string(&task_state).ok();
            let _ = jobs
                .store
                .renew(&row.task_id, &jobs.node, 0, body.as_deref())
                .await;
            tracing::info!(task = %row.task_id, "task interrupted; it will be resumed");
        }
        WorkEnd::Done => {
            record_cover(jobs, &spec, &task_state).await;
            let failed = task_state
                .subtasks
                .iter()
                .filter(|s| s.status == "FAIL")
                .count();
            if end_task(jobs, &row, &spec, &task_state, "FINISH").await {
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

/// Records the end of a task (FINISH or ABORTED) with its event, in one
/// transaction. Returns whether it was recorded (the lease was still ours).
async fn end_task(
    jobs: &Jobs,
    row: &TaskRow,
    spec: &TaskSpec,
    state: &TaskState,
    status: &str,
) -> bool {
    let now = now_ms();
    let body = serde_json::to_string(state).expect("state JSON");
    let ended = TaskRow {
        status: status.to_owned(),
        finish_ms: Some(now),
        ..row.clone()
    };
    let procedure = jobs.procedure_json(&ended, spec, state);
    let event = match jobs
        .event_for(&row.task_id, &spec.notify_mode, true, procedure)
        .await
    {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(task = %row.task_id, error = %err, "building the event failed");
            None
        }
    };
    match jobs
        .store
        .finish(&row.task_id, &jobs.node, status, &body, now, event.as_ref())
        .await
    {
        Ok(true) => {
            jobs.event_added();
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
/// Raises `cancel` and returns `None` if the lease is lost; raises `cancel`
/// when the gateway stops.
async fn keep_lease(
    jobs: &Jobs,
    task_id: &str,
    cancel: &Arc<AtomicBool>,
    mut progress: watch::Receiver<Option<String>>,
    mut done: oneshot::Receiver<(WorkEnd, TaskSpec, TaskState)>,
) -> Option<(WorkEnd, TaskSpec, TaskState)> {
    let lease = Duration::from_secs(jobs.config.lease_secs);
    let mut tick = tokio::time::interval(lease / 3);
    tick.tick().await;
    let mut dirty = false;
    loop {
        tokio::select! {
            result = &mut done => return result.ok(),
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
            Ok(true) => {}
            Ok(false) => {
                cancel.store(true, Ordering::SeqCst);
                let _ = done.await;
                return None;
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
            matches!(sub.work, Work::CoverBySnapshot { .. }) && st.status == "SUCCESS"
        })
        .filter_map(|(_, st)| st.output.images.first())
        .next_back();
    let Ok(Some(media)) = jobs.store.media(&spec.file_id).await else {
        return;
    };
    let mut record: serde_json::Value = serde_json::from_str(&media.body).unwrap_or(json!({}));
    if let Some(key) = cover {
        record["CoverKey"] = json!(key);
    }
    if let Some(meta) = &state.meta {
        record["MetaData"] = meta.clone();
    }
    let _ = jobs
        .store
        .update_media(&spec.file_id, &record.to_string(), now_ms())
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
