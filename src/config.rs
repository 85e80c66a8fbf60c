//! One validated [`Config`], built from defaults, a TOML file, environment
//! variables and command-line flags (later sources win).
//!
//! The file format is documented in `framegate.example.toml` at the repository
//! root; every key is optional.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration that could not be loaded or does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown/mistyped keys.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with line and column.
        message: String,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Who may do what on a bucket without a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BucketAcl {
    /// Every request must be signed.
    #[default]
    Private,
    /// Anonymous GET/HEAD of objects.
    PublicRead,
    /// Anonymous reads and writes (for tests and closed networks only).
    PublicReadWrite,
}

/// One bucket: a COS name mapped to a backing store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// `BucketName-APPID`, e.g. `demo-1250000000`.
    pub name: String,
    /// Backing store URL: `file://` (a directory under the data dir named
    /// after the bucket), `file:///absolute/dir`, `memory://`, `s3://bucket`,
    /// `gs://bucket`, `az://container`.
    #[serde(default = "default_store")]
    pub store: String,
    /// Anonymous access.
    #[serde(default)]
    pub acl: BucketAcl,
    /// Whether anonymous clients of a public bucket may also request
    /// snapshots and media info (decoding costs CPU, so it is opt-in).
    #[serde(default)]
    pub anonymous_media: bool,
    /// Options passed to the `object_store` builder (for `s3://`: `endpoint`,
    /// `region`, `access_key_id`, `secret_access_key`, `allow_http`, ...).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// CORS rules (`[[buckets.cors]]`), used until `PUT ?cors` replaces them.
    #[serde(default)]
    pub cors: Vec<crate::proto::cors::CorsRule>,
}

fn default_store() -> String {
    "file://".to_owned()
}

/// A credential: a secret id/key pair.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// The public half (`q-ak`, AWS access key id, TC3 SecretId).
    pub secret_id: String,
    /// The secret half. Never logged.
    pub secret_key: String,
    /// The session token of a temporary credential: requests must carry it
    /// (`x-cos-security-token`, `X-Amz-Security-Token`, `X-TC-Token`).
    #[serde(default)]
    pub security_token: Option<String>,
    /// What the credential may do; empty means everything (a root key).
    #[serde(default)]
    pub allow: Vec<PolicyStatement>,
}

/// One grant: these actions on these resources.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyStatement {
    /// Action names with `*` wildcards: `cos:GetObject`, `cos:*`,
    /// `ci:GenerateSnapshot`, `vod:*`.
    pub actions: Vec<String>,
    /// `<bucket>/<key prefix or pattern>` with `*` wildcards, e.g.
    /// `demo-1250000000/videos/*`; `*` alone is every resource.
    pub resources: Vec<String>,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow", &self.allow)
            .finish()
    }
}

