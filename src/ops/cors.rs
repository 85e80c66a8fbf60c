//! CORS: the rules in force per bucket (stored by `PUT ?cors`, else the
//! configuration's), preflight answers, the headers added to every response
//! of a bucket (objects, snapshots, errors) for a matching origin, and the
//! `?cors` API.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, StatusCode};

use super::Ctx;
use crate::config::Config;
use crate::error::{ApiError, ErrorCode};
use crate::proto::cors::{self, CorsRule};
use crate::server::body::{self, Response};
use crate::storage::{BodyStream, Buckets};

/// The name of the stored document in the bucket's bookkeeping store.
const SETTING: &str = "cors.json";

/// Rules in force, per bucket.
#[derive(Debug, Default)]
pub struct CorsRules {
    rules: RwLock<HashMap<String, Arc<Vec<CorsRule>>>>,
}

impl CorsRules {
    /// Loads each bucket's stored rules, else its configured ones.
    pub async fn load(config: &Config, buckets: &Buckets) -> Result<Self, String> {
        let mut rules = HashMap::new();
        for bucket_config in &config.buckets {
            let bucket = buckets.get(&bucket_config.name).expect("opened bucket");
            let stored = bucket
                .read_setting(SETTING)
                .await
                .map_err(|e| format!("bucket {} CORS rules: {e}", bucket.name))?;
            let list = match stored {
                Some(bytes) => serde_json::from_slice(&bytes)
                    .map_err(|e| format!("bucket {} CORS rules: {e}", bucket.name))?,
                None => bucket_config.cors.clone(),
            };
            rules.insert(bucket.name.clone(), Arc::new(list));
        }
        Ok(Self {
            rules: RwLock::new(rules),
        })
    }

    /// The rules of `bucket` (empty: no cross-origin access).
    pub fn get(&self, bucket: &str) -> Arc<Vec<CorsRule>> {
        self.rules
            .read()
            .expect("CORS lock")
            .get(bucket)
            .cloned()
            .unwrap_or_default()
    }

    fn set(&self, bucket: &str, rules: Vec<CorsRule>) {
        self.rules
            .write()
            .expect("CORS lock")
            .insert(bucket.to_owned(), Arc::new(rules));
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Answers an `OPTIONS` preflight from `rules`.
pub fn preflight(rules: &[CorsRule], headers: &HeaderMap) -> Result<Response, ApiError> {
    let origin = header_text(headers, header::ORIGIN);
    let method = header_text(headers, header::ACCESS_CONTROL_REQUEST_METHOD);
    let (Some(origin), Some(method)) = (origin, method) else {
        return Err(ApiError::invalid_argument(
            "A CORS preflight needs the Origin and Access-Control-Request-Method headers.",
        ));
    };
    let requested: Vec<&str> = header_text(headers, header::ACCESS_CONTROL_REQUEST_HEADERS)
        .map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let Some(rule) = cors::find(rules, origin, method, &requested) else {
        return Err(ApiError::new(
            ErrorCode::AccessDenied,
            "CORSResponse: This CORS request is not allowed.",
        ));
    };
    let mut response = http::Response::builder()
        .status(StatusCode::OK)
        .header(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            rule.allow_origin_value(origin),
        )
        .header(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            rule.allowed_methods.join(", "),
        )
        .header(
            header::VARY,
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        )
        .header(header::CONTENT_LENGTH, 0);
    if !requested.is_empty() {
        response = response.header(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.join(", "));
    }
    if !rule.expose_headers.is_empty() {
        response = response.header(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            rule.expose_headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_secs {
        response = response.header(header::ACCESS_CONTROL_MAX_AGE, age);
    }
    Ok(response.body(body::empty()).expect("valid response"))
}

/// Adds the CORS headers a matching rule grants to `response` (any status:
/// scripts may read error codes too).
pub fn decorate(rules: &[CorsRule], method: &Method, headers: &HeaderMap, response: &mut Response) {
    let Some(origin) = header_text(headers, header::ORIGIN) else {
        return;
    };
    let out = response.headers_mut();
    out.append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(rule) = cors::find(rules, origin, method.as_str(), &[]) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&rule.allow_origin_value(origin)) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    if !rule.expose_headers.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&rule.expose_headers.join(", ")) {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
        }
    }
}

/// `GET /?cors`.
pub fn get(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    let rules = ctx.state.cors.get(&ctx.bucket.name);
    if rules.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NoSuchCORSConfiguration,
            "The CORS configuration does not exist.",
        ));
    }
    Ok(super::object::xml(StatusCode::OK, cors::render(&rules)))
}

/// `PUT /?cors`: replaces the bucket's rules.
pub async fn put(ctx: &Ctx<'_>, body: BodyStream) -> Result<Response, ApiError> {
    let document = body::read_document(body, ctx.state.config.limits.max_document_bytes).await?;
    let rules = cors::parse(&document)?;
    let json = serde_json::to_vec(&rules).map_err(ApiError::internal)?;
    ctx.bucket.write_setting(SETTING, Bytes::from(json)).await?;
    ctx.state.cors.set(&ctx.bucket.name, rules);
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, 0)
        .body(body::empty())
        .expect("valid response"))
}

/// `DELETE /?cors`: no cross-origin access until rules are set again (the
/// configuration's rules do not come back).
pub async fn delete(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    ctx.bucket
        .write_setting(SETTING, Bytes::from_static(b"[]"))
        .await?;
    ctx.state.cors.set(&ctx.bucket.name, Vec::new());
    Ok(http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(body::empty())
        .expect("valid response"))
}
