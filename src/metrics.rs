//! Prometheus metrics: one process-wide registry, recorded at the layer
//! that knows each figure and rendered in the Prometheus text format
//! (0.0.4) for `GET /metrics` on the admin listener (`server::admin`).
//!
//! A leaf module: it imports nothing of the crate, so every layer may
//! record into it. Recording is off until [`enable`] is called (the admin
//! listener is configured); then each call is a relaxed atomic load plus
//! an atomic add, or a histogram observation behind a short lock. Label
//! values are `&'static str`s from fixed sets, so the number of series is
//! bounded whatever clients send.
//!
//! Figures that live in the job store (tasks by state, the oldest waiting
//! task, the callback backlog) are queried at scrape time and set through
//! [`set_job_backlog`]; process figures are read from `/proc` at scrape
//! time.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A label set of constant names and values.
type Labels<const N: usize> = [(&'static str, &'static str); N];

/// Buckets of request latency (seconds): 1 ms to 20 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
];

/// Buckets of job durations (seconds): 100 ms to an hour.
const JOB_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn job_histogram() -> Histogram {
    Histogram::new(JOB_BUCKETS)
}

/// Every metric the gateway records.
struct Metrics {
    registry: Registry,
    requests: Family<Labels<2>, Histogram, fn() -> Histogram>,
    snapshot_decode: Family<Labels<1>, Histogram, fn() -> Histogram>,
    snapshot_cache: Family<Labels<1>, Counter>,
    opened_cache: Family<Labels<1>, Counter>,
    coalesced: Counter,
    store_read_bytes: Family<Labels<1>, Counter>,
    store_read_requests: Family<Labels<1>, Counter>,
    decode_workers: Gauge,
    decode_busy: Gauge,
    decode_queued: Gauge,
    decode_refused: Counter,
    connections_open: Gauge,
    connections_shed: Family<Labels<1>, Counter>,
    accept_errors: Counter,
    jobs: Family<Labels<2>, Gauge>,
    oldest_waiting: Gauge<f64, AtomicU64>,
    job_duration: Family<Labels<2>, Histogram, fn() -> Histogram>,
    lease_takeovers: Counter,
    callback_backlog: Gauge,
    callback_failures: Family<Labels<1>, Counter>,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            registry: Registry::default(),
            requests: Family::new_with_constructor(latency_histogram),
            snapshot_decode: Family::new_with_constructor(latency_histogram),
            snapshot_cache: Family::default(),
            opened_cache: Family::default(),
            coalesced: Counter::default(),
            store_read_bytes: Family::default(),
            store_read_requests: Family::default(),
            decode_workers: Gauge::default(),
            decode_busy: Gauge::default(),
            decode_queued: Gauge::default(),
            decode_refused: Counter::default(),
            connections_open: Gauge::default(),
            connections_shed: Family::default(),
            accept_errors: Counter::default(),
            jobs: Family::default(),
            oldest_waiting: Gauge::default(),
            job_duration: Family::new_with_constructor(job_histogram),
            lease_takeovers: Counter::default(),
            callback_backlog: Gauge::default(),
            callback_failures: Family::default(),
        };
        registry.register(
            "framegate_build",
            "The running build: version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "framegate_http_request_duration_seconds",
            "Requests of the public listener by operation and status class, and how long \
             each took until its response head (_count is the request count)",
            m.requests.clone(),
        );
        registry.register(
            "framegate_snapshot_decode_seconds",
            "Snapshot decodes by mode (keyframe, exactframe): open or reuse, seek, decode, \
             encode, on a decode worker",
            m.snapshot_decode.clone(),
        );
        registry.register(
            "framegate_snapshot_cache_requests",
            "Snapshot requests answered from the snapshot cache (hit) or not (miss)",
            m.snapshot_cache.clone(),
        );
        registry.register(
            "framegate_opened_cache_requests",
            "Snapshot decodes that found the video already opened (hit) or opened it (miss)",
            m.opened_cache.clone(),
        );
        registry.register(
            "framegate_snapshot_coalesced",
            "Snapshot requests that waited for an identical decode in progress instead of \
             decoding",
            m.coalesced.clone(),
        );
        registry.register(
            "framegate_store_read_bytes",
            "Bytes read from the backing stores, by reader: decode (snapshots, media info, \
             jobs: ranged reads) or object (GETs and the object cache; bytes sent from the \
             cache are not read again)",
            m.store_read_bytes.clone(),
        );
        registry.register(
            "framegate_store_read_requests",
            "Reads sent to the backing stores, by reader (decode, object)",
            m.store_read_requests.clone(),
        );
        registry.register(
            "framegate_decode_workers",
            "Threads of the decode pool",
            m.decode_workers.clone(),
        );
        registry.register(
            "framegate_decode_busy_workers",
            "Decode threads running a job",
            m.decode_busy.clone(),
        );
        registry.register(
            "framegate_decode_queue_depth",
            "Decode jobs waiting for a thread",
            m.decode_queued.clone(),
        );
        registry.register(
            "framegate_decode_refused",
            "Decodes refused with 503 SlowDown because the queue was full",
            m.decode_refused.clone(),
        );
        registry.register(
            "framegate_connections_open",
            "Open connections of the public listener",
            m.connections_open.clone(),
        );
        registry.register(
            "framegate_connections_shed",
            "Connections closed by the gateway to protect itself, by reason: limit \
             (limits.max_connections reached: the oldest never-used or idle ones go first, \
             or the new one when all are busy), \
             first_request (no request within limits.first_request_timeout_secs), \
             descriptors (the process ran out of file descriptors)",
            m.connections_shed.clone(),
        );
        registry.register(
            "framegate_accept_errors",
            "Failed accepts on the public listener (e.g. out of file descriptors)",
            m.accept_errors.clone(),
        );
        registry.register(
            "framegate_jobs",
            "Tasks and CI jobs in the job store by kind and state (all gateways sharing \
             the store; read at scrape time)",
            m.jobs.clone(),
        );
        registry.register(
            "framegate_jobs_oldest_waiting_seconds",
            "Age of the oldest waiting task or job (0 when none waits)",
            m.oldest_waiting.clone(),
        );
        registry.register(
            "framegate_job_duration_seconds",
            "Tasks and jobs this gateway ended, by kind and outcome, and how long each took \
             from its first start to its end (attempts before a takeover included)",
            m.job_duration.clone(),
        );
        registry.register(
            "framegate_job_lease_takeovers",
            "Tasks claimed again after their lease ran out or was handed back (a worker \
             died or stopped)",
            m.lease_takeovers.clone(),
        );
        registry.register(
            "framegate_callback_backlog",
            "Task events waiting for their callback delivery",
            m.callback_backlog.clone(),
        );
        registry.register(
            "framegate_callback_failures",
            "Failed callback deliveries: retried later (retry) or given up (given_up)",
            m.callback_failures.clone(),
        );
        registry.register_collector(Box::new(ProcessCollector {
            started: SystemTime::now(),
        }));
        Self { registry, ..m }
    }
}

