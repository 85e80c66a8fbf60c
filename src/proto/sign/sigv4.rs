//! AWS Signature Version 4 for S3: the `Authorization` header form and the
//! pre-signed query form.
//!
//! The canonical URI is the path as sent (S3 does not normalise or
//! double-encode); a signature over the path re-encoded by the AWS rules is
//! accepted too, as both name the same key. The canonical query is rebuilt
//! from the decoded parameters (`+` read as a space), re-encoded and sorted.
//! Region and service are taken from the credential scope as given.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use super::encode::{
    ct_eq, decode_signature, hmac_sha256, percent_decode, query_value, sha256_hex, trim_all,
    uri_encode, Plus,
};
use super::error::malformed;
use super::sigv4_chunked::{ChunkedContext, ChunkedMode, SigningKey};
use super::{
    check_window, parse_fields, required, unix_seconds, BodyCheck, Credential, RequestParts,
    Scheme, SignError, Verified,
};

/// The algorithm name, in the header and in `X-Amz-Algorithm`.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The payload hash of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The longest validity of a pre-signed URL: seven days.
pub const MAX_EXPIRES: u64 = 7 * 24 * 3600;
/// The timestamp format of `X-Amz-Date`.
const TIMESTAMP_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Header,
    /// A pre-signed URL valid for this many seconds.
    Query {
        expires: u64,
    },
}

/// The credential scope: `date/region/service/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    date: String,
    region: String,
    service: String,
}

