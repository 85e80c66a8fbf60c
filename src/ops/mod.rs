//! Request handlers: one module per endpoint group, one dispatch `match`.
//!
//! [`handle`] routes the request (pure, in `proto::route`), checks access
//! (in `auth`) before any storage or decoding work starts, then calls the
//! handler of the endpoint. Handlers return [`ApiError`]s; the server renders
//! them.

pub mod api3;
pub mod ci;
pub mod ci_workflow;
pub mod cors;
pub mod demo;
pub mod document;
pub mod media;
pub mod object;
pub mod vod;
pub mod vod_upload;

use std::sync::Arc;

use http::{HeaderMap, Request};
use hyper::body::Incoming;

use crate::auth::{self, Credentials};
use crate::config::Config;
use crate::error::ApiError;
use crate::jobs::{Jobs, Renderers};
use crate::memory_cache::{InFlight, MemoryCache, SnapshotCache};
use crate::pool::DecodePool;
use crate::proto::route::{self, Addressing, Endpoint, Route};
use crate::proto::sign::RequestParts;
use crate::proto::ProtoError;
use crate::server::body::{self, Response};
use crate::storage::{Bucket, Buckets};

/// Everything handlers share; built once at start.
#[derive(Debug)]
pub struct AppState {
    /// The validated configuration.
    pub config: Config,
    /// Opened buckets.
    pub buckets: Buckets,
    /// Credentials by secret id.
    pub credentials: Credentials,
    /// Where snapshots and probes run.
    pub pool: DecodePool,
    /// Recently encoded snapshots.
    pub snapshots: SnapshotCache,
    /// Small objects recently read, by bucket, key and ETags.
    pub objects: MemoryCache<bytes::Bytes>,
    /// Videos opened by recent snapshots, by object version.
    pub opened: Arc<media::OpenedCache>,
    /// Videos with their decoders parked where exact snapshots left them,
    /// by object version.
    pub parked: Arc<media::ParkedCache>,
    /// Snapshot decodes in progress, joined by identical requests.
    pub in_flight: InFlight,
    /// Templates, tasks and their queue.
    pub jobs: Jobs,
    /// CORS rules in force per bucket.
    pub cors: cors::CorsRules,
}

impl AppState {
    /// Opens the buckets and the job store of `config`.
    pub async fn new(config: Config) -> Result<Self, String> {
        let buckets = Buckets::open(&config)?;
        let renderers = Renderers {
            job_end: ci::render_job_end,
            task_event: vod::render_task_event,
        };
        let jobs = Jobs::open(&config, renderers).await?;
        let upgraded = vod::upgrade_procedures(&jobs)
            .await
            .map_err(|e| format!("job store: {e}"))?;
        if upgraded > 0 {
            tracing::info!(
                procedures = upgraded,
                "stored procedures upgraded to the typed form"
            );
        }
        jobs.resume_uploads(|bucket, key| {
            let bucket = buckets.get(&bucket).cloned();
            async move {
                match bucket {
                    Some(bucket) => bucket.head(&key).await.is_ok(),
                    None => false,
                }
            }
        })
        .await
        .map_err(|e| format!("job store: {e}"))?;
        let cors = cors::CorsRules::load(&config, &buckets).await?;
        let issuer = jobs
            .temporary_credential_key()
            .await
            .map_err(|e| format!("job store: {e}"))?;
        let credentials = Credentials::new(&config).with_temporary(issuer);
        let pool = DecodePool::new(config.media.workers, config.media.queue);
        let snapshots = SnapshotCache::new(config.media.cache_bytes);
        let objects = MemoryCache::new(config.limits.object_cache_bytes);
        let opened = Arc::new(media::OpenedCache::new(config.media.open_cache_entries));
        let parked = Arc::new(media::ParkedCache::new(media::parking_bounds(
            &config.media,
        )));
        media::expire_parked_decoders(&parked);
        Ok(Self {
            config,
            buckets,
            credentials,
            pool,
            snapshots,
            objects,
            opened,
            parked,
            in_flight: InFlight::default(),
            jobs,
            cors,
        })
    }
}

impl crate::jobs::worker::JobHost for AppState {
    fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    fn media(&self) -> &crate::config::MediaConfig {
        &self.config.media
    }
}

/// What a handler gets: the state, the bucket, the route and the headers.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// Shared state.
    pub state: &'a AppState,
    /// The addressed bucket.
    pub bucket: &'a Arc<Bucket>,
    /// The routed request.
    pub route: &'a Route,
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Answer in the S3 dialect (`x-amz-meta-*`).
    pub s3_dialect: bool,
    /// Who is asking (verified).
    pub principal: &'a auth::Principal,
}

