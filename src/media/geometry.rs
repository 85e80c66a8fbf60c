//! Orientation and size: where the display matrix puts the coded picture,
//! the displayed size (sample aspect ratio, rotation) and the output size
//! rules of the snapshot API.

use super::MediaError;
use crate::av::{Picture, PictureFormat, Plane, Rational};

/// One of the eight axis-aligned orientations: mirror the coded picture
/// horizontally (if `mirror`), then turn it `clockwise` degrees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Orientation {
    /// Clockwise turn: 0, 90, 180 or 270.
    pub clockwise: u16,
    /// Mirror left-right before turning.
    pub mirror: bool,
}

impl Orientation {
    /// The coded picture as is.
    pub const IDENTITY: Self = Self {
        clockwise: 0,
        mirror: false,
    };

    /// Reads a display matrix (ISO/IEC 14496-12 layout, as FFmpeg exports
    /// it). Angles that are not a multiple of 90 degrees snap to the
    /// nearest one.
    ///
    /// With `a = m[0]`, `b = m[1]`, `c = m[3]`, `d = m[4]`, a coded pixel
    /// `(x, y)` (y down) is displayed at `(a·x + c·y, b·x + d·y)` plus a
    /// translation. A clockwise turn by θ is `a = d = cos θ`,
    /// `b = -c = sin θ`; a negative determinant means a mirror, which is
    /// taken out first by composing with a left-right flip.
    pub fn from_display_matrix(m: &[i32; 9]) -> Self {
        let (mut a, mut b) = (f64::from(m[0]), f64::from(m[1]));
        let (c, d) = (f64::from(m[3]), f64::from(m[4]));
        let mirror = a * d - b * c < 0.0;
        if mirror {
            // T ∘ flip maps (x, y) to T(-x, y): negate the first column.
            a = -a;
            b = -b;
        }
        if a == 0.0 && b == 0.0 {
            return Self::IDENTITY;
        }
        let degrees = b.atan2(a).to_degrees();
        let quarter = (degrees / 90.0).round().rem_euclid(4.0) as u16;
        Self {
            clockwise: quarter * 90,
            mirror,
        }
    }

    /// Whether width and height trade places.
    pub fn swaps_axes(self) -> bool {
        self.clockwise % 180 == 90
    }

    /// Where displayed pixel `(x, y)` comes from in a `w` x `h` source.
    fn source_of(self, x: usize, y: usize, w: usize, h: usize) -> (usize, usize) {
        // Undo the turn, then the mirror.
        let (sx, sy) = match self.clockwise {
            90 => (y, h - 1 - x),
            180 => (w - 1 - x, h - 1 - y),
            270 => (w - 1 - y, x),
            _ => (x, y),
        };
        if self.mirror {
            (w - 1 - sx, sy)
        } else {
            (sx, sy)
        }
    }

    /// Applies the orientation to a picture (a copy; the identity returns
    /// the picture unchanged).
    pub fn apply(self, picture: Picture) -> Picture {
        if self == Self::IDENTITY {
            return picture;
        }
        let (w, h) = if self.swaps_axes() {
            (picture.height, picture.width)
        } else {
            (picture.width, picture.height)
        };
        let bpp = match picture.format {
            PictureFormat::Yuv420 => 1,
            PictureFormat::Rgb24 => 3,
        };
        let planes = picture
            .planes
            .iter()
            .map(|p| self.apply_plane(p, bpp))
            .collect();
        Picture {
            format: picture.format,
            width: w,
            height: h,
            planes,
        }
    }

    fn apply_plane(self, src: &Plane, bpp: usize) -> Plane {
        let (sw, sh) = (src.row_bytes / bpp, src.rows);
        let (dw, dh) = if self.swaps_axes() {
            (sh, sw)
        } else {
            (sw, sh)
        };
        let mut dst = Plane::new(dw * bpp, dh);
        for y in 0..dh {
            let row = &mut dst.data[y * dst.stride..y * dst.stride + dw * bpp];
            for (x, px) in row.chunks_exact_mut(bpp).enumerate() {
                let (sx, sy) = self.source_of(x, y, sw, sh);
                let at = sy * src.stride + sx * bpp;
                px.copy_from_slice(&src.data[at..at + bpp]);
            }
        }
        dst
    }
}

/// The size a player shows: coded size with the sample aspect ratio applied
/// to the width, then turned by `orientation`.
pub fn displayed_size(coded: (u32, u32), sar: Rational, orientation: Orientation) -> (u32, u32) {
    let (cw, ch) = coded;
    let w = match sar.to_f64() {
        Some(r) if r > 0.0 && (r - 1.0).abs() > 1e-9 => {
            (f64::from(cw) * r).round().clamp(1.0, f64::from(u32::MAX)) as u32
        }
        _ => cw,
    };
    if orientation.swaps_axes() {
        (ch, w)
    } else {
        (w, ch)
    }
}

