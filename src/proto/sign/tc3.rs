//! Tencent Cloud API 3.0 `TC3-HMAC-SHA256`, as the `tencentcloud-sdk-*`
//! clients send it:
//! `Authorization: TC3-HMAC-SHA256 Credential=<id>/<yyyy-mm-dd>/<service>/tc3_request,
//! SignedHeaders=content-type;host, Signature=<hex>` with `X-TC-Timestamp`.
//!
//! The canonical request is method, path, query (both as sent), the signed
//! headers as `name:value\n`, the signed list and the hex SHA-256 of the
//! body (of the text `UNSIGNED-PAYLOAD` when `X-TC-Content-SHA256` says so).
//! The published algorithm lowercases header values, the Python SDK signs
//! them as sent: both are accepted.

use std::time::{Duration, SystemTime};

use chrono::DateTime;

use super::encode::{ct_eq, decode_signature, hmac_sha256, sha256_hex, trim_all};
use super::error::malformed;
use super::{
    parse_fields, required, unix_seconds, BodyCheck, Credential, RequestParts, Scheme, SignError,
    Verified,
};

/// The algorithm name in the `Authorization` header.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The marker in `X-TC-Content-SHA256` for an unsigned body.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// A parsed `TC3-HMAC-SHA256` signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3Auth {
    access_key_id: String,
    date: String,
    service: String,
    signed_headers: Vec<String>,
    signature: [u8; 32],
    security_token: Option<String>,
}

impl Tc3Auth {
    /// Parses the part of the header after the algorithm.
    pub(crate) fn from_header(req: &RequestParts<'_>, rest: &str) -> Result<Self, SignError> {
        let what = "TC3 Authorization";
        let fields = parse_fields(rest, ',', what)?;
        let credential = required(&fields, "Credential", what)?;
        let mut parts = credential.rsplitn(4, '/');
        let (terminator, service, date, akid) =
            (parts.next(), parts.next(), parts.next(), parts.next());
        let (Some("tc3_request"), Some(service), Some(date), Some(akid)) =
            (terminator, service, date, akid)
        else {
            return Err(malformed(
                "Credential must be SecretId/yyyy-mm-dd/service/tc3_request",
            ));
        };
        if akid.is_empty() || service.is_empty() {
            return Err(malformed("Credential has an empty SecretId or service"));
        }
        let signed_headers: Vec<String> = required(&fields, "SignedHeaders", what)?
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        if signed_headers.iter().any(String::is_empty) {
            return Err(malformed("SignedHeaders has an empty name"));
        }
        Ok(Self {
            access_key_id: akid.to_owned(),
            date: date.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: decode_signature(required(&fields, "Signature", what)?, "Signature")
                .map_err(malformed)?,
            security_token: req.header_str("x-tc-token").map(str::to_owned),
        })
    }

    /// The SecretId of the credential scope.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The `X-TC-Token` header, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// The service named in the credential scope (`vod`).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Verifies a request without a body (`GET`, or `X-TC-Content-SHA256:
    /// UNSIGNED-PAYLOAD`). A request with a body needs [`Self::verify_with_body`].
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        secret_key: &str,
        now: SystemTime,
        max_skew: Duration,
    ) -> Result<Verified, SignError> {
        self.verify_with_body(req, &[], secret_key, now, max_skew)
    }

    /// Verifies the signature over the request and its `body`:
    /// `X-TC-Timestamp` must be within `max_skew` of `now` and on the
    /// credential's date (UTC).
    pub fn verify_with_body(
        &self,
        req: &RequestParts<'_>,
        body: &[u8],
        secret_key: &str,
        now: SystemTime,
        max_skew: Duration,
    ) -> Result<Verified, SignError> {
        let timestamp = req
            .header_str("x-tc-timestamp")
            .ok_or_else(|| malformed("X-TC-Timestamp is missing"))?;
        let seconds: u64 = timestamp
            .parse()
            .map_err(|_| malformed("X-TC-Timestamp must be Unix seconds"))?;
        check_timestamp(seconds, now, max_skew)?;
        if utc_date(seconds) != self.date {
            return Err(malformed(
                "the credential date is not the date of X-TC-Timestamp",
            ));
        }
        let payload = if req.header_str("x-tc-content-sha256") == Some(UNSIGNED_PAYLOAD) {
            sha256_hex(UNSIGNED_PAYLOAD.as_bytes())
        } else {
            sha256_hex(body)
        };
        let key = signing_key(secret_key, &self.date, &self.service);
        let matches = self.header_variants(req)?.iter().any(|headers| {
            let creq = canonical_request(
                req.method.as_str(),
                req.uri.path(),
                req.uri.query().unwrap_or(""),
                headers,
                &self.signed_headers.join(";"),
                &payload,
            );
            let expected = sign_string(&key, timestamp, &self.date, &self.service, &creq);
            ct_eq(&expected, &self.signature)
        });
        if !matches {
            return Err(SignError::SignatureDoesNotMatch);
        }
        Ok(Verified {
            scheme: Scheme::Tc3,
            access_key_id: self.access_key_id.clone(),
            security_token: self.security_token.clone(),
            body: BodyCheck::None,
        })
    }

    /// Canonical header lines with values lowercased and, when that differs,
    /// as sent.
    fn header_variants(&self, req: &RequestParts<'_>) -> Result<Vec<Vec<u8>>, SignError> {
        let mut as_sent = Vec::new();
        let mut lowered = Vec::new();
        for name in &self.signed_headers {
            let value = req
                .header_bytes(name)
                .ok_or_else(|| SignError::MissingSignedField(format!("header {name}")))?;
            let value = trim_all(&value);
            for (lines, value) in [
                (&mut as_sent, value.clone()),
                (&mut lowered, value.to_ascii_lowercase()),
            ] {
                lines.extend_from_slice(name.as_bytes());
                lines.push(b':');
                lines.extend_from_slice(&value);
                lines.push(b'\n');
            }
        }
        Ok(if lowered == as_sent {
            vec![as_sent]
        } else {
            vec![lowered, as_sent]
        })
    }
}

