//! framegate: a Tencent COS / S3 compatible gateway that turns videos into
//! pictures on the fly.
//!
//! Module map (see ARCHITECTURE.md for the request path):
//! - [`config`]: one validated configuration from file, environment, flags.
//! - [`server`]: accept loop, connection limits and shedding, timeouts,
//!   request ids, error rendering, drain; the admin listener (metrics,
//!   health, readiness).
//! - [`ops`]: request handlers behind one dispatch `match`.
//! - [`auth`]: access decisions, made before any storage or decode work.
//! - [`proto`]: the wire protocol as pure functions (routing, ranges,
//!   conditionals, XML, signatures). No I/O.
//! - [`storage`]: buckets over `object_store`, metadata sidecars, multipart
//!   staging, the blocking ranged reader the media layer decodes from.
//! - [`av`]: the only `unsafe` code: RAII wrappers over FFmpeg.
//! - [`media`]: the safe media pipeline.
//! - [`pool`]: the bounded pool decode work runs on.
//! - [`jobs`]: VOD-style templates and screenshot tasks on a durable queue
//!   (SQLite or PostgreSQL), and the workers that run them.
//! - [`memory_cache`]: size-bounded LRUs of encoded snapshots and hot objects.
//! - [`metrics`]: Prometheus metrics every layer records into (a leaf).
//! - [`error`]: the one place layer errors become wire errors.
//! - [`bootstrap`]: first-run credential, demo upload.
//! - [`api_client`]: a TC3-signing API 3.0 client for `framegate job`.

pub mod api_client;
pub mod auth;
pub mod av;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod jobs;
pub mod media;
pub mod memory_cache;
pub mod metrics;
pub mod ops;
pub mod pool;
pub mod presign;
pub mod proto;
pub mod server;
pub mod storage;
pub mod zero_copy;