impl Scope {
    fn text(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// A parsed SigV4 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Auth {
    placement: Placement,
    access_key_id: String,
    scope: Scope,
    timestamp: String,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    security_token: Option<String>,
}

/// Whether the decoded query carries a SigV4 signature.
pub(crate) fn query_has_signature(pairs: &[(Vec<u8>, Vec<u8>)]) -> bool {
    pairs.iter().any(|(name, _)| {
        matches!(
            name.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    })
}

impl SigV4Auth {
    /// Parses the part of an `Authorization` header after the algorithm:
    /// `Credential=..., SignedHeaders=..., Signature=...`.
    pub(crate) fn from_header(req: &RequestParts<'_>, rest: &str) -> Result<Self, SignError> {
        let what = "SigV4 Authorization";
        let fields = parse_fields(rest, ',', what)?;
        let timestamp = header_timestamp(req)?;
        let pairs = req.query_pairs();
        let token = req
            .header_str("x-amz-security-token")
            .map(str::to_owned)
            .or_else(|| query_value(&pairs, "X-Amz-Security-Token"));
        Self::build(
            Placement::Header,
            required(&fields, "Credential", what)?,
            required(&fields, "SignedHeaders", what)?,
            required(&fields, "Signature", what)?,
            timestamp,
            token,
        )
    }

    /// Parses the `X-Amz-*` parameters of a pre-signed URL.
    pub(crate) fn from_query(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Self, SignError> {
        let get = |key: &str| {
            query_value(pairs, key)
                .ok_or_else(|| malformed(format!("SigV4 query: {key} is missing")))
        };
        let algorithm = get("X-Amz-Algorithm")?;
        if algorithm != ALGORITHM {
            return Err(SignError::UnsupportedAlgorithm(algorithm));
        }
        let expires = get("X-Amz-Expires")?
            .parse::<u64>()
            .ok()
            .filter(|e| (1..=MAX_EXPIRES).contains(e))
            .ok_or_else(|| malformed(format!("X-Amz-Expires must be 1 to {MAX_EXPIRES}")))?;
        Self::build(
            Placement::Query { expires },
            &get("X-Amz-Credential")?,
            &get("X-Amz-SignedHeaders")?,
            &get("X-Amz-Signature")?,
            get("X-Amz-Date")?,
            query_value(pairs, "X-Amz-Security-Token"),
        )
    }

    fn build(
        placement: Placement,
        credential: &str,
        signed_headers: &str,
        signature: &str,
        timestamp: String,
        security_token: Option<String>,
    ) -> Result<Self, SignError> {
        let (access_key_id, scope) = parse_credential(credential)?;
        parse_timestamp(&timestamp)?;
        if !timestamp.starts_with(&scope.date) {
            return Err(malformed(
                "the credential date is not the date of X-Amz-Date",
            ));
        }
        let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(malformed("SignedHeaders must include host"));
        }
        if signed_headers
            .iter()
            .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
        {
            return Err(malformed(
                "SignedHeaders must be lowercase names split by ;",
            ));
        }
        Ok(Self {
            placement,
            access_key_id,
            scope,
            timestamp,
            signed_headers,
            signature: decode_signature(signature, "Signature").map_err(malformed)?,
            security_token,
        })
    }

    /// The access key id of the credential scope.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The `X-Amz-Security-Token` header or query parameter, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// The lowercase names in `SignedHeaders` / `X-Amz-SignedHeaders`.
    pub fn signed_headers(&self) -> &[String] {
        &self.signed_headers
    }

    /// The region named in the credential scope.
    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// Verifies the signature with `secret_key`. Header form: the request
    /// time must be within `max_skew` of `now`, every `x-amz-*` header must
    /// be signed and `x-amz-content-sha256` must be present. Query form:
    /// `now` must lie in `X-Amz-Date ..= X-Amz-Date + X-Amz-Expires` (the
    /// start widened by `max_skew`, the end exact), and every `x-amz-*`
    /// header must be signed there too.
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        secret_key: &str,
        now: SystemTime,
        max_skew: Duration,
    ) -> Result<Verified, SignError> {
        let time = parse_timestamp(&self.timestamp)?;
        let payload = match self.placement {
            Placement::Header => {
                check_skew(time, now, max_skew)?;
                self.check_all_amz_headers_signed(req)?;
                req.header_str("x-amz-content-sha256")
                    .ok_or_else(|| malformed("x-amz-content-sha256 is missing"))?
            }
            Placement::Query { expires } => {
                check_window(time, time.saturating_add(expires), now, max_skew)?;
                // As S3: whoever holds a pre-signed URL cannot add `x-amz-*`
                // headers (a copy source, metadata, ...) it does not cover.
                self.check_all_amz_headers_signed(req)?;
                UNSIGNED_PAYLOAD
            }
        };
        let body = classify_payload(payload)?;
        let key = signing_key(secret_key, &self.scope);
        let query = canonical_query(req, matches!(self.placement, Placement::Query { .. }));
        let headers = self.canonical_headers(req)?;
        let matches = canonical_uris(req.uri.path()).iter().any(|uri| {
            let creq = canonical_request(req.method.as_str(), uri, &query, &headers, payload);
            let expected = sign_string(&key, &self.timestamp, &self.scope, &creq);
            ct_eq(&expected, &self.signature)
        });
        if !matches {
            return Err(SignError::SignatureDoesNotMatch);
        }
        Ok(Verified {
            scheme: match self.placement {
                Placement::Header => Scheme::SigV4Header,
                Placement::Query { .. } => Scheme::SigV4Query,
            },
            access_key_id: self.access_key_id.clone(),
            security_token: self.security_token.clone(),
            body: self.body_check(body, key),
        })
    }

    /// Turns the declared payload into what the body layer checks.
    fn body_check(&self, payload: Payload, key: [u8; 32]) -> BodyCheck {
        match payload {
            Payload::Unsigned => BodyCheck::None,
            Payload::Sha256(digest) => BodyCheck::Sha256(digest),
            Payload::Streaming(mode) => BodyCheck::AwsChunked(ChunkedContext {
                mode,
                seed_signature: self.signature,
                signing_key: SigningKey(key),
                scope: self.scope.text(),
                timestamp: self.timestamp.clone(),
            }),
        }
    }

    /// S3 refuses requests with unsigned `x-amz-*` headers.
    fn check_all_amz_headers_signed(&self, req: &RequestParts<'_>) -> Result<(), SignError> {
        let unsigned = req.headers.keys().find(|name| {
            name.as_str().starts_with("x-amz-")
                && !self.signed_headers.iter().any(|s| s == name.as_str())
        });
        match unsigned {
            Some(name) => Err(malformed(format!(
                "header {name} is present but not signed"
            ))),
            None => Ok(()),
        }
    }

    /// `name:value` lines of the signed headers, plus the signed list.
    fn canonical_headers(&self, req: &RequestParts<'_>) -> Result<CanonicalHeaders, SignError> {
        let mut lines = Vec::new();
        for name in &self.signed_headers {
            let value = req
                .header_bytes(name)
                .ok_or_else(|| SignError::MissingSignedField(format!("header {name}")))?;
            lines.extend_from_slice(name.as_bytes());
            lines.push(b':');
            lines.extend_from_slice(&trim_all(&value));
            lines.push(b'\n');
        }
        Ok(CanonicalHeaders {
            lines,
            signed: self.signed_headers.join(";"),
        })
    }
}

/// The declared payload (`x-amz-content-sha256`).
enum Payload {
    Unsigned,
    Sha256([u8; 32]),
    Streaming(ChunkedMode),
}

/// Classifies an `x-amz-content-sha256` value.
fn classify_payload(value: &str) -> Result<Payload, SignError> {
    match value {
        UNSIGNED_PAYLOAD => Ok(Payload::Unsigned),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Ok(Payload::Streaming(ChunkedMode::Signed)),
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            Ok(Payload::Streaming(ChunkedMode::SignedWithTrailer))
        }
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => {
            Ok(Payload::Streaming(ChunkedMode::UnsignedWithTrailer))
        }
        other if other.starts_with("STREAMING-") => {
            Err(SignError::UnsupportedAlgorithm(other.to_owned()))
        }
        other => decode_signature(other, "x-amz-content-sha256")
            .map(Payload::Sha256)
            .map_err(malformed),
    }
}

