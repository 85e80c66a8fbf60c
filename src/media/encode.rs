//! Picture encoding: JPEG (turbojpeg, straight from YUV planes), PNG (png
//! crate), WebP and AVIF (FFmpeg's libwebp and libaom encoders, through
//! `av`, from YUV planes).

use super::{ImageFormat, MediaError};
use crate::av::{self, ImageCodec, Picture, PictureFormat};

/// The picture layout `format` is encoded from.
pub fn picture_format_for(format: ImageFormat) -> PictureFormat {
    match format {
        ImageFormat::Png => PictureFormat::Rgb24,
        ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Avif => PictureFormat::Yuv420,
    }
}

/// Encodes `picture` (in the layout [`picture_format_for`] gives) at
/// `quality` (1–100; PNG is lossless and has none).
pub fn encode(picture: &Picture, format: ImageFormat, quality: u8) -> Result<Vec<u8>, MediaError> {
    let ffmpeg = |codec| av::encode_image(picture, codec, quality).map_err(MediaError::internal);
    match (format, picture.format) {
        (ImageFormat::Jpeg, PictureFormat::Yuv420) => encode_jpeg(picture, quality),
        (ImageFormat::Png, PictureFormat::Rgb24) => encode_png(picture),
        (ImageFormat::WebP, PictureFormat::Yuv420) => ffmpeg(ImageCodec::WebP),
        (ImageFormat::Avif, PictureFormat::Yuv420) => ffmpeg(ImageCodec::Avif),
        _ => Err(MediaError::internal(
            "picture layout does not match the image format",
        )),
    }
}

fn encode_jpeg(picture: &Picture, quality: u8) -> Result<Vec<u8>, MediaError> {
    let [y, u, v] = &picture.planes[..] else {
        return Err(MediaError::internal("YUV picture without three planes"));
    };
    let image = turbojpeg::YuvPlanesImage {
        y_plane: &y.data[..],
        u_plane: &u.data[..],
        v_plane: &v.data[..],
        width: picture.width as usize,
        height: picture.height as usize,
        y_stride: y.stride,
        u_stride: u.stride,
        v_stride: v.stride,
        subsamp: turbojpeg::Subsamp::Sub2x2,
    };
    let mut compressor = turbojpeg::Compressor::new().map_err(MediaError::internal)?;
    compressor
        .set_quality(i32::from(quality.clamp(1, 100)))
        .map_err(MediaError::internal)?;
    compressor
        .compress_yuv_planes_to_vec(&image)
        .map_err(MediaError::internal)
}

/// An RGB picture's pixels as packed bytes, row after row.
pub(super) fn packed_rgb(picture: &Picture) -> Result<Vec<u8>, MediaError> {
    let [rgb] = &picture.planes[..] else {
        return Err(MediaError::internal("RGB picture without one plane"));
    };
    let mut packed = Vec::with_capacity(rgb.row_bytes * rgb.rows);
    for y in 0..rgb.rows {
        packed.extend_from_slice(rgb.row(y));
    }
    Ok(packed)
}

fn encode_png(picture: &Picture) -> Result<Vec<u8>, MediaError> {
    let packed = packed_rgb(picture)?;
    let mut out = Vec::with_capacity(packed.len() / 2);
    let mut encoder = png::Encoder::new(&mut out, picture.width, picture.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(MediaError::internal)?;
    writer
        .write_image_data(&packed)
        .map_err(MediaError::internal)?;
    writer.finish().map_err(MediaError::internal)?;
    Ok(out)
}

/// The formats of animated pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AnimationFormat {
    /// GIF: 256 colours a frame, each frame's palette chosen by NeuQuant.
    Gif,
    /// Animated WebP (lossy, libwebp).
    WebP,
}

impl AnimationFormat {
    /// The picture layout frames are made in.
    pub fn layout(self) -> PictureFormat {
        match self {
            Self::Gif => PictureFormat::Rgb24,
            Self::WebP => PictureFormat::Yuv420,
        }
    }

    /// The MIME type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }
}

/// Encodes `frames` (same size, in [`AnimationFormat::layout`]) as one
/// looping animation at `fps` frames a second. `quality` (1–100) is WebP's
/// quality, and for GIF how hard the palette search works.
pub fn encode_animation(
    frames: &[Picture],
    format: AnimationFormat,
    fps: u32,
    quality: u8,
) -> Result<Vec<u8>, MediaError> {
    match format {
        AnimationFormat::WebP => {
            av::encode_animated_webp(frames, fps, quality).map_err(MediaError::internal)
        }
        AnimationFormat::Gif => super::gif_encode::encode_gif(frames, fps, quality),
    }
}
