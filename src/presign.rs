//! Pre-signed URLs, as a web page embeds them: COS q-sign by default, S3
//! SigV4 on request. Used by `framegate presign` and the demo banner.

use std::time::{Duration, SystemTime};

use crate::config::CredentialConfig;
use crate::proto::sign::{cos, sigv4, uri_encode, Credential};

/// Which signature a URL carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// COS signature v5 in the query (`q-sign-algorithm=sha1&...`).
    Cos,
    /// AWS Signature V4 in the query (`X-Amz-Algorithm=...`).
    SigV4,
}

/// What to pre-sign.
#[derive(Debug, Clone)]
pub struct PresignRequest<'a> {
    /// `http://host:port` of the gateway, no trailing slash.
    pub endpoint: &'a str,
    /// The method the URL is for (`GET`, `PUT`, ...).
    pub method: &'a str,
    /// `Some(bucket)` for path-style addressing (always used for SigV4);
    /// `None` to address the gateway's default bucket by a bare host.
    pub bucket: Option<&'a str>,
    /// The object key (may be empty for bucket requests).
    pub key: &'a str,
    /// Extra query parameters, signed (e.g. `ci-process=snapshot`, `time=3`).
    pub params: &'a [(String, String)],
    /// How long the URL is valid.
    pub expires_in: Duration,
    /// The region of the SigV4 credential scope.
    pub region: &'a str,
}

/// Builds the URL, valid from `now`.
pub fn presign(
    credential: &CredentialConfig,
    request: &PresignRequest<'_>,
    style: Style,
    now: SystemTime,
) -> Result<String, String> {
    let host = request
        .endpoint
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| {
            format!(
                "endpoint {:?} must look like http://host:port",
                request.endpoint
            )
        })?
        .trim_end_matches('/');
    let credential = Credential {
        access_key_id: &credential.secret_id,
        secret_key: &credential.secret_key,
        security_token: credential.security_token.as_deref(),
    };
    let params: Vec<(&str, &str)> = request
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let path = match (style, request.bucket) {
        (Style::Cos, None) => format!("/{}", request.key),
        (_, Some(bucket)) => format!("/{bucket}/{}", request.key),
        (Style::SigV4, None) => {
            return Err("S3-style URLs name the bucket in the path: give --bucket".into())
        }
    };
    let endpoint = request.endpoint.trim_end_matches('/');
    Ok(match style {
        Style::Cos => {
            let signed = cos::CosRequest {
                method: request.method,
                path: &path,
                params: &params,
                headers: &[("host", host)],
            };
            let query = cos::presign_query(&credential, &signed, now, request.expires_in);
            format!("{endpoint}{}?{query}", uri_encode(path.as_bytes(), true))
        }
        Style::SigV4 => {
            let signed = sigv4::SigV4Request {
                method: request.method,
                host,
                path: &path,
                params: &params,
                headers: &[],
                region: request.region,
                service: "s3",
            };
            format!(
                "{endpoint}{}",
                sigv4::presign_url(&credential, &signed, now, request.expires_in)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::sign::{parse_authorization, RequestParts};

    fn verify(url: &str, secret: &str) -> Result<(), crate::proto::sign::SignError> {
        let (_, rest) = url.split_once("://").unwrap();
        let (host, target) = rest.split_at(rest.find('/').unwrap());
        let uri: http::Uri = target.parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("host", host.parse().unwrap());
        let parts = RequestParts {
            method: &http::Method::GET,
            uri: &uri,
            headers: &headers,
        };
        let auth = parse_authorization(&parts)?.expect("signed");
        auth.verify(
            &parts,
            None,
            secret,
            SystemTime::now(),
            Duration::from_secs(60),
        )
        .map(|_| ())
    }

    #[test]
    fn urls_verify_in_both_styles() {
        let credential = CredentialConfig {
            secret_id: "AKIDtest".into(),
            secret_key: "secret-key-1".into(),
            security_token: None,
            allow: Vec::new(),
        };
        let params = [
            ("ci-process".to_owned(), "snapshot".to_owned()),
            ("time".to_owned(), "1.5".to_owned()),
        ];
        for (style, bucket) in [
            (Style::Cos, None),
            (Style::Cos, Some("b-1")),
            (Style::SigV4, Some("b-1")),
        ] {
            let request = PresignRequest {
                endpoint: "http://127.0.0.1:8080",
                method: "GET",
                bucket,
                key: "videos/a b+c.mp4",
                params: &params,
                expires_in: Duration::from_secs(600),
                region: "ap-guangzhou",
            };
            let url = presign(&credential, &request, style, SystemTime::now()).unwrap();
            assert!(url.contains("ci-process=snapshot"), "{url}");
            verify(&url, "secret-key-1").unwrap_or_else(|e| panic!("{url}: {e}"));
            assert!(verify(&url, "wrong-secret").is_err());
        }
    }
}
