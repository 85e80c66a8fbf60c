//! VOD's upload flow: `ApplyUpload` opens an upload session (where to put
//! the media and its cover, which procedure to start, until when), the
//! client writes the objects with the session's temporary credential
//! (`proto::sign::temporary`), and `CommitUpload` registers the media and starts
//! the procedure.
//!
//! Durability: a commit is one store write (`state = committed` and, when
//! the session names a procedure, `start_pending`) made before anything is
//! answered; the procedure is then queued with the SessionId
//! `vod-upload-<session id>`, which the task table keeps unique, and the
//! flag cleared. Queuing again — a repeated CommitUpload, or any gateway's
//! sweeper finding the flag still set after a crash (every sweep, the first
//! one at start-up) — finds that task instead of making a second one: the
//! procedure starts exactly once.
//!
//! Expiry: an open session past its expiry plus `jobs.upload_grace_secs` is
//! marked abandoned (it can no longer be committed), then its objects and
//! open multipart uploads are deleted and its row removed. Committed rows
//! are kept for three days (a repeated CommitUpload answers the same
//! FileId), then removed; their objects stay.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::params::{check_len, now_ms};
use super::store::{decode_body, UploadSessionRow};
use super::task::{MediaRecord, MediaRef, TaskRequest, UrlMaker as _};
use super::worker::JobHost;
use super::{file_id, JobError, Jobs};
use crate::proto::sign::temporary::{IssuerKey, UploadGrant};
use crate::storage::{Buckets, StorageError};

/// Media types `ApplyUpload` accepts (VOD's video and audio upload
/// formats), lowercase.
pub const MEDIA_TYPES: [&str; 31] = [
    // video
    "mp4", "ts", "flv", "wmv", "asf", "rm", "rmvb", "mpg", "mpeg", "3gp", "mov", "webm", "mkv",
    "avi", "m4v", "vob", "mts", "m2ts", "mxf", "f4v", "m3u8", // audio
    "mp3", "m4a", "flac", "ogg", "wav", "amr", "aac", "wma", "opus", "ac3",
];
/// Cover types `ApplyUpload` accepts, lowercase.
pub const COVER_TYPES: [&str; 6] = ["jpg", "jpeg", "png", "gif", "bmp", "webp"];
/// Longest `MediaName`, in characters.
pub const MAX_MEDIA_NAME_CHARS: usize = 64;
/// Longest `SessionContext`, in characters.
pub const MAX_SESSION_CONTEXT_CHARS: usize = 1000;
/// Longest `SourceContext`, in characters.
pub const MAX_SOURCE_CONTEXT_CHARS: usize = 250;
/// Latest `ExpireTime` accepted, from now.
const MAX_EXPIRE_AHEAD_MS: i64 = 10 * 365 * 24 * 3600 * 1000;
/// How long a committed session's row is kept.
const COMMITTED_RETENTION_MS: i64 = 3 * 24 * 3600 * 1000;
/// The fg_settings entry holding the key of temporary credentials.
const CREDENTIAL_KEY_SETTING: &str = "temporary-credential-key";

/// What `ApplyUpload` asks for (typed by the wire adapter; checked by
/// [`Jobs::apply_upload`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadRequest {
    /// The media's file extension (`mp4`, ...).
    pub media_type: String,
    /// Its name, which becomes the file name in the storage path.
    pub media_name: Option<String>,
    /// The cover's file extension; a cover path is given only with one.
    pub cover_type: Option<String>,
    /// The procedure to start on commit.
    pub procedure: Option<String>,
    /// ISO 8601; the session expires then at the latest.
    pub expire_time: Option<String>,
    /// Passed to the procedure's task.
    pub session_context: Option<String>,
    /// Checked and accepted (no upload event carries it here).
    pub source_context: Option<String>,
}

/// An upload session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadSession {
    /// The `VodSessionKey` that commits it.
    pub session_key: String,
    /// Its public id: the unique segment of its paths.
    pub id: String,
    /// The bucket its objects go to.
    pub bucket: String,
    /// The media's key (no leading `/`).
    pub media_key: String,
    /// The cover's key, when a cover type was given.
    pub cover_key: Option<String>,
    /// The procedure to start on commit.
    pub procedure: Option<String>,
    /// Passed to the procedure's task.
    pub session_context: String,
    /// When the session and its credential expire (Unix ms, whole seconds).
    pub expires_ms: i64,
}

