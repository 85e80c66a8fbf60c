//! The admin listener (`serve --admin-listen ADDR`): metrics, liveness and
//! readiness, on an address of its own so none of it is reachable on the
//! public listener (where `/metrics` is an object key like any other).
//!
//! - `GET /metrics`: every [`crate::metrics`] figure in the Prometheus text
//!   format; the job store's backlog is queried for each scrape.
//! - `GET /healthz`: 200 while the process serves (also while draining).
//! - `GET /readyz`: 200 when every bucket's store and the job store answer
//!   and the gateway is not draining; 503 with the reason otherwise. A
//!   SIGTERM turns it 503 before the public listener stops accepting, and
//!   it stays so while connections drain.
//!
//! Plain HTTP/1.1, no authentication: bind it to loopback or a private
//! network.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{header, Method, Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::body::{self, Response};
use crate::ops::AppState;

/// How long one readiness check or the job-store query of a scrape may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether the gateway is shutting down: raised on SIGTERM, before the
/// public listener closes.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Marks the gateway as draining: `/readyz` answers 503 from now on.
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`Draining::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Serves the admin endpoints on `listener` until `stop` resolves.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    draining: Draining,
    stop: impl Future<Output = ()>,
) {
    // One scrape at a time: the job-store figures are set, then rendered.
    let scrapes = Arc::new(tokio::sync::Mutex::new(()));
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let (state, draining, scrapes) = (state.clone(), draining.clone(), scrapes.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let (state, draining, scrapes) = (state.clone(), draining.clone(), scrapes.clone());
            async move { Ok::<_, Infallible>(answer(&state, &draining, &scrapes, &request).await) }
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "admin connection ended with an error");
            }
        });
    }
}

async fn answer(
    state: &AppState,
    draining: &Draining,
    scrapes: &tokio::sync::Mutex<()>,
    request: &Request<Incoming>,
) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/metrics" => {
            let _one_at_a_time = scrapes.lock().await;
            match tokio::time::timeout(CHECK_TIMEOUT, crate::jobs::worker::backlog(&state.jobs))
                .await
            {
                Ok(Ok(backlog)) => crate::metrics::set_job_backlog(&backlog),
                Ok(Err(err)) => tracing::warn!(error = %err, "metrics: job store query failed"),
                Err(_) => tracing::warn!("metrics: job store query timed out"),
            }
            let mut response = text(StatusCode::OK, crate::metrics::render());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match not_ready(state, draining).await {
            None => text(StatusCode::OK, "ready\n"),
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Why the gateway should get no new traffic, if it should not.
async fn not_ready(state: &AppState, draining: &Draining) -> Option<String> {
    if draining.is_draining() {
        return Some("draining".to_owned());
    }
    let jobs = tokio::time::timeout(
        CHECK_TIMEOUT,
        crate::jobs::worker::store_reachable(&state.jobs),
    );
    if !matches!(jobs.await, Ok(true)) {
        return Some("job store unreachable".to_owned());
    }
    let probes = state.buckets.names().iter().map(|name| async move {
        let bucket = state.buckets.get(name)?;
        let probe = tokio::time::timeout(CHECK_TIMEOUT, bucket.head("framegate-readiness-probe"));
        match probe.await {
            Ok(Ok(_) | Err(crate::storage::StorageError::NoSuchKey)) => None,
            Ok(Err(err)) => Some(format!("bucket {name} unreachable: {err}")),
            Err(_) => Some(format!("bucket {name} unreachable: timed out")),
        }
    });
    futures::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .next()
}

fn text(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response {
    let body = body.into();
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-store")
        .body(body::full(body))
        .expect("valid response")
}
