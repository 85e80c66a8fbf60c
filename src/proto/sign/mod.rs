//! Request signatures as pure functions: COS signature v5
//! (`q-sign-algorithm=sha1`), AWS Signature V4 (header, pre-signed query,
//! streaming `aws-chunked` bodies) and Tencent Cloud `TC3-HMAC-SHA256`.
//!
//! The flow for the server: [`parse_authorization`] finds at most one
//! signature in a [`RequestParts`]; the caller looks up the secret for
//! [`Authorization::access_key_id`] (unknown → [`SignError::InvalidAccessKeyId`])
//! and calls [`Authorization::verify`], which returns a [`Verified`] telling
//! what is still to be checked about the body ([`BodyCheck`]).
//!
//! What stays with the caller:
//! - verify before answering `Expect: 100-continue` or reading the body;
//! - [`BodyCheck::Sha256`]: hash the body and call [`BodyCheck::check_sha256`]
//!   before committing it;
//! - [`BodyCheck::AwsChunked`]: feed the body through a [`ChunkedDecoder`],
//!   compare [`ChunkedDecoder::decoded_len`] with
//!   `x-amz-decoded-content-length`, and check the trailer's checksum
//!   (`x-amz-checksum-*`) before committing: unsigned-trailer chunks are
//!   released unverified;
//! - query strings decode `+` as a space here (the COS SDK form-encodes
//!   query values): handlers must read parameters the same way;
//! - COS lets a request carry parameters and headers it did not sign (the
//!   SDKs sign a subset); which unsigned ones to honour is policy.
//!
//! Architecture invariant: nothing here does I/O or reads the clock; `now`
//! is always a parameter.

pub mod cos;
mod encode;
mod error;
pub mod sigv2;
pub mod sigv4;
pub mod sigv4_chunked;
pub mod tc3;
pub mod temporary;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, Method, Uri};

pub use encode::{percent_decode, query_pairs, uri_encode, Plus};
pub use error::SignError;
pub use sigv4_chunked::{ChunkedContext, ChunkedDecoder, ChunkedMode, Trailers};

use encode::{ct_eq, query_value};
use error::malformed;

/// A borrowed view of the parts of a request that signatures cover.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target: path and query exactly as received on the wire.
    pub uri: &'a Uri,
    /// The request headers. `Host` should be present (HTTP/1.1); otherwise
    /// the authority of `uri` stands in for it.
    pub headers: &'a HeaderMap,
}

impl RequestParts<'_> {
    /// The decoded query pairs, `+` read as a space.
    fn query_pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        query_pairs(self.uri.query())
    }

    /// All values of header `name` joined by `,`, as bytes; `None` when absent.
    /// `host` falls back to the URI's authority.
    fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let mut values = self.headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            return (name == "host")
                .then(|| self.uri.authority().map(|a| a.as_str().as_bytes().to_vec()))
                .flatten();
        }
        Some(
            values
                .map(|v| v.as_bytes())
                .collect::<Vec<_>>()
                .join(&b","[..]),
        )
    }

    /// The first value of header `name` as text, if present and visible ASCII.
    fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A credential as a signer needs it.
#[derive(Clone, Copy)]
pub struct Credential<'a> {
    /// The public id: COS `SecretId`, AWS access key id.
    pub access_key_id: &'a str,
    /// The secret key.
    pub secret_key: &'a str,
    /// The session token of a temporary credential.
    pub security_token: Option<&'a str>,
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_key", &"<redacted>")
            .field("security_token", &self.security_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// The one signature a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// COS signature v5, in the `Authorization` header or the query.
    Cos(cos::CosAuth),
    /// AWS Signature V2, pre-signed query only.
    SigV2(sigv2::SigV2Auth),
    /// AWS Signature V4, in the `Authorization` header or the query.
    SigV4(sigv4::SigV4Auth),
    /// Tencent Cloud API 3.0 `TC3-HMAC-SHA256`, in the `Authorization` header.
    Tc3(tc3::Tc3Auth),
}

/// Which signature scheme and placement a verified request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// COS signature in the `Authorization` header.
    CosHeader,
    /// COS signature in the query (a pre-signed URL).
    CosQuery,
    /// AWS Signature V2 in the query (a `boto3` default pre-signed URL).
    SigV2Query,
    /// SigV4 in the `Authorization` header.
    SigV4Header,
    /// SigV4 in the query (a pre-signed URL).
    SigV4Query,
    /// `TC3-HMAC-SHA256`.
    Tc3,
}