impl UploadSession {
    /// What its temporary credential may do.
    pub fn grant(&self) -> UploadGrant {
        UploadGrant {
            bucket: self.bucket.clone(),
            keys: self.keys().map(str::to_owned).collect(),
            expires_secs: self.expires_ms / 1000,
            session: self.id.clone(),
        }
    }

    /// The media's and the cover's keys.
    fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.media_key.as_str()).chain(self.cover_key.as_deref())
    }

    /// The SessionId of the procedure's task: one task per session.
    fn task_session_id(&self) -> String {
        format!("vod-upload-{}", self.id)
    }
}

/// Where a stored session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    /// Handed out, not committed.
    Open,
    /// Committed: its media is registered.
    Committed,
    /// Expired uncommitted; being swept.
    Abandoned,
}

impl SessionState {
    fn of(row: &UploadSessionRow) -> Self {
        match row.state.as_str() {
            "committed" => Self::Committed,
            "open" => Self::Open,
            _ => Self::Abandoned,
        }
    }
}

/// What `CommitUpload` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedUpload {
    /// The media's FileId.
    pub file_id: String,
    /// Its URL.
    pub media_url: String,
    /// The cover's URL, when a cover was uploaded.
    pub cover_url: Option<String>,
}

/// Random ids of a new session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIds {
    /// The `VodSessionKey`.
    pub session_key: String,
    /// The unique path segment.
    pub id: String,
}

impl SessionIds {
    /// Fresh random ids.
    pub fn random() -> Self {
        Self {
            session_key: hex::encode(rand::random::<[u8; 32]>()),
            id: hex::encode(rand::random::<[u8; 16]>()),
        }
    }
}

/// Where and for how long sessions are opened.
#[derive(Debug, Clone, Copy)]
pub struct SessionPlace<'a> {
    /// The bucket.
    pub bucket: &'a str,
    /// The key prefix (`jobs.upload_prefix`).
    pub prefix: &'a str,
    /// Now (Unix ms).
    pub now_ms: i64,
    /// Longest life of a session (ms).
    pub max_life_ms: i64,
}

impl UploadRequest {
    /// Checks every field against its range and makes the session (the
    /// procedure's existence is checked by the caller).
    pub fn session(
        &self,
        ids: SessionIds,
        place: SessionPlace<'_>,
    ) -> Result<UploadSession, JobError> {
        let media_type = self.media_type.to_ascii_lowercase();
        if !MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(JobError::invalid(
                "MediaType",
                format!(
                    "MediaType {:?} is not a supported video or audio type ({})",
                    self.media_type,
                    MEDIA_TYPES.join(", ")
                ),
            ));
        }
        let cover_type = match &self.cover_type {
            None => None,
            Some(t) if t.is_empty() => None,
            Some(t) => {
                let lower = t.to_ascii_lowercase();
                if !COVER_TYPES.contains(&lower.as_str()) {
                    return Err(JobError::invalid(
                        "CoverType",
                        format!(
                            "CoverType {t:?} is not a supported picture type ({})",
                            COVER_TYPES.join(", ")
                        ),
                    ));
                }
                Some(lower)
            }
        };
        let name = self.media_name.as_deref().unwrap_or_default();
        if name.chars().count() > MAX_MEDIA_NAME_CHARS
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            return Err(JobError::invalid(
                "MediaName",
                format!(
                    "MediaName must be at most {MAX_MEDIA_NAME_CHARS} characters, without '/', \
                     '\\' or control characters"
                ),
            ));
        }
        let session_context = self.session_context.clone().unwrap_or_default();
        check_len(
            "SessionContext",
            &session_context,
            MAX_SESSION_CONTEXT_CHARS,
        )?;
        check_len(
            "SourceContext",
            self.source_context.as_deref().unwrap_or_default(),
            MAX_SOURCE_CONTEXT_CHARS,
        )?;
        let mut expires_ms = place.now_ms + place.max_life_ms;
        if let Some(text) = self.expire_time.as_deref().filter(|t| !t.is_empty()) {
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    JobError::invalid(
                        "ExpireTime",
                        format!("ExpireTime {text:?} is not an ISO 8601 time such as 2030-01-01T00:00:00Z"),
                    )
                })?
                .timestamp_millis();
            if at <= place.now_ms || at > place.now_ms + MAX_EXPIRE_AHEAD_MS {
                return Err(JobError::invalid(
                    "ExpireTime",
                    "ExpireTime must be in the future and within ten years",
                ));
            }
            expires_ms = expires_ms.min(at);
        }
        // Whole seconds: the credential's ExpiredTime is in seconds.
        let expires_ms = expires_ms / 1000 * 1000;
        let directory = format!("{}{}", place.prefix, ids.id);
        let stem = if name.is_empty() { &ids.id } else { name };
        let media_key = format!("{directory}/{stem}.{media_type}");
        crate::proto::route::validate_key(&media_key).map_err(|_| {
            JobError::invalid("MediaName", "MediaName does not make a valid object key")
        })?;
        Ok(UploadSession {
            session_key: ids.session_key,
            cover_key: cover_type.map(|t| format!("{directory}/cover.{t}")),
            id: ids.id,
            bucket: place.bucket.to_owned(),
            media_key,
            procedure: self.procedure.clone().filter(|p| !p.is_empty()),
            session_context,
            expires_ms,
        })
    }
}

