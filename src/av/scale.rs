//! swscale: converts a decoded frame to the size and pixel layout the
//! encoders want.

use super::{ffi, AvError, Frame};
use std::ffi::c_int;
use std::ptr;

/// The pixel layout of a [`Picture`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureFormat {
    /// Planar Y, Cb, Cr with 2x2 chroma subsampling, full range, BT.601
    /// coefficients: what JPEG (JFIF) stores.
    Yuv420,
    /// Packed 8-bit R, G, B.
    Rgb24,
}

/// One plane of a [`Picture`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    /// Rows of `stride` bytes.
    pub data: Vec<u8>,
    /// Bytes from one row to the next.
    pub stride: usize,
    /// Bytes of picture per row (`<= stride`).
    pub row_bytes: usize,
    /// Number of rows.
    pub rows: usize,
}

impl Plane {
    /// A zeroed plane of `rows` rows of `row_bytes` bytes.
    pub fn new(row_bytes: usize, rows: usize) -> Self {
        // Rows aligned for swscale's SIMD writes, plus slack: one spare row
        // (encoders read 4:2:0 pictures padded to even sizes) and a tail.
        let stride = Self::stride_for(row_bytes);
        Self {
            data: vec![0; Self::size_for(stride, rows)],
            stride,
            row_bytes,
            rows,
        }
    }

    /// The stride of rows of `row_bytes` bytes.
    fn stride_for(row_bytes: usize) -> usize {
        row_bytes.div_ceil(64) * 64
    }

    /// The buffer size of `rows` rows of `stride` bytes, with the slack.
    fn size_for(stride: usize, rows: usize) -> usize {
        stride * (rows + 1) + 64
    }

    /// Row `y` (only the picture bytes).
    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.stride..y * self.stride + self.row_bytes]
    }
}

/// An owned picture in safe memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Pixel layout.
    pub format: PictureFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Y, Cb, Cr planes for [`PictureFormat::Yuv420`]; one plane for RGB.
    pub planes: Vec<Plane>,
}

impl Picture {
    /// A zeroed picture.
    pub fn new(format: PictureFormat, width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let planes = match format {
            PictureFormat::Yuv420 => {
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                vec![Plane::new(w, h), Plane::new(cw, ch), Plane::new(cw, ch)]
            }
            PictureFormat::Rgb24 => vec![Plane::new(w * 3, h)],
        };
        Self {
            format,
            width,
            height,
            planes,
        }
    }
}

/// A configured conversion: swscale, or for a 4:2:0 frame wanted at its own
/// size as JPEG's 4:2:0, one pass over the samples.
pub struct Scaler {
    how: Conversion,
    src: (c_int, c_int, c_int),
    width: u32,
    height: u32,
    format: PictureFormat,
}

/// How [`Scaler::scale`] makes the picture.
enum Conversion {
    /// A swscale context (owned; freed on drop).
    Sws(*mut ffi::SwsContext),
    /// Same-size 8-bit 4:2:0 to full-range 4:2:0: each sample expanded
    /// (limited-range input, see `Expansion`) or copied (full-range input).
    /// swscale has no unscaled path for the range change and runs its
    /// whole filter chain at 1:1, several times the cost of this pass (a
    /// 1080p frame: ~9 ms against ~1.5 ms).
    Direct {
        /// The input is limited range (16-235 luma, 16-240 chroma).
        expand: bool,
    },
}

/// Limited- to full-range expansion of one 8-bit plane:
/// `(v * mul + add) >> 12`, clamped to a byte. The constants reproduce
/// `(v - 16) * 255 / 219` (luma) and `(v - 128) * 255 / 224 + 128` (chroma),
/// rounded to nearest, exactly for every input (a test checks all 256), in a
/// form the compiler turns into SIMD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expansion {
    mul: i32,
    add: i32,
}

const LUMA: Expansion = Expansion {
    mul: 4770,
    add: -74348,
};
const CHROMA: Expansion = Expansion {
    mul: 4663,
    add: -70553,
};

impl Expansion {
    fn apply(self, v: u8) -> u8 {
        ((i32::from(v) * self.mul + self.add) >> 12).clamp(0, 255) as u8
    }
}