/// The operation a response answers, as metrics and logs name it: a
/// response extension [`handle`] sets (absent when routing failed before
/// a bucket was found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation(pub &'static str);

/// The operation name of an API 3.0 request (its `X-TC-Action`, when
/// served; a fixed set, whatever clients send).
pub fn api3_operation(parts: &http::request::Parts) -> &'static str {
    let action = parts
        .headers
        .get("x-tc-action")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    vod::ACTIONS
        .iter()
        .find(|name| **name == action)
        .copied()
        .unwrap_or("Api3Other")
}

/// The operation name of a routed endpoint: COS's names, `Snapshot` and
/// `VideoInfo` for the `ci-process` GETs, `Ci<resource>` for the CI media
/// API.
pub fn operation(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Snapshot => "Snapshot",
        Endpoint::VideoInfo => "VideoInfo",
        Endpoint::Ci(_) => match auth::policy::action(endpoint) {
            "ci:MediaJobs" => "CiMediaJobs",
            "ci:MediaTemplates" => "CiMediaTemplates",
            "ci:MediaQueue" => "CiMediaQueue",
            "ci:MediaBuckets" => "CiMediaBuckets",
            "ci:GenerateSnapshot" => "CiSnapshot",
            "ci:GetMediaInfo" => "CiMediaInfo",
            "ci:MediaWorkflows" => "CiMediaWorkflows",
            _ => "CiOther",
        },
        other => other.name(),
    }
}

/// Routes, authenticates, authorizes and serves one request; the response
/// carries its [`Operation`].
pub async fn handle(
    state: &AppState,
    request: Request<Incoming>,
    request_id: &str,
) -> Result<Response, ApiError> {
    let (parts, incoming) = request.into_parts();
    if api3::is_api3(&parts) {
        let mut response = api3::handle(state, &parts, incoming, request_id).await;
        let operation = Operation(api3_operation(&parts));
        response.extensions_mut().insert(operation);
        return Ok(response);
    }
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    if state.config.demo.enabled
        && parts.method == http::Method::GET
        && parts.uri.path().starts_with(demo::PREFIX)
    {
        let mut response = demo::handle(
            state,
            parts.uri.path(),
            parts.uri.query(),
            host.unwrap_or("127.0.0.1"),
        )
        .await?;
        response.extensions_mut().insert(Operation("Demo"));
        return Ok(response);
    }
    let addressing = Addressing {
        domain: &state.config.domain,
        default_bucket: &state.config.default_bucket,
        buckets: state.buckets.names(),
    };
    let routed = route::route(
        addressing,
        &parts.method,
        host,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
    );
    let route = match routed {
        Ok(route) => route,
        Err(err) => {
            // Answered before a handler runs, but with the CORS headers of
            // the bucket it addressed, so a browser can read the error.
            let mut response =
                crate::server::error_response(&err.into(), parts.uri.path(), request_id);
            let bucket = route::addressed_bucket(
                addressing,
                host,
                parts.uri.path(),
                parts.uri.query(),
                &parts.headers,
            );
            if let Some(bucket) = bucket {
                let rules = state.cors.get(&bucket);
                cors::decorate(&rules, &parts.method, &parts.headers, &mut response);
            }
            return Ok(response);
        }
    };
    let bucket = state
        .buckets
        .get(&route.bucket)
        .ok_or_else(|| ProtoError::NoSuchBucket(route.bucket.clone()))?;
    let rules = state.cors.get(&bucket.name);
    let operation = Operation(operation(&route.endpoint));
    if route.endpoint == Endpoint::Preflight {
        let mut response = cors::preflight(&rules, &parts.headers)?;
        response.extensions_mut().insert(operation);
        return Ok(response);
    }
    let outcome = serve(state, bucket, &route, &parts, incoming).await;
    let mut response = outcome
        .unwrap_or_else(|err| crate::server::error_response(&err, parts.uri.path(), request_id));
    cors::decorate(&rules, &parts.method, &parts.headers, &mut response);
    response.extensions_mut().insert(operation);
    Ok(response)
}

