//! `?ci-process=snapshot` and `?ci-process=videoinfo`: the media pipeline
//! over ranged reads of the backing store, on the bounded decode pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::StatusCode;
use sha1::{Digest as _, Sha1};

use super::document::{media_info_nodes, to_json, write_xml, Node};
use super::Ctx;
use crate::error::ApiError;
use crate::media::{self, Limits, SnapshotParams};
use crate::memory_cache::{CachedImage, SnapshotCache, Turn};
use crate::metrics::{self, SnapshotSource};
use crate::proto::conditional::etag_list_matches;
use crate::proto::snapshot;
use crate::proto::xml::XmlWriter;
use crate::server::body::{self, Response};
use crate::storage::{ObjectInfo, ReadStats};

/// Videos kept open between snapshots, keyed by bucket, key and ETag, with
/// the store counters of their reader.
pub type OpenedCache = media::OpenCache<(media::OpenedVideo, Arc<ReadStats>)>;

/// Videos with their decoders parked where exact snapshots left them, keyed
/// as [`OpenedCache`], with the store counters of their reader.
pub type ParkedCache = media::ParkedVideos<(media::Video, Arc<ReadStats>)>;

/// The parking bounds `media.parked_*` configure.
pub fn parking_bounds(config: &crate::config::MediaConfig) -> media::ParkingBounds {
    media::ParkingBounds {
        count: config.parked_decoders,
        bytes: config.parked_decoder_bytes,
        idle: Duration::from_secs(config.parked_idle_secs),
    }
}

/// Closes parked decoders left idle, every half idle period, off the
/// runtime's threads (closing joins decoder threads), for as long as
/// `parked` is in use.
pub fn expire_parked_decoders(parked: &Arc<ParkedCache>) {
    if !parked.is_enabled() {
        return;
    }
    let parked = Arc::downgrade(parked);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(parked) = parked.upgrade() else {
                return;
            };
            if !parked.is_empty() {
                let _ = tokio::task::spawn_blocking(move || parked.expire_idle()).await;
            }
        }
    });
}

fn key<'a>(ctx: &Ctx<'a>) -> &'a str {
    ctx.route.key.as_deref().unwrap_or_default()
}

/// Runs `job` on the decode pool under the configured limits, its deadline
/// counted from when it starts (not from when it was queued) and its cancel
/// flag raised if the client goes away.
async fn decode<T, F>(ctx: &Ctx<'_>, job: F) -> Result<T, ApiError>
where
    F: FnOnce(&Limits) -> Result<T, media::MediaError> + Send + 'static,
    T: Send + 'static,
{
    decode_leaving(ctx, move |limits| (job(limits), ())).await
}

/// As [`decode`], for a job that also leaves something to drop after the
/// answer has gone back (see [`crate::pool::DecodePool::run_leaving`]).
async fn decode_leaving<T, L, F>(ctx: &Ctx<'_>, job: F) -> Result<T, ApiError>
where
    F: FnOnce(&Limits) -> (Result<T, media::MediaError>, L) + Send + 'static,
    T: Send + 'static,
{
    let media = &ctx.state.config.media;
    let timeout = Duration::from_secs(media.timeout_secs);
    let mut limits = Limits::with_timeout(timeout);
    limits.max_source_pixels = media.max_source_pixels;
    limits.jpeg_quality = media.jpeg_quality;
    let result = ctx
        .state
        .pool
        .run_leaving(move |cancel| {
            let limits = Limits {
                deadline: Instant::now() + timeout,
                cancel,
                ..limits
            };
            job(&limits)
        })
        .await?;
    Ok(result?)
}

/// `GET|HEAD /<key>?ci-process=snapshot`.
pub async fn snapshot(ctx: &Ctx<'_>, head_only: bool) -> Result<Response, ApiError> {
    let params = snapshot::parse(&ctx.route.query)?;
    let info = ctx.bucket.head(key(ctx)).await?;
    let etag = {
        let mut hasher = Sha1::new();
        hasher.update(info.etag.as_bytes());
        hasher.update(b"\n");
        hasher.update(snapshot::normalized(&params).as_bytes());
        format!("\"{}\"", hex::encode(hasher.finalize()))
    };
    let cache_control = HeaderValue::from_str(&ctx.state.config.media.cache_control)
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"));
    let if_none_match = ctx
        .headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|list| etag_list_matches(list, &etag)) {
        return Ok(http::Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &etag)
            .header(header::CACHE_CONTROL, cache_control)
            .body(body::empty())
            .expect("valid response"));
    }
    let cache_key = SnapshotCache::key(
        &ctx.bucket.name,
        key(ctx),
        &info.etag,
        &snapshot::normalized(&params),
    );
    let (image, source) = match ctx.state.snapshots.get(&cache_key) {
        Some(image) => (image, SnapshotSource::Cached),
        None => match ctx.state.in_flight.join(&cache_key) {
            Turn::Lead(leader) => match ctx.state.snapshots.get(&cache_key) {
                // Another leader finished between the lookup and the join.
                Some(image) => (image, SnapshotSource::Cached),
                None => {
                    let image = decode_snapshot(ctx, key(ctx), &info, params).await?;
                    // Cached before the followers are released, so a request
                    // arriving now finds either the flight or the picture.
                    ctx.state.snapshots.put(cache_key, image.clone());
                    leader.finish(&image);
                    (image, SnapshotSource::Decoded)
                }
            },
            Turn::Follow(follower) => match follower.wait().await {
                Some(image) => (image, SnapshotSource::Coalesced),
                None => (
                    decode_snapshot(ctx, key(ctx), &info, params).await?,
                    SnapshotSource::Decoded,
                ),
            },
        },
    };
    metrics::snapshot_served(source);
    let cache = match source {
        SnapshotSource::Cached => "hit",
        SnapshotSource::Coalesced => "shared",
        SnapshotSource::Decoded => "miss",
    };
    let builder = http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, image.content_type)
        .header(header::CONTENT_LENGTH, image.bytes.len())
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache_control)
        .header(
            header::LAST_MODIFIED,
            httpdate::fmt_http_date(info.last_modified),
        )
        .header(
            "x-framegate-frame-time",
            format!("{:.6}", image.pts_seconds),
        )
        .header("x-framegate-cache", cache);
    let body = if head_only {
        body::empty()
    } else {
        body::full(image.bytes)
    };
    Ok(builder.body(body).expect("valid response"))
}

