//! HDR to SDR: pictures of PQ (HDR10) and HLG sources turned into BT.709
//! pictures that look like what players show, instead of the washed-out
//! grey of the signal read as if it were SDR.
//!
//! The operator, per pixel, on the 16-bit RGB signal scaled to the output
//! size (so the cost follows the output, not the source):
//!
//! 1. to linear light, in units of 100 cd/m² (SDR reference white): PQ's
//!    EOTF (SMPTE ST 2084); for HLG the inverse OETF and the BT.2100 OOTF
//!    for a 1,000 cd/m² display (system gamma 1.2);
//! 2. BT.2020 primaries to BT.709 (linear 3×3 matrix), when the source is
//!    BT.2020;
//! 3. Hable's filmic curve on the largest of R, G and B, the ratio applied to
//!    all three (hue kept), with the curve's white at the stream's peak:
//!    MaxCLL, else the mastering display's peak, else 1,000 cd/m²; the same
//!    as FFmpeg's `tonemap=hable` with `desat=0`;
//! 4. clipped to [0, 1] and encoded with the BT.709 OETF to 8 bits.

use std::sync::OnceLock;

use crate::av::{Picture, PictureFormat, Transfer, WideRgb};

/// Whether HDR pictures are tone-mapped (`fg-tonemap`).
pub use crate::proto::snapshot::ToneMap;

/// The peak assumed when a PQ stream does not give one (cd/m²).
pub const DEFAULT_PEAK_NITS: f64 = 1000.0;
/// SDR reference white (cd/m²): linear 1.0.
const REFERENCE_WHITE: f64 = 100.0;

/// The light a stream's pictures are mapped from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HdrSource {
    /// PQ or HLG.
    pub transfer: Transfer,
    /// BT.2020 primaries (converted to BT.709).
    pub bt2020: bool,
    /// The brightest light to keep distinct, cd/m².
    pub peak_nits: f64,
}

/// BT.2020 to BT.709, linear RGB (ITU-R BT.2087).
const BT2020_TO_BT709: [[f32; 3]; 3] = [
    [1.660_491, -0.587_641, -0.072_850],
    [-0.124_551, 1.132_9, -0.008_349],
    [-0.018_151, -0.100_579, 1.118_73],
];

/// Tone-maps `wide` (the signal as 16-bit RGB) to 8-bit RGB.
pub fn tone_map(wide: &WideRgb, source: &HdrSource) -> Picture {
    let linear = linear_table(source.transfer);
    let peak = (source.peak_nits / REFERENCE_WHITE) as f32;
    let white = hable(peak);
    let oetf = bt709_table();
    let mut out = Picture::new(PictureFormat::Rgb24, wide.width, wide.height);
    let plane = &mut out.planes[0];
    let row_samples = wide.width as usize * 3;
    for (y, row) in wide.samples.chunks_exact(row_samples).enumerate() {
        let dst = &mut plane.data[y * plane.stride..y * plane.stride + row_samples];
        for (pixel, rgb) in dst.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
            let mut light = [0; 3].map(|_| 0.0f32);
            for (l, &s) in light.iter_mut().zip(rgb) {
                *l = linear[usize::from(s)];
            }
            if source.transfer == Transfer::Hlg {
                light = hlg_ootf(light);
            }
            if source.bt2020 {
                light =
                    BT2020_TO_BT709.map(|m| m[0] * light[0] + m[1] * light[1] + m[2] * light[2]);
            }
            let signal = light[0].max(light[1]).max(light[2]).max(1e-6);
            let ratio = hable(signal) / white / signal;
            for (p, l) in pixel.iter_mut().zip(light) {
                let v = (l * ratio).clamp(0.0, 1.0);
                *p = oetf[(v * OETF_STEPS as f32).round() as usize];
            }
        }
    }
    out
}

/// Hable's filmic curve (John Hable, Uncharted 2).
fn hable(x: f32) -> f32 {
    let (a, b, c, d, e, f) = (0.15, 0.50, 0.10, 0.20, 0.02, 0.30);
    (x * (a * x + c * b) + d * e) / (x * (a * x + b) + d * f) - e / f
}

/// The BT.2100 HLG OOTF for a 1,000 cd/m² display, on scene light in
/// [0, 1]: display light in units of reference white.
fn hlg_ootf(scene: [f32; 3]) -> [f32; 3] {
    const GAMMA: f32 = 1.2;
    let luma = 0.2627 * scene[0] + 0.6780 * scene[1] + 0.0593 * scene[2];
    let gain = (1000.0 / REFERENCE_WHITE as f32) * luma.max(0.0).powf(GAMMA - 1.0);
    scene.map(|v| v * gain)
}

/// Signal (16-bit) to linear light: PQ in units of reference white, HLG as
/// scene light in [0, 1].
fn linear_table(transfer: Transfer) -> &'static [f32] {
    static PQ: OnceLock<Vec<f32>> = OnceLock::new();
    static HLG: OnceLock<Vec<f32>> = OnceLock::new();
    let table = |curve: fn(f64) -> f64| {
        (0..=u16::MAX)
            .map(|s| curve(f64::from(s) / f64::from(u16::MAX)) as f32)
            .collect::<Vec<f32>>()
    };
    match transfer {
        Transfer::Hlg => HLG.get_or_init(|| table(hlg_inverse_oetf)),
        _ => PQ.get_or_init(|| table(|e| pq_eotf(e) / REFERENCE_WHITE)),
    }
}

