//! A bounded pool for blocking decode work, off the async reactor.
//!
//! `workers` long-lived threads (one per core by default) take jobs from one
//! FIFO queue; at most `queue` jobs wait beyond those running. A job that
//! finds the queue full is refused at once ([`PoolError::Busy`], answered
//! 503 `SlowDown`) instead of piling up memory. Each job gets a cancel flag
//! that is raised when the caller stops waiting (the client went away), so
//! the decoder can stop early.
//!
//! Why not `spawn_blocking` behind a semaphore: there a finished job frees a
//! permit, which wakes the next request's task on a runtime thread, which
//! then wakes a blocking thread: two scheduler hops per job during which the
//! core idles. Under load those gaps cost about a tenth of the throughput of
//! 13 ms snapshots on two cores. Here the thread that finishes a job takes
//! the next one from the queue itself (and keeps its allocator arena warm).

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::{oneshot, Semaphore};

/// Why a job did not run to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every worker is busy and the queue is full.
    #[error("the decode queue is full")]
    Busy,
    /// The job panicked (a bug; the server keeps running).
    #[error("the decode job panicked")]
    Panicked,
}

/// A queued job: runs the caller's closure and sends its outcome back.
type Job = Box<dyn FnOnce() + Send>;

/// The pool. Cheap to share behind an `Arc`; its threads end when it is
/// dropped and the queue has drained.
#[derive(Debug)]
pub struct DecodePool {
    admission: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
}

/// Raises the cancel flag when the waiting future is dropped early.
struct CancelOnDrop(Option<Arc<AtomicBool>>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(flag) = self.0.take() {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

impl DecodePool {
    /// A pool of `workers` concurrent jobs (0 = one per core) and `queue`
    /// waiting ones.
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            workers
        };
        let (jobs, queued) = mpsc::channel::<Job>();
        let queued = Arc::new(Mutex::new(queued));
        for n in 0..workers {
            let queued = Arc::clone(&queued);
            std::thread::Builder::new()
                .name(format!("framegate-decode-{n}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let next = queued.lock().map(|rx| rx.recv());
                    match next {
                        Ok(Ok(job)) => {
                            crate::metrics::decode_started();
                            job();
                            crate::metrics::decode_finished();
                        }
                        _ => return,
                    }
                })
                .expect("spawning a decode thread");
        }
        crate::metrics::decode_workers(workers);
        Self {
            admission: Arc::new(Semaphore::new(workers + queue)),
            jobs,
        }
    }

    /// Runs `job` on a worker thread once one is free. `job` gets the
    /// cancel flag, raised if this future is dropped before the job ends.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run_leaving(move |cancel| (job(cancel), ())).await
    }

    /// As [`DecodePool::run`], for a job that returns its result and what
    /// it leaves behind: the leftovers are dropped on the worker after the
    /// result has been sent, so tearing down (a decoder's threads and
    /// frames, say) costs the caller no wait. The worker takes its next job
    /// once they are gone.
    pub async fn run_leaving<T, L, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce(Arc<AtomicBool>) -> (T, L) + Send + 'static,
        T: Send + 'static,
    {
        let admitted = self.admission.clone().try_acquire_owned().map_err(|_| {
            crate::metrics::decode_refused();
            PoolError::Busy
        })?;
        let cancel = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(Some(cancel.clone()));
        let (done, outcome) = oneshot::channel();
        let queued: Job = Box::new(move || {
            let (result, leftovers) = match panic::catch_unwind(AssertUnwindSafe(|| job(cancel))) {
                Ok((value, leftovers)) => (Ok(value), Some(leftovers)),
                Err(panicked) => (Err(panicked), None),
            };
            // Admission ends with the answer (a caller sending its next
            // request at once finds room); the caller may have stopped
            // waiting, and then the result is dropped.
            drop(admitted);
            let _ = done.send(result);
            let _ = panic::catch_unwind(AssertUnwindSafe(|| drop(leftovers)));
        });
        // Counted before a worker can take it (and count it started).
        crate::metrics::decode_queued();
        self.jobs.send(queued).map_err(|_| PoolError::Panicked)?;
        let result = match outcome.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) | Err(_) => Err(PoolError::Panicked),
        };
        guard.0 = None;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let pool = Arc::new(DecodePool::new(1, 1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(std::sync::Mutex::new(wait));
        let first = {
            let pool = pool.clone();
            let wait = wait.clone();
            tokio::spawn(async move {
                pool.run(move |_| wait.lock().unwrap().recv().unwrap())
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|_| 2).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.run(|_| 3).await, Err(PoolError::Busy));
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(()));
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(pool.run(|_| 4).await, Ok(4));
    }

    #[tokio::test]
    async fn dropping_the_caller_raises_the_cancel_flag() {
        let pool = DecodePool::new(1, 0);
        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let job = pool.run(move |cancel| {
            while !cancel.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
            seen_tx.send(()).unwrap();
        });
        let _ = tokio::time::timeout(Duration::from_millis(50), job).await;
        seen_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the job saw the cancel flag");
    }

    #[tokio::test]
    async fn workers_run_jobs_at_once() {
        // Each job waits for the other: only two workers running side by
        // side finish them.
        let pool = Arc::new(DecodePool::new(2, 0));
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let jobs: Vec<_> = (0..2)
            .map(|i| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                tokio::spawn(async move {
                    pool.run(move |_| {
                        barrier.wait();
                        i
                    })
                    .await
                })
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            let done = tokio::time::timeout(Duration::from_secs(10), job).await;
            assert_eq!(done.expect("both jobs ran at once").unwrap(), Ok(i));
        }
    }

    #[tokio::test]
    async fn leftovers_are_dropped_after_the_result_is_sent() {
        // The leftover's drop waits until the caller has the result: it
        // would never end if the result were sent after it.
        struct Leftover(std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>);
        impl Drop for Leftover {
            fn drop(&mut self) {
                self.0.recv_timeout(Duration::from_secs(10)).unwrap();
                self.1.send(()).unwrap();
            }
        }
        let pool = DecodePool::new(1, 0);
        let (result_seen, wait) = std::sync::mpsc::channel();
        let (dropped, dropped_rx) = std::sync::mpsc::channel();
        let value = pool
            .run_leaving(move |_| (7, Leftover(wait, dropped)))
            .await;
        assert_eq!(value, Ok(7));
        result_seen.send(()).unwrap();
        dropped_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the leftover was dropped");
        // The worker is free for the next job.
        assert_eq!(pool.run(|_| 8).await, Ok(8));
    }

    #[tokio::test]
    async fn panics_are_contained() {
        let pool = DecodePool::new(1, 0);
        let result: Result<(), _> = pool.run(|_| panic!("boom")).await;
        assert_eq!(result, Err(PoolError::Panicked));
        assert_eq!(pool.run(|_| 1).await, Ok(1));
    }
}
