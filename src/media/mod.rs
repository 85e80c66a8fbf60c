//! The safe media pipeline: probe, seek, decode, rotate, scale, encode.

pub mod source;