/// `X-TC-Timestamp` must be within `skew` of `now`.
fn check_timestamp(seconds: u64, now: SystemTime, skew: Duration) -> Result<(), SignError> {
    let now = unix_seconds(now);
    let skew = skew.as_secs();
    if seconds.saturating_add(skew) < now {
        Err(SignError::Expired)
    } else if seconds > now.saturating_add(skew) {
        Err(SignError::NotYetValid)
    } else {
        Ok(())
    }
}

/// The UTC date `yyyy-mm-dd` of Unix seconds.
fn utc_date(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    header_lines: &[u8],
    signed: &str,
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + header_lines.len());
    for part in [method, if path.is_empty() { "/" } else { path }, query] {
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(header_lines);
    out.push(b'\n');
    out.extend_from_slice(signed.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// HMAC chain from `TC3` + secret over date, service and `tc3_request`.
fn signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let service = hmac_sha256(&date, service.as_bytes());
    hmac_sha256(&service, b"tc3_request")
}

fn sign_string(
    key: &[u8; 32],
    timestamp: &str,
    date: &str,
    service: &str,
    creq: &[u8],
) -> [u8; 32] {
    let text = format!(
        "{ALGORITHM}\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        sha256_hex(creq)
    );
    hmac_sha256(key, text.as_bytes())
}

/// A request to sign.
#[derive(Debug, Clone, Copy)]
pub struct Tc3Request<'a> {
    /// The method, `POST` or `GET`.
    pub method: &'a str,
    /// The path as sent, `/`.
    pub path: &'a str,
    /// The query as sent (empty for `POST`).
    pub query: &'a str,
    /// The headers to sign with their values, e.g. `content-type` and `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
    /// The service, e.g. `vod`.
    pub service: &'a str,
}

/// The `Authorization` header value for `req` sent with
/// `X-TC-Timestamp: timestamp`. Header values are signed as given.
pub fn sign(credential: &Credential<'_>, req: &Tc3Request<'_>, timestamp: u64) -> String {
    let date = utc_date(timestamp);
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), *v))
        .collect();
    headers.sort();
    let mut lines = Vec::new();
    for (name, value) in &headers {
        lines.extend_from_slice(format!("{name}:").as_bytes());
        lines.extend_from_slice(&trim_all(value.as_bytes()));
        lines.push(b'\n');
    }
    let signed = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let creq = canonical_request(
        req.method,
        req.path,
        req.query,
        &lines,
        &signed,
        &sha256_hex(req.payload),
    );
    let key = signing_key(credential.secret_key, &date, req.service);
    let signature = sign_string(&key, &timestamp.to_string(), &date, req.service, &creq);
    format!(
        "{ALGORITHM} Credential={}/{date}/{}/tc3_request, SignedHeaders={signed}, Signature={}",
        credential.access_key_id,
        req.service,
        hex::encode(signature)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
    }
}
