//! The COS / S3 / API 3.0 protocol as pure functions. No I/O and no tokio.

pub mod sign;
