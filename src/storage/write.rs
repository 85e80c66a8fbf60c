//! Streaming writes: a request body goes into a backing store chunk by chunk
//! while its MD5, CRC-64 and (when asked) CRC-32 are computed, so an upload of
//! any size costs a few MiB of memory. Nothing is committed unless the body
//! is complete and every digest the client sent matches.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest as _, Md5};
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload, PutResult, WriteMultipart};

use super::meta::{guess_content_type, ObjectInfo, UserMeta};
use super::{key_to_path, Bucket, StorageError};

/// A boxed error from a body stream.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Bodies up to this size are written with one `put`; larger ones stream
/// through a multipart upload of the backing store.
const SMALL_BODY: usize = 8 * 1024 * 1024;
/// Chunk size of streamed writes (S3's minimum part size is 5 MiB).
const CHUNK: usize = 8 * 1024 * 1024;
/// Chunks in flight to the backing store per streamed write.
const IN_FLIGHT: usize = 2;

/// What a PUT carries besides the body.
#[derive(Debug, Clone, Default)]
pub struct PutRequest {
    /// `Content-Type`; guessed from the key when absent.
    pub content_type: Option<String>,
    /// `x-cos-meta-*` / `x-amz-meta-*`.
    pub user_meta: UserMeta,
    /// Representation headers to store (`cache-control`, ...).
    pub headers: BTreeMap<String, String>,
    /// `Content-MD5`, decoded.
    pub content_md5: Option<[u8; 16]>,
    /// `x-amz-checksum-crc32`, decoded.
    pub crc32: Option<u32>,
    /// `Content-Length` (or the decoded length of an aws-chunked body).
    pub content_length: Option<u64>,
    /// The largest body accepted.
    pub max_len: u64,
}

/// Digests and length of a written body.
#[derive(Debug, Clone)]
pub(super) struct Written {
    pub md5: [u8; 16],
    pub crc64: u64,
    pub len: u64,
    pub backend_etag: Option<String>,
}

struct Digests {
    md5: Md5,
    crc64: crc64fast::Digest,
    crc32: Option<crc32fast::Hasher>,
    len: u64,
}

enum Sink {
    Buffer(Vec<u8>),
    Streaming(WriteMultipart),
}

/// Limits and expectations of one streamed write.
#[derive(Debug, Clone, Copy)]
pub(super) struct Expect {
    pub len: Option<u64>,
    pub max_len: u64,
    pub md5: Option<[u8; 16]>,
    pub crc32: Option<u32>,
}

/// Streams `body` into `path`; commits only a complete, verified body.
pub(super) async fn write_stream(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    mut body: BodyStream,
    expect: Expect,
) -> Result<Written, StorageError> {
    if let Some(len) = expect.len {
        if len > expect.max_len {
            return Err(StorageError::TooLarge {
                limit: expect.max_len,
            });
        }
    }
    let mut digests = Digests {
        md5: Md5::new(),
        crc64: crc64fast::Digest::new(),
        crc32: expect.crc32.map(|_| crc32fast::Hasher::new()),
        len: 0,
    };
    let mut sink = Sink::Buffer(Vec::new());
    let outcome = pump(store, path, &mut body, &expect, &mut digests, &mut sink).await;
    if let Err(err) = outcome.and_then(|()| verify(&digests, &expect)) {
        if let Sink::Streaming(writer) = sink {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "aborting a failed streamed write");
            }
        }
        return Err(err);
    }
    let result: PutResult = match sink {
        Sink::Buffer(buf) => store.put(path, PutPayload::from(Bytes::from(buf))).await?,
        Sink::Streaming(writer) => writer.finish().await?,
    };
    Ok(Written {
        md5: digests.md5.finalize().into(),
        crc64: digests.crc64.sum64(),
        len: digests.len,
        backend_etag: result.e_tag,
    })
}

/// Moves the body into the sink, hashing on the way.
async fn pump(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    body: &mut BodyStream,
    expect: &Expect,
    digests: &mut Digests,
    sink: &mut Sink,
) -> Result<(), StorageError> {
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Client)?;
        digests.len += chunk.len() as u64;
        if digests.len > expect.max_len || expect.len.is_some_and(|n| digests.len > n) {
            return Err(StorageError::TooLarge {
                limit: expect.len.unwrap_or(expect.max_len).min(expect.max_len),
            });
        }
        digests.md5.update(&chunk);
        digests.crc64.write(&chunk);
        if let Some(crc32) = &mut digests.crc32 {
            crc32.update(&chunk);
        }
        let current = std::mem::replace(sink, Sink::Buffer(Vec::new()));
        *sink = feed(store, path, current, &chunk).await?;
    }
    Ok(())
}

