//! COS signature v5 (`q-sign-algorithm=sha1`), in the `Authorization`
//! header or in the query string of a pre-signed URL.
//!
//! What `cos-python-sdk-v5` signs, and so what is checked here:
//! - the path is the object key, percent-*decoded*, with a leading `/`
//!   (`/` for bucket requests); the wire path is decoded to compare;
//! - header and parameter names are percent-encoded then lowercased (so an
//!   escape in a name has lowercase hex), values are percent-encoded with
//!   uppercase hex, keeping only `A-Z a-z 0-9 - _ . ~`; space is `%20`,
//!   `+` is `%2B`, `/` is `%2F`, UTF-8 is encoded byte by byte;
//! - on the wire the SDK form-encodes query values (space as `+`), so
//!   query `+` decodes to a space;
//! - the signed `host` is the URL's host name without the port (and
//!   lowercased) unless a `Host` header was given explicitly: a signature
//!   is accepted with the `Host` as sent or with that host name.

use std::time::{Duration, SystemTime};

use super::encode::{
    ct_eq, decode_signature, hmac_sha1, percent_decode, query_value, sha1_hex, uri_encode, Plus,
};
use super::error::malformed;
use super::{
    check_window, parse_fields, required, token_from, unix_seconds, BodyCheck, Credential,
    RequestParts, Scheme, SignError, Verified,
};

/// The only algorithm COS signature v5 defines.
pub const ALGORITHM: &str = "sha1";

/// Header and query names a COS session token may arrive under.
const TOKEN_NAMES: [&str; 2] = ["x-cos-security-token", "x-ci-security-token"];

/// Where the signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Header,
    Query,
}

/// A parsed COS signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosAuth {
    placement: Placement,
    access_key_id: String,
    sign_time: (u64, u64),
    key_time_text: String,
    key_time: (u64, u64),
    header_list: Vec<String>,
    param_list: Vec<String>,
    signature: [u8; 20],
    security_token: Option<String>,
}

/// Whether the decoded query carries a COS signature (any `q-sign-algorithm`,
/// `q-ak` or `q-signature` parameter).
pub(crate) fn query_has_signature(pairs: &[(Vec<u8>, Vec<u8>)]) -> bool {
    pairs.iter().any(|(name, _)| {
        matches!(
            name.as_slice(),
            b"q-sign-algorithm" | b"q-ak" | b"q-signature"
        )
    })
}

impl CosAuth {
    /// Parses an `Authorization` header value
    /// (`q-sign-algorithm=sha1&q-ak=...&q-signature=...`).
    pub(crate) fn from_header(req: &RequestParts<'_>, value: &str) -> Result<Self, SignError> {
        let fields = parse_fields(value, '&', "COS Authorization")?;
        let get = |key: &str| required(&fields, key, "COS Authorization").map(str::to_owned);
        let token = token_from(req, &req.query_pairs(), &TOKEN_NAMES);
        Self::from_fields(Placement::Header, get, token)
    }

