//! Choosing frames by what they show, for every job kind: black frames
//! skipped (CI's `IsCheckBlack`, VOD covers) and the frames where the
//! picture changes most (CI's `SmartCover`).
//!
//! Frames are looked at on pictures of at most 160 pixels a side: black
//! is the share of dark pixels, change the Hamming distance between
//! difference hashes (dHash: 64 bits, one per neighbouring-pixel comparison
//! on a 9x8 luma thumbnail).

use super::snapshot_job::BlackCheck;
use crate::av::PictureFormat;
use crate::media::{compose, geometry, DecodedFrame, FrameTime, MediaError, Video};

/// Most candidate frames a scene search looks at.
pub const MAX_SCENE_CANDIDATES: usize = 200;
/// Hashes at most this many bits apart show the same picture.
pub const DUPLICATE_DISTANCE: u32 = 10;

/// Replaces each time whose frame is black by the first frame after it
/// (before the next time) that is not.
pub fn replace_black(
    video: &mut Video,
    frames: &[FrameTime],
    times: &mut [f64],
    black: BlackCheck,
) -> Result<(), MediaError> {
    let mut dark = vec![false; times.len()];
    video.frames_at(times, &mut |i, frame| {
        dark[i] = is_black(frame, black)?;
        Ok(())
    })?;
    for i in (0..times.len()).filter(|&i| dark[i]) {
        let after = frames.partition_point(|f| f.seconds <= times[i] + 1e-6);
        let end = times.get(i + 1).map_or(frames.len(), |&next| {
            frames.partition_point(|f| f.seconds < next - 1e-6)
        });
        if let Some(found) = first_lit(video, &frames[..end], after, black)? {
            times[i] = frames[found].seconds;
        }
    }
    Ok(())
}

/// The time of the first frame at or after `time` that is not black
/// (`time` itself when its frame is lit, or when nothing after it is).
/// Frame times are read only when the frame at `time` is black.
pub fn lit_time(video: &mut Video, time: f64, black: BlackCheck) -> Result<f64, MediaError> {
    let mut dark = false;
    video.frames_at(&[time], &mut |_, frame| {
        dark = is_black(frame, black)?;
        Ok(())
    })?;
    if !dark {
        return Ok(time);
    }
    let frames = video.frame_times()?;
    let after = frames.partition_point(|f| f.seconds <= time + 1e-6);
    Ok(first_lit(video, &frames, after, black)?.map_or(time, |i| frames[i].seconds))
}

/// The index of the first frame from `from` that is not black, looking at
/// a second's worth of frames per pass.
pub fn first_lit(
    video: &mut Video,
    frames: &[FrameTime],
    from: usize,
    black: BlackCheck,
) -> Result<Option<usize>, MediaError> {
    const CHUNK: usize = 25;
    let mut at = from;
    while at < frames.len() {
        let chunk: Vec<f64> = frames[at..(at + CHUNK).min(frames.len())]
            .iter()
            .map(|f| f.seconds)
            .collect();
        let mut found = None;
        video.frames_at(&chunk, &mut |i, frame| {
            if found.is_none() && !is_black(frame, black)? {
                found = Some(at + i);
            }
            Ok(())
        })?;
        if found.is_some() {
            return Ok(found);
        }
        at += chunk.len();
    }
    Ok(None)
}

/// The luma plane of `frame` at most 160 pixels a side.
fn thumbnail(frame: &DecodedFrame) -> Result<crate::av::Plane, MediaError> {
    let displayed = geometry::displayed_size(
        frame.coded_size(),
        frame.sample_aspect_ratio,
        frame.orientation,
    );
    let size = compose::fit_inside(displayed, (160, 160));
    let small = compose::scaled(frame, frame.orientation, size, PictureFormat::Yuv420)?;
    Ok(small.planes.into_iter().next().expect("a luma plane"))
}

/// Whether at least `level` percent of the frame's pixels have a luma at
/// or below `pixel_threshold`.
pub fn is_black(frame: &DecodedFrame, black: BlackCheck) -> Result<bool, MediaError> {
    Ok(dark_share(&thumbnail(frame)?, black.pixel_threshold) >= f64::from(black.level))
}

/// Percent of `luma`'s samples at or below `threshold`.
fn dark_share(luma: &crate::av::Plane, threshold: u8) -> f64 {
    let dark: usize = (0..luma.rows)
        .map(|y| luma.row(y).iter().filter(|&&v| v <= threshold).count())
        .sum();
    dark as f64 * 100.0 / (luma.rows * luma.row_bytes).max(1) as f64
}

/// The difference hash of a luma plane: 9x8 box averages, one bit per
/// left-brighter-than-right pair.
fn dhash(luma: &crate::av::Plane) -> u64 {
    let (w, h) = (luma.row_bytes.max(1), luma.rows.max(1));
    let cell = |cx: usize, cy: usize| -> f64 {
        let (x0, x1) = (cx * w / 9, ((cx + 1) * w / 9).max(cx * w / 9 + 1).min(w));
        let (y0, y1) = (cy * h / 8, ((cy + 1) * h / 8).max(cy * h / 8 + 1).min(h));
        let mut sum = 0u64;
        for y in y0..y1 {
            sum += luma.row(y)[x0..x1]
                .iter()
                .map(|&v| u64::from(v))
                .sum::<u64>();
        }
        sum as f64 / ((x1 - x0) * (y1 - y0)) as f64
    };
    let mut hash = 0u64;
    for cy in 0..8 {
        for cx in 0..8 {
            hash = (hash << 1) | u64::from(cell(cx, cy) > cell(cx + 1, cy));
        }
    }
    hash
}

