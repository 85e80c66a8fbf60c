//! Buckets mapped to backing stores through `object_store`, with the object
//! metadata COS clients expect kept durably beside each object.
//!
//! Each [`Bucket`] has two stores:
//! - `data`: the objects themselves, one backing object per COS object;
//! - `aux`: the gateway's bookkeeping: a metadata sidecar per object
//!   (`meta/<key>`: content type, user metadata, MD5 ETag, CRC-64) and the
//!   staging area of multipart uploads (`uploads/<id>/...`). For `file://`
//!   buckets it is a directory under the data dir (`state/<bucket>`), so the
//!   bucket directory holds only objects; for every other backend it is the
//!   same store under the reserved prefix `.framegate/`, so it lives (and
//!   survives) wherever the objects do.

mod meta;
mod multipart;
mod object;
mod reader;
mod write;

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::{Path, PathPart};
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;
use percent_encoding::percent_decode_str;

pub use meta::{ObjectInfo, UserMeta};
pub use multipart::{PartInfo, UploadInfo, MIN_PART_SIZE};
pub use object::{GetBody, ListEntry, ListPage, ListRequest};
pub use reader::{ObjectReader, ReadStats};
pub use write::{decode_content_md5, decode_crc32, BodyStream, BoxError, PutRequest};

use crate::config::{BucketAcl, BucketConfig, Config};

/// Storage failures, typed for the wire mapping in `error.rs`.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The object does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// The multipart upload does not exist.
    #[error("no such upload")]
    NoSuchUpload,
    /// A digest the client sent does not match the body; names the header.
    #[error("{0} mismatch")]
    BadDigest(&'static str),
    /// The body exceeds the configured limit.
    #[error("body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// The body ended before `Content-Length` bytes arrived.
    #[error("body ended after {received} of {expected} bytes")]
    IncompleteBody {
        /// Declared length.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// A part named in a complete request is missing or has another ETag.
    #[error("{0}")]
    InvalidPart(String),
    /// Parts of a complete request are not ascending.
    #[error("parts not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is below the minimum size.
    #[error("part {part} too small")]
    EntityTooSmall {
        /// The part number.
        part: u32,
    },
    /// Reading the request body from the client failed.
    #[error("client body: {0}")]
    Client(BoxError),
    /// The backing store failed.
    #[error("backing store: {0}")]
    Backend(#[from] object_store::Error),
    /// Bookkeeping data is unreadable.
    #[error("corrupt bookkeeping: {0}")]
    Corrupt(String),
}

/// A configured bucket.
#[derive(Debug)]
pub struct Bucket {
    /// `BucketName-APPID`.
    pub name: String,
    /// Anonymous access.
    pub acl: BucketAcl,
    /// Anonymous snapshots/media info on a public bucket.
    pub anonymous_media: bool,
    /// Where objects live, for display.
    pub location: String,
    data: Arc<dyn ObjectStore>,
    aux: Arc<dyn ObjectStore>,
}

/// All configured buckets by name.
#[derive(Debug, Default)]
pub struct Buckets {
    by_name: HashMap<String, Arc<Bucket>>,
    names: Vec<String>,
}

impl Buckets {
    /// Opens every bucket of the configuration (creating local directories).
    pub fn open(config: &Config) -> Result<Self, String> {
        let mut buckets = Self::default();
        for bucket in &config.buckets {
            let opened = Bucket::open(bucket, &config.data_dir)
                .map_err(|e| format!("bucket {}: {e}", bucket.name))?;
            buckets.names.push(bucket.name.clone());
            buckets
                .by_name
                .insert(bucket.name.clone(), Arc::new(opened));
        }
        Ok(buckets)
    }

    /// The bucket called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Bucket>> {
        self.by_name.get(name)
    }

    /// Names of all buckets, in configuration order.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

impl Bucket {
    fn open(config: &BucketConfig, data_dir: &FsPath) -> Result<Self, String> {
        let (data, aux, location): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>, String) =
            match config.store.as_str() {
                "file://" | "file:" => {
                    let dir = data_dir.join("buckets").join(&config.name);
                    let data = local_store(&dir)?;
                    let aux = local_store(&data_dir.join("state").join(&config.name))?;
                    (data, aux, format!("file://{}", dir.display()))
                }
                url if url.starts_with("file://") => {
                    let dir = FsPath::new(&url["file://".len()..]);
                    let data = local_store(dir)?;
                    let aux = local_store(&data_dir.join("state").join(&config.name))?;
                    (data, aux, url.to_owned())
                }
                "memory://" | "memory:" => {
                    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
                    (store.clone(), reserved(store), "memory://".to_owned())
                }
                url => {
                    let parsed = url::Url::parse(url).map_err(|e| format!("store {url:?}: {e}"))?;
                    let (store, prefix) =
                        object_store::parse_url_opts(&parsed, config.options.iter())
                            .map_err(|e| format!("store {url:?}: {e}"))?;
                    let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
                        Arc::from(store)
                    } else {
                        Arc::new(PrefixStore::new(store, prefix))
                    };
                    (store.clone(), reserved(store), url.to_owned())
                }
            };
        Ok(Self {
            name: config.name.clone(),
            acl: config.acl,
            anonymous_media: config.anonymous_media,
            location,
            data,
            aux,
        })
    }
}

fn local_store(dir: &FsPath) -> Result<Arc<dyn ObjectStore>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let store = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    Ok(Arc::new(store))
}

/// The gateway's bookkeeping inside a shared store: under `.framegate/`.
fn reserved(store: Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore> {
    Arc::new(PrefixStore::new(store, Path::from(".framegate")))
}

/// The backing path of a (validated) object key. Each `/`-separated segment
/// is percent-encoded where the stores need it (`#`, `%`, `~`, ...), so every
/// key maps to one path and back.
pub fn key_to_path(key: &str) -> Path {
    Path::from_iter(key.split('/').map(PathPart::from))
}

/// The object key of a backing path (inverse of [`key_to_path`]).
pub fn path_to_key(path: &Path) -> String {
    path.parts()
        .map(|part| {
            percent_decode_str(part.as_ref())
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `prefix` joined with the encoded segments of `key`.
fn child(prefix: &str, key: &str) -> Path {
    Path::from_iter(
        std::iter::once(PathPart::from(prefix)).chain(key.split('/').map(PathPart::from)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_paths() {
        for key in [
            "a",
            "a/b/c.mp4",
            "a b/c#1",
            "100%/x~y",
            "中文/😀.mp4",
            "q?x=1&y",
        ] {
            let path = key_to_path(key);
            assert_eq!(path_to_key(&path), key, "{path}");
        }
        assert_eq!(key_to_path("v/a#1").as_ref(), "v/a%231");
    }
}