/// Protective limits of the HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest request head (request line + headers) in bytes.
    pub max_header_bytes: usize,
    /// Largest single PUT body in bytes (COS: 5 GiB).
    pub max_object_bytes: u64,
    /// Largest XML/JSON request body in bytes.
    pub max_document_bytes: usize,
    /// Bytes of small objects (up to a quarter of this each) kept in memory
    /// for repeated GETs (0 disables the cache).
    pub object_cache_bytes: usize,
    /// When cached objects of local buckets (1 MiB or more) are sent with
    /// `sendfile(2)`: `auto` (while the server is busy), `always` or `off`.
    pub sendfile: crate::zero_copy::SendfileMode,
    /// Seconds a client may take to send a request head.
    pub header_read_timeout_secs: u64,
    /// Seconds after which a connection that has not started a request is
    /// closed (clients that connect and send nothing, or dribble a head).
    pub first_request_timeout_secs: u64,
    /// Open connections at most; beyond it the oldest connections that
    /// never sent a request, then the longest idle, are closed to make
    /// room (busy ones never). 0: 16384. Always kept below the open-file
    /// limit less a reserve for files and stores (a quarter of it, 256 to
    /// 4096), which the gateway raises to the hard limit at start.
    pub max_connections: usize,
    /// Seconds an idle keep-alive connection is kept open.
    pub idle_timeout_secs: u64,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_grace_secs: u64,
    /// Seconds of clock difference tolerated when checking signature times.
    pub clock_skew_secs: u64,
    /// Refuse a `ci-process` parameter the signature does not list. COS
    /// accepts it (an appended `&ci-process=snapshot&time=1` turns a
    /// pre-signed GET into a snapshot, still authorized as one); `true`
    /// makes the signer decide the operation.
    pub require_signed_ci_process: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_object_bytes: 5 * 1024 * 1024 * 1024,
            max_document_bytes: 1024 * 1024,
            object_cache_bytes: 64 * 1024 * 1024,
            sendfile: crate::zero_copy::SendfileMode::Auto,
            header_read_timeout_secs: 15,
            first_request_timeout_secs: 5,
            max_connections: 0,
            idle_timeout_secs: 75,
            shutdown_grace_secs: 30,
            clock_skew_secs: 300,
            require_signed_ci_process: false,
        }
    }
}

/// Snapshot and media-info work.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Decodes running at once; 0 means one per core.
    pub workers: usize,
    /// Decodes waiting for a worker before new ones get 503 `SlowDown`.
    pub queue: usize,
    /// Seconds one snapshot or probe may take before 504 `DecodeTimeout`.
    pub timeout_secs: u64,
    /// Source videos with more pixels per frame are refused before decoding.
    pub max_source_pixels: u64,
    /// JPEG quality, 1 to 100.
    pub jpeg_quality: u8,
    /// `Cache-Control` of snapshot responses.
    pub cache_control: String,
    /// Bytes of encoded snapshots kept in memory for repeated requests
    /// (0 disables the cache).
    pub cache_bytes: usize,
    /// Opened videos (parsed container header and index, read-ahead
    /// windows of up to 8 MiB) kept for repeated snapshots of the same
    /// object version (0 opens every time).
    pub open_cache_entries: usize,
    /// Decoders kept after an exact snapshot at the position they reached,
    /// with their reference pictures, so a later time of the same object
    /// version in the same group of pictures continues from there
    /// (scrubbing); 0 parks none (every exact snapshot starts at its
    /// keyframe, and stops decoding at its frame).
    pub parked_decoders: usize,
    /// Estimated memory all parked decoders may hold (decoded pictures),
    /// in bytes; the least recently parked go first.
    pub parked_decoder_bytes: u64,
    /// Seconds a parked decoder is kept without being used.
    pub parked_idle_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            queue: 32,
            timeout_secs: 20,
            max_source_pixels: 7680 * 4320,
            jpeg_quality: 85,
            cache_control: "public, max-age=86400".to_owned(),
            cache_bytes: 64 * 1024 * 1024,
            open_cache_entries: 16,
            parked_decoders: 8,
            parked_decoder_bytes: 512 * 1024 * 1024,
            parked_idle_secs: 30,
        }
    }
}