fn session_key_error(message: &str) -> JobError {
    JobError::invalid("VodSessionKey", message)
}

/// The session of a row the sweeper found; a damaged one is logged and
/// left alone (it must not stop the others).
fn readable(row: &UploadSessionRow) -> Option<UploadSession> {
    decode_body(&row.body)
        .inspect_err(|err| tracing::error!(error = %err, "an upload session row does not decode"))
        .ok()
}

fn storage_failed(err: StorageError) -> JobError {
    tracing::error!(error = %err, "reading an uploaded object failed");
    JobError::Internal {
        message: "The storage is unavailable; try again.".into(),
    }
}

impl Jobs {
    /// The key of temporary credentials: made by the first gateway on the
    /// job store, read by every other.
    pub async fn temporary_credential_key(&self) -> Result<IssuerKey, JobError> {
        let fresh = hex::encode(rand::random::<[u8; 32]>());
        let stored = self
            .store
            .setting_or_insert(CREDENTIAL_KEY_SETTING, &fresh)
            .await?;
        let secret = hex::decode(stored.trim())
            .ok()
            .filter(|s| s.len() >= 32)
            .ok_or_else(|| JobError::Internal {
                message: "the stored temporary-credential key is damaged".into(),
            })?;
        Ok(IssuerKey::new(secret))
    }

    /// `ApplyUpload`: checks the request, records the open session and
    /// returns it.
    pub async fn apply_upload(&self, request: &UploadRequest) -> Result<UploadSession, JobError> {
        let session = request.session(
            SessionIds::random(),
            SessionPlace {
                bucket: &self.bucket,
                prefix: &self.config.upload_prefix,
                now_ms: now_ms(),
                max_life_ms: self.config.upload_session_secs as i64 * 1000,
            },
        )?;
        if let Some(name) = &session.procedure {
            if !self.procedure_exists(name).await? {
                return Err(JobError::invalid(
                    "Procedure",
                    format!("there is no procedure named {name:?}"),
                ));
            }
        }
        let body = serde_json::to_string(&session).expect("session JSON");
        self.store
            .insert_upload_session(&session.session_key, &body, session.expires_ms, now_ms())
            .await?;
        tracing::info!(session = %session.id, key = %session.media_key, procedure = ?session.procedure, "upload session opened");
        Ok(session)
    }

    /// `CommitUpload`: the session's media must be in its bucket. Records
    /// the commit (durably, with the procedure owed), registers the media
    /// and starts the procedure once. Committing again answers the same.
    pub async fn commit_upload(
        &self,
        buckets: &Buckets,
        session_key: &str,
    ) -> Result<CommittedUpload, JobError> {
        let row = self
            .store
            .upload_session(session_key)
            .await?
            .ok_or_else(|| {
                session_key_error("there is no upload session with this VodSessionKey")
            })?;
        let state = SessionState::of(&row);
        let grace_ms = self.config.upload_grace_secs as i64 * 1000;
        if state == SessionState::Abandoned
            || (state == SessionState::Open && now_ms() >= row.expires_ms + grace_ms)
        {
            return Err(session_key_error("the upload session expired"));
        }
        let session: UploadSession = decode_body(&row.body)?;
        let bucket = buckets
            .get(&session.bucket)
            .ok_or_else(|| JobError::Internal {
                message: "the session's bucket is not configured".into(),
            })?;
        let cover_uploaded = match &session.cover_key {
            Some(key) => match bucket.head(key).await {
                Ok(_) => true,
                Err(StorageError::NoSuchKey) => false,
                Err(err) => return Err(storage_failed(err)),
            },
            None => false,
        };
        let pending = match state {
            SessionState::Open => {
                self.record_commit(bucket, &session, cover_uploaded, grace_ms)
                    .await?
            }
            _ => row.start_pending,
        };
        if pending {
            self.start_upload_procedure(&session).await?;
        }
        Ok(CommittedUpload {
            file_id: file_id(&session.bucket, &session.media_key),
            media_url: self.url(&session.bucket, &session.media_key),
            cover_url: session
                .cover_key
                .as_deref()
                .filter(|_| cover_uploaded)
                .map(|key| self.url(&session.bucket, key)),
        })
    }