/// How a snapshot found its video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reuse {
    /// Opened afresh (header and index read from the store).
    Opened,
    /// The opened container of an earlier request.
    Container,
    /// A parked decoder, which seeks.
    Decoder,
    /// A parked decoder continuing from where it stopped.
    Continued,
}

impl Reuse {
    fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Container => "container",
            Self::Decoder => "decoder",
            Self::Continued => "continued",
        }
    }
}

/// Decodes and encodes one snapshot on the pool, logging what it took from
/// the store. An exact snapshot takes the parked decoder of this object
/// version that can continue to its time (else any parked one, else the
/// opened container of a recent request, else opens the object) and parks
/// its decoder where it stopped afterwards; a keyframe snapshot takes an
/// opened container (or a parked one's) and leaves its container in
/// [`OpenedCache`].
pub(super) async fn decode_snapshot(
    ctx: &Ctx<'_>,
    key: &str,
    info: &ObjectInfo,
    params: SnapshotParams,
) -> Result<CachedImage, ApiError> {
    let opened_key = format!("{}\n{}\n{}", ctx.bucket.name, key, info.etag);
    let reader = ctx
        .bucket
        .reader(key, info.size, tokio::runtime::Handle::current());
    let opened = Arc::clone(&ctx.state.opened);
    let parked = Arc::clone(&ctx.state.parked);
    let started = Instant::now();
    let (image, reuse, bytes, requests, cut) = decode_leaving(ctx, move |limits| {
        let threads = params.mode.decode_threads();
        let limits = Limits {
            decode_threads: threads,
            conceal_errors: params.mode == media::SeekMode::Keyframe,
            ..limits.clone()
        };
        let parking = params.mode == media::SeekMode::ExactFrame && parked.is_enabled();
        let mut decoder = None;
        // Decode time on the worker (the queue wait is not in it).
        let began = Instant::now();
        let attempt = || {
            // An opened container of a recent request, else the object
            // opened afresh.
            let container = |limits: &Limits| match opened.take(&opened_key) {
                Some((container, stats)) => Ok::<_, media::MediaError>((
                    container.into_video(limits)?,
                    stats,
                    Reuse::Container,
                )),
                None => {
                    let stats = reader.stats();
                    let container = media::OpenedVideo::open(Box::new(reader), limits)?;
                    Ok((container.into_video(limits)?, stats, Reuse::Opened))
                }
            };
            let (mut video, stats, reuse) = match params.mode {
                media::SeekMode::ExactFrame => {
                    let taken = parked.take(&opened_key, |(video, _)| {
                        video
                            .continues_to(params.time)
                            .then(|| video.position_seconds())
                            .flatten()
                    });
                    match taken {
                        Some((video, stats)) => {
                            video.rearm(&limits);
                            let reuse = if video.continues_to(params.time) {
                                Reuse::Continued
                            } else {
                                Reuse::Decoder
                            };
                            (video, stats, reuse)
                        }
                        None => container(&limits)?,
                    }
                }
                // A keyframe decoder is set up differently (one thread,
                // error concealment): a parked video lends its container.
                media::SeekMode::Keyframe => match opened.take(&opened_key) {
                    Some((container, stats)) => {
                        (container.into_video(&limits)?, stats, Reuse::Container)
                    }
                    None => match parked.take(&opened_key, |_| None) {
                        Some((video, stats)) => {
                            let (container, closing) = video.into_parts();
                            decoder = Some(closing);
                            (container.into_video(&limits)?, stats, Reuse::Container)
                        }
                        None => container(&limits)?,
                    },
                },
            };
            metrics::opened_container(reuse != Reuse::Opened);
            let before = match reuse {
                Reuse::Opened => (0, 0),
                _ => (stats.bytes(), stats.requests()),
            };
            if parking {
                video.set_exact_runs(media::ExactRuns::Resumable);
            }
            let image = media::snapshot_of(&mut video, &params, &limits)?;
            metrics::snapshot_decoded(params.mode.as_str(), began.elapsed());
            let cut = video.pictures_cut();
            let taken = (stats.bytes() - before.0, stats.requests() - before.1);
            if parking {
                let bytes = video.resident_bytes(threads);
                parked.put(opened_key, (video, stats), bytes);
            } else {
                let (container, closing) = video.into_parts();
                opened.put(opened_key, (container, stats));
                // Closed after the answer has gone.
                decoder = Some(closing);
            }
            Ok((image, reuse, taken.0, taken.1, cut))
        };
        (attempt(), decoder)
    })
    .await?;
    tracing::info!(
        store_bytes = bytes,
        store_requests = requests,
        reopened = reuse == Reuse::Opened,
        reuse = %reuse.as_str(),
        pictures_cut = cut,
        frame_pts = image.pts_seconds,
        width = image.width,
        height = image.height,
        decode_ms = started.elapsed().as_secs_f64() * 1e3,
        "snapshot"
    );
    Ok(CachedImage {
        bytes: image.bytes.into(),
        content_type: image.content_type,
        pts_seconds: image.pts_seconds,
    })
}

