//! Pictures of a fixed size from frames of any shape, and pictures made of
//! pictures: the fit modes of snapshots and screenshot templates (stretch,
//! bars of a colour, a Gaussian-blurred fill, crop) and the grids of image
//! sprites.
//!
//! Everything works on [`Picture`]s in either layout. In 4:2:0 pictures a
//! pasted picture starts on an even pixel, so its chroma lines up; the
//! half-pixel this may shift a centred picture by is invisible.

use super::geometry::{self, Orientation};
use super::tonemap::{self, HdrSource, ToneMap};
use super::{DecodedFrame, Fit, MediaError};
use crate::av::{scale_to_wide_rgb, Picture, PictureFormat, Scaler, Transfer};

/// A colour for filling: black or white.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shade {
    /// Black.
    Black,
    /// White.
    White,
}

/// The output size the template fields ask for, given the displayed size of
/// the source (after sample aspect ratio and rotation).
///
/// `width`/`height` of 0 follow the source: both 0 is the source size, one
/// 0 follows the aspect ratio of the other. With `adaptive` (VOD's
/// `ResolutionAdaptive=open`) `width` is the long side and `height` the
/// short side, so a portrait video gets a portrait picture.
pub fn template_size(displayed: (u32, u32), width: u32, height: u32, adaptive: bool) -> (u32, u32) {
    let (dw, dh) = (u64::from(displayed.0.max(1)), u64::from(displayed.1.max(1)));
    let (w, h) = if adaptive && dh > dw {
        (height, width)
    } else {
        (width, height)
    };
    let scaled = |num: u64, a: u64, b: u64| ((num * a + b / 2) / b).clamp(1, u64::from(u32::MAX));
    match (w, h) {
        (0, 0) => displayed,
        (0, h) => (scaled(u64::from(h), dw, dh) as u32, h),
        (w, 0) => (w, scaled(u64::from(w), dh, dw) as u32),
        (w, h) => (w, h),
    }
}

/// The largest size with the aspect ratio of `inner` that fits in `outer`.
pub fn fit_inside(inner: (u32, u32), outer: (u32, u32)) -> (u32, u32) {
    let (iw, ih) = (u64::from(inner.0.max(1)), u64::from(inner.1.max(1)));
    let (ow, oh) = (u64::from(outer.0), u64::from(outer.1));
    if iw * oh > ih * ow {
        (outer.0, ((ow * ih + iw / 2) / iw).clamp(1, oh) as u32)
    } else {
        (((oh * iw + ih / 2) / ih).clamp(1, ow) as u32, outer.1)
    }
}

/// Scales and turns the displayed picture of `frame` to `size` (in display
/// orientation) in `layout`; an HDR frame is tone-mapped to SDR (see
/// [`tonemap`]).
pub fn scaled(
    frame: &DecodedFrame,
    orientation: Orientation,
    size: (u32, u32),
    layout: PictureFormat,
) -> Result<Picture, MediaError> {
    scaled_with(frame, orientation, size, layout, ToneMap::Auto)
}

/// [`scaled`], with HDR tone mapping as `tone_map` says.
pub fn scaled_with(
    frame: &DecodedFrame,
    orientation: Orientation,
    size: (u32, u32),
    layout: PictureFormat,
    tone_map: ToneMap,
) -> Result<Picture, MediaError> {
    let (w, h) = size;
    let (sw, sh) = if orientation.swaps_axes() {
        (h, w)
    } else {
        (w, h)
    };
    let source = frame.frame();
    let hdr = match (tone_map, source.transfer()) {
        (ToneMap::Off, _) | (_, Transfer::Sdr) => None,
        (ToneMap::Auto, transfer) => Some(HdrSource {
            transfer,
            bt2020: source.is_bt2020(),
            peak_nits: source
                .peak_luminance()
                .unwrap_or(tonemap::DEFAULT_PEAK_NITS),
        }),
    };
    let picture = match hdr {
        Some(hdr) => {
            let wide = scale_to_wide_rgb(source, sw, sh).map_err(MediaError::internal)?;
            let rgb = tonemap::tone_map(&wide, &hdr);
            match layout {
                PictureFormat::Rgb24 => rgb,
                PictureFormat::Yuv420 => tonemap::rgb_to_yuv420(&rgb),
            }
        }
        None => {
            let mut scaler = Scaler::new(source, sw, sh, layout).map_err(MediaError::internal)?;
            scaler.scale(source).map_err(MediaError::internal)?
        }
    };
    Ok(orientation.apply(picture))
}

