//! Addressing and routing: which bucket, which key, which operation.
//!
//! Routing is data: [`route`] turns the method, host, path, query and a few
//! headers into a [`Route`] whose [`Endpoint`] the server dispatches with one
//! `match`.
//!
//! Addressing (spec section 1):
//! - virtual-host style: `Host: <bucket>.cos.<region>.<domain>`;
//! - path style `/<bucket>/<key>`: S3 clients (recognised by their `x-amz-*`
//!   headers or AWS signature) always address the bucket in the first path
//!   segment; other clients do when that segment names a configured bucket;
//! - anything else addresses the configured default bucket with the whole
//!   path as the key (`CosConfig(Domain=...)` against an IP or `localhost`).

use http::{HeaderMap, Method};
use percent_encoding::percent_decode_str;

use super::ci_route::{self, CiCall};
use super::query::Query;
use super::ProtoError;

/// The longest object key COS accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 850;

/// Object keys under this prefix are the gateway's own bookkeeping and cannot
/// be addressed by clients.
pub const RESERVED_PREFIX: &str = ".framegate/";

/// The operation a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /` on a bucket: COS v1 / S3 v1 listing.
    ListObjects,
    /// `GET /?list-type=2`: S3 v2 listing.
    ListObjectsV2,
    /// `GET /?uploads`: in-progress multipart uploads.
    ListMultipartUploads,
    /// `HEAD /` on a bucket.
    HeadBucket,
    /// `POST /?delete`: multi-object delete.
    DeleteObjects,
    /// `GET /?location`.
    GetBucketLocation,
    /// `GET /<key>`.
    GetObject,
    /// `HEAD /<key>`.
    HeadObject,
    /// `PUT /<key>`.
    PutObject,
    /// `PUT /<key>` with `x-cos-copy-source` / `x-amz-copy-source`.
    CopyObject {
        /// The source as sent (`bucket/key` or `/bucket/key`, percent-encoded).
        source: String,
    },
    /// `DELETE /<key>`.
    DeleteObject,
    /// `POST /<key>?uploads`.
    CreateMultipartUpload,
    /// `PUT /<key>?partNumber=N&uploadId=ID`.
    UploadPart {
        /// The upload.
        upload_id: String,
        /// 1..=10000.
        part_number: u32,
    },
    /// `POST /<key>?uploadId=ID`.
    CompleteMultipartUpload {
        /// The upload.
        upload_id: String,
    },
    /// `DELETE /<key>?uploadId=ID`.
    AbortMultipartUpload {
        /// The upload.
        upload_id: String,
    },
    /// `GET /<key>?uploadId=ID`.
    ListParts {
        /// The upload.
        upload_id: String,
    },
    /// `GET|HEAD /<key>?ci-process=snapshot`.
    Snapshot,
    /// `GET|HEAD /<key>?ci-process=videoinfo`.
    VideoInfo,
    /// `GET /?cors`.
    GetBucketCors,
    /// `PUT /?cors`.
    PutBucketCors,
    /// `DELETE /?cors`.
    DeleteBucketCors,
    /// `OPTIONS` on the bucket or an object: a CORS preflight (never
    /// signed; answered from the bucket's rules).
    Preflight,
    /// A call of Cloud Infinite's media API (`POST /jobs`, ...): on a CI
    /// host, or shaped as one on an object host (see [`ci_route`]).
    Ci(CiCall),
}

impl Endpoint {
    /// A stable name for logs and policies.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::ListObjects | Endpoint::ListObjectsV2 => "GetBucket",
            Endpoint::ListMultipartUploads => "ListMultipartUploads",
            Endpoint::HeadBucket => "HeadBucket",
            Endpoint::DeleteObjects => "DeleteMultipleObjects",
            Endpoint::GetBucketLocation => "GetBucketLocation",
            Endpoint::GetObject => "GetObject",
            Endpoint::HeadObject => "HeadObject",
            Endpoint::PutObject => "PutObject",
            Endpoint::CopyObject { .. } => "PutObjectCopy",
            Endpoint::DeleteObject => "DeleteObject",
            Endpoint::CreateMultipartUpload => "InitiateMultipartUpload",
            Endpoint::UploadPart { .. } => "UploadPart",
            Endpoint::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Endpoint::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Endpoint::ListParts { .. } => "ListParts",
            Endpoint::Snapshot => "GenerateSnapshot",
            Endpoint::VideoInfo => "GetMediaInfo",
            Endpoint::GetBucketCors => "GetBucketCORS",
            Endpoint::PutBucketCors => "PutBucketCORS",
            Endpoint::DeleteBucketCors => "DeleteBucketCORS",
            Endpoint::Preflight => "OptionsObject",
            Endpoint::Ci(_) => "CiMediaApi",
        }
    }
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The bucket name (`BucketName-APPID`).
    pub bucket: String,
    /// The decoded object key, for object operations.
    pub key: Option<String>,
    /// The operation.
    pub endpoint: Endpoint,
    /// The parsed query.
    pub query: Query,
    /// The client speaks S3 (AWS headers or signature): answer with
    /// `x-amz-meta-*` rather than `x-cos-meta-*`.
    pub s3_dialect: bool,
}

