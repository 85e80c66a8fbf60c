//! The demo page (`/.framegate/demo/`, only with `[demo] enabled` or
//! `serve --demo`): the default bucket's videos with pre-signed snapshot
//! thumbnails, a Plyr player on a pre-signed video URL, and sprite previews
//! above its progress bar from the newest sprite job's WebVTT.
//!
//! The page is a demo: anyone who reaches it gets URLs signed with the
//! first credential (valid an hour). Its scripts and styles are Plyr's, served
//! from the npm package under `demo.assets_dir` (`npm ci` in `web/`).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt as _;
use http::header::{self, HeaderValue};
use http::StatusCode;

use super::AppState;
use crate::config::CredentialConfig;
use crate::error::{ApiError, ErrorCode};
use crate::presign::{self, PresignRequest, Style};
use crate::proto::query::Query;
use crate::server::body::{self, Response};
use crate::storage::ListRequest;

/// Where the demo lives; `.framegate/` keys are reserved, so no object
/// can be shadowed.
pub const PREFIX: &str = "/.framegate/demo/";
/// Lifetime of the URLs the page carries.
const URL_LIFETIME: Duration = Duration::from_secs(3600);
/// Extensions browsers play.
const PLAYABLE: [&str; 4] = [".mp4", ".m4v", ".webm", ".mov"];
/// Files the page may load from the npm packages.
const ASSETS: [(&str, &str); 3] = [
    ("plyr/dist/plyr.min.js", "text/javascript"),
    ("plyr/dist/plyr.css", "text/css"),
    ("plyr/dist/plyr.svg", "image/svg+xml"),
];

/// Serves a request under [`PREFIX`].
pub async fn handle(
    state: &AppState,
    path: &str,
    query: Option<&str>,
    host: &str,
) -> Result<Response, ApiError> {
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    let query = Query::parse(query)?;
    let endpoint = format!("http://{host}");
    match rest {
        "" => page(state, &endpoint, query.get("v")).await,
        "previews.vtt" => previews(state, &endpoint, query.get("v").unwrap_or_default()).await,
        _ => match rest.strip_prefix("assets/") {
            Some(asset) => asset_file(state, asset).await,
            None => Err(not_found()),
        },
    }
}

fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NoSuchKey, "There is no such demo resource.")
}

fn credential(state: &AppState) -> Result<&CredentialConfig, ApiError> {
    state
        .config
        .credentials
        .first()
        .ok_or_else(|| ApiError::internal("the demo needs a credential to sign URLs"))
}

/// A GET URL of `bucket/key` (with `params`) signed for [`URL_LIFETIME`].
fn signed(
    state: &AppState,
    endpoint: &str,
    bucket: &str,
    key: &str,
    params: &[(String, String)],
) -> Result<String, ApiError> {
    let request = PresignRequest {
        endpoint,
        method: "GET",
        bucket: Some(bucket),
        key,
        params,
        expires_in: URL_LIFETIME,
        region: &state.config.region,
    };
    presign::presign(credential(state)?, &request, Style::Cos, SystemTime::now())
        .map_err(ApiError::internal)
}

/// HTML-escapes text for element content and quoted attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

