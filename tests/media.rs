//! The media pipeline on the fixtures in `fixtures/` (made by
//! `fixtures/make.sh`), called directly (no HTTP).
//!
//! Pictures are checked by content against references the `ffmpeg` command
//! line extracts by frame index (`select=eq(n\,N)`), and frame indices come
//! from `ffprobe`: the frame shown at `time` is the last one whose
//! presentation timestamp is at or before it; the keyframe is the last
//! packet flagged as a keyframe at or before it.

use framegate::media::source::{ByteSource, CountingSource, FileSource, MemorySource};
use framegate::media::{
    probe, snapshot, snapshot_of, EncodedImage, ExactRuns, ImageFormat, Limits, MediaError,
    OpenedVideo, ParkedVideos, ParkingBounds, Rotate, SeekMode, SnapshotParams, Video,
};
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn source(path: &Path) -> Box<dyn ByteSource> {
    Box::new(FileSource::open(path).expect("open fixture"))
}

fn limits() -> Limits {
    Limits::with_timeout(Duration::from_secs(60))
}

/// The limits exact-mode requests decode under: threads per core, no
/// error concealment, unreferenced reference pictures cut.
fn exact_limits() -> Limits {
    Limits {
        decode_threads: SeekMode::ExactFrame.decode_threads(),
        conceal_errors: false,
        ..limits()
    }
}

fn run(path: &Path, params: &SnapshotParams) -> Result<EncodedImage, MediaError> {
    snapshot(source(path), params, &limits())
}

fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json(program: &str, args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&tool(program, args)).expect("tool JSON")
}

/// What ffprobe says about the first video stream.
struct Timeline {
    /// Numerator and denominator of the time base.
    tb: (i64, i64),
    /// Timestamp of `time = 0` (the container start).
    origin: i64,
    /// Presentation timestamps of the decoded frames, in output order.
    frames: Vec<i64>,
    /// Timestamps of packets flagged as keyframes.
    keys: Vec<i64>,
    width: u32,
    height: u32,
}

fn as_i64(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}

fn timeline(path: &Path) -> Timeline {
    let p = path.to_str().unwrap();
    let info = json(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=time_base,width,height:format=start_time",
            "-of",
            "json",
            p,
        ],
    );
    let stream = &info["streams"][0];
    let (num, den) = stream["time_base"]
        .as_str()
        .unwrap()
        .split_once('/')
        .unwrap();
    let tb = (num.parse::<i64>().unwrap(), den.parse::<i64>().unwrap());
    let start: f64 = info["format"]["start_time"]
        .as_str()
        .map_or(0.0, |s| s.parse().unwrap());
    let origin = (start * tb.1 as f64 / tb.0 as f64).round() as i64;
    let probed = json(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=best_effort_timestamp,pts",
            "-of",
            "json",
            p,
        ],
    );
    // A frame without any timestamp (AVI's last frame) follows its
    // predecessor at the same interval.
    let mut frames: Vec<i64> = Vec::new();
    for f in probed["frames"].as_array().unwrap() {
        let ts = as_i64(&f["best_effort_timestamp"]).or_else(|| as_i64(&f["pts"]));
        let ts = ts.unwrap_or_else(|| match frames[..] {
            [.., a, b] => 2 * b - a,
            [b] => b + 1,
            [] => 0,
        });
        frames.push(ts);
    }
    let packets = json(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,flags",
            "-of",
            "json",
            p,
        ],
    );
    let keys = packets["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["flags"].as_str().unwrap_or("").contains('K'))
        .filter_map(|k| as_i64(&k["pts"]).or_else(|| as_i64(&k["dts"])))
        .collect();
    Timeline {
        tb,
        origin,
        frames,
        keys,
        width: stream["width"].as_u64().unwrap() as u32,
        height: stream["height"].as_u64().unwrap() as u32,
    }
}

impl Timeline {
    fn target(&self, time: f64) -> i64 {
        self.origin + (time * self.tb.1 as f64 / self.tb.0 as f64).round() as i64
    }

    /// Index of the frame on screen at `time` (the first frame before it).
    fn exact_index(&self, time: f64) -> usize {
        let t = self.target(time);
        let mut best: Option<(usize, i64)> = None;
        for (i, &pts) in self.frames.iter().enumerate() {
            if pts <= t && best.is_none_or(|(_, b)| pts >= b) {
                best = Some((i, pts));
            }
        }
        best.map_or(0, |(i, _)| i)
    }

    /// Whether every keyframe's timestamp is a decoded frame's timestamp
    /// (not so in AVI, where FFmpeg dates frames by later packets).
    fn keys_match_frames(&self) -> bool {
        self.keys.iter().all(|k| self.frames.contains(k))
    }

    /// The last keyframe at or before `time`: the index of its frame (among
    /// all frames, or among keyframes when their timestamps do not match
    /// frames) and its timestamp.
    fn key_index(&self, time: f64) -> (usize, i64) {
        let t = self.target(time);
        let mut keys = self.keys.clone();
        keys.sort_unstable();
        let i = keys.iter().filter(|&&k| k <= t).count().saturating_sub(1);
        let key = keys[i];
        match self.frames.iter().position(|&f| f == key) {
            Some(frame) if self.keys_match_frames() => (frame, key),
            _ => (i, key),
        }
    }

    fn seconds(&self, ts: i64) -> f64 {
        (ts - self.origin) as f64 * self.tb.0 as f64 / self.tb.1 as f64
    }

    fn duration_seconds(&self) -> f64 {
        self.seconds(*self.frames.iter().max().unwrap())
    }
}

/// Frames `indices` (ascending, distinct) as RGB24 at the coded size, with
/// or without ffmpeg's own rotation.
/// The pipeline's conversion flags: with them ffmpeg's RGB is bit-identical
/// to ours, so any difference is a different picture.
const SWS_FLAGS: &str = "bicubic+accurate_rnd+full_chroma_int";

fn reference_frames(
    path: &Path,
    indices: &[usize],
    autorotate: bool,
    keyframes_only: bool,
) -> Vec<Vec<u8>> {
    let select = indices
        .iter()
        .map(|i| format!("eq(n\\,{i})"))
        .collect::<Vec<_>>()
        .join("+");
    let filter = format!("select={select},scale=flags={SWS_FLAGS},format=rgb24");
    let p = path.to_str().unwrap();
    let mut args = vec!["-v", "error"];
    if !autorotate {
        args.push("-noautorotate");
    }
    if keyframes_only {
        args.extend(["-skip_frame", "nokey"]);
    }
    args.extend([
        "-i",
        p,
        "-map",
        "0:v:0",
        "-vf",
        &filter,
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]);
    let raw = tool("ffmpeg", &args);
    assert_eq!(raw.len() % indices.len(), 0, "reference frame sizes");
    raw.chunks(raw.len() / indices.len())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Decodes a snapshot back to RGB24.
fn pixels(image: &EncodedImage) -> Vec<u8> {
    match image.content_type {
        "image/jpeg" => {
            let img = turbojpeg::decompress(&image.bytes, turbojpeg::PixelFormat::RGB).unwrap();
            assert_eq!(
                (img.width as u32, img.height as u32),
                (image.width, image.height)
            );
            img.pixels
        }
        "image/png" => {
            let decoder = png::Decoder::new(&image.bytes[..]);
            let mut reader = decoder.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            let info = reader.next_frame(&mut buf).unwrap();
            assert_eq!(info.color_type, png::ColorType::Rgb);
            assert_eq!((info.width, info.height), (image.width, image.height));
            buf.truncate(info.buffer_size());
            buf
        }
        other => panic!("unexpected content type {other}"),
    }
}

/// Mean absolute difference per channel value.
fn mad(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "picture sizes differ");
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.len() as f64
}

fn params(time: f64, mode: SeekMode) -> SnapshotParams {
    SnapshotParams {
        mode,
        format: ImageFormat::Png,
        rotate: Rotate::Off,
        ..SnapshotParams::at(time)
    }
}