/// Whether a scene search drops pictures that look like one already
/// chosen (`DeleteDuplicates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Duplicates {
    /// Kept.
    Keep,
    /// Dropped.
    Delete,
}

/// The times of the `count` frames where the picture changes most, in
/// time order: candidates are the keyframes (or, with few of them, evenly
/// spread times), at most [`MAX_SCENE_CANDIDATES`]; each scores the
/// distance of its hash from the candidate before it; black frames never
/// count. The first candidate only fills places nothing else does.
pub fn scene_times(
    video: &mut Video,
    frames: &[FrameTime],
    duration: f64,
    count: usize,
    duplicates: Duplicates,
) -> Result<Vec<f64>, MediaError> {
    let candidates = scene_candidates(frames, duration, count);
    let black = BlackCheck::default();
    let mut looks: Vec<Option<u64>> = vec![None; candidates.len()];
    video.frames_at(&candidates, &mut |i, frame| {
        let luma = thumbnail(frame)?;
        if dark_share(&luma, black.pixel_threshold) < f64::from(black.level) {
            looks[i] = Some(dhash(&luma));
        }
        Ok(())
    })?;
    // (score, index): the distance from the previous candidate that was
    // looked at; the first scores below every change.
    let mut scored: Vec<(i64, usize)> = Vec::new();
    let mut previous: Option<u64> = None;
    for (i, hash) in looks.iter().enumerate() {
        let Some(hash) = *hash else { continue };
        let score = previous.map_or(-1, |p| i64::from((p ^ hash).count_ones()));
        scored.push((score, i));
        previous = Some(hash);
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = Vec::new();
    for (_, i) in scored {
        if chosen.len() == count {
            break;
        }
        let hash = looks[i].expect("scored candidates have a hash");
        let duplicate = chosen.iter().any(|&c| {
            let other = looks[c].expect("chosen candidates have a hash");
            (other ^ hash).count_ones() <= DUPLICATE_DISTANCE
        });
        if duplicate && duplicates == Duplicates::Delete {
            continue;
        }
        chosen.push(i);
    }
    chosen.sort_unstable();
    Ok(chosen.into_iter().map(|i| candidates[i]).collect())
}

/// Where a scene search looks: the keyframes when there are at least two
/// per wanted picture, else times spread evenly; thinned evenly to
/// [`MAX_SCENE_CANDIDATES`].
fn scene_candidates(frames: &[FrameTime], duration: f64, count: usize) -> Vec<f64> {
    let keyframes: Vec<f64> = frames
        .iter()
        .filter(|f| f.keyframe)
        .map(|f| f.seconds)
        .collect();
    let all: Vec<f64> = if keyframes.len() >= 2 * count.max(1) {
        keyframes
    } else {
        let n = (4 * count).clamp(2, MAX_SCENE_CANDIDATES);
        (0..n).map(|k| duration * k as f64 / n as f64).collect()
    };
    if all.len() <= MAX_SCENE_CANDIDATES {
        return all;
    }
    (0..MAX_SCENE_CANDIDATES)
        .map(|k| all[k * all.len() / MAX_SCENE_CANDIDATES])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::av::Plane;

    fn plane(f: impl Fn(usize, usize) -> u8) -> Plane {
        let mut p = Plane::new(90, 80);
        for y in 0..80 {
            for x in 0..90 {
                p.data[y * p.stride + x] = f(x, y);
            }
        }
        p
    }

    #[test]
    fn hashes_tell_pictures_apart_and_ignore_small_changes() {
        let ramp = plane(|x, _| (255 - x * 2) as u8);
        let bars = plane(|x, y| if (x / 10 + y / 10) % 2 == 0 { 200 } else { 30 });
        let ramp_brighter = plane(|x, _| (255 - x * 2) as u8 / 2 + 20);
        assert_eq!(
            dhash(&ramp),
            u64::MAX,
            "a falling ramp: every left is brighter"
        );
        assert!((dhash(&ramp) ^ dhash(&bars)).count_ones() > 20);
        assert!((dhash(&ramp) ^ dhash(&ramp_brighter)).count_ones() <= DUPLICATE_DISTANCE);
    }

    #[test]
    fn dark_share_counts_dark_samples() {
        let half = plane(|x, _| if x < 45 { 0 } else { 200 });
        assert_eq!(dark_share(&half, 32), 50.0);
    }

    #[test]
    fn candidates_are_keyframes_thinned_or_spread_times() {
        let frames: Vec<FrameTime> = (0..1000)
            .map(|k| FrameTime {
                seconds: f64::from(k) * 0.04,
                keyframe: k % 25 == 0,
            })
            .collect();
        assert_eq!(scene_candidates(&frames, 40.0, 3).len(), 40);
        assert_eq!(
            scene_candidates(&frames, 40.0, 30),
            (0..120)
                .map(|k| f64::from(k) * 40.0 / 120.0)
                .collect::<Vec<_>>()
        );
        let many: Vec<FrameTime> = (0..1000)
            .map(|k| FrameTime {
                seconds: f64::from(k),
                keyframe: true,
            })
            .collect();
        assert_eq!(
            scene_candidates(&many, 1000.0, 3).len(),
            MAX_SCENE_CANDIDATES
        );
    }
}
