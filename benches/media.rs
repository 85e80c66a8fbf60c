//! Cost of each snapshot stage — open (probe + stream info), find the frame
//! (keyframe / exact) on a fresh or an already opened video (seek + decode,
//! as a repeated request through the open cache), render (scale + rotate),
//! encode (JPEG / PNG) — and of the whole snapshot, on `fixtures/demo.mp4` (640x360) and, when
//! `FRAMEGATE_LARGE_FIXTURES=DIR` points at `fixtures/make.sh large DIR`,
//! on the 1080p sample.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{criterion_group, criterion_main, Criterion};
use framegate::media::source::FileSource;
use framegate::media::{
    encode, render, snapshot, snapshot_of, ImageFormat, Limits, SeekMode, SnapshotParams, Video,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn limits() -> Limits {
    Limits::with_timeout(Duration::from_secs(600))
}

fn open(path: &Path) -> Video {
    Video::open(Box::new(FileSource::open(path).unwrap()), &limits()).unwrap()
}

fn stages(c: &mut Criterion, label: &str, path: &Path, time: f64) {
    let mut group = c.benchmark_group(label);
    group.sample_size(10);
    group.bench_function("open", |b| b.iter(|| open(path)));
    for mode in [SeekMode::Keyframe, SeekMode::ExactFrame] {
        group.bench_function(format!("open + frame_at {time} {mode:?}"), |b| {
            b.iter(|| open(path).frame_at(time, mode).unwrap())
        });
    }
    for mode in [SeekMode::Keyframe, SeekMode::ExactFrame] {
        let limits = Limits {
            decode_threads: mode.decode_threads(),
            ..limits()
        };
        // As a request through the open cache: a fresh decoder on the
        // opened container, then the work.
        let mut video = Some(open(path));
        let mut reopened = |work: &mut dyn FnMut(&mut Video)| {
            let mut v = video
                .take()
                .unwrap()
                .into_opened()
                .into_video(&limits)
                .unwrap();
            work(&mut v);
            video = Some(v);
        };
        group.bench_function(format!("opened: seek + frame_at {time} {mode:?}"), |b| {
            b.iter(|| {
                reopened(&mut |v| {
                    v.frame_at(time, mode).unwrap();
                })
            })
        });
        let params = SnapshotParams {
            mode,
            ..SnapshotParams::at(time)
        };
        group.bench_function(format!("opened: snapshot {time} {mode:?} jpeg"), |b| {
            b.iter(|| {
                reopened(&mut |v| {
                    snapshot_of(v, &params, &limits).unwrap();
                })
            })
        });
    }
    let frame = open(path).frame_at(time, SeekMode::ExactFrame).unwrap();
    for format in [ImageFormat::Jpeg, ImageFormat::Png] {
        let params = SnapshotParams {
            format,
            ..SnapshotParams::at(time)
        };
        group.bench_function(format!("render {format:?} own size"), |b| {
            b.iter(|| render(&frame, &params, 4096).unwrap())
        });
        let small = SnapshotParams {
            width: 320,
            ..params
        };
        group.bench_function(format!("render {format:?} width 320"), |b| {
            b.iter(|| render(&frame, &small, 4096).unwrap())
        });
        let picture = render(&frame, &params, 4096).unwrap();
        group.bench_function(format!("encode {format:?} own size"), |b| {
            b.iter(|| encode(&picture, format, 85).unwrap())
        });
    }
    for mode in [SeekMode::Keyframe, SeekMode::ExactFrame] {
        let params = SnapshotParams {
            mode,
            ..SnapshotParams::at(time)
        };
        group.bench_function(format!("snapshot {time} {mode:?} jpeg"), |b| {
            b.iter(|| {
                snapshot(
                    Box::new(FileSource::open(path).unwrap()),
                    &params,
                    &limits(),
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

fn media(c: &mut Criterion) {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo.mp4");
    stages(c, "demo 640x360", &demo, 5.0);
    if let Some(dir) = std::env::var_os("FRAMEGATE_LARGE_FIXTURES") {
        let sample: PathBuf = Path::new(&dir).join("sample_1080p.mp4");
        stages(c, "sample 1080p", &sample, 5.0);
    }
}

criterion_group!(benches, media);
criterion_main!(benches);
