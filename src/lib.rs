//! framegate: a Tencent COS / S3 compatible gateway that turns videos into
//! pictures on the fly.

pub mod media;
pub mod proto;