/// The output size for a request of `requested` (width, height) on a picture
/// displayed at `displayed`:
/// - both 0: the displayed size, shrunk proportionally to fit `max_side` if
///   it is larger;
/// - one 0: the given side, the other following the displayed aspect ratio
///   (rounded to nearest, at least 1);
/// - both set: exactly that.
///
/// A side above `max_side` (requested or computed, except in the first case)
/// is an [`MediaError::OutputSizeOutOfRange`].
pub fn output_size(
    displayed: (u32, u32),
    requested: (u32, u32),
    max_side: u32,
) -> Result<(u32, u32), MediaError> {
    let (dw, dh) = (f64::from(displayed.0.max(1)), f64::from(displayed.1.max(1)));
    let follow = |given: u32, num: f64, den: f64| (f64::from(given) * num / den).round().max(1.0);
    let (w, h) = match requested {
        (0, 0) => {
            let scale = (f64::from(max_side) / dw.max(dh)).min(1.0);
            ((dw * scale).round().max(1.0), (dh * scale).round().max(1.0))
        }
        (w, 0) => (f64::from(w), follow(w, dh, dw)),
        (0, h) => (follow(h, dw, dh), f64::from(h)),
        (w, h) => (f64::from(w), f64::from(h)),
    };
    let max = f64::from(max_side);
    if w > max || h > max {
        return Err(MediaError::OutputSizeOutOfRange {
            width: w as u64,
            height: h as u64,
            max: max_side,
        });
    }
    Ok((w as u32, h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i32 = 1 << 16;

    fn matrix(a: i32, b: i32, c: i32, d: i32) -> [i32; 9] {
        [a, b, 0, c, d, 0, 0, 0, 1 << 30]
    }

    #[test]
    fn display_matrix_turns_and_mirrors() {
        let check = |m, clockwise, mirror| {
            assert_eq!(
                Orientation::from_display_matrix(&m),
                Orientation { clockwise, mirror },
                "{m:?}"
            );
        };
        check(matrix(ONE, 0, 0, ONE), 0, false);
        check(matrix(0, ONE, -ONE, 0), 90, false);
        check(matrix(-ONE, 0, 0, -ONE), 180, false);
        check(matrix(0, -ONE, ONE, 0), 270, false);
        check(matrix(-ONE, 0, 0, ONE), 0, true);
        check(matrix(ONE, 0, 0, -ONE), 180, true);
        check(matrix(0, ONE, ONE, 0), 270, true);
        check([0; 9], 0, false);
    }

    /// A 3x2 RGB picture whose pixel (x, y) has red = 10·y + x.
    fn numbered() -> Picture {
        let mut p = Picture::new(PictureFormat::Rgb24, 3, 2);
        for y in 0..2 {
            for x in 0..3 {
                let at = y * p.planes[0].stride + x * 3;
                p.planes[0].data[at] = (10 * y + x) as u8;
            }
        }
        p
    }

    fn reds(p: &Picture) -> Vec<Vec<u8>> {
        (0..p.height as usize)
            .map(|y| p.planes[0].row(y).chunks(3).map(|px| px[0]).collect())
            .collect()
    }

    #[test]
    fn orientation_moves_pixels_like_a_player() {
        let turn = |clockwise, mirror| reds(&Orientation { clockwise, mirror }.apply(numbered()));
        assert_eq!(turn(0, false), vec![vec![0, 1, 2], vec![10, 11, 12]]);
        assert_eq!(turn(90, false), vec![vec![10, 0], vec![11, 1], vec![12, 2]]);
        assert_eq!(turn(180, false), vec![vec![12, 11, 10], vec![2, 1, 0]]);
        assert_eq!(
            turn(270, false),
            vec![vec![2, 12], vec![1, 11], vec![0, 10]]
        );
        assert_eq!(turn(0, true), vec![vec![2, 1, 0], vec![12, 11, 10]]);
        assert_eq!(turn(90, true), vec![vec![12, 2], vec![11, 1], vec![10, 0]]);
    }

    #[test]
    fn displayed_size_applies_sar_then_rotation() {
        let square = Rational { num: 1, den: 1 };
        let wide = Rational { num: 4, den: 3 };
        let unknown = Rational { num: 0, den: 1 };
        let turned = Orientation {
            clockwise: 90,
            mirror: false,
        };
        assert_eq!(
            displayed_size((320, 240), square, Orientation::IDENTITY),
            (320, 240)
        );
        assert_eq!(
            displayed_size((320, 240), unknown, Orientation::IDENTITY),
            (320, 240)
        );
        assert_eq!(
            displayed_size((320, 240), wide, Orientation::IDENTITY),
            (427, 240)
        );
        assert_eq!(displayed_size((320, 240), wide, turned), (240, 427));
    }

    #[test]
    fn output_size_rules() {
        assert_eq!(output_size((640, 360), (0, 0), 4096).unwrap(), (640, 360));
        assert_eq!(output_size((640, 360), (320, 0), 4096).unwrap(), (320, 180));
        assert_eq!(output_size((640, 360), (0, 90), 4096).unwrap(), (160, 90));
        assert_eq!(
            output_size((640, 360), (100, 100), 4096).unwrap(),
            (100, 100)
        );
        assert_eq!(output_size((427, 240), (0, 100), 4096).unwrap(), (178, 100));
        assert_eq!(output_size((1000, 3), (10, 0), 4096).unwrap(), (10, 1));
        assert_eq!(
            output_size((8000, 4000), (0, 0), 4096).unwrap(),
            (4096, 2048)
        );
        assert!(matches!(
            output_size((640, 360), (5000, 0), 4096),
            Err(MediaError::OutputSizeOutOfRange { .. })
        ));
        assert!(matches!(
            output_size((360, 640), (4000, 0), 4096),
            Err(MediaError::OutputSizeOutOfRange { .. })
        ));
    }
}