    /// Commits an open session whose media is in `bucket`: the media
    /// record, then the commit with the procedure owed (one write).
    /// Returns whether the procedure is owed.
    async fn record_commit(
        &self,
        bucket: &crate::storage::Bucket,
        session: &UploadSession,
        cover_uploaded: bool,
        grace_ms: i64,
    ) -> Result<bool, JobError> {
        let session_key = session.session_key.as_str();
        match bucket.head(&session.media_key).await {
            Ok(_) => {}
            Err(StorageError::NoSuchKey) => {
                return Err(JobError::Conflict {
                    message: format!(
                        "nothing was uploaded to the MediaStoragePath /{}",
                        session.media_key
                    ),
                })
            }
            Err(err) => return Err(storage_failed(err)),
        }
        let record = MediaRecord {
            cover_key: session.cover_key.clone().filter(|_| cover_uploaded),
            meta: None,
        };
        let id = file_id(&session.bucket, &session.media_key);
        self.store
            .insert_media(
                &id,
                &session.bucket,
                &session.media_key,
                &serde_json::to_string(&record).expect("record JSON"),
                now_ms(),
            )
            .await?;
        let owed = session.procedure.is_some();
        if self
            .store
            .commit_upload_session(session_key, owed, grace_ms, now_ms())
            .await?
        {
            tracing::info!(session = %session.id, file = %id, "upload committed");
            Ok(owed)
        } else {
            // Committed by a concurrent call, or expired meanwhile.
            let now = self.store.upload_session(session_key).await?;
            match now.as_ref().map(SessionState::of) {
                Some(SessionState::Committed) => Ok(now.is_some_and(|r| r.start_pending)),
                _ => Err(session_key_error("the upload session expired")),
            }
        }
    }

    /// Queues the procedure of a committed session (or finds the task a
    /// previous attempt queued) and clears its pending flag. A procedure
    /// that no longer exists or no longer validates starts nothing; a store
    /// failure leaves the flag for the next attempt.
    async fn start_upload_procedure(&self, session: &UploadSession) -> Result<(), JobError> {
        let Some(name) = &session.procedure else {
            return Ok(self
                .store
                .upload_session_started(&session.session_key)
                .await?);
        };
        let started = async {
            let id = file_id(&session.bucket, &session.media_key);
            // Recorded before the commit; again for a commit resumed from a
            // store that lacks it (kept as it is otherwise).
            self.store
                .ensure_media(&id, &session.bucket, &session.media_key, now_ms())
                .await?;
            let request = TaskRequest {
                session_id: session.task_session_id(),
                session_context: session.session_context.clone(),
                ..TaskRequest::new(MediaRef::FileId(id), Vec::new())
            };
            self.submit_procedure(name, request).await
        }
        .await;
        match started {
            Ok(task_id) => {
                tracing::info!(session = %session.id, procedure = %name, task = %task_id, "committed upload started its procedure")
            }
            Err(JobError::Store(err)) => return Err(JobError::Store(err)),
            Err(err) => {
                tracing::warn!(session = %session.id, procedure = %name, error = %err, "committed upload could not start its procedure")
            }
        }
        Ok(self
            .store
            .upload_session_started(&session.session_key)
            .await?)
    }