impl Scaler {
    /// A scaler from frames shaped like `src` to `width` x `height` in
    /// `format`, with a bicubic filter. The source's colour matrix and range
    /// are honoured. An 8-bit 4:2:0 frame wanted as JPEG's 4:2:0 at its own
    /// size skips swscale (see [`Conversion::Direct`]).
    pub fn new(
        src: &Frame,
        width: u32,
        height: u32,
        format: PictureFormat,
    ) -> Result<Self, AvError> {
        let invalid = || AvError::from_code(ffi::AVERROR(ffi::EINVAL));
        if src.is_empty() || width == 0 || height == 0 {
            return Err(invalid());
        }
        let SourceShape {
            width: sw,
            height: sh,
            raw_format: raw_fmt,
            format: src_fmt,
            full_range: src_full,
            ..
        } = SourceShape::of(src)?;
        if format == PictureFormat::Yuv420
            && src_fmt == ffi::AVPixelFormat::AV_PIX_FMT_YUV420P
            && (c_int::try_from(width), c_int::try_from(height)) == (Ok(sw), Ok(sh))
        {
            // YUV to YUV keeps the colour matrix (as swscale does): only the
            // range changes.
            return Ok(Self {
                how: Conversion::Direct { expand: !src_full },
                src: (sw, sh, raw_fmt),
                width,
                height,
                format,
            });
        }
        let dst_fmt = match format {
            // The full-range twin: swscale sets up range conversion for
            // YUV-to-YUV only from the format at init time.
            PictureFormat::Yuv420 => ffi::AVPixelFormat::AV_PIX_FMT_YUVJ420P,
            PictureFormat::Rgb24 => ffi::AVPixelFormat::AV_PIX_FMT_RGB24,
        };
        // For JPEG's YUV, swscale's default rounding: SWS_ACCURATE_RND turns
        // off its SIMD paths, a quarter of a 720p snapshot's time, for one
        // level of difference that the lossy encoder dwarfs. Lossless PNG
        // gets the accurate RGB conversion.
        let flags = match format {
            PictureFormat::Yuv420 => ffi::SWS_BICUBIC,
            PictureFormat::Rgb24 => {
                ffi::SWS_BICUBIC | ffi::SWS_ACCURATE_RND | ffi::SWS_FULL_CHR_H_INT
            }
        };
        let ctx = open_sws(src, (width, height), dst_fmt, flags as c_int)?;
        Ok(Self {
            how: Conversion::Sws(ctx),
            src: (sw, sh, raw_fmt),
            width,
            height,
            format,
        })
    }

    /// Scales `frame` (shaped like the frame given to [`Scaler::new`]).
    pub fn scale(&mut self, frame: &Frame) -> Result<Picture, AvError> {
        let f = frame.as_ptr();
        // SAFETY: reading plain fields of a valid frame.
        let shape = unsafe { ((*f).width, (*f).height, (*f).format) };
        if shape != self.src || frame.is_empty() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::EINVAL)));
        }
        let ctx = match self.how {
            Conversion::Sws(ctx) => ctx,
            Conversion::Direct { expand } => {
                let (w, h) = (self.width as usize, self.height as usize);
                let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
                let planes = [(w, h, LUMA), (cw, ch, CHROMA), (cw, ch, CHROMA)]
                    .into_iter()
                    .enumerate()
                    .map(|(i, (row_bytes, rows, expansion))| {
                        convert_plane(frame, i, row_bytes, rows, expand.then_some(expansion))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(Picture {
                    format: self.format,
                    width: self.width,
                    height: self.height,
                    planes,
                });
            }
        };
        let mut picture = Picture::new(self.format, self.width, self.height);
        let mut dst = [ptr::null_mut::<u8>(); 4];
        let mut strides = [0 as c_int; 4];
        for (i, plane) in picture.planes.iter_mut().enumerate() {
            dst[i] = plane.data.as_mut_ptr();
            strides[i] = c_int::try_from(plane.stride).map_err(|_| AvError::InvalidData)?;
        }
        // SAFETY: the frame's data/linesize describe a picture of the shape
        // the context was built for (checked above); each destination plane
        // holds `rows` rows of `stride` bytes plus slack, as sized for the
        // destination format by Picture::new.
        let rc = unsafe {
            ffi::sws_scale(
                ctx,
                (*f).data.as_ptr().cast::<*const u8>(),
                (*f).linesize.as_ptr(),
                0,
                self.src.1,
                dst.as_ptr(),
                strides.as_ptr(),
            )
        };
        AvError::check(rc)?;
        Ok(picture)
    }
}

impl Drop for Scaler {
    fn drop(&mut self) {
        if let Conversion::Sws(ctx) = self.how {
            // SAFETY: `ctx` came from sws_getContext and is freed once.
            unsafe { ffi::sws_freeContext(ctx) }
        }
    }
}

/// What a conversion needs to know of its source frames.
struct SourceShape {
    width: c_int,
    height: c_int,
    /// `AVFrame.format` as it is.
    raw_format: c_int,
    /// The format, the full-range `J` twins mapped to their plain formats.
    format: ffi::AVPixelFormat,
    /// Full-range samples (by format or by the range flag).
    full_range: bool,
    space: ffi::AVColorSpace,
}