async fn page(
    state: &AppState,
    endpoint: &str,
    chosen: Option<&str>,
) -> Result<Response, ApiError> {
    let bucket = state
        .buckets
        .get(&state.config.default_bucket)
        .expect("validated default bucket");
    let listing = bucket
        .list(&ListRequest {
            max_keys: 1000,
            ..ListRequest::default()
        })
        .await?;
    let videos: Vec<&str> = listing
        .entries
        .iter()
        .map(|e| e.key.as_str())
        .filter(|k| {
            let outputs = &state.jobs.config().output_prefix;
            outputs.is_empty() || !k.starts_with(outputs.as_str())
        })
        .filter(|k| {
            PLAYABLE
                .iter()
                .any(|ext| k.to_ascii_lowercase().ends_with(ext))
        })
        .take(50)
        .collect();
    let current = chosen
        .filter(|c| videos.contains(c))
        .or_else(|| videos.first().copied());
    let mut html = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <title>framegate demo</title>\n\
         <link rel=\"stylesheet\" href=\"/.framegate/demo/assets/plyr/dist/plyr.css\">\n\
         <style>body{font-family:sans-serif;margin:2rem;max-width:1100px;color:#222}\
         #videos{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}\
         figure{margin:0;width:320px}figure img{width:320px;height:180px;object-fit:contain;\
         display:block;background:#111}figcaption{font-size:.85rem;\
         padding:.3rem 0;word-break:break-all}#player-section{margin-top:2rem;max-width:800px}\
         </style></head><body>\n<h1>framegate</h1>\n\
         <p>Thumbnails are <code>?ci-process=snapshot</code> pictures behind pre-signed URLs; \
         the player previews come from an image-sprite job's WebVTT.</p>\n<section id=\"videos\">\n",
    );
    for key in &videos {
        let params = [
            ("ci-process".to_owned(), "snapshot".to_owned()),
            ("time".to_owned(), "1".to_owned()),
            ("width".to_owned(), "320".to_owned()),
        ];
        let src = signed(state, endpoint, &bucket.name, key, &params)?;
        let _ = writeln!(
            html,
            "<figure><a href=\"?v={k}\"><img class=\"thumb\" alt=\"{k}\" data-key=\"{k}\" src=\"{s}\"></a>\
             <figcaption>{k}</figcaption></figure>",
            k = esc(key),
            s = esc(&src)
        );
    }
    html.push_str("</section>\n");
    if let Some(key) = current {
        let src = signed(state, endpoint, &bucket.name, key, &[])?;
        let vtt = format!(
            "/.framegate/demo/previews.vtt?v={}",
            crate::proto::sign::uri_encode(key.as_bytes(), true)
        );
        let _ = write!(
            html,
            "<section id=\"player-section\"><h2>{k}</h2>\n\
             <video id=\"player\" playsinline controls preload=\"metadata\" src=\"{s}\"></video>\n\
             </section>\n<script src=\"/.framegate/demo/assets/plyr/dist/plyr.min.js\"></script>\n\
             <script>window.demo = {{ key: \"{k}\", vtt: \"{v}\" }};\n\
             window.player = new Plyr('#player', {{ iconUrl: '/.framegate/demo/assets/plyr/dist/plyr.svg', \
             blankVideo: '', previewThumbnails: {{ enabled: true, src: window.demo.vtt }} }});\n\
             </script>\n",
            k = esc(key),
            s = esc(&src),
            v = esc(&vtt)
        );
    } else {
        html.push_str("<p>No videos in the bucket yet.</p>\n");
    }
    html.push_str("</body></html>\n");
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, html.len())
        .body(body::full(html))
        .expect("valid response"))
}

/// The newest sprite job's WebVTT for `key`, its cues pointing at
/// pre-signed sheet URLs.
async fn previews(state: &AppState, endpoint: &str, key: &str) -> Result<Response, ApiError> {
    let bucket_name = &state.config.default_bucket;
    let file_id = crate::jobs::file_id(bucket_name, key);
    let Some((bucket_name, vtt_key)) = state
        .jobs
        .latest_sprite_vtt(&file_id)
        .await
        .map_err(ApiError::internal)?
    else {
        return Err(not_found());
    };
    let bucket = state.buckets.get(&bucket_name).ok_or_else(not_found)?;
    let info = bucket.head(&vtt_key).await?;
    let mut stream = bucket.read(&vtt_key, 0..info.size).await?;
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend_from_slice(&chunk.map_err(ApiError::internal)?);
    }
    let text = String::from_utf8_lossy(&text);
    let dir = vtt_key.rsplit_once('/').map_or("", |(d, _)| d);
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once("#xywh=") {
            Some((file, rect)) if !file.contains("://") => {
                let sheet = format!("{dir}/{file}");
                let url = signed(state, endpoint, &bucket_name, &sheet, &[])?;
                let _ = writeln!(out, "{url}#xywh={rect}");
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/vtt; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::CONTENT_LENGTH, out.len())
        .body(body::full(out))
        .expect("valid response"))
}

/// A whitelisted file from the npm packages.
async fn asset_file(state: &AppState, asset: &str) -> Result<Response, ApiError> {
    let Some((_, content_type)) = ASSETS.iter().find(|(name, _)| *name == asset) else {
        return Err(not_found());
    };
    let path = state.config.demo.assets_dir.join(asset);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        tracing::warn!(path = %path.display(), error = %e, "demo asset missing (run npm ci in web/)");
        not_found()
    })?;
    Ok(http::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, HeaderValue::from_static(content_type))
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::CONTENT_LENGTH, bytes.len())
        .body(body::full(Bytes::from(bytes)))
        .expect("valid response"))
}