/// For each time, the snapshot (PNG at the coded size, no rotation) equals
/// the reference frame ffprobe/ffmpeg say it should show, and is closer to
/// it than to its neighbours.
fn check_frames(name: &str, mode: SeekMode, times: &[f64]) {
    let path = fixture(name);
    let tl = timeline(&path);
    let (expected, expected_ts): (Vec<usize>, Vec<i64>) = times
        .iter()
        .map(|&t| match mode {
            SeekMode::ExactFrame => {
                let i = tl.exact_index(t);
                (i, tl.frames[i])
            }
            SeekMode::Keyframe => tl.key_index(t),
        })
        .unzip();
    let mut wanted: Vec<usize> = expected
        .iter()
        .flat_map(|&i| [i.saturating_sub(1), i, i + 1])
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    // Keyframe pictures come from decoding keyframes only
    // (`-skip_frame nokey`), indexed among themselves.
    let keyframes_only = mode == SeekMode::Keyframe && !tl.keys_match_frames();
    let count = if keyframes_only {
        tl.keys.len()
    } else {
        tl.frames.len()
    };
    for w in &mut wanted {
        *w = (*w).min(count - 1);
    }
    wanted.dedup();
    let refs = reference_frames(&path, &wanted, false, keyframes_only);
    let reference = |i: usize| &refs[wanted.binary_search(&i).unwrap()];
    for ((&time, &index), &ts) in times.iter().zip(&expected).zip(&expected_ts) {
        let p = SnapshotParams {
            width: tl.width,
            height: tl.height,
            ..params(time, mode)
        };
        let image = run(&path, &p).unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        if mode == SeekMode::ExactFrame {
            // As the server decodes exact frames: reference pictures nothing
            // wanted uses are cut; the picture is the same.
            let planned = snapshot(source(&path), &p, &exact_limits())
                .unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
            assert!(
                planned.bytes == image.bytes,
                "{name} at {time}: cutting unreferenced pictures changed the picture"
            );
        }
        let got = pixels(&image);
        let d = mad(&got, reference(index));
        assert!(
            d < 1.0,
            "{name} {mode:?} at {time}: frame {index} differs by {d:.2}"
        );
        for n in [index.wrapping_sub(1), index + 1] {
            if wanted.binary_search(&n).is_ok() && n != index {
                let dn = mad(&got, reference(n));
                assert!(dn > d + 1.0, "{name} {mode:?} at {time}: neighbour {n} ({dn:.2}) as close as frame {index} ({d:.2})");
            }
        }
        let pts = tl.seconds(ts);
        // AVI stores no presentation times: with B-frames FFmpeg dates
        // frames by the packets around them, so the reported time depends on
        // how far decoding ran (a few frames at most; the pixels above are
        // checked exactly).
        let tolerance = if name.ends_with(".avi") { 0.125 } else { 1e-3 };
        assert!(
            (image.pts_seconds - pts).abs() < tolerance,
            "{name} at {time}: pts {} != {pts}",
            image.pts_seconds
        );
    }
}

/// Times that hit frame starts, the middle of frame intervals, the start and
/// the end of the fixture.
fn times_for(name: &str) -> Vec<f64> {
    let d = timeline(&fixture(name)).duration_seconds();
    vec![0.0, 0.05, 1.0, 1.23, 2.0, d * 0.77, d - 0.01, d]
}

fn check_codec(name: &str) {
    let times = times_for(name);
    check_frames(name, SeekMode::ExactFrame, &times);
    check_frames(name, SeekMode::Keyframe, &times);
}

// ------------------------------------------------- every codec/container

#[test]
fn h264_bframes_long_gop_mp4() {
    check_frames(
        "h264_bframes.mp4",
        SeekMode::ExactFrame,
        &[0.0, 0.04, 0.059, 3.3, 7.77, 9.9, 9.96],
    );
    check_frames("h264_bframes.mp4", SeekMode::Keyframe, &[0.0, 5.0, 9.96]);
}

#[test]
fn h264_moov_at_end() {
    check_codec("h264_moov_end.mp4");
}

#[test]
fn h264_open_gop_mkv() {
    check_frames(
        "h264_opengop.mkv",
        SeekMode::ExactFrame,
        &[0.0, 1.9, 1.95, 2.0, 2.03, 2.07, 3.99],
    );
    check_frames(
        "h264_opengop.mkv",
        SeekMode::Keyframe,
        &[1.99, 2.0, 2.1, 3.99],
    );
}

#[test]
fn hevc_mp4() {
    check_codec("hevc.mp4");
}

#[test]
fn vp9_webm() {
    check_codec("vp9.webm");
}

#[test]
fn av1_mp4() {
    if !fixture("av1.mp4").exists() {
        eprintln!("no av1.mp4 (no AV1 encoder when the fixtures were made)");
        return;
    }
    check_codec("av1.mp4");
}

#[test]
fn mpeg4_part2_avi() {
    check_codec("mpeg4.avi");
}

#[test]
fn h264_flv() {
    check_codec("h264.flv");
}

#[test]
fn motion_jpeg_avi_full_range() {
    check_codec("mjpeg.avi");
}

#[test]
fn mpeg2_program_stream() {
    check_codec("mpeg2.mpg");
}

#[test]
fn mpegts_with_non_zero_start() {
    check_codec("offset.ts");
    let image = run(&fixture("offset.ts"), &params(0.0, SeekMode::ExactFrame)).unwrap();
    assert_eq!(
        image.pts_seconds, 0.0,
        "time is relative to the container start"
    );
}

#[test]
fn variable_frame_rate() {
    let tl = timeline(&fixture("vfr.mp4"));
    // Midpoints of every interval between frames, and every frame start.
    let mut times = Vec::new();
    for w in tl.frames.windows(2).take(15) {
        let (a, b) = (tl.seconds(w[0]), tl.seconds(w[1]));
        times.push(a);
        times.push((a + b) / 2.0);
    }
    check_frames("vfr.mp4", SeekMode::ExactFrame, &times);
}

#[test]
fn time_past_the_end_gives_the_last_frame() {
    for name in ["h264_bframes.mp4", "vp9.webm", "offset.ts", "mpeg4.avi"] {
        check_frames(name, SeekMode::ExactFrame, &[1000.0]);
        check_frames(name, SeekMode::Keyframe, &[1000.0]);
        let tl = timeline(&fixture(name));
        assert_eq!(tl.exact_index(1000.0), tl.frames.len() - 1);
    }
}

// ------------------------------------------------- rotation, SAR, sizes

/// Mean colour of a `size` x `size` square at (x, y) of an RGB picture.
fn mean_colour(rgb: &[u8], width: u32, x: u32, y: u32, size: u32) -> [f64; 3] {
    let mut sum = [0u64; 3];
    for yy in y..y + size {
        for xx in x..x + size {
            let at = ((yy * width + xx) * 3) as usize;
            for c in 0..3 {
                sum[c] += u64::from(rgb[at + c]);
            }
        }
    }
    sum.map(|s| s as f64 / f64::from(size * size))
}

fn is_white(c: [f64; 3]) -> bool {
    c.iter().all(|&v| v > 200.0)
}

/// The white square sits in the top-left corner of the coded picture; after
/// the display matrix it must be where a player shows it.
#[test]
fn rotation_moves_the_top_left_marker() {
    // (file, corner of the marker after rotation: (right, bottom))
    let cases = [
        ("rotate90.mp4", (true, false)),
        ("rotate180.mp4", (true, true)),
        ("rotate270.mp4", (false, true)),
    ];
    for (name, (right, bottom)) in cases {
        let path = fixture(name);
        let p = SnapshotParams {
            format: ImageFormat::Png,
            ..SnapshotParams::at(0.5)
        };
        let image = run(&path, &p).unwrap();
        let (w, h) = (image.width, image.height);
        let rgb = pixels(&image);
        let x = if right { w - 16 } else { 4 };
        let y = if bottom { h - 16 } else { 4 };
        assert!(
            is_white(mean_colour(&rgb, w, x, y, 12)),
            "{name}: marker not at right={right} bottom={bottom}"
        );

        // Same picture as ffmpeg's own autorotation.
        let tl = timeline(&path);
        let index = tl.exact_index(0.5);
        let reference = &reference_frames(&path, &[index], true, false)[0];
        let d = mad(&rgb, reference);
        assert!(d < 2.5, "{name}: differs from ffmpeg's rotation by {d:.2}");

        // rotate=off: the coded picture, marker top-left.
        let off = run(
            &path,
            &SnapshotParams {
                rotate: Rotate::Off,
                ..p
            },
        )
        .unwrap();
        assert_eq!((off.width, off.height), (320, 180));
        assert!(
            is_white(mean_colour(&pixels(&off), 320, 4, 4, 12)),
            "{name}: rotate=off moved the marker"
        );
    }
}

fn size_of(name: &str, width: u32, height: u32, rotate: Rotate) -> (u32, u32) {
    let p = SnapshotParams {
        width,
        height,
        rotate,
        ..SnapshotParams::at(1.0)
    };
    let image = run(&fixture(name), &p).unwrap();
    let decoded = turbojpeg::decompress(&image.bytes, turbojpeg::PixelFormat::RGB).unwrap();
    assert_eq!(
        (decoded.width as u32, decoded.height as u32),
        (image.width, image.height)
    );
    (image.width, image.height)
}

