//! Animated GIF: one palette for the whole animation, and each frame after
//! the first written as only what changed.
//!
//! The palette is learnt once by NeuQuant (the `color_quant` crate, as the
//! `gif` crate uses per frame) from pixels spread over every frame, as
//! FFmpeg's `palettegen` does by default: colours stay the same from frame
//! to frame, so nothing flickers and unchanged pixels really are unchanged.
//! A later frame keeps only the rectangle where its palette indices differ
//! from the frame before; inside it, pixels that did not change are the
//! transparent index and show the frame below, which LZW packs into a few
//! codes.

use std::borrow::Cow;
use std::collections::HashMap;

use color_quant::NeuQuant;

use super::encode::packed_rgb;
use super::MediaError;
use crate::av::Picture;

/// Palette colours; the last index of 256 is "unchanged".
const COLOURS: usize = 255;
/// The transparent index: the pixel is as in the frame before.
const UNCHANGED: u8 = 255;
/// At most this many pixels, spread over every frame, teach the palette.
const TRAINING_PIXELS: usize = 1 << 20;

/// Encodes `frames` (packed RGB, all one size) as a looping GIF at `fps`
/// frames a second; `quality` (1–100) sets how many pixels NeuQuant looks
/// at while learning (100: every training pixel, 1: one in 30).
pub(super) fn encode_gif(frames: &[Picture], fps: u32, quality: u8) -> Result<Vec<u8>, MediaError> {
    let Some(first) = frames.first() else {
        return Err(MediaError::internal("an animation needs a frame"));
    };
    let side = |v: u32| u16::try_from(v).map_err(|_| MediaError::internal("GIF sides are 16-bit"));
    let (width, height) = (side(first.width)?, side(first.height)?);
    let pixels = frames
        .iter()
        .map(packed_rgb)
        .collect::<Result<Vec<_>, _>>()?;
    let speed = 1 + i32::from(100 - quality.clamp(1, 100)) * 29 / 99;
    let quant = NeuQuant::new(speed, COLOURS, &training_pixels(&pixels));
    let mut palette = quant.color_map_rgb();
    palette.resize(256 * 3, 0);
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, width, height, &palette).map_err(MediaError::internal)?;
        encoder
            .set_repeat(gif::Repeat::Infinite)
            .map_err(MediaError::internal)?;
        let mut indexer = Indexer::new(&quant);
        let mut shown: Option<Vec<u8>> = None;
        let fps = u64::from(fps.max(1));
        // Centiseconds, spread so the total stays exact.
        let at = |k: u64| (k * 100 + fps / 2) / fps;
        for (k, rgb) in pixels.iter().enumerate() {
            let indices: Vec<u8> = rgb.chunks_exact(3).map(|p| indexer.index(p)).collect();
            let mut frame = match &shown {
                None => full_frame(width, height, &indices),
                Some(before) => changes(width, height, before, &indices),
            };
            frame.delay = u16::try_from(at(k as u64 + 1) - at(k as u64)).unwrap_or(u16::MAX);
            encoder.write_frame(&frame).map_err(MediaError::internal)?;
            shown = Some(indices);
        }
    }
    Ok(out)
}

/// RGBA pixels spread evenly over every frame, at most [`TRAINING_PIXELS`].
fn training_pixels(frames: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = frames.iter().map(|f| f.len() / 3).sum();
    let step = total.div_ceil(TRAINING_PIXELS).max(1);
    frames
        .iter()
        .flat_map(|f| f.chunks_exact(3).step_by(step))
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

/// Palette indices of colours, remembered: frames repeat their colours.
struct Indexer<'q> {
    quant: &'q NeuQuant,
    known: HashMap<[u8; 3], u8>,
}

impl<'q> Indexer<'q> {
    fn new(quant: &'q NeuQuant) -> Self {
        Self {
            quant,
            known: HashMap::new(),
        }
    }

    fn index(&mut self, rgb: &[u8]) -> u8 {
        let key = [rgb[0], rgb[1], rgb[2]];
        *self.known.entry(key).or_insert_with(|| {
            // NeuQuant's indices are below COLOURS, so they fit.
            self.quant.index_of(&[key[0], key[1], key[2], 255]) as u8
        })
    }
}

/// The first frame: every pixel.
fn full_frame(width: u16, height: u16, indices: &[u8]) -> gif::Frame<'static> {
    gif::Frame {
        width,
        height,
        buffer: Cow::Owned(indices.to_vec()),
        dispose: gif::DisposalMethod::Keep,
        ..gif::Frame::default()
    }
}

/// A later frame: the rectangle where `now` differs from `before`, the
/// unchanged pixels in it transparent (a frame equal to the one before is
/// one transparent pixel).
fn changes(width: u16, height: u16, before: &[u8], now: &[u8]) -> gif::Frame<'static> {
    let w = usize::from(width);
    let changed = |x: usize, y: usize| before[y * w + x] != now[y * w + x];
    let rows: Vec<usize> = (0..usize::from(height))
        .filter(|&y| (0..w).any(|x| changed(x, y)))
        .collect();
    let (Some(&top), Some(&bottom)) = (rows.first(), rows.last()) else {
        return gif::Frame {
            width: 1,
            height: 1,
            buffer: Cow::Owned(vec![UNCHANGED]),
            transparent: Some(UNCHANGED),
            dispose: gif::DisposalMethod::Keep,
            ..gif::Frame::default()
        };
    };
    let column_changed = |x: &usize| (top..=bottom).any(|y| changed(*x, y));
    let left = (0..w).find(column_changed).unwrap_or(0);
    let right = (0..w).rev().find(column_changed).unwrap_or(w - 1);
    let mut buffer = Vec::with_capacity((right - left + 1) * (bottom - top + 1));
    for y in top..=bottom {
        for x in left..=right {
            let i = y * w + x;
            buffer.push(if before[i] == now[i] {
                UNCHANGED
            } else {
                now[i]
            });
        }
    }
    // Every side is within the picture's 16-bit sides.
    let side = |v: usize| v as u16;
    gif::Frame {
        left: side(left),
        top: side(top),
        width: side(right - left + 1),
        height: side(bottom - top + 1),
        buffer: Cow::Owned(buffer),
        transparent: Some(UNCHANGED),
        dispose: gif::DisposalMethod::Keep,
        ..gif::Frame::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_frame_is_the_changed_rectangle_with_the_rest_transparent() {
        let before = vec![1u8; 4 * 3];
        let mut now = before.clone();
        now[4 + 1] = 7; // (1, 1)
        now[2 * 4 + 2] = 8; // (2, 2)
        let frame = changes(4, 3, &before, &now);
        assert_eq!(
            (frame.left, frame.top, frame.width, frame.height),
            (1, 1, 2, 2)
        );
        assert_eq!(&frame.buffer[..], &[7, UNCHANGED, UNCHANGED, 8]);
        assert_eq!(frame.transparent, Some(UNCHANGED));
    }

    #[test]
    fn an_unchanged_frame_is_one_transparent_pixel() {
        let same = vec![3u8; 6];
        let frame = changes(3, 2, &same, &same);
        assert_eq!((frame.width, frame.height), (1, 1));
        assert_eq!(&frame.buffer[..], &[UNCHANGED]);
    }

    #[test]
    fn training_spreads_over_every_frame() {
        let frames = vec![vec![10u8; 3 * 4], vec![200u8; 3 * 4]];
        let rgba = training_pixels(&frames);
        assert_eq!(rgba.len(), 8 * 4);
        assert!(rgba.chunks(4).any(|p| p[0] == 10) && rgba.chunks(4).any(|p| p[0] == 200));
    }
}
