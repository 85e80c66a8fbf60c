//! VOD's `ApplyUpload` and `CommitUpload` on the API 3.0 endpoint: their
//! JSON (PascalCase, as VOD) ↔ the typed core in `jobs::upload_session`.
//! The temporary credential is issued here, by `auth`, from the session's
//! grant.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use crate::error::Api3Error;
use crate::jobs::upload_session::UploadRequest;
use crate::jobs::JobError;

/// `ApplyUpload`'s parameters. `StorageRegion`, `ClassId`, `ExtInfo` and
/// `SubAppId` are accepted and ignored (one region, no categories, one
/// application).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ApplyUploadRequest {
    media_type: Option<String>,
    media_name: Option<String>,
    cover_type: Option<String>,
    procedure: Option<String>,
    expire_time: Option<String>,
    session_context: Option<String>,
    source_context: Option<String>,
}

/// `ApplyUpload`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApplyUploadResponse {
    storage_bucket: String,
    storage_region: String,
    vod_session_key: String,
    media_storage_path: String,
    cover_storage_path: String,
    temp_certificate: TempCertificate,
}

/// The temporary credential of an upload session.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct TempCertificate {
    secret_id: String,
    secret_key: String,
    token: String,
    /// Unix seconds.
    expired_time: i64,
}

/// `CommitUpload`'s parameters (`SubAppId` is ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct CommitUploadRequest {
    vod_session_key: Option<String>,
}

/// `CommitUpload`'s answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct CommitUploadResponse {
    file_id: String,
    media_url: String,
    cover_url: String,
}

fn answer<T: Serialize>(response: &T) -> Result<Value, Api3Error> {
    Ok(serde_json::to_value(response).expect("response JSON"))
}

fn required(value: Option<String>, field: &str) -> Result<String, Api3Error> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        Api3Error::from(JobError::MissingParameter {
            field: field.to_owned(),
        })
    })
}

/// `ApplyUpload`: opens an upload session and answers where to upload and
/// the temporary credential that may write there.
pub(super) async fn apply_upload(
    state: &AppState,
    request: ApplyUploadRequest,
) -> Result<Value, Api3Error> {
    let request = UploadRequest {
        media_type: required(request.media_type, "MediaType")?,
        media_name: request.media_name,
        cover_type: request.cover_type,
        procedure: request.procedure,
        expire_time: request.expire_time,
        session_context: request.session_context,
        source_context: request.source_context,
    };
    let session = state.jobs.apply_upload(&request).await?;
    let credential = state
        .credentials
        .issue_temporary(&session.grant())
        .ok_or_else(|| {
            Api3Error::new(
                "InternalError",
                "this gateway cannot issue temporary credentials",
            )
        })?;
    answer(&ApplyUploadResponse {
        storage_bucket: session.bucket.clone(),
        storage_region: state.config.region.clone(),
        vod_session_key: session.session_key.clone(),
        media_storage_path: format!("/{}", session.media_key),
        cover_storage_path: session
            .cover_key
            .as_ref()
            .map(|k| format!("/{k}"))
            .unwrap_or_default(),
        temp_certificate: TempCertificate {
            secret_id: credential.secret_id,
            secret_key: credential.secret_key,
            token: credential.token,
            expired_time: credential.expires_secs,
        },
    })
}

/// `CommitUpload`: registers the uploaded media and starts the session's
/// procedure (once).
pub(super) async fn commit_upload(
    state: &AppState,
    request: CommitUploadRequest,
) -> Result<Value, Api3Error> {
    let key = required(request.vod_session_key, "VodSessionKey")?;
    let committed = state.jobs.commit_upload(&state.buckets, &key).await?;
    answer(&CommitUploadResponse {
        file_id: committed.file_id,
        media_url: committed.media_url,
        cover_url: committed.cover_url.unwrap_or_default(),
    })
}