#[test]
fn output_size_rules_apply_to_the_displayed_picture() {
    let auto = Rotate::Auto;
    // Square pixels.
    assert_eq!(size_of("demo.mp4", 0, 0, auto), (640, 360));
    assert_eq!(size_of("demo.mp4", 320, 0, auto), (320, 180));
    assert_eq!(size_of("demo.mp4", 0, 90, auto), (160, 90));
    assert_eq!(size_of("demo.mp4", 100, 100, auto), (100, 100));
    assert_eq!(size_of("demo.mp4", 333, 0, auto), (333, 187));
    // Sample aspect ratio 4:3 on 320x240: displayed 427x240.
    assert_eq!(size_of("anamorphic.mp4", 0, 0, auto), (427, 240));
    assert_eq!(size_of("anamorphic.mp4", 0, 120, auto), (214, 120));
    assert_eq!(size_of("anamorphic.mp4", 200, 0, auto), (200, 112));
    assert_eq!(size_of("anamorphic.mp4", 320, 240, auto), (320, 240));
    // Rotated 90 degrees: displayed 180x320 unless rotate=off.
    assert_eq!(size_of("rotate90.mp4", 0, 0, auto), (180, 320));
    assert_eq!(size_of("rotate90.mp4", 90, 0, auto), (90, 160));
    assert_eq!(size_of("rotate90.mp4", 0, 0, Rotate::Off), (320, 180));
    assert_eq!(size_of("rotate90.mp4", 0, 90, Rotate::Off), (160, 90));
    assert_eq!(size_of("rotate180.mp4", 0, 0, auto), (320, 180));
}

#[test]
fn anamorphic_picture_is_stretched_not_cropped() {
    let path = fixture("anamorphic.mp4");
    let tl = timeline(&path);
    let index = tl.exact_index(1.0);
    // ffmpeg reference stretched to the displayed size with the same filter.
    let raw = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-vf",
            &format!(
                "select=eq(n\\,{index}),scale=427:240:flags=bicubic+accurate_rnd+full_chroma_int"
            ),
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    );
    let image = run(&path, &params(1.0, SeekMode::ExactFrame)).unwrap();
    assert_eq!((image.width, image.height), (427, 240));
    let d = mad(&pixels(&image), &raw);
    assert!(d < 2.5, "differs from a 427x240 stretch by {d:.2}");
}

#[test]
fn output_sizes_out_of_range_are_refused() {
    for (w, h) in [(4097, 0), (0, 5000), (10000, 10000)] {
        let p = SnapshotParams {
            width: w,
            height: h,
            ..SnapshotParams::at(1.0)
        };
        let err = run(&fixture("demo.mp4"), &p).unwrap_err();
        assert!(
            matches!(err, MediaError::OutputSizeOutOfRange { .. }),
            "{w}x{h}: {err:?}"
        );
    }
    // A computed side over the bound: 4000 wide for a 9:16 picture.
    let p = SnapshotParams {
        width: 4000,
        ..SnapshotParams::at(0.0)
    };
    let err = run(&fixture("rotate90.mp4"), &p).unwrap_err();
    assert!(
        matches!(err, MediaError::OutputSizeOutOfRange { height: 7111, .. }),
        "{err:?}"
    );
}

#[test]
fn png_and_jpeg_show_the_same_picture() {
    let path = fixture("demo.mp4");
    let jpeg = run(&path, &SnapshotParams::at(3.0)).unwrap();
    let png = run(
        &path,
        &SnapshotParams {
            format: ImageFormat::Png,
            ..SnapshotParams::at(3.0)
        },
    )
    .unwrap();
    assert_eq!(jpeg.content_type, "image/jpeg");
    assert_eq!(png.content_type, "image/png");
    assert_eq!(&jpeg.bytes[..3], &[0xff, 0xd8, 0xff]);
    assert_eq!(&png.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!((jpeg.width, jpeg.height), (png.width, png.height));
    assert_eq!(jpeg.pts_seconds, png.pts_seconds);
    let d = mad(&pixels(&jpeg), &pixels(&png));
    assert!(d < 4.0, "JPEG and PNG differ by {d:.2}");
}

#[test]
fn jpeg_quality_changes_the_size() {
    let path = fixture("demo.mp4");
    let at = |q| {
        let l = Limits {
            jpeg_quality: q,
            ..limits()
        };
        snapshot(source(&path), &SnapshotParams::at(2.0), &l)
            .unwrap()
            .bytes
            .len()
    };
    assert!(at(30) < at(85) && at(85) < at(98));
}

/// Frame `index` of `path` as ffmpeg converts it to JPEG's full-range 4:2:0
/// (Y, then Cb, then Cr, rows unpadded).
fn reference_yuvj420(path: &Path, index: usize) -> Vec<u8> {
    let filter = format!("select=eq(n\\,{index}),scale=out_range=full");
    tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:v:0",
            "-vf",
            &filter,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuvj420p",
            "-",
        ],
    )
}

/// A full-size JPEG's planes hold the frame's samples in JPEG's full range:
/// limited-range video (16-235) is expanded, full-range video (Motion JPEG)
/// is taken as it is. Compared plane by plane with ffmpeg's conversion, at
/// quality 100 so that the encoder's loss stays far below a range error
/// (which would shift every dark and bright sample by up to 16 levels).
#[test]
fn full_size_jpeg_holds_full_range_samples() {
    for name in ["h264_bframes.mp4", "mjpeg.avi"] {
        let path = fixture(name);
        let l = Limits {
            jpeg_quality: 100,
            ..limits()
        };
        let p = SnapshotParams {
            rotate: Rotate::Off,
            ..SnapshotParams::at(0.0)
        };
        let image = snapshot(source(&path), &p, &l).unwrap();
        assert_eq!(image.content_type, "image/jpeg");
        let ours = turbojpeg::decompress_to_yuv(&image.bytes).unwrap();
        let (w, h) = (ours.width, ours.height);
        assert_eq!((w, h), (320, 240), "{name}");
        assert_eq!(ours.subsamp, turbojpeg::Subsamp::Sub2x2, "{name}");
        let reference = reference_yuvj420(&path, 0);
        let luma = w * h;
        let chroma = (w / 2) * (h / 2);
        assert_eq!(ours.pixels.len(), reference.len(), "{name}: plane sizes");
        let planes = [(0, luma), (luma, chroma), (luma + chroma, chroma)];
        for (plane, (start, len)) in ["Y", "Cb", "Cr"].iter().zip(planes) {
            let a = &ours.pixels[start..start + len];
            let b = &reference[start..start + len];
            let d = mad(a, b);
            let mean = |p: &[u8]| p.iter().map(|&v| f64::from(v)).sum::<f64>() / p.len() as f64;
            let shift = (mean(a) - mean(b)).abs();
            let (lo, hi) = (a.iter().min().unwrap(), a.iter().max().unwrap());
            eprintln!("{name} {plane}: mad {d:.3}, mean shift {shift:.3}, range {lo}-{hi}");
            assert!(d < 1.0, "{name} {plane}: differs from ffmpeg by {d:.3}");
            assert!(shift < 0.25, "{name} {plane}: mean shifted by {shift:.3}");
        }
        // The pattern has black and white: full range reaches both ends.
        let y = &ours.pixels[..luma];
        assert!(
            y.iter().any(|&v| v < 8) && y.iter().any(|&v| v > 247),
            "{name}"
        );
    }
}

/// H.264 encodings whose reference structures differ, and whether
/// reference B-pictures must be cut: with one reference per P-frame
/// (x264's faster presets) nothing but B-frames uses them; with more, a
/// P-frame's list usually holds them and they are decoded.
const REFERENCE_VARIANTS: &[(&str, &str, &str, bool)] = &[
    (
        "ref1_pyramid",
        "ref=1:bframes=3:b-pyramid=normal",
        "mp4",
        true,
    ),
    (
        "ref1_weighted",
        "ref=1:bframes=5:b-pyramid=normal:weightp=2:b-adapt=2",
        "mp4",
        true,
    ),
    (
        "ref1_strict",
        "ref=1:bframes=4:b-pyramid=strict",
        "mp4",
        true,
    ),
    (
        "ref1_slices_cavlc",
        "ref=1:bframes=3:slices=4:cabac=0",
        "mp4",
        true,
    ),
    ("ref1_mbaff", "ref=1:bframes=3:interlaced=1", "mp4", true),
    ("ref1_annex_b", "ref=1:bframes=3", "ts", true),
    (
        "ref3_pyramid",
        "ref=3:bframes=3:b-pyramid=normal",
        "mp4",
        false,
    ),
    (
        "ref6_weighted",
        "ref=6:bframes=5:weightp=2:b-adapt=2",
        "mp4",
        false,
    ),
    (
        "ref2_no_pyramid",
        "ref=2:bframes=2:b-pyramid=none",
        "mp4",
        false,
    ),
];

