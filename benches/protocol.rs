//! Cost of the pure protocol steps every request pays: routing, range
//! parsing, and finding and verifying a signature (COS q-sign and S3 SigV4
//! pre-signed URLs, as web pages embed them).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::time::{Duration, SystemTime};

use framegate::config::CredentialConfig;
use framegate::presign::{presign, PresignRequest, Style};
use framegate::proto::range;
use framegate::proto::route::{route, Addressing};
use framegate::proto::sign::{parse_authorization, RequestParts};
use http::{HeaderMap, HeaderValue, Method, Uri};

fn routing(c: &mut Criterion) {
    let buckets = vec!["demo-1250000000".to_owned(), "media-1250000000".to_owned()];
    let addressing = Addressing {
        domain: "myqcloud.com",
        default_bucket: "demo-1250000000",
        buckets: &buckets,
    };
    let headers = HeaderMap::new();
    c.bench_function("route snapshot (virtual host)", |b| {
        b.iter(|| {
            route(
                addressing,
                &Method::GET,
                Some(black_box("media-1250000000.cos.ap-guangzhou.myqcloud.com")),
                black_box("/videos/%E4%B8%AD/clip.mp4"),
                Some(black_box(
                    "ci-process=snapshot&time=1.5&width=320&format=jpg",
                )),
                &headers,
            )
        })
    });
    c.bench_function("route object (default bucket)", |b| {
        b.iter(|| {
            route(
                addressing,
                &Method::GET,
                Some(black_box("127.0.0.1:8080")),
                black_box("/a/b/c.mp4"),
                None,
                &headers,
            )
        })
    });
    c.bench_function("parse range", |b| {
        b.iter(|| range::parse(Some(black_box("bytes=1048576-2097151")), 1 << 30))
    });
}

fn signatures(c: &mut Criterion) {
    let credential = CredentialConfig {
        secret_id: "AKIDbenchmarkbenchmarkbenchmark".to_owned(),
        secret_key: "benchmark-secret-key-benchmark-secret".to_owned(),
        security_token: None,
        allow: Vec::new(),
    };
    let now = SystemTime::now();
    let params = [
        ("ci-process".to_owned(), "snapshot".to_owned()),
        ("time".to_owned(), "1.5".to_owned()),
        ("width".to_owned(), "320".to_owned()),
    ];
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::HOST,
        HeaderValue::from_static("127.0.0.1:8080"),
    );
    for (style, label) in [(Style::Cos, "COS q-sign"), (Style::SigV4, "SigV4")] {
        let request = PresignRequest {
            endpoint: "http://127.0.0.1:8080",
            method: "GET",
            bucket: Some("demo-1250000000"),
            key: "videos/clip.mp4",
            params: &params,
            expires_in: Duration::from_secs(3600),
            region: "ap-guangzhou",
        };
        let url = presign(&credential, &request, style, now).unwrap();
        let uri: Uri = url.parse().unwrap();
        let uri: Uri = uri.path_and_query().unwrap().as_str().parse().unwrap();
        let parts = RequestParts {
            method: &Method::GET,
            uri: &uri,
            headers: &headers,
        };
        c.bench_function(
            &format!("parse + verify pre-signed snapshot URL ({label})"),
            |b| {
                b.iter(|| {
                    let auth = parse_authorization(black_box(&parts)).unwrap().unwrap();
                    auth.verify(
                        &parts,
                        None,
                        &credential.secret_key,
                        now,
                        Duration::from_secs(900),
                    )
                    .unwrap()
                })
            },
        );
    }
}

/// What metrics add to each request: one histogram observation labelled by
/// operation and status class (recording on), and the relaxed load it
/// costs when off.
fn metrics(c: &mut Criterion) {
    use framegate::metrics;
    use std::time::Duration;
    c.bench_function("metrics: record one request (off)", |b| {
        b.iter(|| {
            metrics::request(
                black_box("GetObject"),
                black_box(200),
                Duration::from_micros(90),
            )
        })
    });
    metrics::enable();
    c.bench_function("metrics: record one request (on)", |b| {
        b.iter(|| {
            metrics::request(
                black_box("GetObject"),
                black_box(200),
                Duration::from_micros(90),
            )
        })
    });
    c.bench_function("metrics: render one scrape", |b| {
        b.iter(|| black_box(metrics::render().len()))
    });
}

criterion_group!(benches, routing, signatures, metrics);
criterion_main!(benches);
