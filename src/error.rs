//! The single place where layer errors become wire errors.
//!
//! Every layer has its own typed error (`proto::ProtoError`,
//! `storage::StorageError`, ...). Handlers return [`ApiError`]; the `From`
//! impls here decide the COS code, HTTP status and client-visible message of
//! each, and `server` renders it as COS XML (object API) or API 3.0 JSON.
//! Internal details go to the log, never into a message.

use http::StatusCode;

use crate::jobs::{JobError, Missing};
use crate::media::MediaError;
use crate::pool::PoolError;
use crate::proto::sign::SignError;
use crate::proto::ProtoError;
use crate::storage::StorageError;

/// A COS/S3 error code. The names are the wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // The variants are the COS error codes themselves.
pub enum ErrorCode {
    AccessDenied,
    BadDigest,
    CorruptMedia,
    DecodeTimeout,
    EntityTooLarge,
    EntityTooSmall,
    ExpiredToken,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidJobState,
    InvalidMediaFile,
    IncompleteBody,
    InvalidPart,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidToken,
    InternalError,
    KeyTooLong,
    MalformedXML,
    MediaTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    NoSuchBucket,
    NoSuchCORSConfiguration,
    NoSuchJob,
    NoSuchKey,
    NoSuchQueue,
    NoSuchTemplate,
    NoSuchUpload,
    NoSuchWorkflow,
    NoVideoStream,
    NotImplemented,
    PreconditionFailed,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
    RequestTimeTooSkewed,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    SlowDown,
    UnsupportedCodec,
    XAmzContentSHA256Mismatch,
}

impl ErrorCode {
    /// The code as it appears in `<Code>`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            BadDigest => "BadDigest",
            CorruptMedia => "CorruptMedia",
            DecodeTimeout => "DecodeTimeout",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            ExpiredToken => "ExpiredToken",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidJobState => "InvalidJobState",
            InvalidMediaFile => "InvalidMediaFile",
            IncompleteBody => "IncompleteBody",
            InvalidPart => "InvalidPart",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidToken => "InvalidToken",
            InternalError => "InternalError",
            KeyTooLong => "KeyTooLong",
            MalformedXML => "MalformedXML",
            MediaTooLarge => "MediaTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            NoSuchBucket => "NoSuchBucket",
            NoSuchJob => "NoSuchJob",
            NoSuchKey => "NoSuchKey",
            NoSuchQueue => "NoSuchQueue",
            NoSuchTemplate => "NoSuchTemplate",
            NoSuchWorkflow => "NoSuchWorkflow",
            NoSuchUpload => "NoSuchUpload",
            NoSuchCORSConfiguration => "NoSuchCORSConfiguration",
            NoVideoStream => "NoVideoStream",
            NotImplemented => "NotImplemented",
            PreconditionFailed => "PreconditionFailed",
            RequestHeaderFieldsTooLarge => "RequestHeaderFieldsTooLarge",
            RequestTimeout => "RequestTimeout",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            SlowDown => "SlowDown",
            UnsupportedCodec => "UnsupportedCodec",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }

    /// The HTTP status the code implies.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            AccessDenied | InvalidAccessKeyId | SignatureDoesNotMatch | RequestTimeTooSkewed => {
                StatusCode::FORBIDDEN
            }
            NoSuchBucket
            | NoSuchKey
            | NoSuchUpload
            | NoSuchCORSConfiguration
            | NoSuchJob
            | NoSuchQueue
            | NoSuchTemplate
            | NoSuchWorkflow => StatusCode::NOT_FOUND,
            InvalidJobState => StatusCode::CONFLICT,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            RequestHeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
            DecodeTimeout => StatusCode::GATEWAY_TIMEOUT,
            SlowDown | ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error as the client sees it: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The COS/S3 code.
    pub code: ErrorCode,
    /// A human explanation, safe to show.
    pub message: String,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// 400 `InvalidArgument` naming the offending parameter.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// 500 `InternalError`; `detail` goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ProtoError> for ApiError {
    fn from(err: ProtoError) -> Self {
        let code = match &err {
            ProtoError::InvalidArgument(_) | ProtoError::InvalidKey(_) => {
                ErrorCode::InvalidArgument
            }
            ProtoError::KeyTooLong => ErrorCode::KeyTooLong,
            ProtoError::MalformedXml(_) => ErrorCode::MalformedXML,
            ProtoError::InvalidDigest => ErrorCode::InvalidDigest,
            ProtoError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            ProtoError::Unsupported(_) => ErrorCode::NotImplemented,
            ProtoError::NoSuchBucket(_) => ErrorCode::NoSuchBucket,
        };
        Self::new(code, err.to_string())
    }
}

