//! Reading, deleting, copying and listing objects.

use std::ops::Range;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectMeta, ObjectStore};

use super::meta::ObjectInfo;
use super::write::{write_stream, Expect};
use super::{key_to_path, path_to_key, Bucket, StorageError};
use crate::metrics::{self, StoreReader};
use crate::proto::route::RESERVED_PREFIX;
use crate::zero_copy;
use std::sync::Arc;

/// Chunk size when streaming a local file to a client: each chunk is one
/// blocking read straight into the buffer that is sent.
const FILE_CHUNK: u64 = 1024 * 1024;
/// Sidecars read concurrently while listing.
const LIST_META_CONCURRENCY: usize = 16;

/// An object body being streamed to a client.
pub type GetBody = BoxStream<'static, Result<Bytes, object_store::Error>>;

/// A listing request (COS v1 marker or S3 v2 continuation, normalised).
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Only keys starting with this.
    pub prefix: String,
    /// Group keys by the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) strictly after this.
    pub start_after: Option<String>,
    /// At most this many keys plus common prefixes (0..=1000).
    pub max_keys: usize,
}

/// One object in a listing.
#[derive(Debug, Clone)]
pub struct ListEntry {
    /// The key.
    pub key: String,
    /// Metadata.
    pub info: ObjectInfo,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects in key order.
    pub entries: Vec<ListEntry>,
    /// Common prefixes in order.
    pub common_prefixes: Vec<String>,
    /// Whether more follows.
    pub truncated: bool,
    /// The last key or prefix of this page, to continue after.
    pub next_marker: Option<String>,
}

/// Streams `range` of the object at `path`, in large chunks for local files.
pub(super) async fn open_stream(
    store: &dyn ObjectStore,
    path: &Path,
    range: Range<u64>,
) -> Result<GetBody, object_store::Error> {
    let len = range.end - range.start;
    if len == 0 {
        return Ok(futures::stream::empty().boxed());
    }
    let options = GetOptions {
        range: Some(GetRange::Bounded(range.clone())),
        ..GetOptions::default()
    };
    let result = store.get_opts(path, options).await?;
    Ok(match result.payload {
        GetResultPayload::File(file, path) => {
            drop(path);
            file_chunks(file, range.start, len).boxed()
        }
        GetResultPayload::Stream(stream) => stream,
    })
}

fn local_error(source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(source),
    }
}

/// `len` bytes of `file` from `offset`, in [`FILE_CHUNK`] pieces, each read
/// on a blocking thread directly into the buffer the client is sent (one
/// copy, where `tokio::fs::File` copies through a buffer of its own), the
/// next piece read while the last is being sent.
fn file_chunks(
    file: std::fs::File,
    offset: u64,
    len: u64,
) -> impl futures::Stream<Item = Result<Bytes, object_store::Error>> {
    let file = std::sync::Arc::new(file);
    let pieces = (0..len.div_ceil(FILE_CHUNK)).map(move |i| {
        let file = std::sync::Arc::clone(&file);
        let at = offset + i * FILE_CHUNK;
        let wanted = FILE_CHUNK.min(offset + len - at) as usize;
        async move {
            tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut chunk = vec![0; wanted];
                // The file shrinking under us ends the body with an error,
                // never a short body.
                file.read_exact_at(&mut chunk, at)?;
                Ok(Bytes::from(chunk))
            })
            .await
            .map_err(|e| local_error(std::io::Error::other(e)))?
            .map_err(local_error)
        }
    });
    futures::stream::iter(pieces).buffered(2)
}