    /// Starts the procedures of commits that stopped before queuing them
    /// (this node's or a dead node's: queuing is idempotent). Returns how
    /// many sessions were resumed.
    pub async fn resume_upload_commits(&self) -> Result<usize, JobError> {
        let rows = self.store.pending_upload_starts(now_ms()).await?;
        for row in &rows {
            let Some(session) = readable(row) else {
                continue;
            };
            tracing::info!(session = %session.id, "resuming the procedure of a committed upload");
            self.start_upload_procedure(&session).await?;
        }
        Ok(rows.len())
    }

    /// Deletes what uncommitted, expired sessions left (their objects and
    /// open multipart uploads) and forgets old committed sessions.
    pub async fn sweep_upload_sessions(&self, buckets: &Buckets) -> Result<(), JobError> {
        let now = now_ms();
        let grace_ms = self.config.upload_grace_secs as i64 * 1000;
        for row in self.store.abandon_upload_sessions(now - grace_ms).await? {
            let Some(session) = readable(&row) else {
                continue;
            };
            if let Some(bucket) = buckets.get(&session.bucket) {
                let cleaned = async {
                    for key in session.keys() {
                        for upload in bucket.list_uploads(key).await? {
                            if upload.key == key {
                                bucket.abort_upload(key, &upload.upload_id).await?;
                            }
                        }
                        bucket.delete(key).await?;
                    }
                    Ok::<_, StorageError>(())
                }
                .await;
                if let Err(err) = cleaned {
                    tracing::warn!(session = %session.id, error = %err, "cleaning up an expired upload failed; retrying at the next sweep");
                    continue;
                }
            }
            self.store.delete_upload_session(&row.session_key).await?;
            tracing::info!(session = %session.id, key = %session.media_key, "expired upload session cleaned up");
        }
        let forgotten = self
            .store
            .forget_committed_uploads(now - COMMITTED_RETENTION_MS)
            .await?;
        if forgotten > 0 {
            tracing::debug!(sessions = forgotten, "forgot old committed upload sessions");
        }
        Ok(())
    }
}