/// What routing needs to know of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Addressing<'a> {
    /// Virtual-host domain suffix, e.g. `myqcloud.com`.
    pub domain: &'a str,
    /// Bucket for bare hosts.
    pub default_bucket: &'a str,
    /// Names of configured buckets.
    pub buckets: &'a [String],
}

/// Routes a request. `host` is the `Host` header or URI authority.
pub fn route(
    addressing: Addressing<'_>,
    method: &Method,
    host: Option<&str>,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Route, ProtoError> {
    let query = Query::parse(raw_query)?;
    let s3_dialect = is_s3_client(headers, &query);
    let virtual_host = host.and_then(|h| virtual_host_bucket(h, addressing.domain));
    let (bucket, raw_key) = address(addressing, virtual_host, path, s3_dialect);
    if !addressing.buckets.contains(&bucket) {
        return Err(ProtoError::NoSuchBucket(bucket));
    }
    if let Some((_, HostService::Ci)) = virtual_host {
        let endpoint = match *method {
            Method::OPTIONS => Endpoint::Preflight,
            _ => Endpoint::Ci(ci_route::on_ci_host(path, &query)),
        };
        return Ok(Route {
            bucket,
            key: None,
            endpoint,
            query,
            s3_dialect,
        });
    }
    let key = if raw_key.is_empty() {
        None
    } else {
        Some(decode_key(raw_key)?)
    };
    let ci_call = match &key {
        Some(key) if !s3_dialect && *method != Method::OPTIONS => {
            ci_route::recognize(method, key, &query)
        }
        _ => None,
    };
    if let Some(call) = ci_call {
        return Ok(Route {
            bucket,
            key: None,
            endpoint: Endpoint::Ci(call),
            query,
            s3_dialect,
        });
    }
    let endpoint = match &key {
        _ if *method == Method::OPTIONS => Endpoint::Preflight,
        None => bucket_endpoint(method, &query)?,
        Some(_) => object_endpoint(method, &query, headers)?,
    };
    Ok(Route {
        bucket,
        key,
        endpoint,
        query,
        s3_dialect,
    })
}

/// The bucket and raw key a request addresses.
fn address<'p>(
    addressing: Addressing<'_>,
    virtual_host: Option<(&str, HostService)>,
    path: &'p str,
    s3_dialect: bool,
) -> (String, &'p str) {
    match virtual_host {
        Some((bucket, _)) => (bucket.to_owned(), path.strip_prefix('/').unwrap_or(path)),
        None => path_style(addressing, path, s3_dialect),
    }
}

/// The configured bucket a request addresses, also when it cannot be
/// routed (a bad key or parameter): whose CORS rules its error answer gets.
pub fn addressed_bucket(
    addressing: Addressing<'_>,
    host: Option<&str>,
    path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Option<String> {
    let s3_dialect = match Query::parse(raw_query) {
        Ok(query) => is_s3_client(headers, &query),
        Err(_) => is_s3_client(headers, &Query::default()),
    };
    let virtual_host = host.and_then(|h| virtual_host_bucket(h, addressing.domain));
    let (bucket, _) = address(addressing, virtual_host, path, s3_dialect);
    addressing.buckets.contains(&bucket).then_some(bucket)
}

/// The service a virtual host name addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostService {
    /// `<bucket>.cos.<region>.<domain>`: objects.
    Cos,
    /// `<bucket>.ci.<region>.<domain>`: Cloud Infinite.
    Ci,
}

/// `<bucket>.cos.<region>.<domain>` or `<bucket>.ci.<region>.<domain>`
/// (port ignored) → the bucket and the service.
fn virtual_host_bucket<'h>(host: &'h str, domain: &str) -> Option<(&'h str, HostService)> {
    let host = strip_port(host);
    let rest = host.strip_suffix(domain)?.strip_suffix('.')?;
    let (bucket, service) = rest.split_once('.')?;
    let named = |name: &str| service == name || service.starts_with(&format!("{name}."));
    if named("cos") {
        Some((bucket, HostService::Cos))
    } else if named("ci") {
        Some((bucket, HostService::Ci))
    } else {
        None
    }
}