/// Exact pictures decoded as the server does (reference B-pictures nothing
/// wanted uses cut to their headers, no concealment) equal those of a full
/// decode, byte for byte, on every variant, also when a parked decoder
/// continues forwards; the cut happens where the stream has such pictures.
#[test]
fn cutting_unreferenced_pictures_keeps_every_picture_exact() {
    let dir = std::env::temp_dir().join(format!("framegate-refcut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for &(name, x264, ext, cuts) in REFERENCE_VARIANTS {
        let path = dir.join(format!("{name}.{ext}"));
        let settings = format!("keyint=150:min-keyint=150:scenecut=0:threads=1:{x264}");
        tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25:duration=6,noise=alls=12:allf=t",
                "-c:v",
                "libx264",
                "-preset",
                "medium",
                "-crf",
                "28",
                "-pix_fmt",
                "yuv420p",
                "-x264-params",
                &settings,
                path.to_str().unwrap(),
            ],
        );
        let pictures_cut = assert_cut_pictures_exact(name, &path);
        if cuts {
            assert!(pictures_cut > 0, "{name}: nothing was cut");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asserts that exact pictures decoded as the server does (reference
/// pictures nothing wanted uses cut to their headers, no concealment) equal
/// those of a full decode with the same threads, byte for byte, at many
/// times of the 6 s clip at `path`, also when a parked decoder continues
/// forwards or goes back; returns how many pictures were cut.
fn assert_cut_pictures_exact(name: &str, path: &Path) -> u64 {
    // Concealment turns the plan off (and changes nothing in clean data).
    let full_limits = Limits {
        conceal_errors: true,
        ..exact_limits()
    };
    let run = |path: &Path, p: &SnapshotParams| snapshot(source(path), p, &full_limits);
    let times = [0.0, 0.52, 1.0, 2.36, 3.0, 4.44, 5.0, 5.96, 3.48, 1.2];
    let mut planned = Video::open(source(path), &exact_limits()).unwrap();
    for &time in &times {
        let p = params(time, SeekMode::ExactFrame);
        let full = run(path, &p).unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        let cut = snapshot_of(&mut planned, &p, &exact_limits())
            .unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        assert_eq!(full.pts_seconds, cut.pts_seconds, "{name} at {time}");
        assert!(
            full.bytes == cut.bytes,
            "{name} at {time}: the picture changed when unreferenced pictures were cut"
        );
    }
    // Scrubbing forwards through both groups of pictures continues a
    // decoder that cut pictures, with packets still waiting in its plan;
    // then backwards.
    let mut scrub = Video::open(source(path), &exact_limits()).unwrap();
    scrub.set_exact_runs(ExactRuns::Resumable);
    let mut continued = 0;
    let steps = (0..40).chain((0..40).rev().step_by(7));
    for (i, step) in steps.enumerate() {
        let time = f64::from(step) * 0.149;
        continued += usize::from(i < 40 && scrub.continues_to(time));
        let p = params(time, SeekMode::ExactFrame);
        let full = run(path, &p).unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        let got = snapshot_of(&mut scrub, &p, &exact_limits())
            .unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        assert_eq!(full.pts_seconds, got.pts_seconds, "{name} at {time}");
        assert!(
            full.bytes == got.bytes,
            "{name} at {time}: a continued decode changed the picture"
        );
    }
    assert!(continued >= 30, "{name}: {continued} continued");
    let pictures_cut = planned.pictures_cut() + scrub.pictures_cut();
    eprintln!("{name}: {pictures_cut} pictures cut");
    pictures_cut
}

/// HEVC encodings (x265) whose reference structures differ, the container
/// they are written to, and whether pictures must be cut.
const HEVC_REFERENCE_VARIANTS: &[(&str, &str, &str, &str, bool)] = &[
    // The default preset: 3 references, 4 B-frames with pyramid; its
    // P-pictures usually list the B-references.
    ("x265_medium", "medium", "", "mp4", true),
    ("x265_medium_mkv", "medium", "", "mkv", true),
    ("x265_medium_annex_b", "medium", "", "ts", true),
    // One reference: P-pictures list only the previous P-picture.
    ("x265_ref1", "medium", "ref=1", "mp4", true),
    // Weighted prediction tables and wavefront entry points in the slice
    // headers. (x265's `slices=4` at this size writes slices without
    // data, which FFmpeg 5.1 decodes with errors and, with threads,
    // differently from run to run, plan or not: several slices per picture
    // are covered by `hevc_syntax`'s unit tests only.)
    (
        "x265_weighted_wpp",
        "medium",
        "ref=1:weightb=1:wpp=1",
        "mp4",
        true,
    ),
    // Open groups of pictures: runs start at CRA pictures whose RASL
    // pictures the decoder leaves out.
    (
        "x265_open_gop",
        "fast",
        "ref=1:keyint=50:min-keyint=50:open-gop=1",
        "mkv",
        true,
    ),
    ("x265_veryslow", "veryslow", "", "mp4", false),
];

/// Exact HEVC pictures decoded as the server does equal those of a full
/// decode on every x265 variant (MP4, Matroska and MPEG-TS framing), and
/// the B-pyramid of x265's default preset has pictures cut.
#[test]
fn cutting_unreferenced_hevc_pictures_keeps_every_picture_exact() {
    let dir = std::env::temp_dir().join(format!("framegate-hevccut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for &(name, preset, extra, ext, cuts) in HEVC_REFERENCE_VARIANTS {
        let path = dir.join(format!("{name}.{ext}"));
        let settings = format!(
            "pools=none:frame-threads=1:log-level=error:keyint=150:min-keyint=150:scenecut=0:{extra}"
        );
        tool(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=25:duration=6,noise=alls=12:allf=t",
                "-c:v",
                "libx265",
                "-preset",
                preset,
                "-crf",
                "30",
                "-pix_fmt",
                "yuv420p",
                "-x265-params",
                &settings,
                path.to_str().unwrap(),
            ],
        );
        let pictures_cut = assert_cut_pictures_exact(name, &path);
        if cuts {
            assert!(pictures_cut > 0, "{name}: nothing was cut");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------ parked decoders

/// The exact picture at `time` from a fresh open: with
/// `ExactRuns::Resumable` as a request that finds nothing parked decodes it,
/// with `ExactRuns::FromKeyframe` as one does when nothing is ever parked.
fn fresh_exact(path: &Path, time: f64, exact_runs: ExactRuns) -> EncodedImage {
    let mut video = Video::open(source(path), &exact_limits()).unwrap();
    video.set_exact_runs(exact_runs);
    snapshot_of(
        &mut video,
        &params(time, SeekMode::ExactFrame),
        &exact_limits(),
    )
    .unwrap_or_else(|e| panic!("{} at {time}: {e:?}", path.display()))
}

/// A video whose exact decodes stay where they stop, as parked ones do.
fn resumable(path: &Path) -> Video {
    let mut video = Video::open(source(path), &exact_limits()).unwrap();
    video.set_exact_runs(ExactRuns::Resumable);
    video
}

/// Takes the exact picture at each of `times` from one resumable video and
/// checks it equals fresh decodes, with and without parking, byte for byte
/// (PNG of the coded picture) and shows the same frame; returns how many continued from where
/// the last one stopped.
fn check_scrub(name: &str, times: &[f64]) -> usize {
    let path = fixture(name);
    let mut video = resumable(&path);
    let mut continued = 0;
    for &time in times {
        continued += usize::from(video.continues_to(time));
        let p = params(time, SeekMode::ExactFrame);
        let got = snapshot_of(&mut video, &p, &exact_limits())
            .unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        let fresh = fresh_exact(&path, time, ExactRuns::Resumable);
        assert_eq!(got.pts_seconds, fresh.pts_seconds, "{name} at {time}");
        assert!(
            got.bytes == fresh.bytes,
            "{name} at {time}: a continued decode differs from a fresh one"
        );
        let unparked = fresh_exact(&path, time, ExactRuns::FromKeyframe);
        assert_eq!(got.pts_seconds, unparked.pts_seconds, "{name} at {time}");
        assert!(
            got.bytes == unparked.bytes,
            "{name} at {time}: differs from a decode without parking"
        );
    }
    continued
}

/// Forwards through a group of pictures in uneven steps (some inside one
/// frame, some equal), past the end, then backwards, then jumping between
/// groups: every picture equals a fresh decode's.
fn check_scrub_patterns(name: &str, duration: f64) {
    let forwards: Vec<f64> = (0..)
        .map(|i| f64::from(i) * 0.17)
        .take_while(|&t| t < duration + 0.4)
        .chain([duration + 0.4, duration + 1.0])
        .collect();
    let continued = check_scrub(name, &forwards);
    assert!(
        continued * 2 >= forwards.len(),
        "{name}: only {continued} of {} forward steps continued",
        forwards.len()
    );
    let backwards: Vec<f64> = forwards.iter().rev().step_by(3).copied().collect();
    assert_eq!(
        check_scrub(name, &backwards),
        0,
        "{name}: backwards never continues"
    );
    let jumps = [
        1.3,
        1.3,
        0.45,
        0.5,
        duration * 0.6,
        duration * 0.6 + 0.04,
        0.1,
        duration - 0.05,
        duration * 0.3,
        duration * 0.3 + 0.9,
    ];
    check_scrub(name, &jumps);
}

#[test]
fn scrubbing_h264_with_b_pyramid_in_one_long_gop_equals_fresh_decodes() {
    check_scrub_patterns("h264_bframes.mp4", 10.0);
}

#[test]
fn scrubbing_h264_across_gops_equals_fresh_decodes() {
    check_scrub_patterns("demo.mp4", 10.0);
}

#[test]
fn scrubbing_hevc_equals_fresh_decodes() {
    check_scrub_patterns("hevc.mp4", 4.0);
}

#[test]
fn scrubbing_vp9_webm_equals_fresh_decodes() {
    check_scrub_patterns("vp9.webm", 4.0);
}

#[test]
fn scrubbing_av1_equals_fresh_decodes() {
    check_scrub_patterns("av1.mp4", 3.0);
}

/// AV1 temporal units whose frames refresh no reference slot never reach
/// the decoder when another picture is shown at the target: every frame,
/// asked for in the middle of its interval from a fresh decode with and
/// without parking and while scrubbing forwards, equals the `ffmpeg`
/// command line's full decode pixel for pixel, and units were dropped.
#[test]
fn av1_dropped_non_reference_units_change_no_picture() {
    let name = "av1.mp4";
    let path = fixture(name);
    let tl = timeline(&path);
    let all: Vec<usize> = (0..tl.frames.len()).collect();
    let refs = reference_frames(&path, &all, false, false);
    let mut starts = tl.frames.clone();
    starts.sort_unstable();
    let mut scrub = resumable(&path);
    for pair in starts.windows(2) {
        let time = (tl.seconds(pair[0]) + tl.seconds(pair[1])) / 2.0;
        let want = &refs[tl.exact_index(time)];
        let p = params(time, SeekMode::ExactFrame);
        let scrubbed = snapshot_of(&mut scrub, &p, &exact_limits())
            .unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
        for (how, image) in [
            (
                "without parking",
                fresh_exact(&path, time, ExactRuns::FromKeyframe),
            ),
            (
                "with parking",
                fresh_exact(&path, time, ExactRuns::Resumable),
            ),
            ("scrubbing", scrubbed),
        ] {
            assert!(
                pixels(&image) == *want,
                "{name} at {time} {how}: not the full decode's picture"
            );
        }
    }
    let mut deep = Video::open(source(&path), &exact_limits()).unwrap();
    let last = tl.seconds(*starts.last().unwrap());
    snapshot_of(
        &mut deep,
        &params(last, SeekMode::ExactFrame),
        &exact_limits(),
    )
    .unwrap();
    assert!(
        deep.pictures_dropped() > 3,
        "{} dropped",
        deep.pictures_dropped()
    );
}

/// Regression (issue 19): an exact decode started fresh at the open GOP's
/// keyframe, without parking, stopped reading once past the target and
/// drained the decoder, which drops the pictures FFmpeg's H.264 decoder had
/// decoded before the recovery point's keyframe came out (2.1 s gave the
/// keyframe at 2.0 s, not the frame at 2.08 s).
#[test]
fn scrubbing_open_gop_mkv_equals_fresh_decodes() {
    check_scrub_patterns("h264_opengop.mkv", 4.0);
    let path = fixture("h264_opengop.mkv");
    for (time, shown) in [(2.09, 2.08), (2.1, 2.08), (2.17, 2.16)] {
        for exact_runs in [ExactRuns::FromKeyframe, ExactRuns::Resumable] {
            let image = fresh_exact(&path, time, exact_runs);
            assert!(
                (image.pts_seconds - shown).abs() < 1e-6,
                "{exact_runs:?} at {time}: {}",
                image.pts_seconds
            );
        }
    }
}

/// The frame the `ffmpeg` command line's accurate seek (`-ss` before the
/// input) gives at `time`, as RGB24 at the coded size: the first frame
/// shown at or after `time`.
fn ffmpeg_seek_frame(path: &Path, time: f64) -> Vec<u8> {
    let filter = format!("scale=flags={SWS_FLAGS},format=rgb24");
    let t = format!("{time:.3}");
    tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-ss",
            &t,
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:v:0",
            "-vf",
            &filter,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    )
}

/// Every frame of the open GOP's first half second, and every sixth frame
/// elsewhere, asked for at its start and in the middle of its interval:
/// fresh exact decodes with and without parking give the same picture, the
/// one the `ffmpeg` command line seeks to at the frame's start.
#[test]
fn open_gop_exact_frames_match_ffmpeg_with_and_without_parking() {
    let name = "h264_opengop.mkv";
    let path = fixture(name);
    let tl = timeline(&path);
    let mut starts: Vec<i64> = tl.frames.clone();
    starts.sort_unstable();
    let dense = tl.target(1.8)..=tl.target(2.5);
    let chosen: Vec<(usize, i64)> = starts
        .iter()
        .copied()
        .enumerate()
        .filter(|&(i, ts)| dense.contains(&ts) || i % 6 == 0)
        .collect();
    assert!(chosen.len() > 30, "{} frames chosen", chosen.len());
    for (k, ts) in chosen {
        let start = tl.seconds(ts);
        let want = ffmpeg_seek_frame(&path, start);
        let interval = starts.get(k + 1).map_or(0.02, |&n| tl.seconds(n) - start);
        for time in [start, start + interval / 2.0] {
            let unparked = fresh_exact(&path, time, ExactRuns::FromKeyframe);
            let parked = fresh_exact(&path, time, ExactRuns::Resumable);
            assert!(
                (unparked.pts_seconds - start).abs() < 1e-6,
                "{name} at {time}: shows {} not {start}",
                unparked.pts_seconds
            );
            assert_eq!(unparked.pts_seconds, parked.pts_seconds, "{name} at {time}");
            assert!(
                unparked.bytes == parked.bytes,
                "{name} at {time}: parking changes the picture"
            );
            let d = mad(&pixels(&unparked), &want);
            assert!(
                d < 1.0,
                "{name} at {time}: differs from ffmpeg -ss by {d:.2}"
            );
        }
    }
}

#[test]
fn scrubbing_mpegts_without_index_equals_fresh_decodes() {
    check_scrub_patterns("offset.ts", 4.0);
}

/// After a seek the pipeline tells the source which bytes come next, from
/// the index: the keyframe packet alone for a keyframe snapshot, the packets
/// up to just past the target for an exact one (so a remote store serves
/// them in one round trip).
#[test]
fn seeks_hint_the_bytes_the_index_says_come_next() {
    let path = fixture("h264_bframes.mp4");
    let key_source = CountingSource::new(FileSource::open(&path).unwrap());
    let key_stats = key_source.stats();
    snapshot(
        Box::new(key_source),
        &params(5.0, SeekMode::Keyframe),
        &limits(),
    )
    .unwrap();
    assert_eq!(key_stats.hints(), 1);
    assert!(key_stats.hinted_bytes() > 1000 && key_stats.hinted_bytes() < 100_000);
    let exact_source = CountingSource::new(FileSource::open(&path).unwrap());
    let exact_stats = exact_source.stats();
    snapshot(
        Box::new(exact_source),
        &params(5.0, SeekMode::ExactFrame),
        &exact_limits(),
    )
    .unwrap();
    assert_eq!(exact_stats.hints(), 1);
    let size = std::fs::metadata(&path).unwrap().len();
    let hinted = exact_stats.hinted_bytes();
    assert!(
        hinted > size / 3 && hinted < size * 2 / 3,
        "{hinted} of {size}"
    );
}

/// The memory a parked decoder is counted at follows the picture size and
/// format: 16 pictures of buffer, one per thread, two kept frames.
#[test]
fn parked_decoder_memory_estimate_follows_size_and_format() {
    let video = Video::open(source(&fixture("h264_bframes.mp4")), &exact_limits()).unwrap();
    assert_eq!(video.resident_bytes(4), 320 * 240 * 3 / 2 * (16 + 4 + 2));
}

/// A continued decode first serves what the last one left on screen: a
/// time inside the same frame, or just after it, gives that frame again.
#[test]
fn continuing_within_one_frame_gives_the_same_frame() {
    let path = fixture("h264_bframes.mp4");
    let mut video = resumable(&path);
    let p = params(5.0, SeekMode::ExactFrame);
    let first = snapshot_of(&mut video, &p, &exact_limits()).unwrap();
    assert_eq!(video.position_seconds(), Some(first.pts_seconds));
    assert!(video.continues_to(5.01));
    let again = snapshot_of(
        &mut video,
        &params(5.01, SeekMode::ExactFrame),
        &exact_limits(),
    )
    .unwrap();
    assert_eq!(again.pts_seconds, first.pts_seconds);
    assert!(again.bytes == first.bytes);
    let next = snapshot_of(
        &mut video,
        &params(5.04, SeekMode::ExactFrame),
        &exact_limits(),
    )
    .unwrap();
    assert!(
        (next.pts_seconds - 5.04).abs() < 1e-6,
        "{}",
        next.pts_seconds
    );
    assert!(next.bytes == fresh_exact(&path, 5.04, ExactRuns::FromKeyframe).bytes);
}

/// Several clients scrub at once, two of them the same video, sharing one
/// set of parked decoders as the server does: each takes a decoder for one
/// request at a time, and every picture equals a fresh decode's.
#[test]
fn concurrent_scrubbers_sharing_parked_decoders_get_fresh_pictures() {
    let parked: Arc<ParkedVideos<Video>> = Arc::new(ParkedVideos::new(ParkingBounds {
        count: 3,
        bytes: 1 << 30,
        idle: Duration::from_secs(60),
    }));
    let scrubbers: [(&str, &[f64]); 5] = [
        ("h264_bframes.mp4", &[0.5, 1.1, 1.9, 2.6, 4.0, 7.7, 9.9]),
        ("h264_bframes.mp4", &[3.3, 3.4, 5.2, 6.0, 1.0, 2.2, 8.1]),
        ("hevc.mp4", &[0.3, 0.9, 1.5, 2.1, 2.8, 3.9]),
        ("vp9.webm", &[0.2, 0.6, 1.7, 2.4, 3.1, 3.8]),
        ("demo.mp4", &[1.0, 1.6, 2.2, 2.9, 9.0, 9.5]),
    ];
    let threads: Vec<_> = scrubbers
        .into_iter()
        .map(|(name, times)| {
            let parked = Arc::clone(&parked);
            std::thread::spawn(move || {
                let path = fixture(name);
                let mut continued = 0;
                for &time in times {
                    let taken = parked.take(name, |v: &Video| {
                        v.continues_to(time).then(|| v.position_seconds()).flatten()
                    });
                    let mut video = taken.unwrap_or_else(|| resumable(&path));
                    video.rearm(&exact_limits());
                    continued += usize::from(video.continues_to(time));
                    let p = params(time, SeekMode::ExactFrame);
                    let got = snapshot_of(&mut video, &p, &exact_limits())
                        .unwrap_or_else(|e| panic!("{name} at {time}: {e:?}"));
                    let fresh = fresh_exact(&path, time, ExactRuns::FromKeyframe);
                    assert_eq!(got.pts_seconds, fresh.pts_seconds, "{name} at {time}");
                    assert!(got.bytes == fresh.bytes, "{name} at {time}: differs");
                    let bytes = video.resident_bytes(exact_limits().decode_threads);
                    parked.put(name.to_owned(), video, bytes);
                }
                continued
            })
        })
        .collect();
    let continued: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(continued > 0, "no request continued a parked decoder");
    assert!(parked.len() <= 3);
}

// ------------------------------------------------------------ failures

#[test]
fn text_file_is_not_media() {
    let err = run(&fixture("not_video.txt"), &SnapshotParams::at(0.0)).unwrap_err();
    assert!(matches!(err, MediaError::NotMedia), "{err:?}");
    let err = probe(source(&fixture("not_video.txt")), &limits()).unwrap_err();
    assert!(matches!(err, MediaError::NotMedia), "{err:?}");
}

#[test]
fn empty_and_random_bytes_are_refused_cleanly() {
    let err = snapshot(
        Box::new(MemorySource::new(Vec::new())),
        &SnapshotParams::at(0.0),
        &limits(),
    )
    .unwrap_err();
    assert!(matches!(err, MediaError::NotMedia), "{err:?}");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in [1usize, 100, 4096, 100_000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let err = snapshot(
            Box::new(MemorySource::new(bytes)),
            &SnapshotParams::at(0.0),
            &limits(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                MediaError::NotMedia | MediaError::Corrupt | MediaError::NoVideoStream
            ),
            "{len}: {err:?}"
        );
    }
}

#[test]
fn damaged_video_data_does_not_crash() {
    let mut bytes = std::fs::read(fixture("h264_bframes.mp4")).unwrap();
    let len = bytes.len();
    for i in (len / 10..len - 1000).step_by(997) {
        bytes[i] ^= 0x5a;
    }
    for time in [0.0, 3.0, 9.0] {
        match snapshot(
            Box::new(MemorySource::new(bytes.clone())),
            &SnapshotParams::at(time),
            &limits(),
        ) {
            Ok(image) => assert!(image.width == 320 && image.height == 240),
            Err(MediaError::Corrupt) => {}
            Err(e) => panic!("at {time}: {e:?}"),
        }
    }
}

#[test]
fn truncated_file_without_moov_is_corrupt() {
    let err = run(&fixture("truncated.mp4"), &SnapshotParams::at(1.0)).unwrap_err();
    assert!(matches!(err, MediaError::Corrupt), "{err:?}");
}

#[test]
fn truncated_media_data_gives_the_last_decodable_frame() {
    let path = fixture("truncated_tail.mp4");
    let early = run(&path, &params(1.0, SeekMode::ExactFrame)).unwrap();
    assert_eq!(early.pts_seconds, 1.0);
    let late = run(&path, &params(9.5, SeekMode::ExactFrame)).unwrap();
    assert!(
        late.pts_seconds > 1.0 && late.pts_seconds < 9.5,
        "{}",
        late.pts_seconds
    );
}

#[test]
fn audio_only_has_no_video_stream() {
    let err = run(&fixture("audio_only.m4a"), &SnapshotParams::at(0.0)).unwrap_err();
    assert!(matches!(err, MediaError::NoVideoStream), "{err:?}");
}

#[test]
fn negative_or_non_finite_time_is_invalid() {
    for time in [-1.0, f64::NAN, f64::INFINITY] {
        let err = run(&fixture("demo.mp4"), &SnapshotParams::at(time)).unwrap_err();
        assert!(
            matches!(err, MediaError::InvalidParameter { name: "time" }),
            "{time}: {err:?}"
        );
    }
}

#[test]
fn pixel_budget_refuses_before_decoding() {
    let l = Limits {
        max_source_pixels: 320 * 240 - 1,
        ..limits()
    };
    let err = snapshot(
        source(&fixture("h264_bframes.mp4")),
        &SnapshotParams::at(5.0),
        &l,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::SourceTooLarge {
                width: 320,
                height: 240,
                max_pixels: 76799
            }
        ),
        "{err:?}"
    );
    let l = Limits {
        max_source_pixels: 320 * 240,
        ..limits()
    };
    snapshot(
        source(&fixture("h264_bframes.mp4")),
        &SnapshotParams::at(5.0),
        &l,
    )
    .unwrap();
}

#[test]
fn raised_cancel_flag_stops_work() {
    let l = limits();
    l.cancel.store(true, Ordering::Relaxed);
    let err = snapshot(source(&fixture("demo.mp4")), &SnapshotParams::at(5.0), &l).unwrap_err();
    assert!(matches!(err, MediaError::Cancelled), "{err:?}");
}

#[test]
fn passed_deadline_times_out() {
    let l = Limits {
        deadline: Instant::now(),
        ..limits()
    };
    let err = snapshot(source(&fixture("demo.mp4")), &SnapshotParams::at(5.0), &l).unwrap_err();
    assert!(matches!(err, MediaError::Timeout), "{err:?}");
}

/// A source that raises the cancel flag after some reads, as a dropped
/// client connection would in the middle of decoding.
struct CancelAfter {
    inner: FileSource,
    reads_left: usize,
    cancel: Arc<AtomicBool>,
}

impl ByteSource for CancelAfter {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.reads_left == 0 {
            self.cancel.store(true, Ordering::Relaxed);
        } else {
            self.reads_left -= 1;
        }
        // Small reads, so decoding needs many of them.
        let n = buf.len().min(4096);
        self.inner.read_at(offset, &mut buf[..n])
    }
}

#[test]
fn cancel_during_decoding_stops_work() {
    let l = limits();
    let src = CancelAfter {
        inner: FileSource::open(&fixture("h264_bframes.mp4")).unwrap(),
        reads_left: 20,
        cancel: l.cancel.clone(),
    };
    let err = snapshot(Box::new(src), &SnapshotParams::at(9.0), &l).unwrap_err();
    assert!(matches!(err, MediaError::Cancelled), "{err:?}");
}

/// A source failing after some reads, or panicking.
struct Failing {
    inner: FileSource,
    reads_left: usize,
    panic: bool,
}

impl ByteSource for Failing {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.reads_left == 0 {
            if self.panic {
                panic!("source exploded");
            }
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "store went away",
            ));
        }
        self.reads_left -= 1;
        let n = buf.len().min(4096);
        self.inner.read_at(offset, &mut buf[..n])
    }
}