    /// Parses the `q-*` parameters of a pre-signed URL.
    pub(crate) fn from_query(
        req: &RequestParts<'_>,
        pairs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<Self, SignError> {
        for key in ["q-sign-algorithm", "q-ak", "q-signature"] {
            if pairs.iter().filter(|(n, _)| n == key.as_bytes()).count() > 1 {
                return Err(malformed(format!("COS query: {key} appears twice")));
            }
        }
        let get = |key: &str| {
            query_value(pairs, key).ok_or_else(|| malformed(format!("COS query: {key} is missing")))
        };
        Self::from_fields(Placement::Query, get, token_from(req, pairs, &TOKEN_NAMES))
    }

    fn from_fields(
        placement: Placement,
        get: impl Fn(&str) -> Result<String, SignError>,
        security_token: Option<String>,
    ) -> Result<Self, SignError> {
        let algorithm = get("q-sign-algorithm")?;
        if algorithm != ALGORITHM {
            return Err(SignError::UnsupportedAlgorithm(algorithm));
        }
        let access_key_id = get("q-ak")?;
        if access_key_id.is_empty() {
            return Err(malformed("q-ak is empty"));
        }
        let key_time_text = get("q-key-time")?;
        Ok(Self {
            placement,
            access_key_id,
            sign_time: parse_time_range(&get("q-sign-time")?, "q-sign-time")?,
            key_time: parse_time_range(&key_time_text, "q-key-time")?,
            key_time_text,
            header_list: parse_name_list(&get("q-header-list")?),
            param_list: parse_name_list(&get("q-url-param-list")?),
            signature: decode_signature(&get("q-signature")?, "q-signature").map_err(malformed)?,
            security_token,
        })
    }

    /// The `q-ak` value.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The names in `q-url-param-list`, as listed (lowercase,
    /// percent-encoded where the name needed it).
    pub fn param_list(&self) -> &[String] {
        &self.param_list
    }

    /// The names in `q-header-list`, as listed (lowercase, percent-encoded
    /// where the name needed it).
    pub fn header_list(&self) -> &[String] {
        &self.header_list
    }

    /// The `x-cos-security-token` (or `x-ci-security-token`) header or query
    /// parameter, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Verifies the signature against the request with `secret_key`: the
    /// `q-sign-time` and `q-key-time` windows must contain `now` (their start
    /// widened by `max_skew`, their end exact), then the signature must match with the `Host` as sent
    /// or as the SDK signs it (host name only).
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        secret_key: &str,
        now: SystemTime,
        max_skew: Duration,
    ) -> Result<Verified, SignError> {
        check_window(self.sign_time.0, self.sign_time.1, now, max_skew)?;
        check_window(self.key_time.0, self.key_time.1, now, max_skew)?;
        let params = self.signed_params(req)?;
        let headers = self.signed_headers(req)?;
        let path = percent_decode(req.uri.path().as_bytes(), Plus::Literal);
        let method = req.method.as_str().to_ascii_lowercase();
        let matches = host_variants(&headers).into_iter().any(|headers| {
            let http_string = http_string(&method, &path, &params, &join_items(headers));
            let expected = signature(secret_key, &self.key_time_text, &http_string);
            ct_eq(&expected, &self.signature)
        });
        if !matches {
            return Err(SignError::SignatureDoesNotMatch);
        }
        Ok(Verified {
            scheme: match self.placement {
                Placement::Header => Scheme::CosHeader,
                Placement::Query => Scheme::CosQuery,
            },
            access_key_id: self.access_key_id.clone(),
            security_token: self.security_token.clone(),
            body: BodyCheck::None,
        })
    }

    /// `HttpParameters`: the listed query parameters, canonical and sorted.
    fn signed_params(&self, req: &RequestParts<'_>) -> Result<String, SignError> {
        let pairs: Vec<(String, Vec<u8>)> = req
            .query_pairs()
            .into_iter()
            .map(|(name, value)| (canonical_name(&name), value))
            .collect();
        let mut items = Vec::with_capacity(self.param_list.len());
        for listed in &self.param_list {
            let name = canonical_name(&percent_decode(listed.as_bytes(), Plus::Literal));
            let mut values = pairs.iter().filter(|(n, _)| *n == name).map(|(_, v)| v);
            let value = values
                .next()
                .ok_or_else(|| SignError::MissingSignedField(format!("parameter {listed}")))?;
            if values.next().is_some() {
                return Err(malformed(format!(
                    "signed parameter {listed} appears twice"
                )));
            }
            items.push((name, uri_encode(value, false)));
        }
        items.sort();
        Ok(join_items(items))
    }

