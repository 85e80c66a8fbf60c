//! The one error type of the signature layer, and its wire mapping.

use http::StatusCode;

/// Why a request's signature was not accepted.
///
/// Each variant names the COS / S3 error it becomes on the object API
/// ([`SignError::cos_error`]) and the API 3.0 code it becomes on the
/// `TC3-HMAC-SHA256` endpoint ([`SignError::api3_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// A signature field is missing or cannot be parsed; the message names
    /// it. COS / S3: 403 `AccessDenied`. API 3.0: `AuthFailure.InvalidAuthorization`.
    #[error("The authorization information is malformed: {0}")]
    Malformed(String),
    /// An algorithm other than `sha1` (COS), `AWS4-HMAC-SHA256` (S3) or
    /// `TC3-HMAC-SHA256`, or an auth scheme we do not speak (SigV2,
    /// `Bearer`, ...). COS / S3: 400 `InvalidArgument`. API 3.0:
    /// `AuthFailure.InvalidAuthorization`.
    #[error("The authorization algorithm {0:?} is not supported.")]
    UnsupportedAlgorithm(String),
    /// The request names a header or parameter as signed but does not carry
    /// it. COS / S3: 403 `SignatureDoesNotMatch`. API 3.0:
    /// `AuthFailure.SignatureFailure`.
    #[error("The signed {0} is missing from the request.")]
    MissingSignedField(String),
    /// The signature does not match the request. COS / S3: 403
    /// `SignatureDoesNotMatch`. API 3.0: `AuthFailure.SignatureFailure`.
    #[error("The request signature we calculated does not match the signature you provided.")]
    SignatureDoesNotMatch,
    /// The signature's validity window ended before now (less the skew).
    /// COS / S3: 403 `AccessDenied` "Request has expired". API 3.0:
    /// `AuthFailure.SignatureExpire`.
    #[error("Request has expired.")]
    Expired,
    /// The signature's validity window starts after now (plus the skew).
    /// COS / S3: 403 `AccessDenied` "Request is not valid yet". API 3.0:
    /// `AuthFailure.SignatureExpire`.
    #[error("Request is not valid yet.")]
    NotYetValid,
    /// A header-signed request's own time (`x-amz-date` / `Date`) is too
    /// far from now. COS / S3: 403 `RequestTimeTooSkewed`. API 3.0:
    /// `AuthFailure.SignatureExpire`.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,
    /// The credential is temporary and the request carries no security
    /// token (see [`super::Authorization::check_security_token`]). COS / S3:
    /// 403 `AccessDenied`. API 3.0: `AuthFailure.TokenFailure`.
    #[error("The request carries no security token.")]
    MissingSecurityToken,
    /// The security token does not belong to the credential. COS / S3: 400
    /// `InvalidToken`. API 3.0: `AuthFailure.TokenFailure`.
    #[error("The provided token is malformed or otherwise invalid.")]
    InvalidSecurityToken,
    /// The security token of a temporary credential has expired. COS / S3:
    /// 400 `ExpiredToken`. API 3.0: `AuthFailure.TokenFailure`.
    #[error("The provided token has expired.")]
    ExpiredToken,
    /// Never produced here: the caller's lookup of the access key failed.
    /// Present so that every auth failure travels as one type. COS / S3:
    /// 403 `InvalidAccessKeyId`. API 3.0: `AuthFailure.SecretIdNotFound`.
    #[error("The access key id you provided does not exist in our records.")]
    InvalidAccessKeyId,
    /// More than one way of authenticating is present (header and query,
    /// COS and SigV4, two `Authorization` headers). COS / S3: 400
    /// `InvalidArgument`. API 3.0: `AuthFailure.InvalidAuthorization`.
    #[error("Only one auth mechanism allowed.")]
    AmbiguousAuth,
    /// The body's SHA-256 differs from the signed `x-amz-content-sha256`.
    /// S3: 400 `XAmzContentSHA256Mismatch`. API 3.0: `AuthFailure.SignatureFailure`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch,
    /// An `aws-chunked` body does not follow the framing (bad chunk header,
    /// chunk too large, missing CRLF, data after the end). S3 / COS: 400
    /// `InvalidRequest`. API 3.0: `InvalidParameter`.
    #[error("The aws-chunked body is malformed: {0}")]
    InvalidChunk(String),
    /// An `aws-chunked` body ended before its final chunk. S3 / COS: 400
    /// `IncompleteBody`. API 3.0: `InvalidParameter`.
    #[error(
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )]
    IncompleteBody,
}

impl SignError {
    /// The HTTP status and COS / S3 error code this error becomes on the
    /// object API.
    pub fn cos_error(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Malformed(_) | Self::Expired | Self::NotYetValid | Self::MissingSecurityToken => {
                (StatusCode::FORBIDDEN, "AccessDenied")
            }
            Self::UnsupportedAlgorithm(_) | Self::AmbiguousAuth => {
                (StatusCode::BAD_REQUEST, "InvalidArgument")
            }
            Self::MissingSignedField(_) | Self::SignatureDoesNotMatch => {
                (StatusCode::FORBIDDEN, "SignatureDoesNotMatch")
            }
            Self::RequestTimeTooSkewed => (StatusCode::FORBIDDEN, "RequestTimeTooSkewed"),
            Self::InvalidSecurityToken => (StatusCode::BAD_REQUEST, "InvalidToken"),
            Self::ExpiredToken => (StatusCode::BAD_REQUEST, "ExpiredToken"),
            Self::InvalidAccessKeyId => (StatusCode::FORBIDDEN, "InvalidAccessKeyId"),
            Self::ContentSha256Mismatch => (StatusCode::BAD_REQUEST, "XAmzContentSHA256Mismatch"),
            Self::InvalidChunk(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            Self::IncompleteBody => (StatusCode::BAD_REQUEST, "IncompleteBody"),
        }
    }

    /// The Tencent Cloud API 3.0 error code this error becomes on the
    /// `TC3-HMAC-SHA256` endpoint.
    pub fn api3_code(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::UnsupportedAlgorithm(_) | Self::AmbiguousAuth => {
                "AuthFailure.InvalidAuthorization"
            }
            Self::MissingSignedField(_)
            | Self::SignatureDoesNotMatch
            | Self::ContentSha256Mismatch => "AuthFailure.SignatureFailure",
            Self::Expired | Self::NotYetValid | Self::RequestTimeTooSkewed => {
                "AuthFailure.SignatureExpire"
            }
            Self::MissingSecurityToken | Self::InvalidSecurityToken | Self::ExpiredToken => {
                "AuthFailure.TokenFailure"
            }
            Self::InvalidAccessKeyId => "AuthFailure.SecretIdNotFound",
            Self::InvalidChunk(_) | Self::IncompleteBody => "InvalidParameter",
        }
    }
}

/// Shorthand for a [`SignError::Malformed`] with a message.
pub(crate) fn malformed(message: impl Into<String>) -> SignError {
    SignError::Malformed(message.into())
}