/// The asynchronous job system (VOD-style screenshot tasks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Where tasks, templates and media records live: `sqlite` (the file
    /// `jobs.sqlite3` in the data directory), `sqlite:///absolute/file.db`,
    /// or `postgres://user:password@host:port/database` (shared by several
    /// gateways).
    pub store: String,
    /// Tasks run at once by this gateway; 0 means half the cores (at least
    /// one).
    pub workers: usize,
    /// Decoder threads per task; 0 lets FFmpeg use every core.
    pub decode_threads: u32,
    /// Run job threads at idle CPU priority (`SCHED_IDLE`), so snapshot
    /// requests always come first.
    pub idle_priority: bool,
    /// The bucket `MediaStoragePath` is a key of, and where outputs are
    /// written (default: the default bucket).
    pub bucket: Option<String>,
    /// Prefix of output keys: `<prefix><FileId>/<TaskId>/...`.
    pub output_prefix: String,
    /// Base of output URLs, e.g. `https://media.example.com` (default: the
    /// address the gateway listens on). URLs are path style:
    /// `<base>/<bucket>/<key>`.
    pub url_base: Option<String>,
    /// Lifetime of pre-signed output URLs (buckets that are not public).
    pub url_expiry_secs: u64,
    /// The credential that signs output URLs (default: the first one).
    pub url_credential: Option<String>,
    /// Seconds a worker's claim on a task lasts without renewal; a task
    /// whose worker died is taken over after this.
    pub lease_secs: u64,
    /// How often idle workers look for tasks other gateways queued.
    pub poll_interval_ms: u64,
    /// Seconds one task may run before it fails with a timeout.
    pub timeout_secs: u64,
    /// Times a task is started before it is given up (ABORTED).
    pub max_attempts: u32,
    /// Most pictures (or sprite cells) one subtask may make.
    pub max_outputs: usize,
    /// Numeric prefix of task ids (`<app_id>-Procedure-...`).
    pub app_id: u64,
    /// Prefix of the keys `ApplyUpload` hands out in the jobs bucket:
    /// `<prefix><session>/<name>.<type>`.
    pub upload_prefix: String,
    /// Longest life of an upload session and its temporary credential
    /// (`ApplyUpload`'s `ExpireTime` may shorten it).
    pub upload_session_secs: u64,
    /// Time after a session expires during which it may still be committed
    /// (an upload that started in time may end after); then an uncommitted
    /// session's objects and multipart uploads are deleted.
    pub upload_grace_secs: u64,
    /// How often expired upload sessions are swept and interrupted commits
    /// resumed.
    pub upload_sweep_secs: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            store: "sqlite".to_owned(),
            workers: 0,
            decode_threads: 0,
            idle_priority: true,
            bucket: None,
            output_prefix: "vod/".to_owned(),
            url_base: None,
            url_expiry_secs: 7 * 24 * 3600,
            url_credential: None,
            lease_secs: 30,
            poll_interval_ms: 1000,
            timeout_secs: 3600,
            max_attempts: 3,
            max_outputs: 10_000,
            app_id: 1_250_000_000,
            upload_prefix: "vod-uploads/".to_owned(),
            upload_session_secs: 3600,
            upload_grace_secs: 600,
            upload_sweep_secs: 60,
        }
    }
}

impl JobsConfig {
    /// Tasks run at once.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }
}

/// Task events: callbacks and the PullEvents queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Where events are POSTed (`http://` or `https://`); empty: nobody
    /// (events stay pullable). `ModifyEventConfig` overrides it at run time.
    pub callback_url: String,
    /// When set, each callback carries `X-Framegate-Signature: t=<unix
    /// seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with this key>`.
    pub callback_secret: String,
    /// Seconds one delivery attempt may take.
    pub callback_timeout_secs: u64,
    /// Attempts per event before it is given up (it stays pullable).
    pub callback_max_attempts: u32,
    /// The first retry delay; each retry doubles it (with jitter).
    pub callback_backoff_initial_ms: u64,
    /// The longest retry delay.
    pub callback_backoff_max_secs: u64,
    /// Seconds a pulled event stays hidden before it can be pulled again
    /// unless confirmed (VOD: 30).
    pub pull_visibility_secs: u64,
    /// Seconds events are kept, confirmed or not (VOD: 4 days).
    pub retention_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            callback_url: String::new(),
            callback_secret: String::new(),
            callback_timeout_secs: 10,
            callback_max_attempts: 24,
            callback_backoff_initial_ms: 1000,
            callback_backoff_max_secs: 600,
            pull_visibility_secs: 30,
            retention_secs: 4 * 24 * 3600,
        }
    }
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers): `timestamp`, `level`,
    /// the event's fields (`message`, and for each request `operation`,
    /// `status`, `elapsed_ms`, `bytes`), `target`, and `span` with the
    /// request id (`id`), `method` and `path`.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(ConfigError::Invalid(format!(
                "log format {other:?} must be \"text\" or \"json\""
            ))),
        }
    }
}