    /// The listed headers as canonical `(name, encoded value)` items.
    fn signed_headers(&self, req: &RequestParts<'_>) -> Result<Vec<(String, String)>, SignError> {
        self.header_list
            .iter()
            .map(|listed| {
                let raw = percent_decode(listed.as_bytes(), Plus::Literal);
                let name = String::from_utf8_lossy(&raw).to_ascii_lowercase();
                let value = req
                    .header_bytes(&name)
                    .ok_or_else(|| SignError::MissingSignedField(format!("header {listed}")))?;
                Ok((canonical_name(&raw), uri_encode(&value, false)))
            })
            .collect()
    }
}

/// Parses `start;end` Unix seconds.
fn parse_time_range(text: &str, field: &str) -> Result<(u64, u64), SignError> {
    let parsed = text
        .split_once(';')
        .and_then(|(start, end)| Some((start.parse().ok()?, end.parse().ok()?)));
    match parsed {
        Some((start, end)) if start <= end => Ok((start, end)),
        _ => Err(malformed(format!(
            "{field} must be start;end in Unix seconds"
        ))),
    }
}

/// Splits a `;` list, dropping empty names.
fn parse_name_list(text: &str) -> Vec<String> {
    text.split(';')
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A name as the SDK puts it into the signed text: encoded, then lowercased.
fn canonical_name(name: &[u8]) -> String {
    uri_encode(name, false).to_ascii_lowercase()
}

/// `k=v` items joined by `&`, in the order given.
fn join_items(items: Vec<(String, String)>) -> String {
    items
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The sorted header items with the `Host` as sent, and, when it differs,
/// with the host name the SDK signs instead.
fn host_variants(headers: &[(String, String)]) -> Vec<Vec<(String, String)>> {
    let mut as_sent = headers.to_vec();
    as_sent.sort();
    let mut variants = vec![as_sent.clone()];
    let mut stripped = as_sent;
    let mut changed = false;
    for (name, value) in &mut stripped {
        if name == "host" {
            let decoded = percent_decode(value.as_bytes(), Plus::Literal);
            let host = uri_encode(&sdk_hostname(&decoded), false);
            changed |= host != *value;
            *value = host;
        }
    }
    if changed {
        variants.push(stripped);
    }
    variants
}

/// The host name of a `Host` value as Python's `urlparse(...).hostname`
/// gives it: no user info, no port, no IPv6 brackets, lowercase.
fn sdk_hostname(host: &[u8]) -> Vec<u8> {
    let host = host
        .iter()
        .rposition(|&b| b == b'@')
        .map_or(host, |at| &host[at + 1..]);
    let name = if host.first() == Some(&b'[') {
        let end = host.iter().position(|&b| b == b']').unwrap_or(host.len());
        &host[1..end]
    } else {
        host.split(|&b| b == b':').next().unwrap_or(host)
    };
    name.to_ascii_lowercase()
}

/// `HttpString` = method `\n` path `\n` params `\n` headers `\n`.
fn http_string(method: &str, path: &[u8], params: &str, headers: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(method.len() + path.len() + params.len() + headers.len() + 4);
    for part in [
        method.as_bytes(),
        path,
        params.as_bytes(),
        headers.as_bytes(),
    ] {
        out.extend_from_slice(part);
        out.push(b'\n');
    }
    out
}

/// `q-signature` = HMAC-SHA1(hex(HMAC-SHA1(secret, KeyTime)), StringToSign).
fn signature(secret_key: &str, key_time: &str, http_string: &[u8]) -> [u8; 20] {
    let sign_key = hex::encode(hmac_sha1(secret_key.as_bytes(), key_time.as_bytes()));
    let string_to_sign = format!("sha1\n{key_time}\n{}\n", sha1_hex(http_string));
    hmac_sha1(sign_key.as_bytes(), string_to_sign.as_bytes())
}

/// A request to sign: what the COS signature covers.
#[derive(Debug, Clone, Copy)]
pub struct CosRequest<'a> {
    /// The method (any case).
    pub method: &'a str,
    /// The decoded path: `/` and the object key, or `/` alone.
    pub path: &'a str,
    /// Query parameters to sign, decoded; they are also put into a
    /// pre-signed URL by [`presign_query`].
    pub params: &'a [(&'a str, &'a str)],
    /// Headers to sign (the request must then send them), e.g. `host`.
    pub headers: &'a [(&'a str, &'a str)],
}

/// The `q-*` fields of a signature made at `start` for `expires_in`.
fn signed_fields(
    credential: &Credential<'_>,
    req: &CosRequest<'_>,
    start: SystemTime,
    expires_in: Duration,
) -> Vec<(&'static str, String)> {
    let start = unix_seconds(start);
    let key_time = format!("{start};{}", start.saturating_add(expires_in.as_secs()));
    let canonical = |items: &[(&str, &str)]| {
        let mut out: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| {
                (
                    canonical_name(k.as_bytes()),
                    uri_encode(v.as_bytes(), false),
                )
            })
            .collect();
        out.sort();
        out
    };
    let (params, headers) = (canonical(req.params), canonical(req.headers));
    let list = |items: &[(String, String)]| {
        items
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";")
    };
    let (param_list, header_list) = (list(&params), list(&headers));
    let method = req.method.to_ascii_lowercase();
    let http = http_string(
        &method,
        req.path.as_bytes(),
        &join_items(params),
        &join_items(headers),
    );
    let signature = hex::encode(signature(credential.secret_key, &key_time, &http));
    vec![
        ("q-sign-algorithm", ALGORITHM.to_owned()),
        ("q-ak", credential.access_key_id.to_owned()),
        ("q-sign-time", key_time.clone()),
        ("q-key-time", key_time),
        ("q-header-list", header_list),
        ("q-url-param-list", param_list),
        ("q-signature", signature),
    ]
}

