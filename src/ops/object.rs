//! Object and bucket operations of the COS XML API (S3 compatible).

use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::Ctx;
use crate::error::{ApiError, ErrorCode};
use crate::jobs::flows::{PROCEDURE_HEADER, PROCEDURE_META};
use crate::memory_cache::MemoryCache;
use crate::proto::conditional::{self, Precondition};
use crate::proto::range::{self, RangeRequest};
use crate::proto::route::validate_key;
use crate::proto::xml::{parse_complete_multipart, parse_delete, XmlWriter};
use crate::proto::ProtoError;
use crate::server::body::{self, Response};
use crate::storage::{self, BodyStream, ListRequest, ObjectInfo, PutRequest};

/// Stored representation headers and the `response-*` parameters that
/// override them on GET.
const REPRESENTATION_HEADERS: [(&str, &str); 5] = [
    ("cache-control", "response-cache-control"),
    ("content-disposition", "response-content-disposition"),
    ("content-encoding", "response-content-encoding"),
    ("content-language", "response-content-language"),
    ("expires", "response-expires"),
];

/// Characters escaped by `encoding-type=url`: all but unreserved and `/`.
const LIST_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn key<'a>(ctx: &Ctx<'a>) -> &'a str {
    ctx.route.key.as_deref().unwrap_or_default()
}