/// The demo page (`/.framegate/demo/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Serve it (also turned on by `serve --demo`). It hands out URLs signed
    /// with the first credential to anyone who loads it: keep it off in
    /// production.
    pub enabled: bool,
    /// Where the npm packages of `web/` are installed (`npm ci` in `web/`).
    pub assets_dir: PathBuf,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            assets_dir: PathBuf::from("web/node_modules"),
        }
    }
}

/// A rule that starts a procedure when an upload completes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// The bucket (default: the jobs bucket).
    pub bucket: Option<String>,
    /// Keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Keys ending with this (e.g. `.mp4`).
    #[serde(default)]
    pub suffix: String,
    /// The procedure (`CreateProcedureTemplate` name) to run.
    pub procedure: String,
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    admin_listen: Option<String>,
    log_format: Option<LogFormat>,
    data_dir: Option<PathBuf>,
    region: Option<String>,
    domain: Option<String>,
    default_bucket: Option<String>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    media: MediaConfig,
    #[serde(default)]
    jobs: JobsConfig,
    #[serde(default)]
    events: EventsConfig,
    #[serde(default)]
    triggers: Vec<TriggerConfig>,
    #[serde(default)]
    demo: DemoConfig,
    #[serde(default)]
    buckets: Vec<BucketConfig>,
    #[serde(default)]
    credentials: Vec<CredentialConfig>,
}

/// Values given on the command line or in the environment; they override
/// the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `FRAMEGATE_LISTEN`.
    pub listen: Option<String>,
    /// `--admin-listen` / `FRAMEGATE_ADMIN_LISTEN`.
    pub admin_listen: Option<String>,
    /// `--log-format` / `FRAMEGATE_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `--data-dir` / `FRAMEGATE_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `FRAMEGATE_SECRET_ID` + `FRAMEGATE_SECRET_KEY`: the root credential.
    pub root_credential: Option<CredentialConfig>,
    /// `serve --demo`: serve the demo page.
    pub demo: bool,
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Address of the admin listener (`/metrics`, `/healthz`, `/readyz`);
    /// none by default. Unauthenticated: use loopback or a private network.
    pub admin_listen: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// Where local buckets, credentials and state live.
    pub data_dir: PathBuf,
    /// The region in virtual-host names.
    pub region: String,
    /// The domain suffix of virtual-host names (`myqcloud.com`).
    pub domain: String,
    /// The bucket a bare host (IP, `localhost`) addresses.
    pub default_bucket: String,
    /// Server limits.
    pub limits: LimitsConfig,
    /// Snapshot and media-info work.
    pub media: MediaConfig,
    /// The asynchronous job system.
    pub jobs: JobsConfig,
    /// Task events and callbacks.
    pub events: EventsConfig,
    /// Upload rules that start procedures.
    pub triggers: Vec<TriggerConfig>,
    /// The demo page.
    pub demo: DemoConfig,
    /// Buckets, at least one.
    pub buckets: Vec<BucketConfig>,
    /// Credentials from the file, plus the root credential if given.
    pub credentials: Vec<CredentialConfig>,
}

/// The name of the bucket created when the config names none.
pub const DEFAULT_BUCKET: &str = "demo-1250000000";

