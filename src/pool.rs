//! A bounded pool for blocking decode work, off the async reactor.
//!
//! At most `workers` jobs run at once (one per core by default); at most
//! `queue` more wait for a worker. A job that finds the queue full is refused
//! at once ([`PoolError::Busy`], answered 503 `SlowDown`) instead of piling up
//! memory. Each job gets a cancel flag that is raised when the caller stops
//! waiting (the client went away), so the decoder can stop early.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

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

/// The pool. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct DecodePool {
    admission: Arc<Semaphore>,
    running: Arc<Semaphore>,
    workers: usize,
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
        Self {
            admission: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
            workers,
        }
    }

    /// Concurrent jobs.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Runs `job` on a blocking thread once a worker is free. `job` gets the
    /// cancel flag, raised if this future is dropped before the job ends.
    pub async fn run<T, F>(&self, job: F) -> Result<T, PoolError>
    where
        F: FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
        T: Send + 'static,
    {
        let admitted = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| PoolError::Busy)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(Some(cancel.clone()));
        let worker = self
            .running
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let handle = tokio::task::spawn_blocking(move || {
            let result = job(cancel);
            drop(worker);
            drop(admitted);
            result
        });
        let result = handle.await.map_err(|_| PoolError::Panicked);
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
    async fn panics_are_contained() {
        let pool = DecodePool::new(1, 0);
        let result: Result<(), _> = pool.run(|_| panic!("boom")).await;
        assert_eq!(result, Err(PoolError::Panicked));
        assert_eq!(pool.run(|_| 1).await, Ok(1));
    }
}