/// Turns recording on (once the admin listener is configured).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
    LazyLock::force(&METRICS);
}

/// The metrics, if recording is on.
fn on() -> Option<&'static Metrics> {
    ENABLED.load(Ordering::Relaxed).then(|| &*METRICS)
}

/// The status class label of an HTTP status: `2xx`, `4xx`, ...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A request of the public listener was answered.
pub fn request(operation: &'static str, status: u16, elapsed: Duration) {
    if let Some(m) = on() {
        m.requests
            .get_or_create(&[("operation", operation), ("status", status_class(status))])
            .observe(elapsed.as_secs_f64());
    }
}

/// A snapshot was decoded in `mode` (`keyframe` or `exactframe`).
pub fn snapshot_decoded(mode: &'static str, elapsed: Duration) {
    if let Some(m) = on() {
        m.snapshot_decode
            .get_or_create(&[("mode", mode)])
            .observe(elapsed.as_secs_f64());
    }
}

/// How a snapshot request found its picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource {
    /// In the snapshot cache.
    Cached,
    /// From an identical decode in progress.
    Coalesced,
    /// Decoded for this request.
    Decoded,
}

/// A snapshot request found its picture as `source` says.
pub fn snapshot_served(source: SnapshotSource) {
    if let Some(m) = on() {
        let result = if source == SnapshotSource::Cached {
            "hit"
        } else {
            "miss"
        };
        m.snapshot_cache.get_or_create(&[("result", result)]).inc();
        if source == SnapshotSource::Coalesced {
            m.coalesced.inc();
        }
    }
}

/// A snapshot decode found its video opened (`reused`) or opened it.
pub fn opened_container(reused: bool) {
    if let Some(m) = on() {
        let result = if reused { "hit" } else { "miss" };
        m.opened_cache.get_or_create(&[("result", result)]).inc();
    }
}

