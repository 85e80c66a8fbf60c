//! Pictures encoded by FFmpeg's image encoders: WebP (libwebp), animated
//! WebP (libwebp's animation encoder) and AVIF (libaom's AV1 in
//! still-picture mode, in the AVIF container written by FFmpeg's muxer into
//! memory).

use std::ffi::{c_int, CStr};
use std::ptr;

use super::{ffi, AvError, Frame, Packet, Picture, PictureFormat};

/// The image formats FFmpeg encodes for us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCodec {
    /// Lossy WebP (libwebp): the packet is the whole `.webp` file.
    WebP,
    /// AVIF: one AV1 key frame (libaom, real-time speed 8) in FFmpeg's
    /// AVIF container.
    Avif,
}

/// Pictures of this many pixels (a megapixel) or more are encoded as WebP
/// with libwebp's fastest method.
const WEBP_FAST_PIXELS: u64 = 1 << 20;

/// The sample range a format stores 4:2:0 in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleRange {
    /// 0–255, as JPEG (and our pictures).
    Full,
    /// Y 16–235, Cb/Cr 16–240, as VP8/WebP's YUV.
    Limited,
}

impl ImageCodec {
    /// WebP's YUV is BT.601 limited range; AVIF signals full range and
    /// BT.601 in its sequence header, so the planes go as they are.
    fn range(self) -> SampleRange {
        match self {
            Self::WebP => SampleRange::Limited,
            Self::Avif => SampleRange::Full,
        }
    }

    fn encoder_name(self) -> &'static CStr {
        match self {
            Self::WebP => c"libwebp",
            Self::Avif => c"libaom-av1",
        }
    }

    /// The encoder's private options for `quality` (1–100, higher is
    /// better) on a picture of `pixels`. WebP uses libwebp's method 2 (of
    /// 0–6; the default 4 takes twice as long for 5 % fewer bytes), and
    /// method 0 from [`WEBP_FAST_PIXELS`] on, where method 2 costs 60 %
    /// more time for 20 % fewer bytes (BENCHMARKS.md). AVIF's quality maps
    /// linearly onto libaom's CRF 63–0.
    fn options(self, quality: u8, pixels: u64) -> Vec<(&'static CStr, String)> {
        let quality = quality.clamp(1, 100);
        match self {
            Self::WebP => {
                let method = if pixels >= WEBP_FAST_PIXELS { "0" } else { "2" };
                vec![
                    (c"quality", quality.to_string()),
                    (c"compression_level", method.into()),
                ]
            }
            Self::Avif => vec![
                (c"still-picture", "1".into()),
                (c"usage", "realtime".into()),
                (c"cpu-used", "8".into()),
                (c"crf", ((100 - u32::from(quality)) * 63 / 100).to_string()),
            ],
        }
    }
}

/// Encodes a 4:2:0 `picture` as one image file.
pub fn encode_image(picture: &Picture, codec: ImageCodec, quality: u8) -> Result<Vec<u8>, AvError> {
    if picture.format != PictureFormat::Yuv420 {
        return Err(AvError::Unsupported("image encoders take 4:2:0 pictures"));
    }
    let mut encoder = EncoderContext::open(codec, picture.width, picture.height, quality)?;
    let frame = frame_of(picture, codec.range())?;
    let packet = encoder.encode_one(&frame)?;
    match codec {
        ImageCodec::WebP => Ok(packet.data().to_vec()),
        ImageCodec::Avif => mux_avif(&encoder, packet),
    }
}