/// Splits `AKID/20130524/us-east-1/s3/aws4_request`.
fn parse_credential(text: &str) -> Result<(String, Scope), SignError> {
    let mut parts = text.rsplitn(5, '/');
    let terminator = parts.next();
    let (service, region, date, access_key_id) =
        (parts.next(), parts.next(), parts.next(), parts.next());
    match (terminator, service, region, date, access_key_id) {
        (Some("aws4_request"), Some(service), Some(region), Some(date), Some(akid))
            if !akid.is_empty() && date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Ok((
                akid.to_owned(),
                Scope {
                    date: date.to_owned(),
                    region: region.to_owned(),
                    service: service.to_owned(),
                },
            ))
        }
        _ => Err(malformed(
            "Credential must be AKID/yyyymmdd/region/service/aws4_request",
        )),
    }
}

/// Unix seconds of a `yyyymmddThhmmssZ` timestamp.
fn parse_timestamp(text: &str) -> Result<u64, SignError> {
    NaiveDateTime::parse_from_str(text, TIMESTAMP_FORMAT)
        .ok()
        .and_then(|t| u64::try_from(t.and_utc().timestamp()).ok())
        .ok_or_else(|| malformed("X-Amz-Date must be yyyymmddThhmmssZ"))
}

/// The request time of a header-signed request: `x-amz-date`, or the
/// `Date` header in the SigV4 timestamp format.
fn header_timestamp(req: &RequestParts<'_>) -> Result<String, SignError> {
    if let Some(value) = req.header_str("x-amz-date") {
        return Ok(value.to_owned());
    }
    let date = req
        .header_str("date")
        .ok_or_else(|| malformed("x-amz-date (or Date) is missing"))?;
    let time =
        httpdate::parse_http_date(date).map_err(|_| malformed("Date is not an HTTP date"))?;
    Ok(format_timestamp(time))
}

fn format_timestamp(time: SystemTime) -> String {
    DateTime::<Utc>::from(time)
        .format(TIMESTAMP_FORMAT)
        .to_string()
}

/// A header-signed request must be within `skew` of `now`.
fn check_skew(time: u64, now: SystemTime, skew: Duration) -> Result<(), SignError> {
    let now = unix_seconds(now);
    if now.abs_diff(time) > skew.as_secs() {
        Err(SignError::RequestTimeTooSkewed)
    } else {
        Ok(())
    }
}