impl Config {
    /// Loads `path` (if any), applies `overrides`, fills defaults and validates.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        Self::from_parts(file, overrides)
    }

    /// Parses a TOML document (used by tests and `load`).
    pub fn from_toml(text: &str, overrides: Overrides) -> Result<Self, ConfigError> {
        let file = toml::from_str::<FileConfig>(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string(),
        })?;
        Self::from_parts(file, overrides)
    }

    fn from_parts(file: FileConfig, overrides: Overrides) -> Result<Self, ConfigError> {
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_text.parse::<SocketAddr>().map_err(|_| {
            ConfigError::Invalid(format!(
                "listen address {listen_text:?} is not IP:PORT (e.g. 127.0.0.1:8080)"
            ))
        })?;
        let admin_listen = match overrides.admin_listen.or(file.admin_listen) {
            None => None,
            Some(text) if text.is_empty() || text == "off" => None,
            Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
                ConfigError::Invalid(format!(
                    "admin_listen address {text:?} is not IP:PORT (e.g. 127.0.0.1:9180)"
                ))
            })?),
        };
        let log_format = overrides.log_format.or(file.log_format).unwrap_or_default();
        let data_dir = overrides
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("framegate-data"));
        let mut buckets = file.buckets;
        if buckets.is_empty() {
            buckets.push(BucketConfig {
                name: DEFAULT_BUCKET.to_owned(),
                store: default_store(),
                acl: BucketAcl::Private,
                anonymous_media: false,
                options: BTreeMap::new(),
                cors: Vec::new(),
            });
        }
        let default_bucket = file
            .default_bucket
            .unwrap_or_else(|| buckets[0].name.clone());
        let mut credentials = file.credentials;
        if let Some(root) = overrides.root_credential {
            credentials.retain(|c| c.secret_id != root.secret_id);
            credentials.insert(0, root);
        }
        let config = Self {
            listen,
            admin_listen,
            log_format,
            data_dir,
            region: file.region.unwrap_or_else(|| "ap-guangzhou".to_owned()),
            domain: file.domain.unwrap_or_else(|| "myqcloud.com".to_owned()),
            default_bucket,
            limits: file.limits,
            media: file.media,
            jobs: file.jobs,
            events: file.events,
            triggers: file.triggers,
            demo: DemoConfig {
                enabled: file.demo.enabled || overrides.demo,
                ..file.demo
            },
            buckets,
            credentials,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for bucket in &self.buckets {
            if !is_valid_bucket_name(&bucket.name) {
                return Err(ConfigError::Invalid(format!(
                    "bucket name {:?} must look like BucketName-APPID: lowercase letters, digits \
                     and '-', 1-50 characters before '-APPID'",
                    bucket.name
                )));
            }
            if !bucket.cors.is_empty() {
                crate::proto::cors::validate(&bucket.cors).map_err(|e| {
                    ConfigError::Invalid(format!("bucket {:?} cors: {e}", bucket.name))
                })?;
            }
            if !seen.insert(bucket.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "bucket {:?} is configured twice",
                    bucket.name
                )));
            }
        }
        if !self.buckets.iter().any(|b| b.name == self.default_bucket) {
            return Err(ConfigError::Invalid(format!(
                "default_bucket {:?} is not one of the configured buckets",
                self.default_bucket
            )));
        }
        if self.domain.is_empty() || self.region.is_empty() {
            return Err(ConfigError::Invalid(
                "region and domain must not be empty".to_owned(),
            ));
        }
        let limits = &self.limits;
        if limits.max_header_bytes < 8192 {
            return Err(ConfigError::Invalid(
                "limits.max_header_bytes must be at least 8192".to_owned(),
            ));
        }
        if limits.header_read_timeout_secs == 0
            || limits.idle_timeout_secs == 0
            || limits.first_request_timeout_secs == 0
        {
            return Err(ConfigError::Invalid(
                "limits.header_read_timeout_secs, limits.first_request_timeout_secs and \
                 limits.idle_timeout_secs must be positive"
                    .to_owned(),
            ));
        }
        let media = &self.media;
        if !(1..=100).contains(&media.jpeg_quality) {
            return Err(ConfigError::Invalid(
                "media.jpeg_quality must be from 1 to 100".to_owned(),
            ));
        }
        if media.parked_decoders > 0 && media.parked_idle_secs == 0 {
            return Err(ConfigError::Invalid(
                "media.parked_idle_secs must be positive when decoders are parked".to_owned(),
            ));
        }
        if media.timeout_secs == 0 || media.max_source_pixels == 0 {
            return Err(ConfigError::Invalid(
                "media.timeout_secs and media.max_source_pixels must be positive".to_owned(),
            ));
        }
        let jobs = &self.jobs;
        if let Some(bucket) = &jobs.bucket {
            if !self.buckets.iter().any(|b| &b.name == bucket) {
                return Err(ConfigError::Invalid(format!(
                    "jobs.bucket {bucket:?} is not one of the configured buckets"
                )));
            }
        }
        if !(jobs.store == "sqlite"
            || jobs.store.starts_with("sqlite://")
            || jobs.store.starts_with("postgres://")
            || jobs.store.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid(format!(
                "jobs.store {:?} must be \"sqlite\", sqlite:///path or postgres://...",
                jobs.store
            )));
        }
        if jobs.lease_secs < 3 || jobs.timeout_secs == 0 || jobs.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "jobs.lease_secs must be at least 3, jobs.timeout_secs and jobs.max_attempts \
                 positive"
                    .to_owned(),
            ));
        }
        if !(jobs.output_prefix.is_empty() || jobs.output_prefix.ends_with('/'))
            || jobs.output_prefix.starts_with('/')
        {
            return Err(ConfigError::Invalid(
                "jobs.output_prefix must be empty or a key prefix ending in '/', like \"vod/\""
                    .to_owned(),
            ));
        }
        if !jobs.upload_prefix.ends_with('/')
            || jobs.upload_prefix.starts_with('/')
            || crate::proto::route::validate_key(
                &jobs.upload_prefix[..jobs.upload_prefix.len() - 1],
            )
            .is_err()
        {
            return Err(ConfigError::Invalid(
                "jobs.upload_prefix must be a key prefix ending in '/', like \"vod-uploads/\""
                    .to_owned(),
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&jobs.upload_session_secs) || jobs.upload_sweep_secs == 0
        {
            return Err(ConfigError::Invalid(
                "jobs.upload_session_secs must be from 60 to 604800 and jobs.upload_sweep_secs \
                 positive"
                    .to_owned(),
            ));
        }
        let events = &self.events;
        if !(events.callback_url.is_empty()
            || events.callback_url.starts_with("http://")
            || events.callback_url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(
                "events.callback_url must be an http:// or https:// URL".to_owned(),
            ));
        }
        if events.callback_max_attempts == 0
            || events.callback_timeout_secs == 0
            || events.pull_visibility_secs == 0
        {
            return Err(ConfigError::Invalid(
                "events.callback_max_attempts, callback_timeout_secs and pull_visibility_secs \
                 must be positive"
                    .to_owned(),
            ));
        }
        for trigger in &self.triggers {
            if trigger.procedure.is_empty() {
                return Err(ConfigError::Invalid(
                    "every [[triggers]] needs a procedure".to_owned(),
                ));
            }
            if let Some(bucket) = &trigger.bucket {
                if !self.buckets.iter().any(|b| &b.name == bucket) {
                    return Err(ConfigError::Invalid(format!(
                        "trigger bucket {bucket:?} is not one of the configured buckets"
                    )));
                }
            }
        }
        for cred in &self.credentials {
            if cred.secret_id.is_empty() || cred.secret_key.len() < 8 {
                return Err(ConfigError::Invalid(format!(
                    "credential {:?}: secret_id must not be empty and secret_key must have at \
                     least 8 characters",
                    cred.secret_id
                )));
            }
        }
        Ok(())
    }

    /// Seconds a client may take to send a request head.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.header_read_timeout_secs)
    }

    /// How long a new connection may go without starting a request.
    pub fn first_request_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.first_request_timeout_secs)
    }

    /// How long an idle keep-alive connection stays open.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.idle_timeout_secs)
    }

    /// Grace period for in-flight requests on shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.limits.shutdown_grace_secs)
    }
}