/// Encodes 4:2:0 `frames` (all the same size) as one animated WebP file
/// at `fps` frames a second, looping.
pub fn encode_animated_webp(frames: &[Picture], fps: u32, quality: u8) -> Result<Vec<u8>, AvError> {
    let Some(first) = frames.first() else {
        return Err(AvError::Unsupported("an animation needs a frame"));
    };
    if frames.iter().any(|f| {
        f.format != PictureFormat::Yuv420 || (f.width, f.height) != (first.width, first.height)
    }) {
        return Err(AvError::Unsupported(
            "animation frames must be 4:2:0 of one size",
        ));
    }
    let mut encoder = EncoderContext::open_with(
        c"libwebp_anim",
        (first.width, first.height),
        c_int::try_from(fps.max(1)).map_err(|_| AvError::InvalidData)?,
        &[
            (c"quality", quality.clamp(1, 100).to_string()),
            (c"loop", "0".into()),
        ],
        SampleRange::Limited,
    )?;
    for (index, picture) in frames.iter().enumerate() {
        let mut frame = frame_of(picture, SampleRange::Limited)?;
        // SAFETY: a plain field of a frame we own.
        unsafe { (*frame.as_mut_ptr()).pts = index as i64 };
        encoder.send(Some(&frame))?;
    }
    encoder.send(None)?;
    Ok(encoder.receive()?.data().to_vec())
}

/// An opened encoder.
struct EncoderContext {
    ctx: *mut ffi::AVCodecContext,
}

impl EncoderContext {
    fn open(codec: ImageCodec, width: u32, height: u32, quality: u8) -> Result<Self, AvError> {
        let encoder = Self::open_with(
            codec.encoder_name(),
            (width, height),
            25,
            &codec.options(quality, u64::from(width) * u64::from(height)),
            codec.range(),
        )?;
        Ok(encoder)
    }

    /// Opens the encoder `name` for 4:2:0 pictures of `size` at `rate`
    /// pictures a second, with private `options`, samples in `range`.
    fn open_with(
        name: &CStr,
        size: (u32, u32),
        rate: c_int,
        options: &[(&CStr, String)],
        range: SampleRange,
    ) -> Result<Self, AvError> {
        // SAFETY: a NUL-terminated name; NULL means no such encoder.
        let found = unsafe { ffi::avcodec_find_encoder_by_name(name.as_ptr()) };
        if found.is_null() {
            return Err(AvError::EncoderNotFound(name.to_string_lossy().into()));
        }
        // SAFETY: `found` is a valid encoder; NULL is checked.
        let ctx = unsafe { ffi::avcodec_alloc_context3(found) };
        if ctx.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        let encoder = Self { ctx };
        let mut dictionary = Dictionary::default();
        for (key, value) in options {
            dictionary.set(key, value)?;
        }
        // SAFETY: `ctx` is a fresh context of `found`; the fields set are
        // plain options read by avcodec_open2, which takes the dictionary
        // (leaving in it what it did not use, freed by its drop).
        unsafe {
            (*ctx).width = c_int::try_from(size.0).map_err(|_| AvError::InvalidData)?;
            (*ctx).height = c_int::try_from(size.1).map_err(|_| AvError::InvalidData)?;
            (*ctx).pix_fmt = ffi::AVPixelFormat::AV_PIX_FMT_YUV420P;
            (*ctx).time_base = ffi::AVRational { num: 1, den: rate };
            (*ctx).framerate = ffi::AVRational { num: rate, den: 1 };
            (*ctx).thread_count = 1;
            // Our 4:2:0 is JPEG's: BT.601 matrix, sRGB-like primaries.
            (*ctx).colorspace = ffi::AVColorSpace::AVCOL_SPC_BT470BG;
            (*ctx).color_primaries = ffi::AVColorPrimaries::AVCOL_PRI_BT709;
            (*ctx).color_trc = ffi::AVColorTransferCharacteristic::AVCOL_TRC_IEC61966_2_1;
            (*ctx).color_range = match range {
                SampleRange::Full => ffi::AVColorRange::AVCOL_RANGE_JPEG,
                SampleRange::Limited => ffi::AVColorRange::AVCOL_RANGE_MPEG,
            };
            if name == c"libaom-av1" {
                // The AV1 sequence header goes in extradata (the `av1C` box).
                (*ctx).flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as c_int;
            }
            AvError::check(ffi::avcodec_open2(ctx, found, &mut dictionary.0))?;
        }
        Ok(encoder)
    }