impl SourceShape {
    fn of(frame: &Frame) -> Result<Self, AvError> {
        let f = frame.as_ptr();
        // SAFETY: reading plain fields of a valid frame.
        let (width, height, raw_format, range, space) = unsafe {
            (
                (*f).width,
                (*f).height,
                (*f).format,
                (*f).color_range,
                (*f).colorspace,
            )
        };
        let (format, full_range_format) = pixel_format(raw_format)
            .ok_or_else(|| AvError::from_code(ffi::AVERROR(ffi::EINVAL)))?;
        Ok(Self {
            width,
            height,
            raw_format,
            format,
            full_range: full_range_format || range == ffi::AVColorRange::AVCOL_RANGE_JPEG,
            space,
        })
    }
}

/// A swscale context from frames shaped like `src` (its colour matrix and
/// range honoured) to `size` in `dst_fmt`; the caller frees it.
fn open_sws(
    src: &Frame,
    size: (u32, u32),
    dst_fmt: ffi::AVPixelFormat,
    flags: c_int,
) -> Result<*mut ffi::SwsContext, AvError> {
    let invalid = || AvError::from_code(ffi::AVERROR(ffi::EINVAL));
    let SourceShape {
        width: sw,
        height: sh,
        format: src_fmt,
        full_range: src_full,
        space,
        ..
    } = SourceShape::of(src)?;
    let (dw, dh) = (
        c_int::try_from(size.0).map_err(|_| invalid())?,
        c_int::try_from(size.1).map_err(|_| invalid())?,
    );
    // SAFETY: sizes are positive and formats valid; NULL filters and
    // params are allowed. NULL result is checked.
    let ctx = unsafe {
        ffi::sws_getContext(
            sw,
            sh,
            src_fmt,
            dw,
            dh,
            dst_fmt,
            flags,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null(),
        )
    };
    if ctx.is_null() {
        return Err(invalid());
    }
    let src_space = match space {
        ffi::AVColorSpace::AVCOL_SPC_BT709 => ffi::SWS_CS_ITU709,
        ffi::AVColorSpace::AVCOL_SPC_FCC => ffi::SWS_CS_FCC,
        ffi::AVColorSpace::AVCOL_SPC_SMPTE240M => ffi::SWS_CS_SMPTE240M,
        ffi::AVColorSpace::AVCOL_SPC_BT2020_NCL | ffi::AVColorSpace::AVCOL_SPC_BT2020_CL => {
            ffi::SWS_CS_BT2020
        }
        _ => ffi::SWS_CS_ITU601,
    };
    // SAFETY: `ctx` is valid; sws_getCoefficients returns pointers to
    // static tables. A failure (-1) only means the details are not
    // supported for this conversion (e.g. RGB input), which is harmless.
    unsafe {
        ffi::sws_setColorspaceDetails(
            ctx,
            ffi::sws_getCoefficients(src_space),
            c_int::from(src_full),
            ffi::sws_getCoefficients(ffi::SWS_CS_ITU601),
            1,
            0,
            1 << 16,
            1 << 16,
        );
    }
    Ok(ctx)
}

/// Packed 16-bit R, G, B samples of the coded signal (no transfer applied):
/// what HDR pictures are tone-mapped from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WideRgb {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` samples, row by row.
    pub samples: Vec<u16>,
}