/// Describes `key` of the addressed bucket (COS's GetMediaInfo) on the
/// decode pool.
pub(super) async fn describe(
    ctx: &Ctx<'_>,
    key: &str,
) -> Result<media::MediaDescription, ApiError> {
    let info = ctx.bucket.head(key).await?;
    let reader = ctx
        .bucket
        .reader(key, info.size, tokio::runtime::Handle::current());
    decode(ctx, move |limits| media::describe(Box::new(reader), limits)).await
}

/// COS's GetMediaInfo document, as XML or JSON: its media type and text.
pub(super) fn media_info_document(
    info: &media::MediaDescription,
    json: bool,
) -> (&'static str, String) {
    let nodes = vec![Node::branch("MediaInfo", media_info_nodes(info))];
    if json {
        ("application/json", to_json(&nodes).to_string())
    } else {
        let mut doc = XmlWriter::new("Response");
        write_xml(&mut doc, &nodes);
        ("application/xml", doc.finish())
    }
}

/// `GET|HEAD /<key>?ci-process=videoinfo`: media information as COS-style XML,
/// or JSON with `format=json` or `Accept: application/json`.
pub async fn video_info(ctx: &Ctx<'_>, head_only: bool) -> Result<Response, ApiError> {
    let json = ctx.route.query.get("format") == Some("json")
        || ctx
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/json"));
    let info = describe(ctx, key(ctx)).await?;
    let (content_type, text) = media_info_document(&info, json);
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, text.len())
        .body(if head_only {
            body::empty()
        } else {
            body::full(text)
        })
        .expect("valid response"))
}