/// Removes a `:port` suffix (keeping IPv6 brackets intact).
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    }
}

fn path_style<'p>(addressing: Addressing<'_>, path: &'p str, s3_client: bool) -> (String, &'p str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let (first, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let first_decoded = percent_decode_str(first).decode_utf8_lossy();
    if !first.is_empty() && (s3_client || addressing.buckets.iter().any(|b| *b == first_decoded)) {
        (first_decoded.into_owned(), rest)
    } else {
        (addressing.default_bucket.to_owned(), trimmed)
    }
}

/// Whether the request comes from an S3 (AWS SigV4) client.
fn is_s3_client(headers: &HeaderMap, query: &Query) -> bool {
    headers.contains_key("x-amz-date")
        || headers.contains_key("x-amz-content-sha256")
        || headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("AWS4-") || v.starts_with("AWS "))
        || query.has("X-Amz-Algorithm")
}

/// Percent-decodes and validates an object key taken from the path.
pub fn decode_key(raw: &str) -> Result<String, ProtoError> {
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ProtoError::InvalidKey("it is not valid UTF-8".into()))?
        .into_owned();
    validate_key(&key)?;
    Ok(key)
}

/// Checks that a decoded key can be stored without escaping its bucket.
pub fn validate_key(key: &str) -> Result<(), ProtoError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(ProtoError::KeyTooLong);
    }
    if key.chars().any(char::is_control) {
        return Err(ProtoError::InvalidKey(
            "it contains control characters".into(),
        ));
    }
    if key.starts_with(RESERVED_PREFIX) || key == RESERVED_PREFIX.trim_end_matches('/') {
        return Err(ProtoError::InvalidKey(format!(
            "keys under {RESERVED_PREFIX} are reserved"
        )));
    }
    if key.ends_with('/') {
        return Err(ProtoError::InvalidKey(
            "keys ending in '/' (folder markers) are not supported".into(),
        ));
    }
    for segment in key.split('/') {
        match segment {
            "" => {
                return Err(ProtoError::InvalidKey(
                    "it contains an empty path segment".into(),
                ))
            }
            "." | ".." => {
                return Err(ProtoError::InvalidKey(
                    "it contains a '.' or '..' path segment".into(),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn bucket_endpoint(method: &Method, query: &Query) -> Result<Endpoint, ProtoError> {
    Ok(match *method {
        Method::GET if query.has("uploads") => Endpoint::ListMultipartUploads,
        Method::GET if query.has("location") => Endpoint::GetBucketLocation,
        Method::GET if query.get("list-type") == Some("2") => Endpoint::ListObjectsV2,
        Method::GET if query.has("cors") => Endpoint::GetBucketCors,
        Method::PUT if query.has("cors") => Endpoint::PutBucketCors,
        Method::DELETE if query.has("cors") => Endpoint::DeleteBucketCors,
        Method::GET => {
            for sub in [
                "acl",
                "policy",
                "tagging",
                "lifecycle",
                "versioning",
                "website",
            ] {
                if query.has(sub) {
                    return Err(ProtoError::Unsupported("This bucket sub-resource"));
                }
            }
            Endpoint::ListObjects
        }
        Method::HEAD => Endpoint::HeadBucket,
        Method::PUT => return Err(ProtoError::Unsupported("Creating buckets over the API")),
        Method::DELETE => return Err(ProtoError::Unsupported("Deleting buckets over the API")),
        Method::POST if query.has("delete") => Endpoint::DeleteObjects,
        _ => return Err(ProtoError::MethodNotAllowed),
    })
}

/// Objects have no versions here: a `versionId` (query) or
/// `x-cos-version-id` (header) other than `null` (S3's name of the one
/// version an unversioned object has) is refused, never answered with the
/// current object in its place.
fn check_version(query: &Query, headers: &HeaderMap) -> Result<(), ProtoError> {
    let asked = query.get("versionId").or_else(|| {
        headers
            .get("x-cos-version-id")
            .and_then(|v| v.to_str().ok())
    });
    match asked {
        None | Some("null") => Ok(()),
        Some(id) => Err(ProtoError::InvalidArgument(format!(
            "versionId {id:?}: this gateway keeps no object versions (only versionId=null, \
             the current object, can be named)."
        ))),
    }
}

fn object_endpoint(
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Endpoint, ProtoError> {
    let upload_id = || {
        query
            .get("uploadId")
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ProtoError::InvalidArgument("Parameter uploadId is empty.".into()))
    };
    check_version(query, headers)?;
    let copy_source = headers
        .get("x-cos-copy-source")
        .or_else(|| headers.get("x-amz-copy-source"))
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    Ok(match *method {
        Method::GET | Method::HEAD if query.has("ci-process") => {
            match query.get("ci-process").unwrap_or("") {
                "snapshot" => Endpoint::Snapshot,
                "videoinfo" => Endpoint::VideoInfo,
                other => {
                    return Err(ProtoError::InvalidArgument(format!(
                        "Parameter ci-process {other:?} is not supported (snapshot, videoinfo)."
                    )))
                }
            }
        }
        Method::GET if query.has("uploadId") => Endpoint::ListParts {
            upload_id: upload_id()?,
        },
        Method::GET => {
            for sub in ["acl", "tagging", "torrent", "restore"] {
                if query.has(sub) {
                    return Err(ProtoError::Unsupported("This object sub-resource"));
                }
            }
            Endpoint::GetObject
        }
        Method::HEAD => Endpoint::HeadObject,
        Method::PUT if query.has("partNumber") || query.has("uploadId") => {
            if copy_source.is_some() {
                return Err(ProtoError::Unsupported("Upload part copy"));
            }
            let part_number = query.int_in("partNumber", 1, 10_000)?.ok_or_else(|| {
                ProtoError::InvalidArgument("Parameter partNumber is missing.".into())
            })?;
            Endpoint::UploadPart {
                upload_id: upload_id()?,
                part_number: part_number as u32,
            }
        }
        Method::PUT if query.has("acl") || query.has("tagging") => {
            return Err(ProtoError::Unsupported("This object sub-resource"))
        }
        Method::PUT => match copy_source {
            Some(source) => Endpoint::CopyObject { source },
            None => Endpoint::PutObject,
        },
        Method::POST if query.has("uploads") => Endpoint::CreateMultipartUpload,
        Method::POST if query.has("uploadId") => Endpoint::CompleteMultipartUpload {
            upload_id: upload_id()?,
        },
        Method::DELETE if query.has("uploadId") => Endpoint::AbortMultipartUpload {
            upload_id: upload_id()?,
        },
        Method::DELETE => Endpoint::DeleteObject,
        _ => return Err(ProtoError::MethodNotAllowed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets() -> Vec<String> {
        vec!["demo-125".to_owned(), "other-125".to_owned()]
    }

    fn check(
        method: Method,
        host: &str,
        path_and_query: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Route, ProtoError> {
        let buckets = buckets();
        let addressing = Addressing {
            domain: "myqcloud.com",
            default_bucket: "demo-125",
            buckets: &buckets,
        };
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        route(addressing, &method, Some(host), path, query, &map)
    }

    #[test]
    fn version_ids_are_refused_on_objects() {
        for (query, header) in [("versionId=abc", None), ("", Some("abc"))] {
            let headers: Vec<(&'static str, &str)> = header
                .map(|h| ("x-cos-version-id", h))
                .into_iter()
                .collect();
            for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
                let path = format!("/a.mp4?{query}");
                let err = check(method.clone(), "localhost", &path, &headers).unwrap_err();
                assert!(
                    err.to_string().contains("versionId"),
                    "{method} {path}: {err}"
                );
            }
        }
        let r = check(Method::GET, "localhost", "/a.mp4?versionId=null", &[]).unwrap();
        assert_eq!(r.endpoint, Endpoint::GetObject);
        let r = check(
            Method::GET,
            "localhost",
            "/a.mp4?ci-process=snapshot&time=1&versionId=null",
            &[],
        )
        .unwrap();
        assert_eq!(r.endpoint, Endpoint::Snapshot);
        assert!(check(
            Method::GET,
            "localhost",
            "/a.mp4?ci-process=snapshot&versionId=v1",
            &[]
        )
        .is_err());
    }

    #[test]
    fn virtual_host_path_style_and_default_bucket() {
        let r = check(
            Method::GET,
            "other-125.cos.ap-beijing.myqcloud.com:443",
            "/a/b.mp4",
            &[],
        )
        .unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.key.as_deref()),
            ("other-125", Some("a/b.mp4"))
        );
        let r = check(Method::GET, "127.0.0.1:8080", "/other-125/x", &[]).unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.key.as_deref()),
            ("other-125", Some("x"))
        );
        let r = check(Method::GET, "127.0.0.1:8080", "/videos/x.mp4", &[]).unwrap();
        assert_eq!(
            (r.bucket.as_str(), r.key.as_deref()),
            ("demo-125", Some("videos/x.mp4"))
        );
        let r = check(Method::GET, "localhost", "/", &[]).unwrap();
        assert_eq!(
            (r.bucket.as_str(), &r.endpoint),
            ("demo-125", &Endpoint::ListObjects)
        );
    }

    #[test]
    fn s3_clients_always_name_the_bucket_in_the_path() {
        let err = check(
            Method::GET,
            "127.0.0.1",
            "/nope-1/x",
            &[("x-amz-date", "20240101T000000Z")],
        )
        .unwrap_err();
        assert_eq!(err, ProtoError::NoSuchBucket("nope-1".into()));
        let r = check(
            Method::GET,
            "127.0.0.1",
            "/demo-125?list-type=2",
            &[("x-amz-date", "x")],
        )
        .unwrap();
        assert_eq!(r.endpoint, Endpoint::ListObjectsV2);
        let err = check(Method::GET, "nope-1.cos.x.myqcloud.com", "/k", &[]).unwrap_err();
        assert_eq!(err, ProtoError::NoSuchBucket("nope-1".into()));
    }

    #[test]
    fn keys_are_decoded_and_validated() {
        let r = check(Method::GET, "h", "/a%20b/%E4%B8%AD+~.mp4", &[]).unwrap();
        assert_eq!(r.key.as_deref(), Some("a b/中+~.mp4"));
        for bad in [
            "/a/../b",
            "/./a",
            "/a//b",
            "/a%00b",
            "/dir/",
            "/.framegate/meta/x",
            "/%FF",
        ] {
            assert!(
                matches!(
                    check(Method::GET, "h", bad, &[]),
                    Err(ProtoError::InvalidKey(_))
                ),
                "{bad}"
            );
        }
        let long = format!("/{}", "k".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(
            check(Method::GET, "h", &long, &[]).unwrap_err(),
            ProtoError::KeyTooLong
        );
    }

    #[test]
    fn operations_are_chosen_by_method_and_query() {
        let ep = |m: Method, pq: &str| check(m, "h", pq, &[]).map(|r| r.endpoint);
        assert_eq!(ep(Method::PUT, "/k").unwrap(), Endpoint::PutObject);
        assert_eq!(
            ep(Method::POST, "/k?uploads").unwrap(),
            Endpoint::CreateMultipartUpload
        );
        assert_eq!(
            ep(Method::PUT, "/k?partNumber=3&uploadId=u").unwrap(),
            Endpoint::UploadPart {
                upload_id: "u".into(),
                part_number: 3
            }
        );
        assert!(ep(Method::PUT, "/k?partNumber=0&uploadId=u").is_err());
        assert!(ep(Method::PUT, "/k?partNumber=10001&uploadId=u").is_err());
        assert_eq!(
            ep(Method::POST, "/k?uploadId=u").unwrap(),
            Endpoint::CompleteMultipartUpload {
                upload_id: "u".into()
            }
        );
        assert_eq!(
            ep(Method::DELETE, "/k?uploadId=u").unwrap(),
            Endpoint::AbortMultipartUpload {
                upload_id: "u".into()
            }
        );
        assert_eq!(
            ep(Method::GET, "/k?uploadId=u").unwrap(),
            Endpoint::ListParts {
                upload_id: "u".into()
            }
        );
        assert_eq!(
            ep(Method::GET, "/k?ci-process=snapshot&time=1").unwrap(),
            Endpoint::Snapshot
        );
        assert_eq!(
            ep(Method::HEAD, "/k?ci-process=snapshot").unwrap(),
            Endpoint::Snapshot
        );
        assert_eq!(
            ep(Method::GET, "/k?ci-process=videoinfo").unwrap(),
            Endpoint::VideoInfo
        );
        assert!(matches!(
            ep(Method::GET, "/k?ci-process=x"),
            Err(ProtoError::InvalidArgument(_))
        ));
        assert_eq!(
            ep(Method::PATCH, "/k").unwrap_err(),
            ProtoError::MethodNotAllowed
        );
        assert_eq!(
            ep(Method::GET, "/?uploads").unwrap(),
            Endpoint::ListMultipartUploads
        );
        let r = check(
            Method::PUT,
            "h",
            "/k",
            &[("x-cos-copy-source", "b-1.cos.x/src")],
        )
        .unwrap();
        assert_eq!(
            r.endpoint,
            Endpoint::CopyObject {
                source: "b-1.cos.x/src".into()
            }
        );
    }

    #[test]
    fn ports_are_stripped_but_ipv6_kept() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("host"), "host");
    }
}