impl Bucket {
    /// Streams `range` of `key` (counted in the store-read metrics).
    pub async fn read(&self, key: &str, range: Range<u64>) -> Result<GetBody, StorageError> {
        metrics::store_request(StoreReader::Object);
        let body = open_stream(self.data.as_ref(), &key_to_path(key), range)
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => StorageError::NoSuchKey,
                e => e.into(),
            })?;
        Ok(body
            .inspect_ok(|chunk| metrics::store_bytes(StoreReader::Object, chunk.len() as u64))
            .boxed())
    }

    /// The whole of `key` in memory, if the backend still holds the version
    /// whose backend ETag is `backend_etag` (`None` once it has changed).
    /// A local file of at least [`zero_copy::MIN_FILE_BYTES`] comes back as
    /// [`zero_copy::file_bytes`], which connections send with `sendfile`.
    pub async fn read_whole(
        &self,
        key: &str,
        backend_etag: &str,
    ) -> Result<Option<Bytes>, StorageError> {
        let options = GetOptions {
            if_match: Some(backend_etag.to_owned()),
            ..GetOptions::default()
        };
        let result = match self.data.get_opts(&key_to_path(key), options).await {
            Ok(result) => result,
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let len = result.meta.size;
        metrics::store_request(StoreReader::Object);
        metrics::store_bytes(StoreReader::Object, len);
        match result.payload {
            GetResultPayload::File(file, _) if len >= zero_copy::MIN_FILE_BYTES as u64 => {
                let read = tokio::task::spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    let mut data = vec![0; usize::try_from(len).map_err(std::io::Error::other)?];
                    file.read_exact_at(&mut data, 0)?;
                    Ok(zero_copy::file_bytes(data, Arc::new(file), 0))
                })
                .await
                .map_err(|e| local_error(std::io::Error::other(e)))?;
                Ok(Some(read.map_err(local_error)?))
            }
            payload => Ok(Some(GetResult { payload, ..result }.bytes().await?)),
        }
    }

    /// Deletes `key`; deleting a missing key succeeds (COS semantics).
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.data.delete(&key_to_path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.delete_sidecar(key).await
    }

    /// Copies `source_key` of `source` into `key` of this bucket, keeping the
    /// source metadata or replacing it with `replace`.
    pub async fn copy_from(
        &self,
        source: &Bucket,
        source_key: &str,
        key: &str,
        replace: Option<super::PutRequest>,
    ) -> Result<ObjectInfo, StorageError> {
        let mut info = source.head(source_key).await?;
        if std::ptr::eq(self, source) {
            self.data
                .copy(&key_to_path(source_key), &key_to_path(key))
                .await?;
            info.backend_etag = self.backend_meta(key).await?.e_tag;
        } else {
            let body = source
                .read(source_key, 0..info.size)
                .await?
                .map_err(|e| Box::new(e) as super::BoxError)
                .boxed();
            let expect = Expect {
                len: Some(info.size),
                max_len: u64::MAX,
                md5: None,
                crc32: None,
            };
            let written = write_stream(&self.data, &key_to_path(key), body, expect).await?;
            info.backend_etag = written.backend_etag;
        }
        if let Some(replace) = replace {
            info.content_type = replace.content_type.unwrap_or(info.content_type);
            info.user_meta = replace.user_meta;
            info.headers = replace.headers;
        }
        info.last_modified = SystemTime::now();
        self.write_sidecar(key, &info).await?;
        Ok(info)
    }

    /// One page of keys and common prefixes, in key order.
    ///
    /// The backing stores list by directory, so this lists the directory of
    /// the prefix, filters and sorts in memory: a page costs a walk of that
    /// directory.
    pub async fn list(&self, request: &ListRequest) -> Result<ListPage, StorageError> {
        let dir = match request.prefix.rfind('/') {
            Some(i) => &request.prefix[..i],
            None => "",
        };
        let dir_path = (!dir.is_empty()).then(|| key_to_path(dir));
        let mut metas: Vec<(String, ObjectMeta)> = Vec::new();
        let mut stream = self.data.list(dir_path.as_ref());
        while let Some(item) = stream.next().await {
            let meta = match item {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            let key = path_to_key(&meta.location);
            let after_marker = request
                .start_after
                .as_deref()
                .is_none_or(|m| key.as_str() > m);
            if key.starts_with(&request.prefix) && after_marker && !key.starts_with(RESERVED_PREFIX)
            {
                metas.push((key, meta));
            }
        }
        metas.sort_by(|a, b| a.0.cmp(&b.0));
        let mut page = ListPage::default();
        let mut chosen = Vec::new();
        let mut count = 0;
        for (key, meta) in metas {
            let common = request.delimiter.as_deref().and_then(|d| {
                let rest = &key[request.prefix.len()..];
                rest.find(d)
                    .map(|i| format!("{}{}", request.prefix, &rest[..i + d.len()]))
            });
            if let Some(common) = &common {
                if page.common_prefixes.last() == Some(common)
                    || request.start_after.as_deref() >= Some(common.as_str())
                {
                    continue;
                }
            }
            if count == request.max_keys {
                page.truncated = true;
                break;
            }
            count += 1;
            match common {
                Some(common) => {
                    page.next_marker = Some(common.clone());
                    page.common_prefixes.push(common);
                }
                None => {
                    page.next_marker = Some(key.clone());
                    chosen.push((key, meta));
                }
            }
        }
        page.entries = futures::stream::iter(chosen)
            .map(|(key, meta)| async move {
                let info = self.describe_listed(&key, &meta).await?;
                Ok::<_, StorageError>(ListEntry { key, info })
            })
            .buffered(LIST_META_CONCURRENCY)
            .try_collect()
            .await?;
        if !page.truncated {
            page.next_marker = None;
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BucketAcl, BucketConfig};
    use crate::storage::PutRequest;

    fn bucket() -> Bucket {
        let config = BucketConfig {
            name: "t-1".into(),
            store: "memory://".into(),
            acl: BucketAcl::Private,
            anonymous_media: false,
            options: Default::default(),
            cors: Vec::new(),
        };
        Bucket::open(&config, std::path::Path::new("/nonexistent")).unwrap()
    }

    async fn put(bucket: &Bucket, key: &str) {
        let body = futures::stream::once(async { Ok(Bytes::from_static(b"x")) }).boxed();
        let request = PutRequest {
            max_len: 10,
            ..PutRequest::default()
        };
        bucket.put_object(key, body, request).await.unwrap();
    }

    async fn list(
        bucket: &Bucket,
        prefix: &str,
        delim: Option<&str>,
        after: Option<&str>,
        max: usize,
    ) -> (Vec<String>, Vec<String>, bool) {
        let page = bucket
            .list(&ListRequest {
                prefix: prefix.into(),
                delimiter: delim.map(Into::into),
                start_after: after.map(Into::into),
                max_keys: max,
            })
            .await
            .unwrap();
        (
            page.entries.into_iter().map(|e| e.key).collect(),
            page.common_prefixes,
            page.truncated,
        )
    }

    #[tokio::test]
    async fn listing_groups_pages_and_filters() {
        let b = bucket();
        for key in ["a/1", "a/2", "b", "c/d/e", "c/x", "ca"] {
            put(&b, key).await;
        }
        let (keys, prefixes, truncated) = list(&b, "", Some("/"), None, 1000).await;
        assert_eq!(keys, ["b", "ca"]);
        assert_eq!(prefixes, ["a/", "c/"]);
        assert!(!truncated);
        let (keys, prefixes, _) = list(&b, "c", Some("/"), None, 1000).await;
        assert_eq!(
            (keys, prefixes),
            (vec!["ca".to_owned()], vec!["c/".to_owned()])
        );
        let (keys, _, truncated) = list(&b, "", None, None, 2).await;
        assert_eq!(
            (keys, truncated),
            (vec!["a/1".to_owned(), "a/2".to_owned()], true)
        );
        let (keys, _, truncated) = list(&b, "", None, Some("a/2"), 2).await;
        assert_eq!(
            (keys, truncated),
            (vec!["b".to_owned(), "c/d/e".to_owned()], true)
        );
        let (keys, prefixes, _) = list(&b, "", Some("/"), Some("a/"), 1000).await;
        assert_eq!(
            (keys, prefixes),
            (vec!["b".to_owned(), "ca".to_owned()], vec!["c/".to_owned()])
        );
        let (keys, _, _) = list(&b, "c/d/", None, None, 1000).await;
        assert_eq!(keys, ["c/d/e"]);
    }
}