/// `GET`/`HEAD` of an object: preconditions, single range, streaming body.
pub async fn get(ctx: &Ctx<'_>, head_only: bool) -> Result<Response, ApiError> {
    let info = ctx.bucket.head(key(ctx)).await?;
    let mut builder = http::Response::builder();
    let headers = builder.headers_mut().expect("fresh builder");
    object_headers(headers, &info, ctx);
    match conditional::evaluate(ctx.headers, &info.quoted_etag(), info.last_modified) {
        Precondition::Proceed => {}
        Precondition::NotModified => {
            return Ok(builder
                .status(StatusCode::NOT_MODIFIED)
                .body(body::empty())
                .expect("valid response"));
        }
        Precondition::Failed => {
            return Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                "At least one of the preconditions you specified did not hold.",
            ))
        }
    }
    for (name, param) in REPRESENTATION_HEADERS
        .iter()
        .chain(&[("content-type", "response-content-type")])
    {
        if let Some(value) = ctx.route.query.get(param) {
            let value = HeaderValue::from_str(value).map_err(|_| {
                ApiError::invalid_argument(format!(
                    "Parameter {param} is not a valid header value."
                ))
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let range_header = ctx.headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, range) = match range::parse(range_header, info.size) {
        RangeRequest::Full => (StatusCode::OK, 0..info.size),
        RangeRequest::Partial(range) => {
            headers.insert(
                header::CONTENT_RANGE,
                header_value(&range::content_range(&range, info.size)),
            );
            (StatusCode::PARTIAL_CONTENT, range)
        }
        RangeRequest::Unsatisfiable => {
            return Err(ApiError::new(
                ErrorCode::InvalidRange,
                format!(
                    "The requested range is not satisfiable (object size {}).",
                    info.size
                ),
            ))
        }
    };
    headers.insert(header::CONTENT_LENGTH, (range.end - range.start).into());
    let body = if head_only {
        body::empty()
    } else if let Some(whole) = hot_object(ctx, &info).await? {
        body::full(whole.slice(range.start as usize..range.end as usize))
    } else {
        body::stream(ctx.bucket.read(key(ctx), range).await?)
    };
    Ok(builder.status(status).body(body).expect("valid response"))
}

/// A small object's bytes from the in-memory cache, read whole into it on a
/// miss; `None` for objects too large for the cache, or whose backend has
/// no ETag to tie the bytes to (they are streamed instead). Keyed by both
/// ETags, and read only if the backend still holds that version, so a
/// changed object is never answered with old bytes.
async fn hot_object(ctx: &Ctx<'_>, info: &ObjectInfo) -> Result<Option<Bytes>, ApiError> {
    let cache = &ctx.state.objects;
    let Some(backend_etag) = info.backend_etag.as_deref() else {
        return Ok(None);
    };
    if info.size > cache.max_entry() as u64 {
        return Ok(None);
    }
    let cache_key = MemoryCache::<Bytes>::key(&ctx.bucket.name, key(ctx), &info.etag, backend_etag);
    if let Some(bytes) = cache.get(&cache_key) {
        return Ok(Some(bytes));
    }
    match ctx.bucket.read_whole(key(ctx), backend_etag).await? {
        Some(bytes) if bytes.len() as u64 == info.size => {
            cache.put(cache_key, bytes.clone());
            Ok(Some(bytes))
        }
        _ => Ok(None),
    }
}

fn object_headers(headers: &mut HeaderMap, info: &ObjectInfo, ctx: &Ctx<'_>) {
    headers.insert(header::ETAG, header_value(&info.quoted_etag()));
    headers.insert(
        header::LAST_MODIFIED,
        header_value(&httpdate::fmt_http_date(info.last_modified)),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_TYPE, header_value(&info.content_type));
    if let Some(crc) = info.crc64 {
        headers.insert("x-cos-hash-crc64ecma", crc.into());
    }
    for (name, value) in &info.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let prefix = if ctx.s3_dialect {
        "x-amz-meta-"
    } else {
        "x-cos-meta-"
    };
    for (name, value) in &info.user_meta {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(format!("{prefix}{name}")),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// What a PUT or initiate request says about the object besides its body.
fn put_request(ctx: &Ctx<'_>, max_len: u64) -> Result<PutRequest, ApiError> {
    let headers = ctx.headers;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut request = PutRequest {
        content_type: text("content-type").map(str::to_owned),
        max_len,
        ..PutRequest::default()
    };
    for (name, value) in headers {
        let name = name.as_str();
        let meta_name = name
            .strip_prefix("x-cos-meta-")
            .or_else(|| name.strip_prefix("x-amz-meta-"));
        if let Some(meta_name) = meta_name {
            let value = value.to_str().map_err(|_| {
                ApiError::invalid_argument(format!("Header {name} must be visible ASCII."))
            })?;
            request
                .user_meta
                .insert(meta_name.to_owned(), value.to_owned());
        }
    }
    for (name, _) in REPRESENTATION_HEADERS {
        if let Some(value) = text(name) {
            request.headers.insert(name.to_owned(), value.to_owned());
        }
    }
    // `aws-chunked` describes the transfer, not the object (S3 drops it).
    if let Some(encoding) = request.headers.remove("content-encoding") {
        let kept: Vec<&str> = encoding
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        if !kept.is_empty() {
            request
                .headers
                .insert("content-encoding".to_owned(), kept.join(", "));
        }
    }
    if let Some(md5) = text("content-md5") {
        request.content_md5 =
            Some(storage::decode_content_md5(md5).ok_or(ProtoError::InvalidDigest)?);
    }
    if let Some(crc) = text("x-amz-checksum-crc32") {
        request.crc32 = Some(storage::decode_crc32(crc).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidDigest,
                "The x-amz-checksum-crc32 header is not valid.",
            )
        })?);
    }
    request.content_length =
        match text("x-amz-decoded-content-length").or(text("content-length")) {
            Some(len) => Some(len.parse::<u64>().map_err(|_| {
                ApiError::invalid_argument("Header Content-Length is not a number.")
            })?),
            None => None,
        };
    Ok(request)
}

/// `PUT Object`: streams the body into the store, then starts the
/// procedures the upload triggers.
pub async fn put(ctx: &Ctx<'_>, body: BodyStream) -> Result<Response, ApiError> {
    let request = put_request(ctx, ctx.state.config.limits.max_object_bytes)?;
    let named = named_procedure(ctx, &request.user_meta).await?;
    let jobs = &ctx.state.jobs;
    let intent = jobs
        .upload_begins(&ctx.bucket.name, key(ctx), named.as_deref())
        .await?;
    let info = match ctx.bucket.put_object(key(ctx), body, request).await {
        Ok(info) => info,
        Err(err) => {
            jobs.upload_abandoned(intent).await;
            return Err(err.into());
        }
    };
    jobs.on_upload(&ctx.bucket.name, key(ctx), named.as_deref(), intent)
        .await;
    Ok(written_response(&info))
}

/// The procedure an upload names (the `x-framegate-procedure` header, else
/// the `framegate-procedure` user metadata), checked before the body is
/// taken: it must exist and the uploader must be allowed to start it.
async fn named_procedure(
    ctx: &Ctx<'_>,
    meta: &storage::UserMeta,
) -> Result<Option<String>, ApiError> {
    let name = ctx
        .headers
        .get(PROCEDURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| meta.get(PROCEDURE_META).cloned())
        .filter(|n| !n.is_empty());
    let Some(name) = name else {
        return Ok(None);
    };
    let allowed = match ctx.principal {
        crate::auth::Principal::Key(id) => ctx.state.credentials.get(id).is_some_and(|c| {
            crate::auth::policy::allows(&c.allow, "vod:ProcessMediaByProcedure", "vod")
        }),
        crate::auth::Principal::Temporary(_) | crate::auth::Principal::Anonymous => false,
    };
    if !allowed {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "Starting a procedure on upload needs vod:ProcessMediaByProcedure.",
        ));
    }
    let exists = ctx
        .state
        .jobs
        .procedure_exists(&name)
        .await
        .map_err(ApiError::internal)?;
    if !exists {
        return Err(ApiError::invalid_argument(format!(
            "There is no procedure named {name:?}."
        )));
    }
    Ok(Some(name))
}