    /// Sends a frame, or the end of input (`None`).
    fn send(&mut self, frame: Option<&Frame>) -> Result<(), AvError> {
        let frame = frame.map_or(ptr::null(), Frame::as_ptr);
        // SAFETY: `ctx` is an opened encoder; it takes its own reference to
        // the frame; a NULL frame is the documented flush signal.
        AvError::check(unsafe { ffi::avcodec_send_frame(self.ctx, frame) }).map(drop)
    }

    /// Receives the next packet.
    fn receive(&mut self) -> Result<Packet, AvError> {
        let mut packet = Packet::new()?;
        // SAFETY: `ctx` is an opened encoder; receive_packet unrefs
        // `packet` before filling it.
        AvError::check(unsafe { ffi::avcodec_receive_packet(self.ctx, packet.as_mut_ptr()) })?;
        Ok(packet)
    }

    /// Sends `frame` and the end of input; returns the one packet.
    fn encode_one(&mut self, frame: &Frame) -> Result<Packet, AvError> {
        self.send(Some(frame))?;
        self.send(None)?;
        self.receive()
    }
}

impl Drop for EncoderContext {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from avcodec_alloc_context3 and is freed once.
        unsafe { ffi::avcodec_free_context(&mut self.ctx) }
    }
}

/// An `AVDictionary` of options, freed on drop.
struct Dictionary(*mut ffi::AVDictionary);

impl Default for Dictionary {
    fn default() -> Self {
        Self(ptr::null_mut())
    }
}

impl Dictionary {
    fn set(&mut self, key: &CStr, value: &str) -> Result<(), AvError> {
        let value = std::ffi::CString::new(value).map_err(|_| AvError::InvalidData)?;
        // SAFETY: both strings are NUL-terminated and copied by FFmpeg;
        // `self.0` is NULL or a dictionary FFmpeg allocated.
        AvError::check(unsafe { ffi::av_dict_set(&mut self.0, key.as_ptr(), value.as_ptr(), 0) })
            .map(drop)
    }
}

impl Drop for Dictionary {
    fn drop(&mut self) {
        // SAFETY: NULL or a dictionary FFmpeg allocated; freed once.
        unsafe { ffi::av_dict_free(&mut self.0) }
    }
}

/// A YUV420P frame holding a copy of `picture`'s (full-range) planes in
/// `range`.
fn frame_of(picture: &Picture, range: SampleRange) -> Result<Frame, AvError> {
    let mut frame = Frame::new()?;
    let f = frame.as_mut_ptr();
    // SAFETY: `f` is a fresh frame; av_frame_get_buffer allocates planes
    // for the format and size set just before.
    unsafe {
        (*f).format = ffi::AVPixelFormat::AV_PIX_FMT_YUV420P as c_int;
        (*f).width = c_int::try_from(picture.width).map_err(|_| AvError::InvalidData)?;
        (*f).height = c_int::try_from(picture.height).map_err(|_| AvError::InvalidData)?;
        (*f).pts = 0;
        AvError::check(ffi::av_frame_get_buffer(f, 0))?;
    }
    for (index, plane) in picture.planes.iter().enumerate() {
        let table = range_table(range, index > 0);
        // SAFETY: plane `index` of the YUV420P buffer has `linesize` bytes a
        // row for `rows` rows (the picture's plane sizes are the format's),
        // and is ours alone until the frame is sent.
        let (data, linesize) = unsafe { ((*f).data[index], (*f).linesize[index]) };
        let linesize = usize::try_from(linesize).map_err(|_| AvError::InvalidData)?;
        for y in 0..plane.rows {
            let row = plane.row(y);
            // SAFETY: as above; `row.len()` (the plane's row bytes) is at
            // most `linesize`.
            let dst = unsafe { std::slice::from_raw_parts_mut(data.add(y * linesize), row.len()) };
            match &table {
                None => dst.copy_from_slice(row),
                Some(table) => {
                    for (d, s) in dst.iter_mut().zip(row) {
                        *d = table[usize::from(*s)];
                    }
                }
            }
        }
    }
    Ok(frame)
}