/// Starts the upload sweeper: at once (resuming interrupted commits), then
/// every `jobs.upload_sweep_secs`, until the gateway stops.
pub fn start<H: JobHost>(host: &Arc<H>) {
    let host = host.clone();
    tokio::spawn(async move {
        let jobs = host.jobs();
        let every = Duration::from_secs(jobs.config.upload_sweep_secs);
        while !jobs.stopping.load(Ordering::SeqCst) {
            if let Err(err) = jobs.resume_upload_commits().await {
                tracing::warn!(error = %err, "resuming committed uploads failed");
            }
            if let Err(err) = jobs.sweep_upload_sessions(host.buckets()).await {
                tracing::warn!(error = %err, "sweeping upload sessions failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = jobs.stopped.notified() => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn ids() -> SessionIds {
        SessionIds {
            session_key: "k".repeat(64),
            id: "0123456789abcdef0123456789abcdef".into(),
        }
    }

    fn place() -> SessionPlace<'static> {
        SessionPlace {
            bucket: "media-1250000000",
            prefix: "vod-uploads/",
            now_ms: NOW,
            max_life_ms: 3_600_000,
        }
    }

    fn request() -> UploadRequest {
        UploadRequest {
            media_type: "MP4".into(),
            ..UploadRequest::default()
        }
    }

    fn field_of(err: JobError) -> String {
        match err {
            JobError::InvalidParameterValue { field, .. } => field,
            other => panic!("not a parameter error: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_store_commits_a_session_once_and_abandons_expired_ones() {
        use super::super::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("jobs.sqlite3")))
            .await
            .unwrap();
        for key in ["a", "b", "c"] {
            store
                .insert_upload_session(key, "{}", NOW + 1_000, NOW)
                .await
                .unwrap();
        }
        assert!(store
            .commit_upload_session("a", true, 500, NOW)
            .await
            .unwrap());
        assert!(!store
            .commit_upload_session("a", true, 500, NOW)
            .await
            .unwrap());
        // Past its expiry and grace, a session cannot be committed.
        assert!(!store
            .commit_upload_session("b", false, 500, NOW + 1_500)
            .await
            .unwrap());
        let pending = store.pending_upload_starts(NOW + 1).await.unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|r| r.session_key.as_str())
                .collect::<Vec<_>>(),
            ["a"]
        );
        store.upload_session_started("a").await.unwrap();
        assert!(store
            .pending_upload_starts(NOW + 1)
            .await
            .unwrap()
            .is_empty());
        // Expired before NOW + 1500: b and c, not the committed a.
        let abandoned = store.abandon_upload_sessions(NOW + 1_500).await.unwrap();
        let mut keys: Vec<_> = abandoned.iter().map(|r| r.session_key.clone()).collect();
        keys.sort();
        assert_eq!(keys, ["b", "c"]);
        assert!(!store
            .commit_upload_session("c", false, 5_000, NOW + 1_500)
            .await
            .unwrap());
        store.delete_upload_session("b").await.unwrap();
        assert_eq!(store.upload_session("b").await.unwrap(), None);
        assert_eq!(store.forget_committed_uploads(NOW + 1).await.unwrap(), 1);
        assert_eq!(store.upload_session("a").await.unwrap(), None);
        // The credential key: the first value written stays.
        assert_eq!(store.setting_or_insert("k", "one").await.unwrap(), "one");
        assert_eq!(store.setting_or_insert("k", "two").await.unwrap(), "one");
    }

    #[test]
    fn a_session_has_unique_paths_under_the_prefix() {
        let s = UploadRequest {
            media_name: Some("holiday clip".into()),
            cover_type: Some("JPG".into()),
            procedure: Some("thumbs".into()),
            ..request()
        }
        .session(ids(), place())
        .unwrap();
        assert_eq!(
            s.media_key,
            "vod-uploads/0123456789abcdef0123456789abcdef/holiday clip.mp4"
        );
        assert_eq!(
            s.cover_key.as_deref(),
            Some("vod-uploads/0123456789abcdef0123456789abcdef/cover.jpg")
        );
        assert_eq!(s.expires_ms, NOW + 3_600_000);
        assert_eq!(s.procedure.as_deref(), Some("thumbs"));
        let grant = s.grant();
        assert_eq!(grant.keys, vec![s.media_key.clone(), s.cover_key.unwrap()]);
        assert_eq!(grant.expires_secs * 1000, s.expires_ms);
        // Without a name or cover: the id names the file, no cover path.
        let plain = request().session(ids(), place()).unwrap();
        assert!(plain
            .media_key
            .ends_with("/0123456789abcdef0123456789abcdef.mp4"));
        assert_eq!(plain.cover_key, None);
    }

    #[test]
    fn expire_time_shortens_the_session_and_must_be_in_range() {
        let at = |text: &str| {
            UploadRequest {
                expire_time: Some(text.into()),
                ..request()
            }
            .session(ids(), place())
        };
        let soon = chrono::DateTime::from_timestamp_millis(NOW + 90_500)
            .unwrap()
            .to_rfc3339();
        assert_eq!(at(&soon).unwrap().expires_ms, NOW + 90_000);
        let later = chrono::DateTime::from_timestamp_millis(NOW + 86_400_000)
            .unwrap()
            .to_rfc3339();
        assert_eq!(at(&later).unwrap().expires_ms, NOW + 3_600_000);
        for bad in ["2020-01-01T00:00:00Z", "tomorrow", "2200-01-01T00:00:00Z"] {
            assert_eq!(field_of(at(bad).unwrap_err()), "ExpireTime", "{bad}");
        }
    }

    #[test]
    fn every_parameter_is_checked_and_named() {
        let cases = [
            (
                UploadRequest {
                    media_type: "exe".into(),
                    ..request()
                },
                "MediaType",
            ),
            (
                UploadRequest {
                    cover_type: Some("svg".into()),
                    ..request()
                },
                "CoverType",
            ),
            (
                UploadRequest {
                    media_name: Some("a/b".into()),
                    ..request()
                },
                "MediaName",
            ),
            (
                UploadRequest {
                    media_name: Some("x".repeat(65)),
                    ..request()
                },
                "MediaName",
            ),
            (
                UploadRequest {
                    session_context: Some("x".repeat(1001)),
                    ..request()
                },
                "SessionContext",
            ),
            (
                UploadRequest {
                    source_context: Some("x".repeat(251)),
                    ..request()
                },
                "SourceContext",
            ),
        ];
        for (request, field) in cases {
            assert_eq!(
                field_of(request.session(ids(), place()).unwrap_err()),
                field
            );
        }
        assert!(UploadRequest {
            media_name: Some("x".repeat(64)),
            session_context: Some("x".repeat(1000)),
            ..request()
        }
        .session(ids(), place())
        .is_ok());
    }
}