fn written_response(info: &ObjectInfo) -> Response {
    let mut builder = http::Response::builder()
        .status(StatusCode::OK)
        .header(header::ETAG, info.quoted_etag());
    if let Some(crc) = info.crc64 {
        builder = builder.header("x-cos-hash-crc64ecma", crc);
    }
    builder.body(body::empty()).expect("valid response")
}

/// `DELETE Object` (idempotent).
pub async fn delete(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    ctx.bucket.delete(key(ctx)).await?;
    Ok(http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(body::empty())
        .expect("valid response"))
}

/// `PUT Object - Copy` from `source` (`[/]bucket/key` or a COS host path).
pub async fn copy(ctx: &Ctx<'_>, source: &str) -> Result<Response, ApiError> {
    let (source_bucket, source_key) = parse_copy_source(source)?;
    let source_bucket = ctx
        .state
        .buckets
        .get(&source_bucket)
        .ok_or_else(|| ProtoError::NoSuchBucket(source_bucket.clone()))?;
    // A copy reads the source: the caller needs read access to it too.
    if !crate::auth::may(
        &ctx.state.credentials,
        ctx.principal,
        source_bucket,
        "cos:GetObject",
        &source_key,
    ) {
        tracing::info!(source = %source_key, "copy denied: no read access to the source");
        return Err(ApiError::new(ErrorCode::AccessDenied, "Access Denied."));
    }
    let directive = ctx
        .headers
        .get("x-cos-metadata-directive")
        .or_else(|| ctx.headers.get("x-amz-metadata-directive"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Copy");
    let replace = if directive.eq_ignore_ascii_case("replaced")
        || directive.eq_ignore_ascii_case("replace")
    {
        let mut request = put_request(ctx, u64::MAX)?;
        request.content_md5 = None;
        request.crc32 = None;
        Some(request)
    } else {
        None
    };
    let jobs = &ctx.state.jobs;
    let intent = jobs.upload_begins(&ctx.bucket.name, key(ctx), None).await?;
    let info = match ctx
        .bucket
        .copy_from(source_bucket, &source_key, key(ctx), replace)
        .await
    {
        Ok(info) => info,
        Err(err) => {
            jobs.upload_abandoned(intent).await;
            return Err(err.into());
        }
    };
    jobs.on_upload(&ctx.bucket.name, key(ctx), None, intent)
        .await;
    let mut doc = XmlWriter::new("CopyObjectResult");
    doc.text("ETag", info.quoted_etag())
        .text("LastModified", iso8601(info.last_modified));
    let mut response = xml(StatusCode::OK, doc.finish());
    if let Some(crc) = info.crc64 {
        response
            .headers_mut()
            .insert("x-cos-hash-crc64ecma", crc.into());
    }
    Ok(response)
}

fn parse_copy_source(source: &str) -> Result<(String, String), ApiError> {
    let source = source.split('?').next().unwrap_or_default();
    let source = source.strip_prefix('/').unwrap_or(source);
    let (first, rest) = source.split_once('/').ok_or_else(|| {
        ApiError::invalid_argument("Header x-cos-copy-source must name bucket and key.")
    })?;
    // COS form: <bucket>.cos.<region>.<domain>/<key>; S3 form: <bucket>/<key>.
    let bucket = first.split('.').next().unwrap_or(first).to_owned();
    let key = percent_decode_str(rest)
        .decode_utf8()
        .map_err(|_| ApiError::invalid_argument("Header x-cos-copy-source is not valid UTF-8."))?
        .into_owned();
    validate_key(&key).map_err(ApiError::from)?;
    Ok((bucket, key))
}

/// `GET Bucket` (COS v1) and `list-type=2` (S3 v2).
pub async fn list(ctx: &Ctx<'_>, v2: bool) -> Result<Response, ApiError> {
    let query = &ctx.route.query;
    let max_keys = query.int_in("max-keys", 0, 1000)?.unwrap_or(1000) as usize;
    let url_encode = match query.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(other) => {
            return Err(ApiError::invalid_argument(format!(
                "Parameter encoding-type {other:?} is not supported (url)."
            )))
        }
    };
    let start_after = if v2 {
        match query.get("continuation-token") {
            Some(token) => Some(decode_token(token)?),
            None => query.get("start-after").map(str::to_owned),
        }
    } else {
        query.get("marker").map(str::to_owned)
    };
    let request = ListRequest {
        prefix: query.get("prefix").unwrap_or("").to_owned(),
        delimiter: query
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        start_after,
        max_keys,
    };
    let page = ctx.bucket.list(&request).await?;
    let enc = |text: &str| -> String {
        if url_encode {
            utf8_percent_encode(text, LIST_ENCODE).to_string()
        } else {
            text.to_owned()
        }
    };
    let mut doc = XmlWriter::new("ListBucketResult");
    doc.text("Name", &ctx.bucket.name)
        .text("Prefix", enc(&request.prefix))
        .text("MaxKeys", max_keys.to_string());
    if let Some(delimiter) = &request.delimiter {
        doc.text("Delimiter", enc(delimiter));
    }
    if url_encode {
        doc.text("EncodingType", "url");
    }
    doc.text("IsTruncated", page.truncated.to_string());
    if v2 {
        doc.text(
            "KeyCount",
            (page.entries.len() + page.common_prefixes.len()).to_string(),
        );
        if let Some(token) = query.get("continuation-token") {
            doc.text("ContinuationToken", token);
        }
        if let Some(start_after) = query.get("start-after") {
            doc.text("StartAfter", enc(start_after));
        }
        if let Some(next) = &page.next_marker {
            doc.text("NextContinuationToken", encode_token(next));
        }
    } else {
        doc.text("Marker", enc(query.get("marker").unwrap_or("")));
        if let Some(next) = &page.next_marker {
            doc.text("NextMarker", enc(next));
        }
    }
    for entry in &page.entries {
        doc.open("Contents")
            .text("Key", enc(&entry.key))
            .text("LastModified", iso8601(entry.info.last_modified))
            .text("ETag", entry.info.quoted_etag())
            .text("Size", entry.info.size.to_string())
            .open("Owner")
            .text("ID", &ctx.bucket.name)
            .text("DisplayName", &ctx.bucket.name)
            .close()
            .text("StorageClass", "STANDARD")
            .close();
    }
    for prefix in &page.common_prefixes {
        doc.open("CommonPrefixes")
            .text("Prefix", enc(prefix))
            .close();
    }
    Ok(xml(StatusCode::OK, doc.finish()))
}

fn encode_token(key: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_token(token: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid_argument("The continuation token provided is incorrect."))
}

/// `POST Bucket?delete`: deletes up to 1000 keys, each checked against the
/// caller's policy.
pub async fn delete_many(ctx: &Ctx<'_>, body: BodyStream) -> Result<Response, ApiError> {
    let document = body::read_document(body, ctx.state.config.limits.max_document_bytes).await?;
    let request = parse_delete(&document)?;
    let mut doc = XmlWriter::new("DeleteResult");
    for key in &request.keys {
        let outcome = match validate_key(key) {
            Err(err) => Err(ApiError::from(err)),
            Ok(())
                if !crate::auth::may(
                    &ctx.state.credentials,
                    ctx.principal,
                    ctx.bucket,
                    "cos:DeleteObject",
                    key,
                ) =>
            {
                Err(ApiError::new(ErrorCode::AccessDenied, "Access Denied."))
            }
            Ok(()) => ctx.bucket.delete(key).await.map_err(ApiError::from),
        };
        match outcome {
            Ok(()) if request.quiet => {}
            Ok(()) => {
                doc.open("Deleted").text("Key", key).close();
            }
            Err(err) => {
                doc.open("Error")
                    .text("Key", key)
                    .text("Code", err.code.as_str())
                    .text("Message", &err.message)
                    .close();
            }
        }
    }
    Ok(xml(StatusCode::OK, doc.finish()))
}

/// `HEAD Bucket`.
pub fn head_bucket(ctx: &Ctx<'_>) -> Response {
    http::Response::builder()
        .status(StatusCode::OK)
        .header("x-cos-bucket-region", &ctx.state.config.region)
        .body(body::empty())
        .expect("valid response")
}

/// `GET Bucket location`.
pub fn location(ctx: &Ctx<'_>) -> Response {
    let text = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint>{}</LocationConstraint>",
        quick_xml::escape::escape(ctx.state.config.region.as_str())
    );
    xml(StatusCode::OK, text)
}