/// Authenticates, authorizes and serves a routed request.
async fn serve(
    state: &AppState,
    bucket: &Arc<Bucket>,
    route: &Route,
    parts: &http::request::Parts,
    incoming: Incoming,
) -> Result<Response, ApiError> {
    let signed = RequestParts {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
    };
    let authenticated = auth::authenticate(&state.credentials, &signed, None)?;
    auth::authorize(&state.credentials, &authenticated.principal, bucket, route)?;
    let trailer = parts
        .headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok());
    let body = || {
        auth::checked_body(
            body::incoming_stream(incoming),
            authenticated.body.clone(),
            trailer,
        )
    };
    let ctx = Ctx {
        state,
        bucket,
        route,
        headers: &parts.headers,
        s3_dialect: route.s3_dialect,
        principal: &authenticated.principal,
    };
    match &route.endpoint {
        Endpoint::ListObjects => object::list(&ctx, false).await,
        Endpoint::ListObjectsV2 => object::list(&ctx, true).await,
        Endpoint::ListMultipartUploads => object::list_uploads(&ctx).await,
        Endpoint::HeadBucket => Ok(object::head_bucket(&ctx)),
        Endpoint::DeleteObjects => object::delete_many(&ctx, body()).await,
        Endpoint::GetBucketLocation => Ok(object::location(&ctx)),
        Endpoint::GetObject => object::get(&ctx, false).await,
        Endpoint::HeadObject => object::get(&ctx, true).await,
        Endpoint::PutObject => object::put(&ctx, body()).await,
        Endpoint::CopyObject { source } => object::copy(&ctx, source).await,
        Endpoint::DeleteObject => object::delete(&ctx).await,
        Endpoint::CreateMultipartUpload => object::create_upload(&ctx).await,
        Endpoint::UploadPart {
            upload_id,
            part_number,
        } => object::upload_part(&ctx, upload_id, *part_number, body()).await,
        Endpoint::CompleteMultipartUpload { upload_id } => {
            object::complete_upload(&ctx, upload_id, body()).await
        }
        Endpoint::AbortMultipartUpload { upload_id } => object::abort_upload(&ctx, upload_id).await,
        Endpoint::ListParts { upload_id } => object::list_parts(&ctx, upload_id).await,
        Endpoint::Snapshot => media::snapshot(&ctx, parts.method == http::Method::HEAD).await,
        Endpoint::VideoInfo => media::video_info(&ctx, parts.method == http::Method::HEAD).await,
        Endpoint::GetBucketCors => cors::get(&ctx),
        Endpoint::PutBucketCors => cors::put(&ctx, body()).await,
        Endpoint::DeleteBucketCors => cors::delete(&ctx).await,
        Endpoint::Preflight => cors::preflight(&state.cors.get(&bucket.name), &parts.headers),
        Endpoint::Ci(call) => ci::handle(&ctx, call, &parts.method, body()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api3_request(action: &str) -> http::request::Parts {
        http::Request::post("/")
            .header("x-tc-action", action)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn operation_labels_come_from_a_fixed_set() {
        assert_eq!(operation(&Endpoint::GetObject), "GetObject");
        assert_eq!(operation(&Endpoint::PutObject), "PutObject");
        assert_eq!(operation(&Endpoint::Snapshot), "Snapshot");
        assert_eq!(operation(&Endpoint::VideoInfo), "VideoInfo");
        assert_eq!(
            operation(&Endpoint::UploadPart {
                upload_id: "u".into(),
                part_number: 1
            }),
            "UploadPart"
        );
        assert_eq!(
            api3_operation(&api3_request("ProcessMedia")),
            "ProcessMedia"
        );
        assert_eq!(
            api3_operation(&api3_request("DescribeImageSpriteTemplates")),
            "DescribeImageSpriteTemplates"
        );
        // Whatever a client sends, the label stays in the set.
        assert_eq!(
            api3_operation(&api3_request("DeleteEverything")),
            "Api3Other"
        );
        assert_eq!(api3_operation(&api3_request(&"x".repeat(300))), "Api3Other");
    }

    #[test]
    fn ci_calls_are_named_by_resource() {
        let buckets = ["b-1250000000".to_owned()];
        let addressing = Addressing {
            domain: "myqcloud.com",
            default_bucket: "b-1250000000",
            buckets: &buckets,
        };
        let ci = |method: http::Method, path: &str| {
            let route = route::route(
                addressing,
                &method,
                Some("b-1250000000.ci.ap-guangzhou.myqcloud.com"),
                path,
                None,
                &HeaderMap::new(),
            )
            .unwrap();
            operation(&route.endpoint)
        };
        assert_eq!(ci(http::Method::POST, "/jobs"), "CiMediaJobs");
        assert_eq!(ci(http::Method::GET, "/jobs/j123"), "CiMediaJobs");
        assert_eq!(ci(http::Method::POST, "/template"), "CiMediaTemplates");
        assert_eq!(ci(http::Method::GET, "/nothing-served-here"), "CiOther");
    }

    #[test]
    fn every_template_action_is_named() {
        for kind in crate::jobs::templates::Kind::ALL {
            let name = kind.name();
            for action in [
                format!("Create{name}"),
                format!("Describe{name}s"),
                format!("Modify{name}"),
                format!("Delete{name}"),
            ] {
                assert!(vod::ACTIONS.contains(&action.as_str()), "{action}");
            }
        }
    }
}