/// The smallest size with the aspect ratio of `inner` that covers `outer`.
pub fn cover(inner: (u32, u32), outer: (u32, u32)) -> (u32, u32) {
    let (iw, ih) = (u64::from(inner.0.max(1)), u64::from(inner.1.max(1)));
    let (ow, oh) = (u64::from(outer.0), u64::from(outer.1));
    let clamp = |v: u64, low: u32| v.clamp(u64::from(low), u64::from(u32::MAX)) as u32;
    if iw * oh > ih * ow {
        (clamp((oh * iw).div_ceil(ih), outer.0), outer.1)
    } else {
        (outer.0, clamp((ow * ih).div_ceil(iw), outer.1))
    }
}

/// The picture of `frame` at exactly `size` (in display orientation, turned
/// by `orientation`), the aspect ratio handled by `fit`, HDR as `tone_map`
/// says.
pub fn fit(
    frame: &DecodedFrame,
    orientation: Orientation,
    size: (u32, u32),
    fit: Fit,
    layout: PictureFormat,
    tone_map: ToneMap,
) -> Result<Picture, MediaError> {
    let scaled = |size| scaled_with(frame, orientation, size, layout, tone_map);
    let displayed =
        geometry::displayed_size(frame.coded_size(), frame.sample_aspect_ratio, orientation);
    let inner = fit_inside(displayed, size);
    if fit == Fit::Stretch || inner == size {
        return scaled(size);
    }
    let mut canvas = match fit {
        Fit::Crop => {
            let covering = cover(displayed, size);
            let whole = scaled(covering)?;
            let x = (covering.0 - size.0) / 2;
            let y = (covering.1 - size.1) / 2;
            return Ok(cropped(&whole, (x, y), size));
        }
        Fit::Blur => {
            let mut background = scaled(size)?;
            let radius = (size.0.max(size.1) / 32).max(2) as usize;
            blur(&mut background, radius);
            background
        }
        Fit::Pad(rgb) => colored(layout, size, rgb),
        Fit::Stretch => unreachable!("handled above"),
    };
    let content = scaled(inner)?;
    let x = (size.0 - inner.0) / 2;
    let y = (size.1 - inner.1) / 2;
    paste(&mut canvas, &content, x, y);
    Ok(canvas)
}

/// The picture of `frame` at exactly `size` with the container's rotation
/// applied, the aspect ratio handled by `how`.
pub fn fitted(
    frame: &DecodedFrame,
    size: (u32, u32),
    how: Fit,
    layout: PictureFormat,
) -> Result<Picture, MediaError> {
    fit(frame, frame.orientation, size, how, layout, ToneMap::Auto)
}

/// The part of `src` of `size` whose top-left corner is `at`. In 4:2:0
/// pictures the corner is rounded down to even.
pub fn cropped(src: &Picture, at: (u32, u32), size: (u32, u32)) -> Picture {
    let mut out = Picture::new(src.format, size.0, size.1);
    let (x, y) = match src.format {
        PictureFormat::Yuv420 => (at.0 & !1, at.1 & !1),
        PictureFormat::Rgb24 => at,
    };
    for (i, (d, s)) in out.planes.iter_mut().zip(&src.planes).enumerate() {
        let (bytes_per_px, shift) = match src.format {
            PictureFormat::Rgb24 => (3, 0),
            PictureFormat::Yuv420 => (1, u32::from(i > 0)),
        };
        let (px, py) = ((x >> shift) as usize, (y >> shift) as usize);
        let start = px * bytes_per_px;
        let len = d.row_bytes.min(s.row_bytes.saturating_sub(start));
        for row in 0..d.rows.min(s.rows.saturating_sub(py)) {
            let from = (py + row) * s.stride + start;
            let to = row * d.stride;
            d.data[to..to + len].copy_from_slice(&s.data[from..from + len]);
        }
    }
    out
}

