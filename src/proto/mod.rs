//! The COS / S3 / API 3.0 protocol as pure functions: routing a request to an
//! [`route::Endpoint`], query and header parsing, ranges, conditional requests,
//! XML documents, signatures. No I/O and no tokio here, so everything is
//! unit-testable with vectors.

pub mod ci_route;
pub mod conditional;
pub mod cors;
pub mod query;
pub mod range;
pub mod route;
pub mod sign;
pub mod snapshot;
pub mod xml;

/// A request that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// A parameter or header has an invalid value; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// The object key cannot be stored (path escape, NUL, bad UTF-8, ...).
    #[error("The object key is invalid: {0}")]
    InvalidKey(String),
    /// The object key is longer than allowed.
    #[error("Your key is too long (the limit is 850 bytes).")]
    KeyTooLong,
    /// An XML request body could not be parsed.
    #[error("The XML you provided was not well-formed or did not validate: {0}")]
    MalformedXml(String),
    /// `Content-MD5` is not valid base64 of 16 bytes.
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    /// The method is not allowed on this resource.
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed,
    /// A COS/S3 operation the gateway does not provide (wire code
    /// `NotImplemented`, 501).
    #[error("{0} is not provided by this gateway.")]
    Unsupported(&'static str),
    /// The bucket is not configured.
    #[error("The specified bucket {0:?} does not exist.")]
    NoSuchBucket(String),
}
