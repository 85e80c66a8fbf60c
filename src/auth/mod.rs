//! Authentication and access control, decided before any storage or
//! decoding work starts.
//!
//! [`authenticate`] finds the request's one signature (COS q-sign, SigV4 or
//! TC3; header or pre-signed query), looks up the credential and verifies
//! the signature; [`authorize`] then checks the credential's policy (or, for
//! anonymous requests, the bucket ACL). What the signature says about the
//! body (a signed SHA-256, an `aws-chunked` framing) is enforced while the
//! body streams, by [`checked_body`].

mod body;
use crate::proto::sign::temporary;
pub mod policy;

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

pub use body::{checked_body, TrailerMismatch};

use crate::config::{BucketAcl, Config, CredentialConfig};
use crate::error::{ApiError, ErrorCode};
use crate::proto::route::{Endpoint, Route};
use crate::proto::sign::{self, BodyCheck, RequestParts, Scheme, SignError};
use crate::storage::Bucket;

/// The configured credentials by secret id.
#[derive(Debug, Default)]
pub struct Credentials {
    by_id: HashMap<String, CredentialConfig>,
    max_skew: Duration,
    /// `limits.require_signed_ci_process`.
    signed_ci_process: bool,
    /// Issues and verifies temporary upload credentials, once set.
    temporary: Option<temporary::IssuerKey>,
}

impl Credentials {
    /// The credentials of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            by_id: config
                .credentials
                .iter()
                .map(|c| (c.secret_id.clone(), c.clone()))
                .collect(),
            max_skew: Duration::from_secs(config.limits.clock_skew_secs),
            signed_ci_process: config.limits.require_signed_ci_process,
            temporary: None,
        }
    }

    /// Accepts temporary credentials issued with `key` (see [`temporary`]).
    pub fn with_temporary(mut self, key: temporary::IssuerKey) -> Self {
        self.temporary = Some(key);
        self
    }

    /// Issues the temporary credential of `grant`; `None` when this
    /// gateway has no issuer key.
    pub fn issue_temporary(
        &self,
        grant: &temporary::UploadGrant,
    ) -> Option<temporary::TemporaryCredential> {
        self.temporary.as_ref().map(|key| key.issue(grant))
    }

    /// The credential with this secret id.
    pub fn get(&self, secret_id: &str) -> Option<&CredentialConfig> {
        self.by_id.get(secret_id)
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No signature.
    Anonymous,
    /// A verified credential, by secret id.
    Key(String),
    /// A verified temporary upload credential (`ApplyUpload`), by what it
    /// may write.
    Temporary(temporary::UploadGrant),
}

/// The outcome of authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who signed.
    pub principal: Principal,
    /// How, for signed requests.
    pub scheme: Option<Scheme>,
    /// What remains to be verified about the body.
    pub body: BodyCheck,
}

/// Query parameters that choose the operation or what a response claims to
/// be. A signature must cover them, or a shared download link could be
/// turned into `text/html`, a snapshot or a multipart call.
const OPERATION_PARAMS: [&str; 12] = [
    "ci-process",
    "uploadId",
    "partNumber",
    "uploads",
    "delete",
    "response-content-type",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-cache-control",
    "response-expires",
    "x-cos-copy-source",
];

/// Headers that turn a request into another operation. A signature must
/// cover them, or whoever holds a pre-signed PUT URL could make it copy an
/// object they cannot read.
const OPERATION_HEADERS: [&str; 4] = [
    "x-cos-copy-source",
    "x-amz-copy-source",
    "x-cos-metadata-directive",
    "x-amz-metadata-directive",
];