/// A picture of one shade.
pub fn filled(layout: PictureFormat, size: (u32, u32), shade: Shade) -> Picture {
    let rgb = match shade {
        Shade::Black => [0, 0, 0],
        Shade::White => [255, 255, 255],
    };
    colored(layout, size, rgb)
}

/// A picture of one colour, given as 8-bit RGB.
pub fn colored(layout: PictureFormat, size: (u32, u32), rgb: [u8; 3]) -> Picture {
    let mut picture = Picture::new(layout, size.0, size.1);
    match layout {
        PictureFormat::Yuv420 => {
            for (plane, value) in picture.planes.iter_mut().zip(full_range_ycbcr(rgb)) {
                plane.data.fill(value);
            }
        }
        PictureFormat::Rgb24 => {
            let plane = &mut picture.planes[0];
            for y in 0..plane.rows {
                let row = &mut plane.data[y * plane.stride..y * plane.stride + plane.row_bytes];
                for pixel in row.chunks_exact_mut(3) {
                    pixel.copy_from_slice(&rgb);
                }
            }
        }
    }
    picture
}

/// RGB as full-range BT.601 Y, Cb, Cr (JFIF's), rounded.
fn full_range_ycbcr([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    [y, cb, cr].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// Copies `src` into `dst` with its top-left corner at `(x, y)`, clipped to
/// `dst`. In 4:2:0 pictures `x` and `y` are rounded down to even.
pub fn paste(dst: &mut Picture, src: &Picture, x: u32, y: u32) {
    debug_assert_eq!(dst.format, src.format);
    let (x, y) = match dst.format {
        PictureFormat::Yuv420 => (x & !1, y & !1),
        PictureFormat::Rgb24 => (x, y),
    };
    for (i, (d, s)) in dst.planes.iter_mut().zip(&src.planes).enumerate() {
        let (bytes_per_px, shift) = match dst.format {
            PictureFormat::Rgb24 => (3, 0),
            PictureFormat::Yuv420 => (1, u32::from(i > 0)),
        };
        let (px, py) = ((x >> shift) as usize, (y >> shift) as usize);
        let start = px * bytes_per_px;
        if start >= d.row_bytes || py >= d.rows {
            continue;
        }
        let len = s.row_bytes.min(d.row_bytes - start);
        for row in 0..s.rows.min(d.rows - py) {
            let to = (py + row) * d.stride + start;
            let from = row * s.stride;
            d.data[to..to + len].copy_from_slice(&s.data[from..from + len]);
        }
    }
}

/// Blurs every plane in place with three passes of a box filter of
/// `radius` each way, which approximates a Gaussian of standard deviation
/// about `radius`. Cost does not depend on the radius.
pub fn blur(picture: &mut Picture, radius: usize) {
    let layout = picture.format;
    for (i, plane) in picture.planes.iter_mut().enumerate() {
        let (channels, r) = match layout {
            PictureFormat::Rgb24 => (3, radius),
            PictureFormat::Yuv420 if i > 0 => (1, (radius / 2).max(1)),
            PictureFormat::Yuv420 => (1, radius),
        };
        let width = plane.row_bytes / channels;
        let rows = plane.rows;
        let stride = plane.stride;
        let mut line = Vec::new();
        for _ in 0..3 {
            for row in 0..rows {
                for c in 0..channels {
                    box_pass(
                        &mut plane.data,
                        row * stride + c,
                        channels,
                        width,
                        r,
                        &mut line,
                    );
                }
            }
            for x in 0..width {
                for c in 0..channels {
                    box_pass(
                        &mut plane.data,
                        x * channels + c,
                        stride,
                        rows,
                        r,
                        &mut line,
                    );
                }
            }
        }
    }
}

/// One box-filter pass over `len` samples `step` bytes apart from `start`,
/// edges extended.
fn box_pass(data: &mut [u8], start: usize, step: usize, len: usize, r: usize, line: &mut Vec<u32>) {
    if len == 0 {
        return;
    }
    line.clear();
    line.extend((0..len).map(|i| u32::from(data[start + i * step])));
    let at = |i: isize| line[i.clamp(0, len as isize - 1) as usize];
    let window = (2 * r + 1) as u32;
    let r = r as isize;
    let mut sum: u32 = (-r..=r).map(at).sum();
    for i in 0..len {
        data[start + i * step] = ((sum + window / 2) / window) as u8;
        let i = i as isize;
        sum = sum + at(i + r + 1) - at(i - r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_sizes_follow_the_vod_rules() {
        assert_eq!(template_size((1920, 1080), 0, 0, true), (1920, 1080));
        assert_eq!(template_size((1920, 1080), 640, 0, true), (640, 360));
        assert_eq!(template_size((1920, 1080), 0, 360, true), (640, 360));
        assert_eq!(template_size((1920, 1080), 400, 400, true), (400, 400));
        // Adaptive: width is the long side, so a portrait video stays portrait.
        assert_eq!(template_size((1080, 1920), 640, 360, true), (360, 640));
        assert_eq!(template_size((1080, 1920), 640, 360, false), (640, 360));
        assert_eq!(template_size((1080, 1920), 640, 0, true), (360, 640));
    }

    #[test]
    fn fitting_keeps_the_aspect_ratio() {
        assert_eq!(fit_inside((1920, 1080), (400, 400)), (400, 225));
        assert_eq!(fit_inside((1080, 1920), (400, 400)), (225, 400));
        assert_eq!(fit_inside((640, 480), (640, 480)), (640, 480));
    }

    #[test]
    fn paste_places_pixels_and_clips() {
        let mut canvas = filled(PictureFormat::Rgb24, (8, 4), Shade::Black);
        let white = filled(PictureFormat::Rgb24, (4, 4), Shade::White);
        paste(&mut canvas, &white, 6, 2);
        assert_eq!(canvas.planes[0].row(0), &[0; 24][..]);
        assert_eq!(&canvas.planes[0].row(2)[..18], &[0; 18][..]);
        assert_eq!(&canvas.planes[0].row(3)[18..], &[255; 6][..]);
        let mut yuv = filled(PictureFormat::Yuv420, (8, 8), Shade::Black);
        let patch = filled(PictureFormat::Yuv420, (2, 2), Shade::White);
        paste(&mut yuv, &patch, 3, 3);
        // Rounded down to (2, 2).
        assert_eq!(yuv.planes[0].row(2), &[0, 0, 255, 255, 0, 0, 0, 0][..]);
        assert_eq!(yuv.planes[1].row(1), &[128; 4][..]);
    }

    #[test]
    fn blur_spreads_an_edge_and_keeps_flat_areas() {
        let mut picture = filled(PictureFormat::Rgb24, (32, 4), Shade::Black);
        let white = filled(PictureFormat::Rgb24, (16, 4), Shade::White);
        paste(&mut picture, &white, 16, 0);
        blur(&mut picture, 3);
        let row = picture.planes[0].row(1);
        assert_eq!(row[0], 0);
        assert_eq!(row[31 * 3], 255);
        let edge = row[15 * 3];
        assert!(edge > 40 && edge < 215, "edge value {edge}");
        assert!(row[14 * 3] < edge && row[16 * 3] > edge);
    }
}