impl From<StorageError> for ApiError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::NoSuchKey => {
                Self::new(ErrorCode::NoSuchKey, "The specified key does not exist.")
            }
            StorageError::NoSuchUpload => Self::new(
                ErrorCode::NoSuchUpload,
                "The specified multipart upload does not exist.",
            ),
            StorageError::BadDigest(what) => Self::new(
                ErrorCode::BadDigest,
                format!("The {what} you specified did not match what we received."),
            ),
            StorageError::TooLarge { limit } => Self::new(
                ErrorCode::EntityTooLarge,
                format!("Your proposed upload exceeds the maximum allowed size of {limit} bytes."),
            ),
            StorageError::IncompleteBody { expected, received } => Self::new(
                ErrorCode::InvalidRequest,
                format!("The request body ended after {received} of {expected} declared bytes."),
            ),
            StorageError::InvalidPart(message) => Self::new(ErrorCode::InvalidPart, message),
            StorageError::InvalidPartOrder => Self::new(
                ErrorCode::InvalidPartOrder,
                "The list of parts was not in ascending order.",
            ),
            StorageError::EntityTooSmall { part } => Self::new(
                ErrorCode::EntityTooSmall,
                format!("Part {part} is smaller than the minimum allowed part size."),
            ),
            StorageError::Client(err) => {
                if let Some(sign) = err.downcast_ref::<SignError>() {
                    return sign.clone().into();
                }
                if let Some(mismatch) = err.downcast_ref::<crate::auth::TrailerMismatch>() {
                    return Self::new(ErrorCode::BadDigest, mismatch.to_string());
                }
                tracing::info!(error = %err, "request body failed");
                Self::new(
                    ErrorCode::RequestTimeout,
                    "The request body could not be read from the client.",
                )
            }
            StorageError::Backend(err) => Self::internal(err),
            StorageError::Corrupt(detail) => Self::internal(detail),
        }
    }
}

impl From<SignError> for ApiError {
    fn from(err: SignError) -> Self {
        let code = match &err {
            SignError::Malformed(_)
            | SignError::Expired
            | SignError::NotYetValid
            | SignError::MissingSecurityToken => ErrorCode::AccessDenied,
            SignError::UnsupportedAlgorithm(_) | SignError::AmbiguousAuth => {
                ErrorCode::InvalidArgument
            }
            SignError::MissingSignedField(_) | SignError::SignatureDoesNotMatch => {
                ErrorCode::SignatureDoesNotMatch
            }
            SignError::RequestTimeTooSkewed => ErrorCode::RequestTimeTooSkewed,
            SignError::InvalidSecurityToken => ErrorCode::InvalidToken,
            SignError::ExpiredToken => ErrorCode::ExpiredToken,
            SignError::InvalidAccessKeyId => ErrorCode::InvalidAccessKeyId,
            SignError::ContentSha256Mismatch => ErrorCode::XAmzContentSHA256Mismatch,
            SignError::InvalidChunk(_) => ErrorCode::InvalidRequest,
            SignError::IncompleteBody => ErrorCode::IncompleteBody,
        };
        Self::new(code, err.to_string())
    }
}

