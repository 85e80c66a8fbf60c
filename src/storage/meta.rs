//! Object metadata: what COS/S3 clients see in headers, kept in a JSON
//! sidecar per object in the bucket's `aux` store.
//!
//! A sidecar records the backing object's own ETag and size at write time;
//! if the object was replaced behind the gateway's back, the sidecar no
//! longer matches and is ignored (the object is then served with the
//! backend's ETag and a content type guessed from its extension), so stale
//! metadata is never served for new bytes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use object_store::{ObjectMeta, ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};

use super::{child, key_to_path, Bucket, StorageError};

/// User metadata (`x-cos-meta-*` / `x-amz-meta-*`), names lowercased and
/// without the prefix.
pub type UserMeta = BTreeMap<String, String>;

/// Everything the gateway knows about an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Length in bytes.
    pub size: u64,
    /// The ETag without quotes: MD5 hex, or `md5-of-part-md5s-N` for
    /// multipart uploads.
    pub etag: String,
    /// `Content-Type`.
    pub content_type: String,
    /// User metadata.
    #[serde(default)]
    pub user_meta: UserMeta,
    /// Stored representation headers: `cache-control`,
    /// `content-disposition`, `content-encoding`, `content-language`,
    /// `expires`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// CRC-64/XZ (COS `x-cos-hash-crc64ecma`) of the whole object.
    pub crc64: Option<u64>,
    /// Milliseconds since the epoch of the last write.
    #[serde(with = "millis")]
    pub last_modified: SystemTime,
    /// The backing store's ETag of the object this sidecar describes.
    #[serde(default)]
    pub backend_etag: Option<String>,
}

impl ObjectInfo {
    /// The ETag as a quoted header value.
    pub fn quoted_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }

    /// What is known of an object without a (valid) sidecar.
    fn from_backend(meta: &ObjectMeta) -> Self {
        let etag = meta
            .e_tag
            .as_deref()
            .map(|t| t.trim_matches('"').to_owned())
            .unwrap_or_else(|| format!("{:x}-{}", meta.size, meta.last_modified.timestamp()));
        Self {
            size: meta.size,
            etag,
            content_type: guess_content_type(meta.location.as_ref()).to_owned(),
            user_meta: UserMeta::new(),
            headers: BTreeMap::new(),
            crc64: None,
            last_modified: meta.last_modified.into(),
            backend_etag: meta.e_tag.clone(),
        }
    }

    fn describes(&self, meta: &ObjectMeta) -> bool {
        self.size == meta.size
            && match (&self.backend_etag, &meta.e_tag) {
                (Some(recorded), Some(current)) => recorded == current,
                _ => true,
            }
    }
}

/// The sidecar if it still describes the backing object, else what the
/// backend alone tells.
fn reconcile(sidecar: Option<ObjectInfo>, backend: &ObjectMeta) -> ObjectInfo {
    match sidecar {
        Some(mut info) if info.describes(backend) => {
            info.last_modified = backend.last_modified.into();
            info
        }
        _ => ObjectInfo::from_backend(backend),
    }
}

/// A content type from a key's extension, for objects without metadata.
pub fn guess_content_type(key: &str) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("webm") => "video/webm",
        Some("mkv") => "video/x-matroska",
        Some("ts") => "video/mp2t",
        Some("flv") => "video/x-flv",
        Some("avi") => "video/x-msvideo",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("webp") => "image/webp",
        Some("vtt") => "text/vtt",
        Some("json") => "application/json",
        Some("txt") => "text/plain",
        Some("html") => "text/html",
        _ => "application/octet-stream",
    }
}

impl Bucket {
    /// Metadata of `key`, or `NoSuchKey`.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, StorageError> {
        let path = key_to_path(key);
        let (backend, sidecar) = tokio::join!(self.data.head(&path), self.read_sidecar(key));
        let backend = match backend {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Err(StorageError::NoSuchKey),
            Err(e) => return Err(e.into()),
        };
        Ok(reconcile(sidecar?, &backend))
    }

    /// Metadata of a listed object.
    pub(super) async fn describe_listed(
        &self,
        key: &str,
        backend: &ObjectMeta,
    ) -> Result<ObjectInfo, StorageError> {
        Ok(reconcile(self.read_sidecar(key).await?, backend))
    }

    async fn read_sidecar(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        match self.aux.get(&child("meta", key)).await {
            Ok(result) => {
                let bytes = result.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt(format!("metadata of {key:?}: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn write_sidecar(
        &self,
        key: &str,
        info: &ObjectInfo,
    ) -> Result<(), StorageError> {
        let json = serde_json::to_vec(info).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.aux
            .put(&child("meta", key), PutPayload::from(Bytes::from(json)))
            .await?;
        Ok(())
    }

    /// A bucket configuration document (e.g. `cors`), if one was stored.
    pub async fn read_setting(&self, name: &str) -> Result<Option<Bytes>, StorageError> {
        match self.aux.get(&child("config", name)).await {
            Ok(got) => Ok(Some(got.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores a bucket configuration document.
    pub async fn write_setting(&self, name: &str, body: Bytes) -> Result<(), StorageError> {
        self.aux
            .put(&child("config", name), PutPayload::from(body))
            .await?;
        Ok(())
    }

    pub(super) async fn delete_sidecar(&self, key: &str) -> Result<(), StorageError> {
        match self.aux.delete(&child("meta", key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The backing store's metadata of `key` (for the sidecar's record).
    pub(super) async fn backend_meta(&self, key: &str) -> Result<ObjectMeta, StorageError> {
        Ok(self.data.head(&key_to_path(key)).await?)
    }
}

mod millis {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        s.serialize_u64(ms)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let ms = u64::deserialize(d)?;
        Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_guessed_from_extensions() {
        assert_eq!(guess_content_type("a/b.MP4"), "video/mp4");
        assert_eq!(guess_content_type("noext"), "application/octet-stream");
        assert_eq!(guess_content_type("x.vtt"), "text/vtt");
    }

    #[test]
    fn sidecars_serialize_round_trip() {
        let info = ObjectInfo {
            size: 3,
            etag: "abc".into(),
            content_type: "video/mp4".into(),
            user_meta: [("k".to_owned(), "v".to_owned())].into(),
            headers: BTreeMap::new(),
            crc64: Some(42),
            last_modified: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            backend_etag: Some("\"x\"".into()),
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(serde_json::from_str::<ObjectInfo>(&json).unwrap(), info);
    }
}