/// SMPTE ST 2084: signal in [0, 1] to cd/m².
fn pq_eotf(e: f64) -> f64 {
    const M1: f64 = 2610.0 / 16384.0;
    const M2: f64 = 2523.0 / 4096.0 * 128.0;
    const C1: f64 = 3424.0 / 4096.0;
    const C2: f64 = 2413.0 / 4096.0 * 32.0;
    const C3: f64 = 2392.0 / 4096.0 * 32.0;
    let p = e.powf(1.0 / M2);
    ((p - C1).max(0.0) / (C2 - C3 * p)).powf(1.0 / M1) * 10_000.0
}

/// ARIB STD-B67 / BT.2100 HLG: signal in [0, 1] to scene light in [0, 1].
fn hlg_inverse_oetf(e: f64) -> f64 {
    const A: f64 = 0.178_832_77;
    const B: f64 = 1.0 - 4.0 * A;
    const C: f64 = 0.559_910_73;
    if e <= 0.5 {
        e * e / 3.0
    } else {
        (((e - C) / A).exp() + B) / 12.0
    }
}

/// Steps of the OETF table over [0, 1].
const OETF_STEPS: usize = 4096;

/// Linear [0, 1] (in `OETF_STEPS` steps) to BT.709-encoded 8 bits.
fn bt709_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..=OETF_STEPS)
            .map(|i| {
                let l = i as f64 / OETF_STEPS as f64;
                let v = if l < 0.018 {
                    4.5 * l
                } else {
                    1.099 * l.powf(0.45) - 0.099
                };
                (v * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    })
}

/// An 8-bit RGB picture as JPEG's 4:2:0 (full range, BT.601), chroma
/// averaged over each 2×2 block.
pub fn rgb_to_yuv420(rgb: &Picture) -> Picture {
    let (w, h) = (rgb.width as usize, rgb.height as usize);
    let mut out = Picture::new(PictureFormat::Yuv420, rgb.width, rgb.height);
    let src = &rgb.planes[0];
    let pixel = |x: usize, y: usize| {
        let at = y * src.stride + x * 3;
        [0, 1, 2].map(|c| f32::from(src.data[at + c]))
    };
    let [luma, cb, cr] = &mut out.planes[..] else {
        unreachable!("4:2:0 pictures have three planes");
    };
    for y in 0..h {
        for x in 0..w {
            let [r, g, b] = pixel(x, y);
            luma.data[y * luma.stride + x] = (0.299 * r + 0.587 * g + 0.114 * b).round() as u8;
        }
    }
    for cy in 0..h.div_ceil(2) {
        for cx in 0..w.div_ceil(2) {
            let mut sum = [0.0f32; 3];
            let mut n = 0.0;
            for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (px, py) = (cx * 2 + x, cy * 2 + y);
                if px < w && py < h {
                    let p = pixel(px, py);
                    sum = [sum[0] + p[0], sum[1] + p[1], sum[2] + p[2]];
                    n += 1.0;
                }
            }
            let [r, g, b] = sum.map(|v| v / n);
            let u = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let v = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            cb.data[cy * cb.stride + cx] = u.round().clamp(0.0, 255.0) as u8;
            cr.data[cy * cr.stride + cx] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pq_reaches_10000_nits_and_reference_white_near_58_percent() {
        assert!((pq_eotf(1.0) - 10_000.0).abs() < 1e-6);
        assert_eq!(pq_eotf(0.0), 0.0);
        // 100 cd/m² is PQ signal 0.508.
        assert!((pq_eotf(0.508) - 100.0).abs() < 1.0, "{}", pq_eotf(0.508));
    }

    #[test]
    fn hlg_is_continuous_at_the_knee() {
        let below = hlg_inverse_oetf(0.5);
        let above = hlg_inverse_oetf(0.500_001);
        assert!((below - 1.0 / 12.0).abs() < 1e-9 && (above - below).abs() < 1e-5);
        assert!((hlg_inverse_oetf(1.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_peak_maps_to_white_and_black_stays_black() {
        let wide = WideRgb {
            width: 2,
            height: 1,
            // PQ 1000 cd/m² (0.7518) grey, and black.
            samples: vec![49_270, 49_270, 49_270, 0, 0, 0],
        };
        let source = HdrSource {
            transfer: Transfer::Pq,
            bt2020: true,
            peak_nits: 1000.0,
        };
        let out = tone_map(&wide, &source);
        assert_eq!(out.planes[0].row(0), &[255, 255, 255, 0, 0, 0]);
    }

    #[test]
    fn grey_stays_grey_through_the_colour_conversion() {
        let rgb = crate::media::compose::colored(PictureFormat::Rgb24, (4, 4), [90, 90, 90]);
        let yuv = rgb_to_yuv420(&rgb);
        assert_eq!(yuv.planes[0].row(0)[0], 90);
        assert_eq!(
            (yuv.planes[1].row(0)[0], yuv.planes[2].row(0)[0]),
            (128, 128)
        );
    }
}