/// The `Authorization` header value for `req`, valid from `start` for
/// `expires_in`. A session token, if any, must be sent separately as the
/// `x-cos-security-token` header.
pub fn sign(
    credential: &Credential<'_>,
    req: &CosRequest<'_>,
    start: SystemTime,
    expires_in: Duration,
) -> String {
    signed_fields(credential, req, start, expires_in)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The query string of a pre-signed URL for `req` (without the `?`): the
/// `q-*` fields, then `req.params`, then `x-cos-security-token` when the
/// credential has one. All names and values are percent-encoded.
pub fn presign_query(
    credential: &Credential<'_>,
    req: &CosRequest<'_>,
    start: SystemTime,
    expires_in: Duration,
) -> String {
    let fields = signed_fields(credential, req, start, expires_in);
    let token = credential
        .security_token
        .map(|t| (TOKEN_NAMES[0], t.to_owned()));
    fields
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(
            req.params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .chain(token.map(|(k, v)| (k.to_owned(), v)))
        .map(|(k, v)| {
            format!(
                "{}={}",
                uri_encode(k.as_bytes(), false),
                uri_encode(v.as_bytes(), false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_hostname_drops_port_brackets_and_case() {
        assert_eq!(sdk_hostname(b"127.0.0.1:8080"), b"127.0.0.1");
        assert_eq!(sdk_hostname(b"[::1]:80"), b"::1");
        assert_eq!(
            sdk_hostname(b"Bucket-1.COS.example"),
            b"bucket-1.cos.example"
        );
    }

    #[test]
    fn names_are_encoded_then_lowercased() {
        assert_eq!(canonical_name(b"X-Cos-Meta-A+B"), "x-cos-meta-a%2bb");
    }

    #[test]
    fn time_ranges_must_be_ordered_integers() {
        assert_eq!(parse_time_range("1;2", "t").unwrap(), (1, 2));
        assert!(parse_time_range("2;1", "t").is_err());
        assert!(parse_time_range("1", "t").is_err());
        assert!(parse_time_range("a;2", "t").is_err());
    }
}
