//! Enforcing what a signature says about the body, while it streams: a
//! signed SHA-256 is compared when the body ends (before anything is
//! committed), an `aws-chunked` body is decoded with every chunk signature
//! checked.

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest as _, Sha256};

use crate::proto::sign::{BodyCheck, ChunkedDecoder, SignError};
use crate::storage::{BodyStream, BoxError};

/// `body` with the checks of `check` applied; a failed check ends the
/// stream with a [`SignError`], so the storage layer commits nothing.
pub fn checked_body(body: BodyStream, check: BodyCheck) -> BodyStream {
    match check {
        BodyCheck::None => body,
        BodyCheck::Sha256(_) => sha256_checked(body, check),
        BodyCheck::AwsChunked(context) => aws_chunked(body, ChunkedDecoder::new(context)),
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

fn aws_chunked(body: BodyStream, decoder: ChunkedDecoder) -> BodyStream {
    struct State {
        body: BodyStream,
        decoder: Option<ChunkedDecoder>,
        ready: std::collections::VecDeque<Bytes>,
    }
    let state = State {
        body,
        decoder: Some(decoder),
        ready: Default::default(),
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(chunk) = state.ready.pop_front() {
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
                    return match decoder.finish() {
                        Ok(_trailers) => None,
                        Err(err) => Some((Err(sign_error(err)), state)),
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
        let ok = checked_body(body(&[b"hello ", b"world"]), BodyCheck::Sha256(digest));
        let chunks: Vec<Bytes> = ok.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), b"hello world");
        let bad = checked_body(body(&[b"hello ", b"there"]), BodyCheck::Sha256(digest));
        let err = bad.try_collect::<Vec<Bytes>>().await.unwrap_err();
        assert_eq!(
            err.downcast_ref::<SignError>(),
            Some(&SignError::ContentSha256Mismatch)
        );
    }
}