#[test]
fn source_errors_surface_as_io_errors() {
    for reads_left in [0, 3, 30] {
        let src = Failing {
            inner: FileSource::open(&fixture("h264_bframes.mp4")).unwrap(),
            reads_left,
            panic: false,
        };
        let err = snapshot(Box::new(src), &SnapshotParams::at(9.0), &limits()).unwrap_err();
        match err {
            MediaError::Io(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("after {reads_left} reads: {other:?}"),
        }
    }
}

#[test]
fn panicking_source_is_contained() {
    for reads_left in [0, 30] {
        let src = Failing {
            inner: FileSource::open(&fixture("h264_bframes.mp4")).unwrap(),
            reads_left,
            panic: true,
        };
        let err = snapshot(Box::new(src), &SnapshotParams::at(9.0), &limits()).unwrap_err();
        assert!(
            matches!(err, MediaError::Internal { .. }),
            "after {reads_left} reads: {err:?}"
        );
    }
}

// ------------------------------------------------------- reads, probe

#[test]
fn snapshot_near_the_start_reads_a_small_part_of_a_big_file() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.mp4");
    // 40 s at about 2.5 Mbit/s, 2 s GOPs, moov first: about 12 MB.
    tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25:duration=40,noise=alls=30:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "2500k",
            "-g",
            "50",
            "-bf",
            "2",
            "-movflags",
            "+faststart",
            big.to_str().unwrap(),
        ],
    );
    let len = std::fs::metadata(&big).unwrap().len();
    for mode in [SeekMode::Keyframe, SeekMode::ExactFrame] {
        let counting = CountingSource::new(FileSource::open(&big).unwrap());
        let stats = counting.stats();
        let p = SnapshotParams {
            mode,
            ..SnapshotParams::at(1.0)
        };
        snapshot(Box::new(counting), &p, &limits()).unwrap();
        eprintln!(
            "{mode:?}: read {} of {len} bytes in {} reads",
            stats.bytes(),
            stats.reads()
        );
        assert!(
            stats.bytes() * 8 < len,
            "{mode:?} read {} of {len} bytes",
            stats.bytes()
        );
    }
    // Near the end, moov first: the reads jump there instead of scanning.
    let counting = CountingSource::new(FileSource::open(&big).unwrap());
    let stats = counting.stats();
    snapshot(Box::new(counting), &SnapshotParams::at(39.0), &limits()).unwrap();
    assert!(
        stats.bytes() * 8 < len,
        "near the end read {} of {len} bytes",
        stats.bytes()
    );
}