/// Where the credentials a gateway runs with came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// The file, `FRAMEGATE_SECRET_ID`/`FRAMEGATE_SECRET_KEY`: the same on
    /// every node that shares the configuration.
    Configured,
    /// None was configured: the root credential was generated into (or read
    /// back from) this node's data directory.
    GeneratedOnThisNode,
}

/// Several gateways on one queue (docs/deploy.md): what this configuration
/// keeps on the node although a shared job store is configured.
impl Config {
    /// Whether the job store is one several gateways share (PostgreSQL);
    /// the embedded SQLite queue belongs to one node.
    pub fn shares_job_store(&self) -> bool {
        self.jobs.store.starts_with("postgres://") || self.jobs.store.starts_with("postgresql://")
    }

    /// Warnings for a node of a fleet: with a shared job store, every node
    /// must see the same objects and accept the same credentials, so
    /// buckets on the local disk or in memory and a credential generated
    /// into the data directory are named here. They
    /// are warnings, not errors: one gateway alone on PostgreSQL is a valid
    /// deployment, and the gateway cannot know whether it is alone. Empty
    /// without a shared job store.
    pub fn node_local_warnings(&self, credentials: CredentialSource) -> Vec<String> {
        if !self.shares_job_store() {
            return Vec::new();
        }
        let mut warnings = Vec::new();
        for bucket in &self.buckets {
            if bucket.store.starts_with("file://") {
                warnings.push(format!(
                    "bucket {:?} is on the local file system ({}) while jobs.store is shared: \
                     its objects' metadata and multipart uploads live in this node's data \
                     directory, so other gateways cannot serve it; use an object store \
                     (s3://, gs://, az://) for several gateways",
                    bucket.name, bucket.store
                ));
            } else if bucket.store.starts_with("memory://") {
                warnings.push(format!(
                    "bucket {:?} is in this process's memory while jobs.store is shared: \
                     other gateways can neither serve its objects nor run tasks on them",
                    bucket.name
                ));
            }
        }
        if credentials == CredentialSource::GeneratedOnThisNode {
            warnings.push(
                "no credential is configured, so this gateway generated its own in the data \
                 directory while jobs.store is shared: other gateways will refuse its \
                 signatures; give every node the same [[credentials]] (or \
                 FRAMEGATE_SECRET_ID/FRAMEGATE_SECRET_KEY)"
                    .to_owned(),
            );
        }
        warnings
    }
}