/// `POST Object?uploads`: initiate a multipart upload.
pub async fn create_upload(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let mut request = put_request(ctx, u64::MAX)?;
    request.content_length = None;
    let upload = ctx.bucket.create_upload(key(ctx), request).await?;
    let mut doc = XmlWriter::new("InitiateMultipartUploadResult");
    doc.text("Bucket", &ctx.bucket.name)
        .text("Key", &upload.key)
        .text("UploadId", &upload.upload_id);
    Ok(xml(StatusCode::OK, doc.finish()))
}

/// `PUT Object?partNumber&uploadId`.
pub async fn upload_part(
    ctx: &Ctx<'_>,
    upload_id: &str,
    part_number: u32,
    body: BodyStream,
) -> Result<Response, ApiError> {
    let request = put_request(ctx, ctx.state.config.limits.max_object_bytes)?;
    let part = ctx
        .bucket
        .upload_part(key(ctx), upload_id, part_number, body, request)
        .await?;
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::ETAG, format!("\"{}\"", part.etag))
        .body(body::empty())
        .expect("valid response"))
}

/// `POST Object?uploadId`: assemble the parts.
pub async fn complete_upload(
    ctx: &Ctx<'_>,
    upload_id: &str,
    body: BodyStream,
) -> Result<Response, ApiError> {
    let document = body::read_document(body, ctx.state.config.limits.max_document_bytes).await?;
    let parts = parse_complete_multipart(&document)?;
    let upload = ctx.bucket.upload(key(ctx), upload_id).await?;
    let named = named_procedure(ctx, &upload.user_meta).await?;
    let jobs = &ctx.state.jobs;
    let intent = jobs
        .upload_begins(&ctx.bucket.name, key(ctx), named.as_deref())
        .await?;
    let info = match ctx
        .bucket
        .complete_upload(key(ctx), upload_id, &parts)
        .await
    {
        Ok(info) => info,
        Err(err) => {
            jobs.upload_abandoned(intent).await;
            return Err(err.into());
        }
    };
    jobs.on_upload(&ctx.bucket.name, key(ctx), named.as_deref(), intent)
        .await;
    let mut doc = XmlWriter::new("CompleteMultipartUploadResult");
    doc.text("Location", format!("/{}/{}", ctx.bucket.name, key(ctx)))
        .text("Bucket", &ctx.bucket.name)
        .text("Key", key(ctx))
        .text("ETag", info.quoted_etag());
    let mut response = xml(StatusCode::OK, doc.finish());
    if let Some(crc) = info.crc64 {
        response
            .headers_mut()
            .insert("x-cos-hash-crc64ecma", crc.into());
    }
    Ok(response)
}