/// The mapping of full-range samples into `range` (`None`: as they are):
/// luma 0–255 to 16–235, chroma to 16–240 around 128.
fn range_table(range: SampleRange, chroma: bool) -> Option<[u8; 256]> {
    if range == SampleRange::Full {
        return None;
    }
    let (low, span) = if chroma { (16.0, 224.0) } else { (16.0, 219.0) };
    let mut table = [0u8; 256];
    for (value, slot) in table.iter_mut().enumerate() {
        *slot = (low + value as f64 * span / 255.0).round() as u8;
    }
    Some(table)
}

/// Writes one AV1 key frame as an AVIF file.
fn mux_avif(encoder: &EncoderContext, mut packet: Packet) -> Result<Vec<u8>, AvError> {
    let mut output = MemoryOutput::new(c"avif")?;
    let oc = output.0;
    // SAFETY: `oc` is a valid output context with a dynamic buffer as its
    // I/O; the stream's parameters come from the opened encoder; the packet
    // is valid and its timestamps are set for the one stream.
    unsafe {
        let stream = ffi::avformat_new_stream(oc, ptr::null());
        if stream.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        AvError::check(ffi::avcodec_parameters_from_context(
            (*stream).codecpar,
            encoder.ctx,
        ))?;
        (*stream).time_base = (*encoder.ctx).time_base;
        AvError::check(ffi::avformat_write_header(oc, ptr::null_mut()))?;
        let p = packet.as_mut_ptr();
        (*p).stream_index = 0;
        (*p).pts = 0;
        (*p).dts = 0;
        (*p).duration = 1;
        ffi::av_packet_rescale_ts(p, (*encoder.ctx).time_base, (*stream).time_base);
        AvError::check(ffi::av_write_frame(oc, p))?;
        AvError::check(ffi::av_write_trailer(oc))?;
    }
    output.take_bytes()
}

/// An output format context writing into memory (`avio_open_dyn_buf`).
struct MemoryOutput(*mut ffi::AVFormatContext);

impl MemoryOutput {
    fn new(format: &CStr) -> Result<Self, AvError> {
        let mut oc = ptr::null_mut();
        // SAFETY: a NUL-terminated muxer name; NULL is checked.
        AvError::check(unsafe {
            ffi::avformat_alloc_output_context2(&mut oc, ptr::null(), format.as_ptr(), ptr::null())
        })?;
        if oc.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        let output = Self(oc);
        // SAFETY: `oc` is valid and has no I/O yet. The dynamic buffer
        // seeks (its size is what was written furthest), so it is marked
        // seekable for the muxer, which goes back to fill in box sizes.
        unsafe {
            AvError::check(ffi::avio_open_dyn_buf(&mut (*oc).pb))?;
            (*(*oc).pb).seekable = ffi::AVIO_SEEKABLE_NORMAL as c_int;
        }
        Ok(output)
    }

    /// The bytes written; the buffer is released.
    fn take_bytes(&mut self) -> Result<Vec<u8>, AvError> {
        let mut buffer = ptr::null_mut();
        // SAFETY: `pb` is the dynamic buffer opened in `new`; closing it
        // returns its memory (ours to free with av_free) and its length.
        unsafe {
            let len = ffi::avio_close_dyn_buf((*self.0).pb, &mut buffer);
            (*self.0).pb = ptr::null_mut();
            let bytes = match usize::try_from(len) {
                Ok(len) if !buffer.is_null() => std::slice::from_raw_parts(buffer, len).to_vec(),
                _ => Vec::new(),
            };
            ffi::av_free(buffer.cast());
            Ok(bytes)
        }
    }
}

impl Drop for MemoryOutput {
    fn drop(&mut self) {
        // SAFETY: `pb`, if still open, is the dynamic buffer (closed and its
        // memory freed); the context is freed once.
        unsafe {
            if !(*self.0).pb.is_null() {
                let mut buffer = ptr::null_mut();
                ffi::avio_close_dyn_buf((*self.0).pb, &mut buffer);
                ffi::av_free(buffer.cast());
                (*self.0).pb = ptr::null_mut();
            }
            ffi::avformat_free_context(self.0);
        }
    }
}
