//! Enforcing what a signature says about the body, while it streams: a
//! signed SHA-256 is compared when the body ends (before anything is
//! committed), an `aws-chunked` body is decoded with every chunk signature
//! checked.

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::proto::sign::{BodyCheck, ChunkedDecoder, SignError};
use crate::storage::{BodyStream, BoxError};

/// A trailing checksum of an `aws-chunked` body did not match its data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The {0} you specified did not match the calculated checksum.")]
pub struct TrailerMismatch(pub String);

/// `body` with the checks of `check` applied; a failed check ends the
/// stream with a [`SignError`] (or [`TrailerMismatch`]), so the storage
/// layer commits nothing. `trailer` is the request's `x-amz-trailer`: the
/// checksum an `aws-chunked` body declares after its data.
pub fn checked_body(body: BodyStream, check: BodyCheck, trailer: Option<&str>) -> BodyStream {
    match check {
        BodyCheck::None => body,
        BodyCheck::Sha256(_) => sha256_checked(body, check),
        BodyCheck::AwsChunked(context) => {
            let checksum = trailer.map(|name| TrailerChecksum::new(name.trim()));
            aws_chunked(body, ChunkedDecoder::new(context), checksum)
        }
    }
}

/// The running checksum a trailer declares.
enum TrailerChecksum {
    Crc32(String, crc32fast::Hasher),
    Sha1(String, sha1::Sha1),
    Sha256(String, Sha256),
    Unsupported(String),
}

impl TrailerChecksum {
    fn new(name: &str) -> Self {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "x-amz-checksum-crc32" => Self::Crc32(name, crc32fast::Hasher::new()),
            "x-amz-checksum-sha1" => Self::Sha1(name, sha1::Sha1::new()),
            "x-amz-checksum-sha256" => Self::Sha256(name, Sha256::new()),
            _ => Self::Unsupported(name),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Self::Crc32(_, h) => h.update(data),
            Self::Sha1(_, h) => h.update(data),
            Self::Sha256(_, h) => h.update(data),
            Self::Unsupported(_) => {}
        }
    }

    /// Compares with the trailers the body ended with.
    fn verify(self, trailers: &[(String, String)]) -> Result<(), BoxError> {
        use base64::Engine as _;
        let (name, digest) = match self {
            Self::Crc32(name, h) => (name, h.finalize().to_be_bytes().to_vec()),
            Self::Sha1(name, h) => (name, h.finalize().to_vec()),
            Self::Sha256(name, h) => (name, h.finalize().to_vec()),
            Self::Unsupported(name) => {
                return Err(sign_error(SignError::InvalidChunk(format!(
                    "the trailing checksum {name} is not supported (crc32, sha1, sha256)"
                ))))
            }
        };
        let sent = trailers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.trim())
            .ok_or_else(|| {
                sign_error(SignError::InvalidChunk(format!(
                    "the declared trailer {name} is missing"
                )))
            })?;
        let expected = base64::engine::general_purpose::STANDARD.encode(digest);
        if sent == expected {
            Ok(())
        } else {
            Err(Box::new(TrailerMismatch(name)))
        }
    }
}

fn sign_error(err: SignError) -> BoxError {
    Box::new(err)
}

fn sha256_checked(body: BodyStream, check: BodyCheck) -> BodyStream {
    struct State {
        body: BodyStream,
        hasher: Option<Sha256>,
        check: BodyCheck,
    }
    let state = State {
        body,
        hasher: Some(Sha256::new()),
        check,
    };
    futures::stream::unfold(state, |mut state| async move {
        let hasher = state.hasher.as_mut()?;
        match state.body.next().await {
            Some(Ok(chunk)) => {
                hasher.update(&chunk);
                Some((Ok(chunk), state))
            }
            Some(Err(err)) => {
                state.hasher = None;
                Some((Err(err), state))
            }
            None => {
                let digest: [u8; 32] = state.hasher.take()?.finalize().into();
                match state.check.check_sha256(&digest) {
                    Ok(()) => None,
                    Err(err) => Some((Err(sign_error(err)), state)),
                }
            }
        }
    })
    .boxed()
}

fn aws_chunked(
    body: BodyStream,
    decoder: ChunkedDecoder,
    checksum: Option<TrailerChecksum>,
) -> BodyStream {
    struct State {
        body: BodyStream,
        decoder: Option<ChunkedDecoder>,
        ready: std::collections::VecDeque<Bytes>,
        checksum: Option<TrailerChecksum>,
    }
    let state = State {
        body,
        decoder: Some(decoder),
        ready: Default::default(),
        checksum,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(chunk) = state.ready.pop_front() {
                if let Some(checksum) = &mut state.checksum {
                    checksum.update(&chunk);
                }
                return Some((Ok(chunk), state));
            }
            let decoder = state.decoder.as_mut()?;
            match state.body.next().await {
                Some(Ok(input)) => match decoder.push(&input) {
                    Ok(decoded) => state.ready.extend(decoded),
                    Err(err) => {
                        state.decoder = None;
                        return Some((Err(sign_error(err)), state));
                    }
                },
                Some(Err(err)) => {
                    state.decoder = None;
                    return Some((Err(err), state));
                }
                None => {
                    let decoder = state.decoder.take()?;
                    let outcome = decoder.finish().map_err(sign_error).and_then(|trailers| {
                        match state.checksum.take() {
                            Some(checksum) => checksum.verify(&trailers),
                            None => Ok(()),
                        }
                    });
                    return match outcome {
                        Ok(()) => None,
                        Err(err) => Some((Err(err), state)),
                    };
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn body(chunks: &[&'static [u8]]) -> BodyStream {
        let chunks: Vec<Result<Bytes, BoxError>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        futures::stream::iter(chunks).boxed()
    }

    #[tokio::test]
    async fn a_signed_sha256_is_enforced_at_the_end_of_the_body() {
        let digest: [u8; 32] = Sha256::digest(b"hello world").into();
        let ok = checked_body(
            body(&[b"hello ", b"world"]),
            BodyCheck::Sha256(digest),
            None,
        );
        let chunks: Vec<Bytes> = ok.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), b"hello world");
        let bad = checked_body(
            body(&[b"hello ", b"there"]),
            BodyCheck::Sha256(digest),
            None,
        );
        let err = bad.try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert_eq!(
            err.downcast_ref::<SignError>(),
            Some(&SignError::ContentSha256Mismatch)
        );
    }
}