/// `frame` scaled to `width` x `height` as 16-bit RGB (full range, the
/// source's matrix undone), for pictures that need more than 8 bits on the
/// way (HDR tone mapping).
pub fn scale_to_wide_rgb(frame: &Frame, width: u32, height: u32) -> Result<WideRgb, AvError> {
    if frame.is_empty() || width == 0 || height == 0 {
        return Err(AvError::from_code(ffi::AVERROR(ffi::EINVAL)));
    }
    let flags = ffi::SWS_BICUBIC | ffi::SWS_ACCURATE_RND | ffi::SWS_FULL_CHR_H_INT;
    let ctx = SwsContext(open_sws(
        frame,
        (width, height),
        ffi::AVPixelFormat::AV_PIX_FMT_RGB48LE,
        flags as c_int,
    )?);
    let row_samples = width as usize * 3;
    // A spare row of slack for swscale's vector writes, as `Plane` keeps.
    let mut samples = vec![0u16; row_samples * (height as usize + 1)];
    let dst = [
        samples.as_mut_ptr().cast::<u8>(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
    ];
    let stride = c_int::try_from(row_samples * 2).map_err(|_| AvError::InvalidData)?;
    let strides = [stride, 0, 0, 0];
    let f = frame.as_ptr();
    // SAFETY: the context was built for this frame's shape; the frame's
    // data/linesize describe it; the destination holds `height` rows of
    // `stride` bytes plus a spare row.
    let rc = unsafe {
        ffi::sws_scale(
            ctx.0,
            (*f).data.as_ptr().cast::<*const u8>(),
            (*f).linesize.as_ptr(),
            0,
            (*f).height,
            dst.as_ptr(),
            strides.as_ptr(),
        )
    };
    AvError::check(rc)?;
    samples.truncate(row_samples * height as usize);
    for sample in &mut samples {
        *sample = u16::from_le(*sample);
    }
    Ok(WideRgb {
        width,
        height,
        samples,
    })
}

/// A swscale context, freed on drop.
struct SwsContext(*mut ffi::SwsContext);

impl Drop for SwsContext {
    fn drop(&mut self) {
        // SAFETY: the context came from sws_getContext and is freed once.
        unsafe { ffi::sws_freeContext(self.0) }
    }
}

/// Plane `i` of an 8-bit planar `frame` that has at least `rows` rows of
/// `row_bytes` samples, each sample expanded (or copied), laid out as
/// [`Plane::new`] lays out a plane of that size. Written once, never zeroed
/// first.
fn convert_plane(
    frame: &Frame,
    i: usize,
    row_bytes: usize,
    rows: usize,
    expansion: Option<Expansion>,
) -> Result<Plane, AvError> {
    let f = frame.as_ptr();
    // SAFETY: reading plain fields of a valid frame.
    let (data, linesize) = unsafe { ((*f).data[i], (*f).linesize[i]) };
    let linesize = usize::try_from(linesize).map_err(|_| AvError::InvalidData)?;
    if data.is_null() || rows == 0 || linesize < row_bytes {
        return Err(AvError::InvalidData);
    }
    // SAFETY: the frame is a decoded picture of the shape the scaler was
    // built for (checked by the caller): plane `i` holds `rows` rows of
    // `linesize` bytes starting at `data`, the last row at least
    // `row_bytes` long, and nothing writes to it while `frame` is borrowed.
    let src = unsafe { std::slice::from_raw_parts(data, linesize * (rows - 1) + row_bytes) };
    let stride = Plane::stride_for(row_bytes);
    let size = Plane::size_for(stride, rows);
    let mut out = Vec::with_capacity(size);
    for row in src.chunks(linesize).take(rows) {
        let row = &row[..row_bytes];
        match expansion {
            Some(e) => out.extend(row.iter().map(|&v| e.apply(v))),
            None => out.extend_from_slice(row),
        }
        out.resize(out.len() + stride - row_bytes, 0);
    }
    out.resize(size, 0);
    Ok(Plane {
        data: out,
        stride,
        row_bytes,
        rows,
    })
}

/// Converts a frame's format number to the enum, mapping the deprecated
/// full-range `yuvj*` formats to their plain twins (the bool says "full
/// range"). `None` for numbers outside the enum.
fn pixel_format(raw: c_int) -> Option<(ffi::AVPixelFormat, bool)> {
    use ffi::AVPixelFormat as P;
    if raw < 0 || raw >= P::AV_PIX_FMT_NB as c_int {
        return None;
    }
    // SAFETY: AVPixelFormat is a C-like enum over i32 whose discriminants
    // cover 0..AV_PIX_FMT_NB without gaps, and `raw` is in that range.
    let fmt: P = unsafe { std::mem::transmute::<c_int, P>(raw) };
    Some(match fmt {
        P::AV_PIX_FMT_YUVJ420P => (P::AV_PIX_FMT_YUV420P, true),
        P::AV_PIX_FMT_YUVJ422P => (P::AV_PIX_FMT_YUV422P, true),
        P::AV_PIX_FMT_YUVJ444P => (P::AV_PIX_FMT_YUV444P, true),
        P::AV_PIX_FMT_YUVJ440P => (P::AV_PIX_FMT_YUV440P, true),
        P::AV_PIX_FMT_YUVJ411P => (P::AV_PIX_FMT_YUV411P, true),
        other => (other, false),
    })
}

#[cfg(test)]
mod tests {
    use super::{CHROMA, LUMA};

    /// `offset + d * 255 / range`, rounded half away from zero, clamped.
    fn exact(d: i32, range: i32, offset: i32) -> u8 {
        let scaled = f64::from(d) * 255.0 / f64::from(range);
        (f64::from(offset) + scaled.round()).clamp(0.0, 255.0) as u8
    }

    #[test]
    fn range_expansion_is_exact_for_every_sample() {
        for v in 0..=255u8 {
            let d = i32::from(v);
            assert_eq!(LUMA.apply(v), exact(d - 16, 219, 0), "luma {v}");
            assert_eq!(CHROMA.apply(v), exact(d - 128, 224, 128), "chroma {v}");
        }
        assert_eq!((LUMA.apply(16), LUMA.apply(235)), (0, 255));
        assert_eq!((CHROMA.apply(128), CHROMA.apply(240)), (128, 255));
    }
}