/// Who reads from a backing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreReader {
    /// Ranged reads of decodes (snapshots, media info, jobs).
    Decode,
    /// Object GETs and object-cache fills.
    Object,
}

impl StoreReader {
    fn label(self) -> Labels<1> {
        match self {
            StoreReader::Decode => [("reader", "decode")],
            StoreReader::Object => [("reader", "object")],
        }
    }
}

/// `reader` sent one read request to a backing store.
pub fn store_request(reader: StoreReader) {
    if let Some(m) = on() {
        m.store_read_requests.get_or_create(&reader.label()).inc();
    }
}

/// `reader` received `bytes` from a backing store.
pub fn store_bytes(reader: StoreReader, bytes: u64) {
    if let Some(m) = on() {
        m.store_read_bytes
            .get_or_create(&reader.label())
            .inc_by(bytes);
    }
}

/// The decode pool has `workers` threads.
pub fn decode_workers(workers: usize) {
    if let Some(m) = on() {
        m.decode_workers.set(workers as i64);
    }
}

/// A decode job was queued.
pub fn decode_queued() {
    if let Some(m) = on() {
        m.decode_queued.inc();
    }
}

/// A decode thread took a queued job.
pub fn decode_started() {
    if let Some(m) = on() {
        m.decode_queued.dec();
        m.decode_busy.inc();
    }
}

/// A decode thread finished its job (and what it left behind).
pub fn decode_finished() {
    if let Some(m) = on() {
        m.decode_busy.dec();
    }
}

/// A decode was refused: the queue was full.
pub fn decode_refused() {
    if let Some(m) = on() {
        m.decode_refused.inc();
    }
}

/// The public listener holds `open` connections.
pub fn connections_open(open: usize) {
    if let Some(m) = on() {
        m.connections_open.set(open as i64);
    }
}

/// Why the gateway closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShedReason {
    /// `limits.max_connections` was reached.
    Limit,
    /// No request arrived in time.
    FirstRequest,
    /// The process ran out of file descriptors.
    Descriptors,
}

impl ShedReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ShedReason::Limit => "limit",
            ShedReason::FirstRequest => "first_request",
            ShedReason::Descriptors => "descriptors",
        }
    }
}

/// The gateway closed a connection for `reason`.
pub fn connection_shed(reason: ShedReason) {
    if let Some(m) = on() {
        m.connections_shed
            .get_or_create(&[("reason", reason.as_str())])
            .inc();
    }
}

/// An accept on the public listener failed.
pub fn accept_failed() {
    if let Some(m) = on() {
        m.accept_errors.inc();
    }
}

/// A task or job of `kind` ran for `elapsed` and ended with `outcome`
/// (`FINISH`, `ABORTED`, `CANCELED`, `interrupted`, ...).
pub fn job_ended(kind: &'static str, outcome: &'static str, elapsed: Duration) {
    if let Some(m) = on() {
        m.job_duration
            .get_or_create(&[("kind", kind), ("outcome", outcome)])
            .observe(elapsed.as_secs_f64());
    }
}

/// A task was claimed again after its lease ran out or was handed back.
pub fn lease_taken_over() {
    if let Some(m) = on() {
        m.lease_takeovers.inc();
    }
}

/// What follows a failed callback delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackFailure {
    /// It is tried again later.
    Retry,
    /// No retry follows: the event is left for pulls.
    GivenUp,
}

/// A callback delivery failed.
pub fn callback_failed(failure: CallbackFailure) {
    if let Some(m) = on() {
        let outcome = match failure {
            CallbackFailure::GivenUp => "given_up",
            CallbackFailure::Retry => "retry",
        };
        m.callback_failures
            .get_or_create(&[("outcome", outcome)])
            .inc();
    }
}

/// The job store's backlog, read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobBacklog {
    /// Rows by (kind, state).
    pub by_state: Vec<(&'static str, &'static str, i64)>,
    /// Age of the oldest waiting row.
    pub oldest_waiting: Duration,
    /// Events waiting for a callback delivery.
    pub callbacks_pending: i64,
}

/// Sets the job-store figures of the next render (scrapes are serialised
/// by the admin listener, so a render never sees them half set).
pub fn set_job_backlog(backlog: &JobBacklog) {
    if let Some(m) = on() {
        // States with no rows left read 0 rather than their last count.
        m.jobs.clear();
        for &(kind, state, count) in &backlog.by_state {
            m.jobs
                .get_or_create(&[("kind", kind), ("state", state)])
                .set(count);
        }
        m.oldest_waiting.set(backlog.oldest_waiting.as_secs_f64());
        m.callback_backlog.set(backlog.callbacks_pending);
    }
}