/// Opt-in: `FRAMEGATE_LARGE_FIXTURES=DIR` with the files of
/// `fixtures/make.sh large DIR`.
#[test]
fn snapshot_of_a_gigabyte_file_reads_megabytes() {
    let Some(dir) = std::env::var_os("FRAMEGATE_LARGE_FIXTURES") else {
        eprintln!("FRAMEGATE_LARGE_FIXTURES not set; nothing to check");
        return;
    };
    let path = Path::new(&dir).join("large_1gib.mp4");
    for mode in [SeekMode::Keyframe, SeekMode::ExactFrame] {
        let counting = CountingSource::new(FileSource::open(&path).unwrap());
        let stats = counting.stats();
        let p = SnapshotParams {
            mode,
            ..SnapshotParams::at(1.0)
        };
        snapshot(Box::new(counting), &p, &limits()).unwrap();
        eprintln!(
            "{mode:?}: read {} bytes in {} reads",
            stats.bytes(),
            stats.reads()
        );
        // 2 MiB + one GOP (2 s at 40 Mbit/s = 10 MB).
        assert!(
            stats.bytes() < 2 * 1024 * 1024 + 10_000_000,
            "{mode:?}: {}",
            stats.bytes()
        );
    }
}

#[test]
fn probe_reports_vod_metadata() {
    let info = probe(source(&fixture("demo.mp4")), &limits()).unwrap();
    assert_eq!(info.container, "mov,mp4,m4a,3gp,3g2,mj2");
    assert_eq!((info.width, info.height, info.rotate), (640, 360, 0));
    assert_eq!(
        info.size,
        std::fs::metadata(fixture("demo.mp4")).unwrap().len()
    );
    assert!((info.duration - 10.0).abs() < 0.1, "{}", info.duration);
    assert!((info.video_duration - 10.0).abs() < 0.1);
    assert!((info.audio_duration - 10.0).abs() < 0.1);
    assert!(info.bitrate > 0);
    assert_eq!(info.video_stream_set.len(), 1);
    assert_eq!(info.video_stream_set[0].codec, "h264");
    assert_eq!(info.video_stream_set[0].fps, 25);
    assert!(info.video_stream_set[0].bitrate > 0);
    assert_eq!(info.audio_stream_set.len(), 1);
    assert_eq!(info.audio_stream_set[0].codec, "aac");
    assert_eq!(info.audio_stream_set[0].sampling_rate, 44100);
    assert_eq!(info.audio_stream_set[0].channels, 1);

    let json = serde_json::to_value(&info).unwrap();
    for key in [
        "Size",
        "Container",
        "Bitrate",
        "Height",
        "Width",
        "Duration",
        "Rotate",
        "VideoStreamSet",
        "AudioStreamSet",
        "VideoDuration",
        "AudioDuration",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert!(json["VideoStreamSet"][0].get("Fps").is_some());
    assert!(json["AudioStreamSet"][0].get("SamplingRate").is_some());
}

#[test]
fn probe_reports_rotation_codecs_and_audio_only() {
    let rotate = |name| probe(source(&fixture(name)), &limits()).unwrap().rotate;
    assert_eq!(rotate("rotate90.mp4"), 90);
    assert_eq!(rotate("rotate180.mp4"), 180);
    assert_eq!(rotate("rotate270.mp4"), 270);
    let codec = |name| {
        probe(source(&fixture(name)), &limits())
            .unwrap()
            .video_stream_set[0]
            .codec
            .clone()
    };
    assert_eq!(codec("vp9.webm"), "vp9");
    assert_eq!(codec("mpeg4.avi"), "mpeg4");
    assert_eq!(codec("hevc.mp4"), "hevc");
    let audio = probe(source(&fixture("audio_only.m4a")), &limits()).unwrap();
    assert!(audio.video_stream_set.is_empty());
    assert_eq!((audio.width, audio.height), (0, 0));
    assert_eq!(audio.audio_stream_set.len(), 1);
    let err = probe(source(&fixture("truncated.mp4")), &limits()).unwrap_err();
    assert!(matches!(err, MediaError::Corrupt), "{err:?}");
}

#[test]
fn snapshots_run_in_parallel() {
    let handles: Vec<_> = ["h264_bframes.mp4", "vp9.webm", "hevc.mp4", "demo.mp4"]
        .into_iter()
        .map(|name| {
            std::thread::spawn(move || {
                for t in [0.5, 1.5, 2.5] {
                    run(&fixture(name), &SnapshotParams::at(t)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Opt-in (`FRAMEGATE_LARGE_FIXTURES=DIR`, files from `fixtures/make.sh
/// large DIR`): median latency of in-process snapshots of the 1080p sample
/// next to the `ffmpeg` command line for the same picture. Prints only.
#[test]
fn latency_of_1080p_snapshots_next_to_ffmpeg() {
    let Some(dir) = std::env::var_os("FRAMEGATE_LARGE_FIXTURES") else {
        eprintln!("FRAMEGATE_LARGE_FIXTURES not set; nothing to measure");
        return;
    };
    let path = Path::new(&dir).join("sample_1080p.mp4");
    let p = path.to_str().unwrap();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let time = 5.0;
    for threads in [1, 0] {
        for mode in [SeekMode::Keyframe, SeekMode::ExactFrame] {
            let runs = (0..5)
                .map(|_| {
                    let l = Limits {
                        decode_threads: threads,
                        ..limits()
                    };
                    let start = Instant::now();
                    snapshot(
                        source(&path),
                        &SnapshotParams {
                            mode,
                            ..SnapshotParams::at(time)
                        },
                        &l,
                    )
                    .unwrap();
                    start.elapsed()
                })
                .collect();
            eprintln!(
                "framegate {mode:?} threads={threads}: median {:?}",
                median(runs)
            );
        }
    }
    let out = std::env::temp_dir().join("framegate-latency.jpg");
    let o = out.to_str().unwrap();
    let t = time.to_string();
    let commands: [(&str, Vec<&str>); 2] = [
        (
            "exact",
            vec!["-v", "error", "-y", "-ss", &t, "-i", p, "-frames:v", "1", o],
        ),
        (
            "keyframe",
            vec![
                "-v",
                "error",
                "-y",
                "-noaccurate_seek",
                "-ss",
                &t,
                "-i",
                p,
                "-fps_mode",
                "passthrough",
                "-frames:v",
                "1",
                o,
            ],
        ),
    ];
    for (name, args) in commands {
        let runs = (0..5)
            .map(|_| {
                let start = Instant::now();
                tool("ffmpeg", &args);
                start.elapsed()
            })
            .collect();
        eprintln!("ffmpeg CLI {name}: median {:?}", median(runs));
    }
}

// ------------------------------------------- many frames in one pass

/// `Video::frames_at` gives, for every time, exactly the picture and time
/// `Video::frame_at` gives in exact mode, reading the file once.
fn check_one_pass(name: &str, times: &[f64]) {
    use framegate::media::{render, Video};
    let path = fixture(name);
    let p = params(0.0, SeekMode::ExactFrame);
    let mut single = Vec::new();
    for &t in times {
        let mut video = Video::open(source(&path), &limits()).unwrap();
        let frame = video.frame_at(t, SeekMode::ExactFrame).unwrap();
        single.push((frame.pts_seconds, render(&frame, &p, 4096).unwrap()));
    }
    let counting = CountingSource::new(FileSource::open(&path).unwrap());
    let stats = counting.stats();
    let mut video = Video::open(Box::new(counting), &limits()).unwrap();
    let mut seen = Vec::new();
    video
        .frames_at(times, &mut |i, frame| {
            seen.push((i, frame.pts_seconds, render(frame, &p, 4096).unwrap()));
            Ok(())
        })
        .unwrap();
    assert_eq!(seen.len(), times.len(), "{name}: one frame per time");
    for ((i, pts, picture), (k, (want_pts, want))) in seen.iter().zip(single.iter().enumerate()) {
        assert_eq!(*i, k, "{name}: frames come in order");
        assert!(
            (pts - want_pts).abs() < 1e-6,
            "{name} at {}: pts {pts} != {want_pts}",
            times[k]
        );
        assert!(picture == want, "{name} at {}: pictures differ", times[k]);
    }
    // Containers without an index seek by bisection (the time past the end
    // costs one), so they may read some parts twice.
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        stats.bytes() <= size * 3,
        "{name}: one pass read {} bytes of a {size}-byte file",
        stats.bytes()
    );
}

#[test]
fn one_pass_gives_the_frames_single_seeks_give() {
    for name in [
        "h264_bframes.mp4",
        "hevc.mp4",
        "vp9.webm",
        "offset.ts",
        "h264_opengop.mkv",
        "vfr.mp4",
        "mpeg2.mpg",
    ] {
        let d = timeline(&fixture(name)).duration_seconds();
        let mut times: Vec<f64> = (0..12).map(|i| d * f64::from(i) / 12.0).collect();
        times.extend([0.05, 1.23, 1.23, d - 0.01, d + 5.0]);
        times.sort_by(f64::total_cmp);
        check_one_pass(name, &times);
    }
}

#[test]
fn one_pass_refuses_unsorted_or_bad_times() {
    use framegate::media::Video;
    let mut video = Video::open(source(&fixture("h264_bframes.mp4")), &limits()).unwrap();
    let mut each = |_: usize, _: &framegate::media::DecodedFrame| Ok(());
    assert!(video.frames_at(&[2.0, 1.0], &mut each).is_err());
    assert!(matches!(
        video.frames_at(&[f64::NAN], &mut each),
        Err(MediaError::InvalidParameter { .. })
    ));
}

// ---------------------------------------------------------------- reused videos

/// A source that records the byte ranges read through it.
struct Recording {
    inner: FileSource,
    reads: Arc<std::sync::Mutex<Vec<(u64, usize)>>>,
}

impl ByteSource for Recording {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(offset, buf)?;
        self.reads.lock().unwrap().push((offset, n));
        Ok(n)
    }
}

/// Where the top-level `moov` box of an MP4 starts.
fn moov_offset(path: &Path) -> u64 {
    let data = std::fs::read(path).unwrap();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        if &data[at + 4..at + 8] == b"moov" {
            return at as u64;
        }
        assert!(size >= 8, "a box of size {size} at {at}");
        at += size;
    }
    panic!("no moov in {}", path.display());
}

/// One opened video, its decoder released and reopened between requests (as
/// the gateway's open cache does), serves pictures at any time and in either
/// mode, backwards and forwards, identical to fresh opens.
#[test]
fn a_reused_opened_video_gives_the_pictures_of_fresh_opens() {
    let requests = [
        (7.3, SeekMode::ExactFrame),
        (1.0, SeekMode::Keyframe),
        (0.0, SeekMode::ExactFrame),
        (9.9, SeekMode::Keyframe),
        (4.52, SeekMode::ExactFrame),
        (4.52, SeekMode::Keyframe),
        (99.0, SeekMode::ExactFrame),
        (2.0, SeekMode::ExactFrame),
    ];
    for name in [
        "h264_bframes.mp4",
        "h264_moov_end.mp4",
        "h264_opengop.mkv",
        "vp9.webm",
        "offset.ts",
        "h264.flv",
    ] {
        let path = fixture(name);
        let mut opened = Some(OpenedVideo::open(source(&path), &limits()).unwrap());
        for &(time, mode) in &requests {
            let p = SnapshotParams {
                width: 160,
                ..params(time, mode)
            };
            let l = Limits {
                decode_threads: mode.decode_threads(),
                ..limits()
            };
            let mut video = opened.take().unwrap().into_video(&l).unwrap();
            let reused = snapshot_of(&mut video, &p, &l)
                .unwrap_or_else(|e| panic!("{name} at {time} {mode:?}: {e:?}"));
            opened = Some(video.into_opened());
            let fresh = run(&path, &p).unwrap();
            assert_eq!(
                (reused.pts_seconds, pixels(&reused)),
                (fresh.pts_seconds, pixels(&fresh)),
                "{name} at {time} {mode:?}: the reused video shows another picture"
            );
        }
    }
}

/// A reused video does not read the container index again: with the `moov`
/// at the end of the file, the first open reads it, later snapshots at other
/// times read nothing there.
#[test]
fn a_reused_opened_video_does_not_read_the_index_again() {
    let path = fixture("h264_moov_end.mp4");
    let moov = moov_offset(&path);
    let reads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let src = Recording {
        inner: FileSource::open(&path).unwrap(),
        reads: reads.clone(),
    };
    let mut video = OpenedVideo::open(Box::new(src), &limits())
        .unwrap()
        .into_video(&limits())
        .unwrap();
    snapshot_of(&mut video, &params(1.0, SeekMode::Keyframe), &limits()).unwrap();
    // A read that starts inside the moov box is a read of the index (the
    // I/O buffer refilled after the last packets may run into it).
    let touches_moov = |reads: &[(u64, usize)]| reads.iter().any(|&(o, _)| o >= moov);
    assert!(
        touches_moov(&reads.lock().unwrap()),
        "the first open reads the moov"
    );
    for time in [6.0, 2.5, 9.0] {
        reads.lock().unwrap().clear();
        video = video.into_opened().into_video(&limits()).unwrap();
        let image =
            snapshot_of(&mut video, &params(time, SeekMode::ExactFrame), &limits()).unwrap();
        assert!(image.pts_seconds <= time);
        let reads = reads.lock().unwrap();
        assert!(!reads.is_empty(), "decoding at {time} reads media data");
        assert!(
            !touches_moov(&reads),
            "at {time}: read the moov again: {:?}",
            reads
                .iter()
                .filter(|&&(o, _)| o >= moov)
                .collect::<Vec<_>>()
        );
    }
}

/// A cached video obeys the deadline and cancel flag of the request that
/// reuses it, not those of the request that opened it.
#[test]
fn a_reused_opened_video_obeys_the_new_request_limits() {
    let path = fixture("h264_bframes.mp4");
    let p = params(9.0, SeekMode::ExactFrame);
    // Opened under a request whose client has gone since: the next request
    // is not stopped by that old flag.
    let first = limits();
    let opened = OpenedVideo::open(source(&path), &first).unwrap();
    first.cancel.store(true, Ordering::Relaxed);
    let mut video = opened.into_video(&limits()).unwrap();
    snapshot_of(&mut video, &p, &limits()).expect("the new request's flag is down");
    // Reused by a request that is cancelled: it stops.
    let cancelled = limits();
    cancelled.cancel.store(true, Ordering::Relaxed);
    let mut video = video.into_opened().into_video(&cancelled).unwrap();
    let err = snapshot_of(&mut video, &p, &cancelled).unwrap_err();
    assert!(matches!(err, MediaError::Cancelled), "{err:?}");
}
