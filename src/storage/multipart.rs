//! Multipart uploads, staged in the bucket's `aux` store:
//! `uploads/<id>/upload.json`, and per part `uploads/<id>/<nnnnn>.part` with
//! `uploads/<id>/<nnnnn>.json`. Parts may arrive in any order and be
//! re-sent; completing streams the chosen parts, in order, into the object
//! (computing its CRC-64 on the way) and removes the staging area.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest as _, Md5};
use object_store::path::Path;
use object_store::PutPayload;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::meta::{guess_content_type, ObjectInfo, UserMeta};
use super::object::open_stream;
use super::write::{write_stream, BodyStream, Expect};
use super::{key_to_path, BoxError, Bucket, PutRequest, StorageError};
use crate::proto::xml::CompletePart;

/// Every part but the last must be at least this large (COS: 1 MB).
pub const MIN_PART_SIZE: u64 = 1024 * 1024;

/// An initiated upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadInfo {
    /// The upload id (32 hex digits).
    pub upload_id: String,
    /// The object key it will create.
    pub key: String,
    /// Milliseconds since the epoch.
    pub initiated_ms: u64,
    /// `Content-Type` given at initiation.
    pub content_type: Option<String>,
    /// User metadata given at initiation.
    #[serde(default)]
    pub user_meta: UserMeta,
    /// Representation headers given at initiation.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl UploadInfo {
    /// When the upload was initiated.
    pub fn initiated(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.initiated_ms)
    }
}

/// An uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartInfo {
    /// 1..=10000.
    pub part_number: u32,
    /// MD5 hex of the part.
    pub etag: String,
    /// Bytes.
    pub size: u64,
    /// Milliseconds since the epoch.
    pub last_modified_ms: u64,
}