/// The path as sent and, when different, re-encoded by the AWS rules.
fn canonical_uris(path: &str) -> Vec<String> {
    let path = if path.is_empty() { "/" } else { path };
    let reencoded = uri_encode(&percent_decode(path.as_bytes(), Plus::Literal), true);
    let mut uris = vec![path.to_owned()];
    if reencoded != path {
        uris.push(reencoded);
    }
    uris
}

/// The canonical query: decoded pairs re-encoded, sorted by name then value;
/// `X-Amz-Signature` left out for pre-signed URLs.
fn canonical_query(req: &RequestParts<'_>, presigned: bool) -> String {
    let pairs = req
        .query_pairs()
        .into_iter()
        .filter(|(name, _)| !(presigned && name == b"X-Amz-Signature"));
    encode_sorted(pairs.map(|(k, v)| (uri_encode(&k, false), uri_encode(&v, false))))
}

fn encode_sorted(pairs: impl Iterator<Item = (String, String)>) -> String {
    let mut pairs: Vec<_> = pairs.collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Canonical header lines (`name:value\n` each) and the `;` list.
struct CanonicalHeaders {
    lines: Vec<u8>,
    signed: String,
}

fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &CanonicalHeaders,
    payload: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + headers.lines.len());
    for part in [method.as_bytes(), uri.as_bytes(), query.as_bytes()] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out.extend_from_slice(&headers.lines);
    out.push(b'\n');
    out.extend_from_slice(headers.signed.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload.as_bytes());
    out
}

/// The signing key: HMAC chain from `AWS4` + secret over the scope.
fn signing_key(secret_key: &str, scope: &Scope) -> [u8; 32] {
    let date = hmac_sha256(
        format!("AWS4{secret_key}").as_bytes(),
        scope.date.as_bytes(),
    );
    let region = hmac_sha256(&date, scope.region.as_bytes());
    let service = hmac_sha256(&region, scope.service.as_bytes());
    hmac_sha256(&service, b"aws4_request")
}

/// The signature of a canonical request.
fn sign_string(key: &[u8; 32], timestamp: &str, scope: &Scope, creq: &[u8]) -> [u8; 32] {
    let hashed = hex::encode(Sha256::digest(creq));
    let text = format!("{ALGORITHM}\n{timestamp}\n{}\n{hashed}", scope.text());
    hmac_sha256(key, text.as_bytes())
}

/// A request to sign.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Request<'a> {
    /// The method (uppercase, as sent).
    pub method: &'a str,
    /// The `Host` header value the request will carry (with any port).
    pub host: &'a str,
    /// The decoded path, `/bucket/key` for path-style S3.
    pub path: &'a str,
    /// Query parameters, decoded.
    pub params: &'a [(&'a str, &'a str)],
    /// Headers to sign besides `host` (and, in header form, the
    /// `x-amz-*` ones the signer adds); names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The region of the credential scope, e.g. `us-east-1`.
    pub region: &'a str,
    /// The service of the credential scope, `s3`.
    pub service: &'a str,
}

impl SigV4Request<'_> {
    fn scope(&self, now: SystemTime) -> Scope {
        Scope {
            date: format_timestamp(now)[..8].to_owned(),
            region: self.region.to_owned(),
            service: self.service.to_owned(),
        }
    }

    /// Canonical headers from `host` plus `extra` (lowercased, sorted).
    fn canonical_headers(&self, extra: &[(String, String)]) -> CanonicalHeaders {
        let mut all: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), trim_all(v.as_bytes())))
            .chain(
                extra
                    .iter()
                    .map(|(k, v)| (k.clone(), trim_all(v.as_bytes()))),
            )
            .chain(std::iter::once((
                "host".to_owned(),
                self.host.as_bytes().to_vec(),
            )))
            .collect();
        all.sort();
        let mut lines = Vec::new();
        for (name, value) in &all {
            lines.extend_from_slice(format!("{name}:").as_bytes());
            lines.extend_from_slice(value);
            lines.push(b'\n');
        }
        let signed = all
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        CanonicalHeaders { lines, signed }
    }
}