/// What the body layer still has to check after the signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCheck {
    /// Nothing: the signature does not cover the body (COS, pre-signed
    /// URLs, `UNSIGNED-PAYLOAD`) or already covered it (TC3).
    None,
    /// The body's SHA-256 must equal this digest (the signed
    /// `x-amz-content-sha256`); see [`BodyCheck::check_sha256`].
    Sha256([u8; 32]),
    /// The body is `aws-chunked`: decode it with [`ChunkedDecoder::new`].
    AwsChunked(ChunkedContext),
}

impl BodyCheck {
    /// Compares the SHA-256 of the received body with the declared one, in
    /// constant time. Anything but [`BodyCheck::Sha256`] passes.
    pub fn check_sha256(&self, body_sha256: &[u8; 32]) -> Result<(), SignError> {
        match self {
            Self::Sha256(declared) if !ct_eq(declared, body_sha256) => {
                Err(SignError::ContentSha256Mismatch)
            }
            _ => Ok(()),
        }
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// How it was signed.
    pub scheme: Scheme,
    /// The access key that signed it.
    pub access_key_id: String,
    /// The session token it carried, if any.
    pub security_token: Option<String>,
    /// What remains to be checked about the body.
    pub body: BodyCheck,
}

impl Authorization {
    /// The access key id that claims to have signed the request.
    pub fn access_key_id(&self) -> &str {
        match self {
            Self::Cos(auth) => auth.access_key_id(),
            Self::SigV2(auth) => auth.access_key_id(),
            Self::SigV4(auth) => auth.access_key_id(),
            Self::Tc3(auth) => auth.access_key_id(),
        }
    }

    /// The session token the request carries (`x-cos-security-token`,
    /// `X-Amz-Security-Token`, `X-TC-Token`), if any.
    pub fn security_token(&self) -> Option<&str> {
        match self {
            Self::Cos(auth) => auth.security_token(),
            Self::SigV2(auth) => auth.security_token(),
            Self::SigV4(auth) => auth.security_token(),
            Self::Tc3(auth) => auth.security_token(),
        }
    }

    /// Whether the signature covers header `name` (lowercase): a header that
    /// changes what a request does must not be addable by whoever holds a
    /// pre-signed URL. TC3 requests carry no such headers.
    pub fn covers_header(&self, name: &str) -> bool {
        match self {
            Self::Cos(auth) => auth.header_list().iter().any(|h| h == name),
            Self::SigV4(auth) => auth.signed_headers().iter().any(|h| h == name),
            // A SigV2 URL refuses every `x-amz-*` header; the COS ones are
            // not signed by it.
            Self::SigV2(_) => false,
            Self::Tc3(_) => true,
        }
    }

    /// Whether the signature covers query parameter `name`. SigV4 covers the
    /// whole query; COS only the names in `q-url-param-list`; SigV2 only its
    /// sub-resources.
    pub fn covers_param(&self, name: &str) -> bool {
        match self {
            Self::Cos(auth) => auth
                .param_list()
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name)),
            Self::SigV2(_) => sigv2::is_sub_resource(name),
            Self::SigV4(_) | Self::Tc3(_) => true,
        }
    }

    /// Checks the request's session token against the one the credential
    /// requires (`None` for a permanent credential: any token is ignored).
    pub fn check_security_token(&self, required: Option<&str>) -> Result<(), SignError> {
        match (required, self.security_token()) {
            (None, _) => Ok(()),
            (Some(_), None) => Err(SignError::MissingSecurityToken),
            (Some(want), Some(got)) if ct_eq(want.as_bytes(), got.as_bytes()) => Ok(()),
            (Some(_), Some(_)) => Err(SignError::InvalidSecurityToken),
        }
    }

    /// Verifies the signature with the credential's secret key. `body` is
    /// needed (and only used) for TC3, whose signature covers the payload;
    /// TC3 without a body fails with [`SignError::Malformed`].
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        body: Option<&[u8]>,
        secret_key: &str,
        now: SystemTime,
        max_skew: Duration,
    ) -> Result<Verified, SignError> {
        match (self, body) {
            (Self::Cos(auth), _) => auth.verify(req, secret_key, now, max_skew),
            (Self::SigV2(auth), _) => auth.verify(req, secret_key, now),
            (Self::SigV4(auth), _) => auth.verify(req, secret_key, now, max_skew),
            (Self::Tc3(auth), Some(body)) => {
                auth.verify_with_body(req, body, secret_key, now, max_skew)
            }
            (Self::Tc3(_), None) => Err(malformed("a TC3 signature is verified with the body")),
        }
    }
}