impl From<MediaError> for ApiError {
    fn from(err: MediaError) -> Self {
        let code = match &err {
            MediaError::NotMedia => ErrorCode::InvalidMediaFile,
            MediaError::NoVideoStream => ErrorCode::NoVideoStream,
            MediaError::Corrupt => ErrorCode::CorruptMedia,
            MediaError::UnsupportedCodec { .. } => ErrorCode::UnsupportedCodec,
            MediaError::SourceTooLarge { .. } => ErrorCode::MediaTooLarge,
            MediaError::OutputSizeOutOfRange { .. } | MediaError::InvalidParameter { .. } => {
                ErrorCode::InvalidArgument
            }
            MediaError::Timeout => ErrorCode::DecodeTimeout,
            MediaError::Cancelled => ErrorCode::RequestTimeout,
            MediaError::Io(_) | MediaError::Internal { .. } => {
                return Self::internal(format!("{err:?}"))
            }
        };
        let message = err.to_string();
        let mut chars = message.chars();
        let message = match chars.next() {
            Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
            None => message,
        };
        Self::new(code, message)
    }
}

impl From<PoolError> for ApiError {
    fn from(err: PoolError) -> Self {
        match err {
            PoolError::Busy => Self::new(
                ErrorCode::SlowDown,
                "Too many snapshot requests are in progress; please retry shortly.",
            ),
            PoolError::Panicked => Self::internal("a decode job panicked"),
        }
    }
}

/// Job errors in the COS dialect (the CI media API, and uploads that start
/// procedures). The job store failing is a 503, so the client retries and
/// nothing is lost.
impl From<JobError> for ApiError {
    fn from(err: JobError) -> Self {
        let code = match &err {
            JobError::Store(store) => {
                tracing::error!(error = %store, "job store");
                return Self::new(
                    ErrorCode::ServiceUnavailable,
                    "The job store is unavailable; please retry.",
                );
            }
            JobError::InvalidParameterValue { .. }
            | JobError::MissingParameter { .. }
            | JobError::InvalidParameter { .. } => ErrorCode::InvalidArgument,
            JobError::Conflict { .. } => ErrorCode::InvalidJobState,
            JobError::Internal { .. } => ErrorCode::InternalError,
            JobError::NotFound { what, .. } => match what {
                Missing::Template => ErrorCode::NoSuchTemplate,
                Missing::Queue => ErrorCode::NoSuchQueue,
                Missing::Workflow => ErrorCode::NoSuchWorkflow,
                Missing::Job | Missing::Task => ErrorCode::NoSuchJob,
                Missing::Bucket => ErrorCode::NoSuchBucket,
                Missing::File | Missing::Object | Missing::Procedure => ErrorCode::NoSuchKey,
            },
        };
        Self::new(code, err.to_string())
    }
}

/// An API 3.0 error: a dotted code and a message, answered as
/// `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api3Error {
    /// E.g. `AuthFailure.SignatureFailure`, `InvalidParameterValue.Width`.
    pub code: String,
    /// A human explanation.
    pub message: String,
}

impl Api3Error {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl JobError {
    /// The API 3.0 code of the error.
    pub fn code(&self) -> String {
        match self {
            JobError::InvalidParameterValue { field, .. } => {
                format!("InvalidParameterValue.{field}")
            }
            JobError::MissingParameter { .. } => "MissingParameter".into(),
            JobError::InvalidParameter { .. } => "InvalidParameter".into(),
            JobError::NotFound { what, .. } => format!("ResourceNotFound.{}", vod_missing(*what)),
            JobError::Conflict { .. } => "FailedOperation".into(),
            JobError::Internal { .. } => "InternalError".into(),
            JobError::Store(_) => "InternalError".into(),
        }
    }
}

/// The VOD name of a missing thing.
fn vod_missing(what: Missing) -> &'static str {
    match what {
        Missing::Template => "TemplateNotExist",
        Missing::Task | Missing::Job => "TaskNotExist",
        Missing::File | Missing::Object => "FileNotExist",
        Missing::Procedure => "ProcedureNotExist",
        Missing::Queue => "QueueNotExist",
        Missing::Workflow => "WorkflowNotExist",
        Missing::Bucket => "BucketNotExist",
    }
}

impl From<JobError> for Api3Error {
    fn from(err: JobError) -> Self {
        let message = match &err {
            JobError::Store(store) => {
                tracing::error!(error = %store, "job store failure");
                "The job store is unavailable; try again.".to_owned()
            }
            other => other.to_string(),
        };
        Api3Error::new(err.code(), message)
    }
}