/// Verifies the request's signature, if it carries one. `body` is the
/// request document for TC3 (whose signature covers it), `None` otherwise.
pub fn authenticate(
    credentials: &Credentials,
    request: &RequestParts<'_>,
    body: Option<&[u8]>,
) -> Result<Authenticated, SignError> {
    let Some(authorization) = sign::parse_authorization(request)? else {
        return Ok(Authenticated {
            principal: Principal::Anonymous,
            scheme: None,
            body: BodyCheck::None,
        });
    };
    let id = authorization.access_key_id();
    let now = SystemTime::now();
    // A configured credential, or a temporary one whose token proves it.
    let (secret_key, security_token, grant) = match credentials.get(id) {
        Some(credential) => (
            Cow::Borrowed(credential.secret_key.as_str()),
            credential.security_token.as_deref(),
            None,
        ),
        None => {
            let issuer = credentials
                .temporary
                .as_ref()
                .filter(|_| id.starts_with(temporary::SECRET_ID_PREFIX))
                .ok_or_else(|| {
                    tracing::info!(credential = %id, "unknown access key");
                    SignError::InvalidAccessKeyId
                })?;
            let now_secs = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let (grant, secret_key) = issuer
                .verify(id, authorization.security_token(), now_secs)
                .inspect_err(|err| {
                    tracing::info!(credential = %id, error = %err, "temporary credential refused")
                })?;
            (Cow::Owned(secret_key), None, Some(grant))
        }
    };
    let verified = authorization
        .verify(request, body, &secret_key, now, credentials.max_skew)
        .and_then(|verified| {
            authorization.check_security_token(security_token)?;
            Ok(verified)
        })
        .and_then(|verified| {
            match OPERATION_HEADERS.iter().find(|name| {
                request.headers.contains_key(**name) && !authorization.covers_header(name)
            }) {
                Some(name) => Err(SignError::Malformed(format!(
                    "the header {name} changes the operation but is not covered by the signature"
                ))),
                None => Ok(verified),
            }
        })
        .and_then(|verified| {
            let query = sign::query_pairs(request.uri.query());
            let unsigned = query.iter().find_map(|(name, _)| {
                let name = std::str::from_utf8(name).ok()?;
                // COS lets `ci-process` go unsigned: the operation it makes
                // is authorized as itself (`ci:GenerateSnapshot`, ...).
                let exempt = name == "ci-process" && !credentials.signed_ci_process;
                (OPERATION_PARAMS.contains(&name) && !exempt && !authorization.covers_param(name))
                    .then_some(name)
            });
            match unsigned {
                Some(name) => Err(SignError::Malformed(format!(
                    "the parameter {name} changes the operation but is not covered by the signature"
                ))),
                None => Ok(verified),
            }
        })
        .inspect_err(|err| tracing::info!(credential = %id, error = %err, "signature refused"))?;
    Ok(Authenticated {
        principal: match grant {
            Some(grant) => Principal::Temporary(grant),
            None => Principal::Key(verified.access_key_id),
        },
        scheme: Some(verified.scheme),
        body: verified.body,
    })
}

/// Whether anonymous clients of a public-read bucket may call `endpoint`.
fn public_read_allows(bucket: &Bucket, endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::GetObject | Endpoint::HeadObject => true,
        Endpoint::Snapshot | Endpoint::VideoInfo => bucket.anonymous_media,
        _ => false,
    }
}

/// Whether `principal` may take `action` on the object `key` of `bucket`
/// (for operations that name several keys, checked key by key).
pub fn may(
    credentials: &Credentials,
    principal: &Principal,
    bucket: &Bucket,
    action: &str,
    key: &str,
) -> bool {
    match principal {
        Principal::Key(id) => credentials.get(id).is_some_and(|credential| {
            policy::allows(&credential.allow, action, &format!("{}/{key}", bucket.name))
        }),
        Principal::Temporary(grant) => grant.allows(action, &bucket.name, Some(key)),
        Principal::Anonymous => match bucket.acl {
            BucketAcl::PublicReadWrite => true,
            BucketAcl::PublicRead => action == "cos:GetObject" || action == "cos:HeadObject",
            BucketAcl::Private => false,
        },
    }
}

/// Decides whether `principal` may call the routed endpoint on `bucket`.
pub fn authorize(
    credentials: &Credentials,
    principal: &Principal,
    bucket: &Bucket,
    route: &Route,
) -> Result<(), ApiError> {
    let action = policy::action(&route.endpoint);
    let allowed = match principal {
        // Multi-object delete names its keys in the body: each is checked
        // against the policy by the handler.
        Principal::Key(_) if route.endpoint == Endpoint::DeleteObjects => true,
        Principal::Key(id) => credentials.get(id).is_some_and(|credential| {
            policy::allows(&credential.allow, action, &policy::resource(route))
        }),
        // A copy is a PUT that reads another object: never with an upload
        // credential.
        Principal::Temporary(_) if matches!(route.endpoint, Endpoint::CopyObject { .. }) => false,
        Principal::Temporary(grant) => {
            let key = match route.endpoint {
                Endpoint::ListMultipartUploads => route.query.get("prefix"),
                _ => route.key.as_deref(),
            };
            grant.allows(action, &bucket.name, key)
        }
        // The media API writes and reads jobs of the whole bucket: never
        // anonymous, whatever the bucket's ACL.
        Principal::Anonymous if matches!(route.endpoint, Endpoint::Ci(_)) => false,
        Principal::Anonymous => match bucket.acl {
            BucketAcl::PublicReadWrite => true,
            BucketAcl::PublicRead => public_read_allows(bucket, &route.endpoint),
            BucketAcl::Private => false,
        },
    };
    if allowed {
        return Ok(());
    }
    let credential = match principal {
        Principal::Key(id) => id.as_str(),
        Principal::Temporary(grant) => grant.session.as_str(),
        Principal::Anonymous => "anonymous",
    };
    tracing::info!(action, bucket = %bucket.name, credential, "access denied");
    Err(ApiError::new(ErrorCode::AccessDenied, "Access Denied."))
}
