//! Cost of the pure protocol steps every request pays: routing and range
//! parsing.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use framegate::proto::range;
use framegate::proto::route::{route, Addressing};
use http::{HeaderMap, Method};

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

criterion_group!(benches, routing);
criterion_main!(benches);