/// `DELETE Object?uploadId`.
pub async fn abort_upload(ctx: &Ctx<'_>, upload_id: &str) -> Result<Response, ApiError> {
    ctx.bucket.abort_upload(key(ctx), upload_id).await?;
    Ok(http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(body::empty())
        .expect("valid response"))
}

/// `GET Object?uploadId`: the parts uploaded so far.
pub async fn list_parts(ctx: &Ctx<'_>, upload_id: &str) -> Result<Response, ApiError> {
    let query = &ctx.route.query;
    let max_parts = query.int_in("max-parts", 0, 1000)?.unwrap_or(1000) as usize;
    let marker = query.int_in("part-number-marker", 0, 10_000)?.unwrap_or(0) as u32;
    let (upload, parts) = ctx.bucket.list_parts(key(ctx), upload_id).await?;
    let remaining: Vec<_> = parts
        .into_iter()
        .filter(|p| p.part_number > marker)
        .collect();
    let truncated = remaining.len() > max_parts;
    let shown = &remaining[..remaining.len().min(max_parts)];
    let mut doc = XmlWriter::new("ListPartsResult");
    doc.text("Bucket", &ctx.bucket.name)
        .text("Key", &upload.key)
        .text("UploadId", &upload.upload_id);
    owner(&mut doc, "Initiator", &ctx.bucket.name);
    owner(&mut doc, "Owner", &ctx.bucket.name);
    doc.text("StorageClass", "STANDARD")
        .text("PartNumberMarker", marker.to_string())
        .text(
            "NextPartNumberMarker",
            shown.last().map_or(marker, |p| p.part_number).to_string(),
        )
        .text("MaxParts", max_parts.to_string())
        .text("IsTruncated", truncated.to_string());
    for part in shown {
        doc.open("Part")
            .text("PartNumber", part.part_number.to_string())
            .text("LastModified", iso8601(part.last_modified()))
            .text("ETag", format!("\"{}\"", part.etag))
            .text("Size", part.size.to_string())
            .close();
    }
    Ok(xml(StatusCode::OK, doc.finish()))
}