async fn feed(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    sink: Sink,
    chunk: &[u8],
) -> Result<Sink, StorageError> {
    match sink {
        Sink::Buffer(mut buf) if buf.len() + chunk.len() <= SMALL_BODY => {
            buf.extend_from_slice(chunk);
            Ok(Sink::Buffer(buf))
        }
        Sink::Buffer(buf) => {
            let upload = store.put_multipart(path).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, CHUNK);
            writer.write(&buf);
            drop(buf);
            writer.write(chunk);
            Ok(Sink::Streaming(writer))
        }
        Sink::Streaming(mut writer) => {
            writer.wait_for_capacity(IN_FLIGHT).await?;
            writer.write(chunk);
            Ok(Sink::Streaming(writer))
        }
    }
}

fn verify(digests: &Digests, expect: &Expect) -> Result<(), StorageError> {
    if let Some(expected) = expect.len {
        if digests.len != expected {
            return Err(StorageError::IncompleteBody {
                expected,
                received: digests.len,
            });
        }
    }
    if let Some(md5) = expect.md5 {
        if digests.md5.clone().finalize().as_slice() != md5 {
            return Err(StorageError::BadDigest("Content-MD5"));
        }
    }
    if let (Some(expected), Some(hasher)) = (expect.crc32, &digests.crc32) {
        if hasher.clone().finalize() != expected {
            return Err(StorageError::BadDigest("x-amz-checksum-crc32"));
        }
    }
    Ok(())
}

/// Decodes a base64 `Content-MD5` value.
pub fn decode_content_md5(value: &str) -> Option<[u8; 16]> {
    base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?
        .try_into()
        .ok()
}

/// Decodes a base64 big-endian CRC-32 (`x-amz-checksum-crc32`).
pub fn decode_crc32(value: &str) -> Option<u32> {
    let bytes: [u8; 4] = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?
        .try_into()
        .ok()?;
    Some(u32::from_be_bytes(bytes))
}

impl Bucket {
    /// Streams a PUT body into `key` and records its metadata.
    pub async fn put_object(
        &self,
        key: &str,
        body: BodyStream,
        request: PutRequest,
    ) -> Result<ObjectInfo, StorageError> {
        let expect = Expect {
            len: request.content_length,
            max_len: request.max_len,
            md5: request.content_md5,
            crc32: request.crc32,
        };
        let written = write_stream(&self.data, &key_to_path(key), body, expect).await?;
        let info = ObjectInfo {
            size: written.len,
            etag: hex::encode(written.md5),
            content_type: request
                .content_type
                .unwrap_or_else(|| guess_content_type(key).to_owned()),
            user_meta: request.user_meta,
            headers: request.headers,
            crc64: Some(written.crc64),
            last_modified: SystemTime::now(),
            backend_etag: written.backend_etag,
        };
        self.write_sidecar(key, &info).await?;
        Ok(info)
    }
}

impl Bucket {
    /// Writes `bytes` to `key` in one piece (for pictures the gateway makes).
    pub async fn put_bytes(
        &self,
        key: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<ObjectInfo, StorageError> {
        let len = bytes.len() as u64;
        let body: BodyStream = Box::pin(futures::stream::once(async move { Ok(bytes) }));
        let request = PutRequest {
            content_type: Some(content_type.to_owned()),
            content_length: Some(len),
            max_len: len,
            ..PutRequest::default()
        };
        self.put_object(key, body, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_headers_decode() {
        assert_eq!(
            decode_content_md5("1B2M2Y8AsgTpgAmY7PhCfg=="),
            Some(
                hex::decode("d41d8cd98f00b204e9800998ecf8427e")
                    .unwrap()
                    .try_into()
                    .unwrap()
            )
        );
        assert_eq!(decode_content_md5("nope"), None);
        assert_eq!(decode_crc32("AAAAAA=="), Some(0));
        assert_eq!(decode_crc32("AAAA"), None);
    }

    #[test]
    fn crc64_is_the_cos_variant() {
        // CRC-64/XZ check value, as COS computes x-cos-hash-crc64ecma.
        let mut digest = crc64fast::Digest::new();
        digest.write(b"123456789");
        assert_eq!(digest.sum64(), 0x995D_C9BB_DF19_39FA);
    }
}