/// A pre-signed request target `path?query` (the path percent-encoded), to
/// be appended to `scheme://host`. Valid from `now` for `expires_in`
/// (clamped to 1 second ..= 7 days).
pub fn presign_url(
    credential: &Credential<'_>,
    req: &SigV4Request<'_>,
    now: SystemTime,
    expires_in: Duration,
) -> String {
    let scope = req.scope(now);
    let timestamp = format_timestamp(now);
    let headers = req.canonical_headers(&[]);
    let expires = expires_in.as_secs().clamp(1, MAX_EXPIRES).to_string();
    let credential_text = format!("{}/{}", credential.access_key_id, scope.text());
    let mut params: Vec<(&str, &str)> = req.params.to_vec();
    params.extend([
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential_text.as_str()),
        ("X-Amz-Date", timestamp.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", headers.signed.as_str()),
    ]);
    if let Some(token) = credential.security_token {
        params.push(("X-Amz-Security-Token", token));
    }
    let encoded = || {
        params.iter().map(|(k, v)| {
            (
                uri_encode(k.as_bytes(), false),
                uri_encode(v.as_bytes(), false),
            )
        })
    };
    let path = uri_encode(req.path.as_bytes(), true);
    let query = encode_sorted(encoded());
    let creq = canonical_request(req.method, &path, &query, &headers, UNSIGNED_PAYLOAD);
    let key = signing_key(credential.secret_key, &scope);
    let signature = hex::encode(sign_string(&key, &timestamp, &scope, &creq));
    format!("{path}?{query}&X-Amz-Signature={signature}")
}

/// Header-form signing: the headers to add to the request (`x-amz-date`,
/// `x-amz-content-sha256`, `x-amz-security-token` if any, and
/// `authorization`), for a body whose SHA-256 hex (or `UNSIGNED-PAYLOAD`,
/// or a `STREAMING-*` marker) is `payload`.
pub fn sign_headers(
    credential: &Credential<'_>,
    req: &SigV4Request<'_>,
    now: SystemTime,
    payload: &str,
) -> Vec<(String, String)> {
    let scope = req.scope(now);
    let timestamp = format_timestamp(now);
    let mut added = vec![
        ("x-amz-content-sha256".to_owned(), payload.to_owned()),
        ("x-amz-date".to_owned(), timestamp.clone()),
    ];
    if let Some(token) = credential.security_token {
        added.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    let headers = req.canonical_headers(&added);
    let path = uri_encode(req.path.as_bytes(), true);
    let query = encode_sorted(req.params.iter().map(|(k, v)| {
        (
            uri_encode(k.as_bytes(), false),
            uri_encode(v.as_bytes(), false),
        )
    }));
    let creq = canonical_request(req.method, &path, &query, &headers, payload);
    let key = signing_key(credential.secret_key, &scope);
    let signature = hex::encode(sign_string(&key, &timestamp, &scope, &creq));
    added.push((
        "authorization".to_owned(),
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
            credential.access_key_id,
            scope.text(),
            headers.signed
        ),
    ));
    added
}

/// SHA-256 hex of a body, for [`sign_headers`].
pub fn payload_sha256(body: &[u8]) -> String {
    sha256_hex(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_split_from_the_right() {
        let (akid, scope) = parse_credential("AK/ID/20130524/us-east-1/s3/aws4_request").unwrap();
        assert_eq!(akid, "AK/ID");
        assert_eq!(scope.text(), "20130524/us-east-1/s3/aws4_request");
        assert!(parse_credential("AKID/2013/us-east-1/s3/aws4_request").is_err());
        assert!(parse_credential("AKID/20130524/us-east-1/s3").is_err());
    }

    #[test]
    fn payload_markers_are_classified() {
        assert!(matches!(
            classify_payload("UNSIGNED-PAYLOAD"),
            Ok(Payload::Unsigned)
        ));
        assert!(matches!(
            classify_payload("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
            Err(SignError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            classify_payload("abc"),
            Err(SignError::Malformed(_))
        ));
    }

    #[test]
    fn canonical_uri_candidates() {
        assert_eq!(canonical_uris("/a%20b"), vec!["/a%20b"]);
        assert_eq!(canonical_uris("/a!b"), vec!["/a!b", "/a%21b"]);
        assert_eq!(canonical_uris(""), vec!["/"]);
    }
}