/// `GET Bucket?uploads`: in-progress multipart uploads.
pub async fn list_uploads(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let query = &ctx.route.query;
    let prefix = query.get("prefix").unwrap_or("");
    let max_uploads = query.int_in("max-uploads", 0, 1000)?.unwrap_or(1000) as usize;
    let uploads = ctx.bucket.list_uploads(prefix).await?;
    let truncated = uploads.len() > max_uploads;
    let mut doc = XmlWriter::new("ListMultipartUploadsResult");
    doc.text("Bucket", &ctx.bucket.name)
        .text("Prefix", prefix)
        .text("KeyMarker", query.get("key-marker").unwrap_or(""))
        .text(
            "UploadIdMarker",
            query.get("upload-id-marker").unwrap_or(""),
        )
        .text("MaxUploads", max_uploads.to_string())
        .text("IsTruncated", truncated.to_string());
    for upload in uploads.iter().take(max_uploads) {
        doc.open("Upload")
            .text("Key", &upload.key)
            .text("UploadId", &upload.upload_id)
            .text("StorageClass", "STANDARD");
        owner(&mut doc, "Initiator", &ctx.bucket.name);
        owner(&mut doc, "Owner", &ctx.bucket.name);
        doc.text("Initiated", iso8601(upload.initiated())).close();
    }
    Ok(xml(StatusCode::OK, doc.finish()))
}

fn owner(doc: &mut XmlWriter, tag: &'static str, id: &str) {
    doc.open(tag).text("ID", id).text("DisplayName", id).close();
}

/// An XML response.
pub fn xml(status: StatusCode, document: String) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/xml")
        .header(header::CONTENT_LENGTH, document.len())
        .body(body::full(document))
        .expect("valid response")
}

/// ISO 8601 with milliseconds, as COS and S3 list timestamps.
pub fn iso8601(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
