//! The HTTP server: accept loop, connection limits and timeouts, request ids,
//! error rendering, graceful drain; the admin listener ([`admin`]).
//!
//! One `hyper-util` auto builder serves HTTP/1.1 (keep-alive) and HTTP/2
//! (prior knowledge) on the same port. Every request gets a fresh
//! `x-cos-request-id`, carried by a `tracing` span so every log line of the
//! request names it.

pub mod admin;
pub mod body;
pub mod connections;
mod header_case;
mod idle;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::header::{HeaderValue, SERVER};
use http::{Extensions, Request};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::error::ApiError;
use crate::metrics::{self, ShedReason};
use crate::ops::{self, AppState};
use crate::proto::xml::XmlWriter;
use body::Response;

/// The `Server` header value.
pub const SERVER_NAME: &str = concat!("framegate/", env!("CARGO_PKG_VERSION"));

/// Serves `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for up to the configured grace period.
///
/// At most [`connections::connection_limit`] connections are open; beyond
/// it the least useful are shed ([`connections`]). A connection that has
/// not started a request `limits.first_request_timeout_secs` after it
/// opened is closed. Out of descriptors, the loop sheds one idle
/// connection and waits for one to end (or 100 ms) rather than retrying.
pub async fn run(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout())
        .max_buf_size(state.config.limits.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(state.config.limits.max_header_bytes as u32);
    let header_case = Arc::new(header_case::canonical_case_extensions().await);
    let graceful = GracefulShutdown::new();
    let idle_timeout = state.config.idle_timeout();
    let first_request_timeout = state.config.first_request_timeout();
    let sendfile = state.config.limits.sendfile;
    let open_files = connections::open_file_limit();
    let connections = connections::Connections::new(connections::connection_limit(
        state.config.limits.max_connections,
        open_files,
    ));
    tracing::info!(
        max_connections = connections.limit(),
        open_files = open_files.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
        "connection limit"
    );
    let mut accept_warnings = RateLimited::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        metrics::accept_failed();
                        let out_of_descriptors = err.raw_os_error().is_some_and(|code| {
                            code == rustix::io::Errno::MFILE.raw_os_error()
                                || code == rustix::io::Errno::NFILE.raw_os_error()
                        });
                        if let Some(suppressed) = accept_warnings.ready() {
                            tracing::warn!(error = %err, suppressed, max_connections = connections.limit(), "accept failed");
                        }
                        // Make room, then wait for a descriptor to come back
                        // (never a tight retry loop).
                        if out_of_descriptors {
                            connections.shed_one(ShedReason::Descriptors);
                        }
                        tokio::select! {
                            () = connections.one_ended() => {}
                            () = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let stream = crate::zero_copy::SendfileStream::new(stream, sendfile);
                let (stream, activity) = idle::Tracked::new(stream);
                let Some(registered) = connections.register(activity.clone()) else {
                    metrics::connection_shed(ShedReason::Limit);
                    tracing::debug!(%peer, "every connection is busy: refusing a new one");
                    continue;
                };
                let state = state.clone();
                let requests = activity.clone();
                let header_case = header_case.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let state = state.clone();
                    let in_flight = requests.begin();
                    let handling = crate::zero_copy::Handling::begin();
                    let case = (request.version() < http::Version::HTTP_2).then(|| header_case.clone());
                    async move {
                        let mut response = serve_request(&state, request).await;
                        if let Some(case) = case {
                            *response.extensions_mut() = Extensions::clone(&case);
                        }
                        drop((in_flight, handling));
                        Ok::<_, Infallible>(response)
                    }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    tokio::select! {
                        result = connection => {
                            if let Err(err) = result {
                                tracing::debug!(%peer, error = %err, "connection ended with an error");
                            }
                        }
                        () = activity.idle_for(idle_timeout) => {
                            tracing::debug!(%peer, "closing idle connection");
                        }
                        () = activity.unused_after(first_request_timeout) => {
                            metrics::connection_shed(ShedReason::FirstRequest);
                            tracing::debug!(%peer, "closing a connection that sent no request");
                        }
                        () = registered.shed() => {
                            tracing::debug!(%peer, "shedding a connection to make room");
                        }
                    }
                    drop(registered);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let grace = state.config.shutdown_grace();
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: draining connections"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}

/// A warning given at most once per period; says how many were held back.
struct RateLimited {
    period: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    fn new(period: Duration) -> Self {
        Self {
            period,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(held back since the last)` when the warning may be given now.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < self.period) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// A new request id: 18 random bytes, base64.
fn new_request_id() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 18]>())
}

async fn serve_request(state: &AppState, request: Request<Incoming>) -> Response {
    let request_id = new_request_id();
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    async move {
        let started = Instant::now();
        let resource = request.uri().path().to_owned();
        let head_only = request.method() == http::Method::HEAD;
        let has_body = !hyper::body::Body::is_end_stream(request.body());
        let mut response = match ops::handle(state, request, &request_id).await {
            Ok(response) => response,
            Err(err) => error_response(&err, &resource, &request_id),
        };
        let failed = response.status().as_u16() >= 400;
        let headers = response.headers_mut();
        if has_body && failed {
            // The body may be left unread: the connection cannot be reused,
            // and well-behaved clients must be told before hyper closes it.
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        let id = HeaderValue::from_str(&request_id).expect("base64 is a valid header value");
        headers.insert("x-cos-request-id", id.clone());
        headers.insert("x-amz-request-id", id);
        headers.insert(SERVER, HeaderValue::from_static(SERVER_NAME));
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let operation = response
            .extensions()
            .get::<ops::Operation>()
            .map_or("Unrouted", |o| o.0);
        metrics::request(operation, status, elapsed);
        tracing::info!(
            operation,
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            bytes = body_bytes(&response, head_only),
            "served"
        );
        response
    }
    .instrument(span)
    .await
}

/// The bytes of a response's body (declared length, else the body's exact
/// size; `None` for a stream of unknown length).
fn body_bytes(response: &Response, head_only: bool) -> Option<u64> {
    if head_only {
        return Some(0);
    }
    response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| hyper::body::Body::size_hint(response.body()).exact())
}

/// The COS XML error document of `err`.
pub fn error_response(err: &ApiError, resource: &str, request_id: &str) -> Response {
    if err.status().is_server_error() {
        tracing::warn!(code = err.code.as_str(), detail = %err.message, "request failed");
    } else {
        tracing::info!(code = err.code.as_str(), detail = %err.message, "request refused");
    }
    let mut doc = XmlWriter::new("Error");
    doc.text("Code", err.code.as_str())
        .text("Message", &err.message)
        .text("Resource", resource)
        .text("RequestId", request_id)
        .text("TraceId", request_id);
    let mut response = ops::object::xml(err.status(), doc.finish());
    if err.code == crate::error::ErrorCode::SlowDown {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
