//! HTTP/1 response header names in the case COS itself sends.
//!
//! HTTP header names are case-insensitive, but `cos-python-sdk-v5` copies
//! response headers into a plain `dict` and reads `['ETag']` and
//! `['Content-Length']` (its `upload_file` and `download_file` depend on it),
//! while it reads `x-cos-*` headers in lower case. hyper writes lower-case
//! names unless a response carries a case map, and that map type is private
//! to hyper. So at start-up we let hyper itself parse one request whose
//! headers are spelled the way COS spells them, keep the request's
//! extensions (which then hold hyper's case map) and attach a clone to every
//! HTTP/1 response. Names not in the map (`x-cos-*`) stay lower case.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http::Extensions;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Header names as COS spells them.
const CANONICAL: &[&str] = &[
    "Accept-Ranges",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Cache-Control",
    "Connection",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Range",
    "Content-Type",
    "Date",
    "ETag",
    "Expires",
    "Last-Modified",
    "Location",
    "Retry-After",
    "Server",
    "Vary",
];

/// Extensions that make hyper write [`CANONICAL`] names in COS's case.
/// Falls back to empty extensions (lower-case names) if the probe fails.
pub async fn canonical_case_extensions() -> Extensions {
    match probe().await {
        Ok(extensions) => extensions,
        Err(err) => {
            tracing::warn!(error = %err, "header case probe failed; headers will be lower case");
            Extensions::new()
        }
    }
}

async fn probe() -> std::io::Result<Extensions> {
    let (mut client, server) = tokio::io::duplex(16 * 1024);
    let captured: Arc<Mutex<Option<Extensions>>> = Arc::default();
    let sink = captured.clone();
    let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
        *sink.lock().expect("probe lock") = Some(request.extensions().clone());
        async {
            Ok::<_, Infallible>(http::Response::new(
                http_body_util::Empty::<bytes::Bytes>::new(),
            ))
        }
    });
    let connection = tokio::spawn(async move {
        hyper::server::conn::http1::Builder::new()
            .preserve_header_case(true)
            .serve_connection(TokioIo::new(server), service)
            .await
    });
    let mut request = String::from("GET / HTTP/1.1\r\nHost: probe\r\n");
    for name in CANONICAL
        .iter()
        .filter(|n| !matches!(**n, "Content-Length" | "Connection"))
    {
        request.push_str(&format!("{name}: x\r\n"));
    }
    request.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    client.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    client.read_to_end(&mut response).await?;
    let _ = connection.await;
    let extensions = captured.lock().expect("probe lock").take();
    extensions.ok_or_else(|| std::io::Error::other("the probe request was not served"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn responses_carry_cos_spelling() {
        let extensions = canonical_case_extensions().await;
        let (mut client, server) = tokio::io::duplex(16 * 1024);
        let service = service_fn(move |_request: http::Request<hyper::body::Incoming>| {
            let extensions = extensions.clone();
            async move {
                let mut response =
                    http::Response::new(http_body_util::Empty::<bytes::Bytes>::new());
                response
                    .headers_mut()
                    .insert("etag", "\"x\"".parse().unwrap());
                response
                    .headers_mut()
                    .insert("x-cos-request-id", "id".parse().unwrap());
                *response.extensions_mut() = extensions;
                Ok::<_, Infallible>(response)
            }
        });
        tokio::spawn(
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service),
        );
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        client.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert!(text.contains("\r\nETag: \"x\"\r\n"), "{text}");
        assert!(text.contains("\r\nContent-Length: 0\r\n"), "{text}");
        assert!(text.contains("\r\nx-cos-request-id: id\r\n"), "{text}");
    }
}