/// Finds the signature a request carries: `Ok(None)` when anonymous (no
/// `Authorization` header or an empty one, as the COS SDK sends for
/// anonymous requests, and no signature in the query), an error when one
/// is malformed or more than one is present.
pub fn parse_authorization(req: &RequestParts<'_>) -> Result<Option<Authorization>, SignError> {
    let pairs = req.query_pairs();
    let header = authorization_header(req)?;
    let in_cos_query = cos::query_has_signature(&pairs);
    let in_sigv4_query = sigv4::query_has_signature(&pairs);
    let in_sigv2_query = sigv2::query_has_signature(&pairs);
    let present = [
        header.is_some(),
        in_cos_query,
        in_sigv4_query,
        in_sigv2_query,
    ];
    if present.iter().filter(|p| **p).count() > 1 {
        return Err(SignError::AmbiguousAuth);
    }
    if let Some(header) = header {
        return parse_header(req, header).map(Some);
    }
    if in_cos_query {
        return cos::CosAuth::from_query(req, &pairs).map(|a| Some(Authorization::Cos(a)));
    }
    if in_sigv4_query {
        return sigv4::SigV4Auth::from_query(&pairs).map(|a| Some(Authorization::SigV4(a)));
    }
    if in_sigv2_query {
        return sigv2::SigV2Auth::from_query(&pairs).map(|a| Some(Authorization::SigV2(a)));
    }
    Ok(None)
}

/// The single non-empty `Authorization` header, if any.
fn authorization_header<'a>(req: &RequestParts<'a>) -> Result<Option<&'a str>, SignError> {
    let mut values = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let (first, second) = (values.next(), values.next());
    if second.is_some() {
        return Err(SignError::AmbiguousAuth);
    }
    let Some(value) = first else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| malformed("the Authorization header is not visible ASCII"))?
        .trim();
    Ok((!text.is_empty()).then_some(text))
}

/// Dispatches an `Authorization` header value on its scheme.
fn parse_header(req: &RequestParts<'_>, value: &str) -> Result<Authorization, SignError> {
    if value.starts_with("q-") {
        return Ok(Authorization::Cos(cos::CosAuth::from_header(req, value)?));
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    match scheme {
        sigv4::ALGORITHM => Ok(Authorization::SigV4(sigv4::SigV4Auth::from_header(
            req, rest,
        )?)),
        tc3::ALGORITHM => Ok(Authorization::Tc3(tc3::Tc3Auth::from_header(req, rest)?)),
        other => Err(SignError::UnsupportedAlgorithm(
            other.chars().take(32).collect(),
        )),
    }
}

/// Seconds since the Unix epoch (0 before it).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Checks that `now` lies in `start..=end` (Unix seconds), widened by `skew`.
fn check_window(start: u64, end: u64, now: SystemTime, skew: Duration) -> Result<(), SignError> {
    let now = unix_seconds(now);
    let skew = skew.as_secs();
    if now.saturating_add(skew) < start {
        Err(SignError::NotYetValid)
    } else if now > end {
        // The end of a window is the signer's own promise ("valid until"),
        // so it is not widened: an expired URL stops working on time. Only
        // the start is widened, for a signer whose clock runs ahead.
        Err(SignError::Expired)
    } else {
        Ok(())
    }
}

/// Parses `k=v` items split by `separator`, rejecting duplicates; keys are
/// trimmed.
fn parse_fields<'a>(
    text: &'a str,
    separator: char,
    what: &str,
) -> Result<Vec<(&'a str, &'a str)>, SignError> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for item in text
        .split(separator)
        .map(str::trim)
        .filter(|i| !i.is_empty())
    {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| malformed(format!("{what}: {item:?} is not key=value")))?;
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(malformed(format!("{what}: {key} appears twice")));
        }
        fields.push((key, value));
    }
    Ok(fields)
}

/// The value of a required field from [`parse_fields`].
fn required<'a>(fields: &[(&str, &'a str)], key: &str, what: &str) -> Result<&'a str, SignError> {
    fields
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .ok_or_else(|| malformed(format!("{what}: {key} is missing")))
}

/// The security token from a header or, failing that, a query parameter.
fn token_from(
    req: &RequestParts<'_>,
    pairs: &[(Vec<u8>, Vec<u8>)],
    names: &[&str],
) -> Option<String> {
    names.iter().find_map(|name| {
        req.header_str(name)
            .map(str::to_owned)
            .or_else(|| query_value(pairs, name))
    })
}