impl PartInfo {
    /// When the part was uploaded.
    pub fn last_modified(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.last_modified_ms)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn upload_dir(upload_id: &str) -> Path {
    Path::from_iter(["uploads", upload_id])
}

fn part_path(upload_id: &str, part: u32, ext: &str) -> Path {
    Path::from_iter(["uploads", upload_id, &format!("{part:05}.{ext}")])
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Bucket {
    async fn read_json<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>, StorageError> {
        match self.aux.get(path).await {
            Ok(result) => {
                let bytes = result.bytes().await?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt(format!("{path}: {e}")))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StorageError> {
        let json = serde_json::to_vec(value).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.aux
            .put(path, PutPayload::from(Bytes::from(json)))
            .await?;
        Ok(())
    }

    /// Starts an upload of `key`.
    pub async fn create_upload(
        &self,
        key: &str,
        request: PutRequest,
    ) -> Result<UploadInfo, StorageError> {
        let info = UploadInfo {
            upload_id: hex::encode(rand::random::<[u8; 16]>()),
            key: key.to_owned(),
            initiated_ms: now_ms(),
            content_type: request.content_type,
            user_meta: request.user_meta,
            headers: request.headers,
        };
        let path = Path::from_iter(["uploads", info.upload_id.as_str(), "upload.json"]);
        self.write_json(&path, &info).await?;
        Ok(info)
    }

    /// The upload `upload_id` of `key`, or `NoSuchUpload`.
    pub async fn upload(&self, key: &str, upload_id: &str) -> Result<UploadInfo, StorageError> {
        if !valid_upload_id(upload_id) {
            return Err(StorageError::NoSuchUpload);
        }
        let path = Path::from_iter(["uploads", upload_id, "upload.json"]);
        match self.read_json::<UploadInfo>(&path).await? {
            Some(info) if info.key == key => Ok(info),
            _ => Err(StorageError::NoSuchUpload),
        }
    }

    /// Stores one part (replacing an earlier part with the same number).
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        request: PutRequest,
    ) -> Result<PartInfo, StorageError> {
        self.upload(key, upload_id).await?;
        let expect = Expect {
            len: request.content_length,
            max_len: request.max_len,
            md5: request.content_md5,
            crc32: request.crc32,
        };
        let data_path = part_path(upload_id, part_number, "part");
        let written = write_stream(&self.aux, &data_path, body, expect).await?;
        let part = PartInfo {
            part_number,
            etag: hex::encode(written.md5),
            size: written.len,
            last_modified_ms: now_ms(),
        };
        self.write_json(&part_path(upload_id, part_number, "json"), &part)
            .await?;
        Ok(part)
    }

    /// The parts uploaded so far, by part number.
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<(UploadInfo, Vec<PartInfo>), StorageError> {
        let upload = self.upload(key, upload_id).await?;
        let names: Vec<Path> = self
            .aux
            .list(Some(&upload_dir(upload_id)))
            .map_ok(|meta| meta.location)
            .try_filter(|p| {
                futures::future::ready(
                    p.as_ref().ends_with(".json") && !p.as_ref().ends_with("upload.json"),
                )
            })
            .try_collect()
            .await?;
        let mut parts = Vec::with_capacity(names.len());
        for name in names {
            if let Some(part) = self.read_json::<PartInfo>(&name).await? {
                parts.push(part);
            }
        }
        parts.sort_by_key(|p| p.part_number);
        Ok((upload, parts))
    }

    /// Assembles the named parts into the object and removes the upload.
    pub async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        requested: &[CompletePart],
    ) -> Result<ObjectInfo, StorageError> {
        let (upload, uploaded) = self.list_parts(key, upload_id).await?;
        if requested
            .windows(2)
            .any(|w| w[0].part_number >= w[1].part_number)
        {
            return Err(StorageError::InvalidPartOrder);
        }
        let mut chosen = Vec::with_capacity(requested.len());
        for (i, want) in requested.iter().enumerate() {
            let part = uploaded
                .iter()
                .find(|p| p.part_number == want.part_number && p.etag == want.etag)
                .ok_or_else(|| {
                    StorageError::InvalidPart(format!(
                        "Part {} with ETag {:?} was not uploaded.",
                        want.part_number, want.etag
                    ))
                })?;
            if i + 1 < requested.len() && part.size < MIN_PART_SIZE {
                return Err(StorageError::EntityTooSmall {
                    part: part.part_number,
                });
            }
            chosen.push(part.clone());
        }
        let total: u64 = chosen.iter().map(|p| p.size).sum();
        let mut md5s = Md5::new();
        for part in &chosen {
            let digest = hex::decode(&part.etag)
                .map_err(|_| StorageError::Corrupt(format!("part ETag {:?}", part.etag)))?;
            md5s.update(digest);
        }
        let aux = self.aux.clone();
        let sources: Vec<(Path, u64)> = chosen
            .iter()
            .map(|p| (part_path(upload_id, p.part_number, "part"), p.size))
            .collect();
        let body = futures::stream::iter(sources)
            .then(move |(path, size)| {
                let aux = aux.clone();
                async move { open_stream(aux.as_ref(), &path, 0..size).await }
            })
            .try_flatten()
            .map_err(|e| Box::new(e) as BoxError)
            .boxed();
        let expect = Expect {
            len: Some(total),
            max_len: u64::MAX,
            md5: None,
            crc32: None,
        };
        let written = write_stream(&self.data, &key_to_path(key), body, expect).await?;
        let info = ObjectInfo {
            size: written.len,
            etag: format!("{}-{}", hex::encode(md5s.finalize()), chosen.len()),
            content_type: upload
                .content_type
                .unwrap_or_else(|| guess_content_type(key).to_owned()),
            user_meta: upload.user_meta,
            headers: upload.headers,
            crc64: Some(written.crc64),
            last_modified: SystemTime::now(),
            backend_etag: written.backend_etag,
        };
        self.write_sidecar(key, &info).await?;
        self.remove_upload(upload_id).await?;
        Ok(info)
    }

    /// Discards an upload and its parts.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        self.upload(key, upload_id).await?;
        self.remove_upload(upload_id).await
    }

    async fn remove_upload(&self, upload_id: &str) -> Result<(), StorageError> {
        let paths = self
            .aux
            .list(Some(&upload_dir(upload_id)))
            .map_ok(|meta| meta.location)
            .boxed();
        self.aux
            .delete_stream(paths)
            .try_for_each(|_| futures::future::ready(Ok(())))
            .await
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(()),
                e => Err(e),
            })?;
        Ok(())
    }

    /// In-progress uploads whose key starts with `prefix`, by key then time.
    pub async fn list_uploads(&self, prefix: &str) -> Result<Vec<UploadInfo>, StorageError> {
        let listing = self
            .aux
            .list_with_delimiter(Some(&Path::from("uploads")))
            .await;
        let dirs = match listing {
            Ok(listing) => listing.common_prefixes,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let mut uploads = Vec::new();
        for dir in dirs {
            if let Some(info) = self
                .read_json::<UploadInfo>(&dir.child("upload.json"))
                .await?
            {
                if info.key.starts_with(prefix) {
                    uploads.push(info);
                }
            }
        }
        uploads.sort_by(|a, b| (&a.key, a.initiated_ms).cmp(&(&b.key, b.initiated_ms)));
        Ok(uploads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BucketAcl, BucketConfig};

    fn body(bytes: Vec<u8>) -> BodyStream {
        futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed()
    }

    #[tokio::test]
    async fn parts_assemble_in_order_with_a_multipart_etag() {
        let dir = tempfile::tempdir().unwrap();
        let config = BucketConfig {
            name: "t-1".into(),
            store: "file://".into(),
            acl: BucketAcl::Private,
            anonymous_media: false,
            options: Default::default(),
            cors: Vec::new(),
        };
        let bucket = Bucket::open(&config, dir.path()).unwrap();
        let upload = bucket
            .create_upload("v/x.mp4", PutRequest::default())
            .await
            .unwrap();
        let id = upload.upload_id.as_str();
        let limits = PutRequest {
            max_len: u64::MAX,
            ..PutRequest::default()
        };
        let first = vec![1u8; MIN_PART_SIZE as usize];
        let p2 = bucket
            .upload_part("v/x.mp4", id, 2, body(b"tail".to_vec()), limits.clone())
            .await
            .unwrap();
        let p1 = bucket
            .upload_part("v/x.mp4", id, 1, body(first.clone()), limits.clone())
            .await
            .unwrap();
        assert!(bucket
            .upload_part("other", id, 1, body(vec![]), limits.clone())
            .await
            .is_err());
        assert_eq!(bucket.list_uploads("v/").await.unwrap().len(), 1);
        let parts = [
            CompletePart {
                part_number: 1,
                etag: p1.etag.clone(),
            },
            CompletePart {
                part_number: 2,
                etag: p2.etag.clone(),
            },
        ];
        let reversed = [parts[1].clone(), parts[0].clone()];
        assert!(matches!(
            bucket.complete_upload("v/x.mp4", id, &reversed).await,
            Err(StorageError::InvalidPartOrder)
        ));
        let info = bucket.complete_upload("v/x.mp4", id, &parts).await.unwrap();
        assert_eq!(info.size, MIN_PART_SIZE + 4);
        assert!(info.etag.ends_with("-2"));
        assert_eq!(info.content_type, "video/mp4");
        let head = bucket.head("v/x.mp4").await.unwrap();
        assert_eq!(head.etag, info.etag);
        let mut expected = first;
        expected.extend_from_slice(b"tail");
        let mut crc = crc64fast::Digest::new();
        crc.write(&expected);
        assert_eq!(head.crc64, Some(crc.sum64()));
        assert!(bucket.list_uploads("").await.unwrap().is_empty());
        assert!(matches!(
            bucket.upload("v/x.mp4", id).await,
            Err(StorageError::NoSuchUpload)
        ));
    }
}