/// COS bucket names: `<name>-<appid>`, lowercase alphanumerics and dashes.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let Some((base, appid)) = name.rsplit_once('-') else {
        return false;
    };
    !base.is_empty()
        && base.len() <= 50
        && !appid.is_empty()
        && appid.bytes().all(|b| b.is_ascii_digit())
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !base.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gets_a_default_private_bucket() {
        let config = Config::from_toml("", Overrides::default()).unwrap();
        assert_eq!(config.default_bucket, DEFAULT_BUCKET);
        assert_eq!(config.buckets[0].acl, BucketAcl::Private);
        assert_eq!(config.listen.port(), 8080);
    }

    #[test]
    fn flags_override_the_file() {
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            ..Overrides::default()
        };
        let config = Config::from_toml("listen = \"0.0.0.0:9\"", overrides).unwrap();
        assert_eq!(config.listen.port(), 0);
    }

    #[test]
    fn the_admin_listener_is_off_unless_configured() {
        let config = Config::from_toml("", Overrides::default()).unwrap();
        assert_eq!(config.admin_listen, None);
        assert_eq!(config.log_format, LogFormat::Text);
        let config = Config::from_toml(
            "admin_listen = \"127.0.0.1:9090\"\nlog_format = \"json\"",
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(config.admin_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!(config.log_format, LogFormat::Json);
        let overrides = Overrides {
            admin_listen: Some("off".into()),
            ..Overrides::default()
        };
        let config = Config::from_toml("admin_listen = \"127.0.0.1:9090\"", overrides).unwrap();
        assert_eq!(config.admin_listen, None);
        let err = Config::from_toml("admin_listen = \"9090\"", Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("admin_listen"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_a_message() {
        let err = Config::from_toml("lisen = \"x\"", Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = Config::from_toml("listen = \"nope\"", Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("IP:PORT"), "{err}");
        let err = Config::from_toml("[[buckets]]\nname = \"Bad_Name\"", Overrides::default())
            .unwrap_err();
        assert!(err.to_string().contains("BucketName-APPID"), "{err}");
        let err = Config::from_toml("default_bucket = \"x-1\"", Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("default_bucket"), "{err}");
    }

    #[test]
    fn the_documented_example_file_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("framegate.example.toml");
        let config = Config::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(config.default_bucket, "demo-1250000000");
        assert_eq!(config.limits.idle_timeout_secs, 75);
    }

    #[test]
    fn upload_settings_are_checked() {
        let base = "[[buckets]]\nname = \"demo-1250000000\"\n[jobs]\n";
        for (bad, names) in [
            ("upload_prefix = \"/up/\"", "upload_prefix"),
            ("upload_prefix = \"up\"", "upload_prefix"),
            ("upload_prefix = \".framegate/\"", "upload_prefix"),
            ("upload_session_secs = 10", "upload_session_secs"),
            ("upload_sweep_secs = 0", "upload_sweep_secs"),
        ] {
            let err = Config::from_toml(&format!("{base}{bad}"), Overrides::default()).unwrap_err();
            assert!(err.to_string().contains(names), "{bad}: {err}");
        }
        let ok = Config::from_toml(
            &format!("{base}upload_prefix = \"in/coming/\""),
            Overrides::default(),
        )
        .unwrap();
        assert_eq!(ok.jobs.upload_prefix, "in/coming/");
    }

    #[test]
    fn node_local_buckets_and_generated_credentials_are_named_with_a_shared_store() {
        let buckets = "[[buckets]]\nname = \"disk-1250000000\"\n\
                       [[buckets]]\nname = \"ram-1250000000\"\nstore = \"memory://\"\n\
                       [[buckets]]\nname = \"shared-1250000000\"\nstore = \"s3://b\"\n";
        let alone = Config::from_toml(buckets, Overrides::default()).unwrap();
        assert!(!alone.shares_job_store());
        assert!(alone
            .node_local_warnings(CredentialSource::GeneratedOnThisNode)
            .is_empty());
        let fleet = Config::from_toml(
            &format!("{buckets}[jobs]\nstore = \"postgres://fg@db/fg\"\n"),
            Overrides::default(),
        )
        .unwrap();
        assert!(fleet.shares_job_store());
        let warnings = fleet.node_local_warnings(CredentialSource::Configured);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("disk-1250000000") && warnings[0].contains("local file"));
        assert!(warnings[1].contains("ram-1250000000") && warnings[1].contains("memory"));
        let warnings = fleet.node_local_warnings(CredentialSource::GeneratedOnThisNode);
        assert_eq!(warnings.len(), 3);
        assert!(warnings[2].contains("generated its own"));
    }

    #[test]
    fn bucket_names_follow_cos_rules() {
        assert!(is_valid_bucket_name("examplebucket-1250000000"));
        assert!(is_valid_bucket_name("my-videos-125"));
        assert!(!is_valid_bucket_name("examplebucket"));
        assert!(!is_valid_bucket_name("Example-125"));
        assert!(!is_valid_bucket_name("-125"));
        assert!(!is_valid_bucket_name("a-12b"));
    }
}