/// Every metric in the Prometheus text format.
pub fn render() -> String {
    let mut text = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut text, &METRICS.registry)
        .expect("writing to a String cannot fail");
    text
}

/// The standard `process_*` metrics, read from `/proc/self` when scraped.
#[derive(Debug)]
struct ProcessCollector {
    started: SystemTime,
}

/// Figures of this process from `/proc/self`.
#[derive(Debug, Default)]
struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    threads: u64,
    open_fds: u64,
}

impl ProcessFigures {
    fn read() -> Self {
        let mut figures = Self::default();
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may hold spaces).
            if let Some((_, rest)) = stat.rsplit_once(')') {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let field = |n: usize| fields.get(n).and_then(|f| f.parse::<u64>().ok());
                // utime and stime (fields 14 and 15) in USER_HZ, which
                // Linux fixes at 100 for /proc.
                figures.cpu_seconds =
                    (field(11).unwrap_or(0) + field(12).unwrap_or(0)) as f64 / 100.0;
                figures.threads = field(17).unwrap_or(0);
                figures.virtual_bytes = field(20).unwrap_or(0);
            }
        }
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            figures.resident_bytes = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            figures.open_fds = dir.count() as u64;
        }
        figures
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let figures = ProcessFigures::read();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let start = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let cpu = ConstCounter::new(figures.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 6] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                figures.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                figures.virtual_bytes as f64,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                figures.open_fds as f64,
            ),
            (
                "process_max_fds",
                "The open-file soft limit",
                limit.current.map_or(f64::INFINITY, |n| n as f64),
            ),
            (
                "process_threads",
                "OS threads of the process",
                figures.threads as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                start,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_cover_every_status() {
        assert_eq!(status_class(101), "1xx");
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(206), "2xx");
        assert_eq!(status_class(304), "3xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(status_class(599), "5xx");
    }

    #[test]
    fn recorded_figures_render_with_their_labels() {
        enable();
        request("GetObject", 200, Duration::from_millis(3));
        request("Snapshot", 503, Duration::from_millis(1));
        snapshot_decoded("keyframe", Duration::from_millis(12));
        snapshot_served(SnapshotSource::Coalesced);
        opened_container(true);
        store_request(StoreReader::Decode);
        store_bytes(StoreReader::Decode, 4096);
        connection_shed(ShedReason::FirstRequest);
        callback_failed(CallbackFailure::GivenUp);
        job_ended("snapshot", "FINISH", Duration::from_secs(2));
        set_job_backlog(&JobBacklog {
            by_state: vec![("vod", "WAITING", 3)],
            oldest_waiting: Duration::from_secs(7),
            callbacks_pending: 2,
        });
        let text = render();
        for series in [
            "framegate_build_info{version=\"",
            "framegate_http_request_duration_seconds_count{operation=\"GetObject\",status=\"2xx\"} ",
            "framegate_http_request_duration_seconds_bucket{operation=\"GetObject\",status=\"2xx\",le=\"0.005\"} 1",
            "framegate_http_request_duration_seconds_count{operation=\"Snapshot\",status=\"5xx\"} ",
            "framegate_snapshot_decode_seconds_count{mode=\"keyframe\"} ",
            "framegate_snapshot_cache_requests_total{result=\"miss\"} ",
            "framegate_snapshot_coalesced_total ",
            "framegate_opened_cache_requests_total{result=\"hit\"} ",
            "framegate_store_read_bytes_total{reader=\"decode\"} 4096",
            "framegate_store_read_requests_total{reader=\"decode\"} 1",
            "framegate_connections_shed_total{reason=\"first_request\"} ",
            "framegate_callback_failures_total{outcome=\"given_up\"} ",
            "framegate_job_duration_seconds_count{kind=\"snapshot\",outcome=\"FINISH\"} ",
            "framegate_jobs{kind=\"vod\",state=\"WAITING\"} 3",
            "framegate_jobs_oldest_waiting_seconds 7",
            "framegate_callback_backlog 2",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_cpu_seconds_total ",
        ] {
            assert!(text.contains(series), "{series} missing from:\n{text}");
        }
        assert!(text.starts_with("# HELP"), "{text}");
    }
}
