//! AWS Signature Version 2 in the query string (`AWSAccessKeyId`,
//! `Signature`, `Expires`): what `boto3`'s `generate_presigned_url` makes
//! by default for S3. Only the pre-signed form is accepted; header-signed
//! SigV2 (`Authorization: AWS id:sig`) is refused as unsupported.
//!
//! The string to sign is `METHOD \n Content-MD5 \n Content-Type \n Expires
//! \n` followed by the resource: the path as sent plus the signed
//! sub-resources, sorted. (`x-amz-*` headers are refused outright.)

use std::time::SystemTime;

use base64::Engine as _;

use super::encode::{ct_eq, hmac_sha1, query_value};
use super::error::malformed;
use super::{unix_seconds, BodyCheck, RequestParts, Scheme, SignError, Verified};

/// Query parameters that belong to the signed resource.
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A parsed SigV2 pre-signed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV2Auth {
    access_key_id: String,
    expires: u64,
    signature: Vec<u8>,
    security_token: Option<String>,
}

/// Whether the decoded query carries a SigV2 signature.
pub(crate) fn query_has_signature(pairs: &[(Vec<u8>, Vec<u8>)]) -> bool {
    pairs
        .iter()
        .any(|(name, _)| name.as_slice() == b"AWSAccessKeyId")
}

impl SigV2Auth {
    /// Parses the query fields.
    pub(crate) fn from_query(pairs: &[(Vec<u8>, Vec<u8>)]) -> Result<Self, SignError> {
        let get = |name: &str| {
            query_value(pairs, name).ok_or_else(|| malformed(format!("{name} is missing")))
        };
        let access_key_id = get("AWSAccessKeyId")?;
        let expires = get("Expires")?
            .parse::<u64>()
            .map_err(|_| malformed("Expires is not a Unix time"))?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(get("Signature")?)
            .map_err(|_| malformed("Signature is not base64"))?;
        Ok(Self {
            access_key_id,
            expires,
            signature,
            security_token: query_value(pairs, "x-amz-security-token"),
        })
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The session token, if any.
    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    /// Verifies the signature; the URL is valid until `Expires`.
    pub fn verify(
        &self,
        req: &RequestParts<'_>,
        secret_key: &str,
        now: SystemTime,
    ) -> Result<Verified, SignError> {
        if unix_seconds(now) > self.expires {
            return Err(SignError::Expired);
        }
        if let Some(name) = req
            .headers
            .keys()
            .find(|n| n.as_str().starts_with("x-amz-"))
        {
            return Err(malformed(format!(
                "header {name} is present but a SigV2 URL cannot sign it"
            )));
        }
        let header = |name: &str| req.header_str(name).unwrap_or("");
        let mut text = format!(
            "{}\n{}\n{}\n{}\n",
            req.method.as_str(),
            header("content-md5"),
            header("content-type"),
            self.expires
        );
        text.push_str(req.uri.path());
        let mut subs: Vec<(String, Option<String>)> = req
            .query_pairs()
            .into_iter()
            .filter_map(|(name, value)| {
                let name = String::from_utf8(name).ok()?;
                SUB_RESOURCES.contains(&name.as_str()).then(|| {
                    let value = String::from_utf8_lossy(&value).into_owned();
                    (name, (!value.is_empty()).then_some(value))
                })
            })
            .collect();
        subs.sort();
        for (i, (name, value)) in subs.iter().enumerate() {
            text.push(if i == 0 { '?' } else { '&' });
            text.push_str(name);
            if let Some(value) = value {
                text.push('=');
                text.push_str(value);
            }
        }
        let expected = hmac_sha1(secret_key.as_bytes(), text.as_bytes());
        if !ct_eq(&expected, &self.signature) {
            return Err(SignError::SignatureDoesNotMatch);
        }
        Ok(Verified {
            scheme: Scheme::SigV2Query,
            access_key_id: self.access_key_id.clone(),
            security_token: self.security_token.clone(),
            body: BodyCheck::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn request(uri: &str) -> (http::Method, http::Uri, http::HeaderMap) {
        (
            http::Method::GET,
            uri.parse().unwrap(),
            http::HeaderMap::new(),
        )
    }

    #[test]
    fn a_query_signature_verifies_until_it_expires() {
        let secret = "secret-key";
        let text = "GET\n\n\n2000000000\n/b-1/a%20b.txt?response-content-type=text/plain";
        let signature = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha1(secret.as_bytes(), text.as_bytes()));
        let encoded: String = url_encode(&signature);
        let uri = format!("/b-1/a%20b.txt?AWSAccessKeyId=AKID&Expires=2000000000&Signature={encoded}&response-content-type=text/plain");
        let (method, uri, headers) = request(&uri);
        let parts = RequestParts {
            method: &method,
            uri: &uri,
            headers: &headers,
        };
        let pairs = parts.query_pairs();
        let auth = SigV2Auth::from_query(&pairs).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
        assert!(auth.verify(&parts, secret, now).is_ok());
        assert_eq!(
            auth.verify(&parts, "other", now).unwrap_err(),
            SignError::SignatureDoesNotMatch
        );
        let later = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_001);
        assert_eq!(
            auth.verify(&parts, secret, later).unwrap_err(),
            SignError::Expired
        );
    }

    fn url_encode(text: &str) -> String {
        super::super::uri_encode(text.as_bytes(), false)
    }
}
