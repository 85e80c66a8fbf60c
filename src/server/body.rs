//! Response and request body helpers.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};

use crate::storage::{BodyStream, BoxError, GetBody};

/// The response body type of every handler.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A response.
pub type Response = http::Response<Body>;

/// A body from bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body streamed from a store.
pub fn stream(body: GetBody) -> Body {
    BodyExt::boxed_unsync(StreamBody::new(
        body.map_ok(Frame::data)
            .map_err(|e| Box::new(e) as BoxError),
    ))
}

/// A request body as a stream of data chunks (trailers are dropped).
pub fn incoming_stream(body: Incoming) -> BodyStream {
    http_body_util::BodyStream::new(body)
        .try_filter_map(|frame| futures::future::ready(Ok(frame.into_data().ok())))
        .map_err(|e| Box::new(e) as BoxError)
        .boxed()
}

/// Reads a small request document, refusing more than `limit` bytes.
pub async fn read_document(
    mut body: BodyStream,
    limit: usize,
) -> Result<Bytes, crate::error::ApiError> {
    use crate::error::{ApiError, ErrorCode};
    let mut document = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::from(crate::storage::StorageError::Client(err)))?;
        if document.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::EntityTooLarge,
                format!("The request document exceeds {limit} bytes."),
            ));
        }
        document.extend_from_slice(&chunk);
    }
    Ok(document.into())
}
