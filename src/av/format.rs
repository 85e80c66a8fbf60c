//! The demuxer: an input `AVFormatContext` over a custom I/O context.

use super::io::{interrupt_callback, IoContext};
use super::source::ByteSource;
use super::{c_str, ffi, AvError, Decoder, Interrupt, Owned, Packet, Rational};
use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::ops::Range;
use std::ptr;

/// Demuxers we open. Playlist and meta formats (HLS, DASH, concat, image
/// sequences…) are deliberately absent: they would open other resources. As a
/// second guard, every attempt to open a nested resource is refused.
const ALLOWED_DEMUXERS: &[&str] = &[
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2",
    "matroska",
    "webm",
    "mpegts",
    "mpeg",
    "mpegvideo",
    "flv",
    "live_flv",
    "avi",
    "asf",
    "ogg",
    "mxf",
    "h264",
    "hevc",
    "m4v",
    "ivf",
    "obu",
    "gif",
    "rm",
    "nut",
    "dv",
    "mp3",
    "aac",
    "wav",
    "flac",
    "w64",
    "yuv4mpegpipe",
];

/// Demuxers that find timestamps by bisecting the file rather than through
/// an index.
const UNINDEXED_DEMUXERS: &[&str] = &[
    "mpegts",
    "mpeg",
    "mpegvideo",
    "flv",
    "live_flv",
    "h264",
    "hevc",
    "m4v",
    "ivf",
    "obu",
    "mp3",
    "aac",
];

/// Why an input could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No allowed demuxer recognises the data.
    NotMedia,
    /// A demuxer recognised the data but could not read its header.
    BadHeader(AvError),
    /// The byte source failed.
    Io(io::Error),
    /// The deadline passed or the cancel flag was raised.
    Interrupted,
    /// The byte source panicked inside a callback.
    Panicked,
    /// Anything else (allocation failure).
    Other(AvError),
}

/// The kind of an elementary stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Video (including attached cover pictures, see
    /// [`StreamInfo::attached_picture`]).
    Video,
    /// Audio.
    Audio,
    /// Subtitles.
    Subtitle,
    /// Data, attachments.
    Other,
}

/// A plain copy of what the pipeline needs to know about a stream.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// Index in the container.
    pub index: usize,
    /// Video, audio or other.
    pub kind: StreamKind,
    /// FFmpeg's codec name (`h264`, `hevc`, `aac`…).
    pub codec_name: String,
    /// Coded width in pixels (video).
    pub width: u32,
    /// Coded height in pixels (video).
    pub height: u32,
    /// Sample aspect ratio, from the container or the bitstream (`0/1` when
    /// unknown).
    pub sample_aspect_ratio: Rational,
    /// Time base of the stream's timestamps.
    pub time_base: Rational,
    /// First timestamp, in `time_base` units.
    pub start_time: Option<i64>,
    /// Duration, in `time_base` units.
    pub duration: Option<i64>,
    /// Best guess of the frame rate (video).
    pub frame_rate: Rational,
    /// Bit rate in bit/s (0 when unknown).
    pub bit_rate: i64,
    /// Sample rate in Hz (audio).
    pub sample_rate: u32,
    /// Channel count (audio).
    pub channels: u32,
    /// A still picture (cover art) rather than a moving video stream.
    pub attached_picture: bool,
    /// The display matrix (ISO/IEC 14496-12 layout, 16.16 / 2.30 fixed
    /// point), when the container has one.
    pub display_matrix: Option<[i32; 9]>,
    /// The codec's out-of-band setup bytes (`avcC`, `hvcC`… records), empty
    /// when the stream has none.
    pub extradata: Vec<u8>,
    /// What media information reports besides (names as FFmpeg gives them,
    /// empty when unknown).
    pub details: StreamDetails,
}

/// A stream's descriptive fields, for media information.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDetails {
    /// FFmpeg's long codec name (`H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10`).
    pub codec_long_name: String,
    /// The container's codec tag (a FourCC, little-endian).
    pub codec_tag: u32,
    /// Codec profile name (`High`, `LC`…).
    pub profile: String,
    /// Codec level (`-99` unknown, as FFmpeg).
    pub level: i32,
    /// Pixel format (video) or sample format (audio) name.
    pub sample_format: String,
    /// `progressive`, `tt`, `bb`, `tb`, `bt` or empty.
    pub field_order: String,
    /// Colour primaries, range and transfer names.
    pub color_primaries: String,
    /// `tv`, `pc` or empty.
    pub color_range: String,
    /// Transfer characteristic name.
    pub color_transfer: String,
    /// Frames of reordering delay (B-frames).
    pub video_delay: i32,
    /// Average frame rate.
    pub avg_frame_rate: Rational,
    /// Frames, when the container says.
    pub frame_count: i64,
    /// The stream's `language` tag.
    pub language: String,
    /// Channel layout description (`stereo`, `5.1`…).
    pub channel_layout: String,
}

/// An opened input: the format context and the I/O context it reads from.
///
/// The I/O context and the interrupt state are owned here, so they cannot be
/// freed while the format context still points to them.
pub struct Input {
    ctx: *mut ffi::AVFormatContext,
    io: IoContext,
    // Read by the interrupt callback through a raw pointer; must outlive ctx.
    interrupt: Owned<Interrupt>,
}

// SAFETY: an `Input` owns its format context, I/O context and interrupt
// state exclusively and hands out no pointers into them. FFmpeg's demuxer
// contexts have no thread affinity: they may be driven from any thread as
// long as calls are not concurrent, which `&mut self` guarantees (the
// `&self` accessors only read plain fields). The byte source inside is
// `Send`, and the interrupt state is `Sync`.
unsafe impl Send for Input {}

impl Input {
    /// Probes the source, checks the demuxer against the allow-list and reads
    /// the container header. Does not read stream information yet (see
    /// [`Input::find_stream_info`]).
    pub fn open(source: Box<dyn ByteSource>, interrupt: Interrupt) -> Result<Self, OpenError> {
        super::init();
        let mut io = IoContext::new(source, interrupt.clone()).map_err(OpenError::Other)?;
        let interrupt = Owned::new(interrupt);

        let mut format: *const ffi::AVInputFormat = ptr::null();
        // SAFETY: `io` is a valid read context; `format` is a valid out
        // pointer; a NULL url and log context are allowed.
        let rc = unsafe {
            ffi::av_probe_input_buffer2(
                io.as_mut_ptr(),
                &mut format,
                ptr::null(),
                ptr::null_mut(),
                0,
                0,
            )
        };
        if rc < 0 || format.is_null() {
            return Err(classify_failure(
                &mut io,
                interrupt.get(),
                rc,
                OpenError::NotMedia,
            ));
        }
        // SAFETY: a successful probe returns a static AVInputFormat whose
        // name is a static C string.
        let name = unsafe { c_str((*format).name) };
        if !name.split(',').any(|n| ALLOWED_DEMUXERS.contains(&n)) {
            return Err(OpenError::NotMedia);
        }

        // SAFETY: no preconditions; NULL is checked.
        let mut ctx = unsafe { ffi::avformat_alloc_context() };
        if ctx.is_null() {
            return Err(OpenError::Other(AvError::from_code(ffi::AVERROR(
                ffi::ENOMEM,
            ))));
        }
        // SAFETY: `ctx` is a fresh context we own. We attach our I/O context
        // (marked custom so FFmpeg never closes it), the interrupt callback
        // whose opaque pointer stays valid for the life of `Input`, and an
        // io_open that refuses every nested resource.
        unsafe {
            (*ctx).pb = io.as_mut_ptr();
            (*ctx).flags |= ffi::AVFMT_FLAG_CUSTOM_IO;
            (*ctx).interrupt_callback = ffi::AVIOInterruptCB {
                callback: Some(interrupt_callback),
                opaque: interrupt.as_ptr().cast::<c_void>(),
            };
            (*ctx).io_open = Some(refuse_io_open);
        }
        let url = c"";
        // SAFETY: `ctx` is allocated and configured as above; `format` is the
        // probed demuxer. On failure avformat_open_input frees `ctx` (but not
        // the custom I/O context) and sets it to NULL.
        let rc =
            unsafe { ffi::avformat_open_input(&mut ctx, url.as_ptr(), format, ptr::null_mut()) };
        if rc < 0 {
            let err = AvError::from_code(rc);
            return Err(classify_failure(
                &mut io,
                interrupt.get(),
                rc,
                OpenError::BadHeader(err),
            ));
        }
        Ok(Self { ctx, io, interrupt })
    }

    /// Reads packets as needed to fill in stream parameters.
    pub fn find_stream_info(&mut self) -> Result<(), AvError> {
        // SAFETY: `ctx` is an opened input; NULL options are allowed.
        let rc = unsafe { ffi::avformat_find_stream_info(self.ctx, ptr::null_mut()) };
        AvError::check(rc).map(drop)
    }

    /// The demuxer's name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub fn format_name(&self) -> String {
        // SAFETY: an opened context has a static iformat with a static name.
        unsafe { c_str((*(*self.ctx).iformat).name) }
    }

    /// Container duration in seconds, when known.
    pub fn duration_seconds(&self) -> Option<f64> {
        // SAFETY: reading a plain field of an opened context.
        let d = unsafe { (*self.ctx).duration };
        (d != ffi::AV_NOPTS_VALUE && d > 0).then(|| d as f64 / f64::from(ffi::AV_TIME_BASE))
    }

    /// Container start time in seconds, when known.
    pub fn start_seconds(&self) -> Option<f64> {
        // SAFETY: reading a plain field of an opened context.
        let s = unsafe { (*self.ctx).start_time };
        (s != ffi::AV_NOPTS_VALUE).then(|| s as f64 / f64::from(ffi::AV_TIME_BASE))
    }

    /// Container bit rate in bit/s (0 when unknown).
    pub fn bit_rate(&self) -> i64 {
        // SAFETY: reading a plain field of an opened context.
        unsafe { (*self.ctx).bit_rate }
    }

    /// Number of streams.
    pub fn stream_count(&self) -> usize {
        // SAFETY: reading a plain field of an opened context.
        unsafe { (*self.ctx).nb_streams as usize }
    }

    fn stream_ptr(&self, index: usize) -> *mut ffi::AVStream {
        assert!(index < self.stream_count(), "stream index out of range");
        // SAFETY: `streams` holds `nb_streams` valid stream pointers.
        unsafe { *(*self.ctx).streams.add(index) }
    }

    /// A copy of the stream's parameters.
    pub fn stream(&self, index: usize) -> StreamInfo {
        let st = self.stream_ptr(index);
        // SAFETY: `st` is a valid stream of this context with valid codecpar,
        // whose extradata holds `extradata_size` bytes when not NULL; the
        // side-data pointer returned by FFmpeg is valid for `size` bytes and
        // is read unaligned.
        unsafe {
            let par = (*st).codecpar;
            let kind = match (*par).codec_type {
                ffi::AVMediaType::AVMEDIA_TYPE_VIDEO => StreamKind::Video,
                ffi::AVMediaType::AVMEDIA_TYPE_AUDIO => StreamKind::Audio,
                ffi::AVMediaType::AVMEDIA_TYPE_SUBTITLE => StreamKind::Subtitle,
                _ => StreamKind::Other,
            };
            let details = self.details(st, kind);
            let mut size: usize = 0;
            let sd = ffi::av_stream_get_side_data(
                st,
                ffi::AVPacketSideDataType::AV_PKT_DATA_DISPLAYMATRIX,
                &mut size,
            );
            let display_matrix =
                (!sd.is_null() && size >= 36).then(|| ptr::read_unaligned(sd.cast::<[i32; 9]>()));
            let ts = |v: i64| (v != ffi::AV_NOPTS_VALUE).then_some(v);
            StreamInfo {
                index,
                kind,
                codec_name: c_str(ffi::avcodec_get_name((*par).codec_id)),
                width: u32::try_from((*par).width).unwrap_or(0),
                height: u32::try_from((*par).height).unwrap_or(0),
                sample_aspect_ratio: Rational::from_ffi(ffi::av_guess_sample_aspect_ratio(
                    self.ctx,
                    st,
                    ptr::null_mut(),
                )),
                time_base: Rational::from_ffi((*st).time_base),
                start_time: ts((*st).start_time),
                duration: ts((*st).duration),
                frame_rate: Rational::from_ffi(ffi::av_guess_frame_rate(
                    self.ctx,
                    st,
                    ptr::null_mut(),
                )),
                bit_rate: (*par).bit_rate,
                sample_rate: u32::try_from((*par).sample_rate).unwrap_or(0),
                channels: u32::try_from((*par).ch_layout.nb_channels).unwrap_or(0),
                attached_picture: (*st).disposition & ffi::AV_DISPOSITION_ATTACHED_PIC != 0,
                display_matrix,
                extradata: match usize::try_from((*par).extradata_size) {
                    Ok(len) if !(*par).extradata.is_null() && len > 0 => {
                        std::slice::from_raw_parts((*par).extradata, len).to_vec()
                    }
                    _ => Vec::new(),
                },
                details,
            }
        }
    }

    /// The descriptive fields of stream `st` (of this context).
    fn details(&self, st: *mut ffi::AVStream, kind: StreamKind) -> StreamDetails {
        // SAFETY: `st` is a valid stream of this opened context with valid
        // codecpar and metadata; every FFmpeg name function returns NULL or a
        // static NUL-terminated string; the pixel and sample format numbers
        // are converted to their enums only inside the enums' contiguous
        // ranges (0..NB); the channel layout is described into a local
        // buffer FFmpeg NUL-terminates.
        unsafe {
            let par = (*st).codecpar;
            let desc = ffi::avcodec_descriptor_get((*par).codec_id);
            let format = (*par).format;
            let sample_format = match kind {
                StreamKind::Video
                    if (0..ffi::AVPixelFormat::AV_PIX_FMT_NB as i32).contains(&format) =>
                {
                    c_str(ffi::av_get_pix_fmt_name(std::mem::transmute::<
                        i32,
                        ffi::AVPixelFormat,
                    >(format)))
                }
                StreamKind::Audio
                    if (0..ffi::AVSampleFormat::AV_SAMPLE_FMT_NB as i32).contains(&format) =>
                {
                    c_str(ffi::av_get_sample_fmt_name(std::mem::transmute::<
                        i32,
                        ffi::AVSampleFormat,
                    >(format)))
                }
                _ => String::new(),
            };
            let field_order = match (*par).field_order {
                ffi::AVFieldOrder::AV_FIELD_PROGRESSIVE => "progressive",
                ffi::AVFieldOrder::AV_FIELD_TT => "tt",
                ffi::AVFieldOrder::AV_FIELD_BB => "bb",
                ffi::AVFieldOrder::AV_FIELD_TB => "tb",
                ffi::AVFieldOrder::AV_FIELD_BT => "bt",
                _ => "",
            };
            let language = ffi::av_dict_get((*st).metadata, c"language".as_ptr(), ptr::null(), 0);
            let mut layout = [0 as c_char; 64];
            let channel_layout = if kind == StreamKind::Audio
                && ffi::av_channel_layout_describe(&(*par).ch_layout, layout.as_mut_ptr(), 64) > 0
            {
                c_str(layout.as_ptr())
            } else {
                String::new()
            };
            StreamDetails {
                codec_long_name: if desc.is_null() {
                    String::new()
                } else {
                    c_str((*desc).long_name)
                },
                codec_tag: (*par).codec_tag,
                profile: c_str(ffi::avcodec_profile_name((*par).codec_id, (*par).profile)),
                level: (*par).level,
                sample_format,
                field_order: field_order.to_owned(),
                color_primaries: c_str(ffi::av_color_primaries_name((*par).color_primaries)),
                color_range: c_str(ffi::av_color_range_name((*par).color_range)),
                color_transfer: c_str(ffi::av_color_transfer_name((*par).color_trc)),
                video_delay: (*par).video_delay,
                avg_frame_rate: Rational::from_ffi((*st).avg_frame_rate),
                frame_count: (*st).nb_frames,
                language: if language.is_null() {
                    String::new()
                } else {
                    c_str((*language).value)
                },
                channel_layout,
            }
        }
    }

    /// FFmpeg's long name of the container format.
    pub fn format_long_name(&self) -> String {
        // SAFETY: an opened context has a static iformat whose long name is
        // NULL or a static string.
        unsafe { c_str((*(*self.ctx).iformat).long_name) }
    }

    /// Number of programs (MPEG-TS).
    pub fn program_count(&self) -> usize {
        // SAFETY: reading a plain field of an opened context.
        unsafe { (*self.ctx).nb_programs as usize }
    }

    /// FFmpeg's choice of the main video stream, ignoring cover pictures.
    pub fn best_video_stream(&self) -> Option<usize> {
        // SAFETY: `ctx` is opened; NULL decoder out-pointer is allowed.
        let best = unsafe {
            ffi::av_find_best_stream(
                self.ctx,
                ffi::AVMediaType::AVMEDIA_TYPE_VIDEO,
                -1,
                -1,
                ptr::null_mut(),
                0,
            )
        };
        let usable = |i: usize| {
            let s = self.stream(i);
            s.kind == StreamKind::Video && !s.attached_picture
        };
        match usize::try_from(best) {
            Ok(i) if usable(i) => Some(i),
            _ => (0..self.stream_count()).find(|&i| usable(i)),
        }
    }

    /// Tells the demuxer to drop every stream but `index`.
    pub fn discard_all_but(&mut self, index: usize) {
        for i in 0..self.stream_count() {
            let st = self.stream_ptr(i);
            let discard = if i == index {
                ffi::AVDiscard::AVDISCARD_DEFAULT
            } else {
                ffi::AVDiscard::AVDISCARD_ALL
            };
            // SAFETY: `discard` is a public field the caller may set at any
            // time between reads.
            unsafe { (*st).discard = discard };
        }
    }

    /// Opens a decoder for stream `index` with `threads` threads (0: auto),
    /// concealing damaged data or not (where the decoder has the choice).
    pub fn open_decoder(
        &self,
        index: usize,
        threads: u32,
        conceal_errors: bool,
    ) -> Result<Decoder, AvError> {
        let st = self.stream_ptr(index);
        // SAFETY: `st` is a valid stream whose codecpar and time base stay
        // valid during the call; the decoder copies what it needs.
        unsafe { Decoder::open((*st).codecpar, (*st).time_base, threads, conceal_errors) }
    }

    /// Seeks stream `index` to the keyframe at or before `ts` (in the
    /// stream's time base).
    pub fn seek_backward(&mut self, index: usize, ts: i64) -> Result<(), AvError> {
        let index = c_int::try_from(index).map_err(|_| AvError::InvalidData)?;
        // SAFETY: `ctx` is opened and `index` a valid stream index.
        let rc = unsafe { ffi::av_seek_frame(self.ctx, index, ts, ffi::AVSEEK_FLAG_BACKWARD) };
        AvError::check(rc).map(drop)
    }

    /// The indexed time of the last keyframe of stream `index` at or before
    /// `ts`, if the demuxer has an index entry for one (MP4 and Matroska
    /// know all of them after opening; other containers may know none).
    pub fn indexed_keyframe_before(&self, index: usize, ts: i64) -> Option<i64> {
        let st = self.stream_ptr(index);
        // SAFETY: `st` is a valid stream of the open context; the entry
        // pointer, when not null, points into the stream's index, which
        // lives as long as the context and is not changed by this call; the
        // timestamp is copied out before anything else touches the index.
        unsafe {
            let entry =
                ffi::avformat_index_get_entry_from_timestamp(st, ts, ffi::AVSEEK_FLAG_BACKWARD);
            if entry.is_null() {
                None
            } else {
                Some((*entry).timestamp)
            }
        }
    }

    /// The bytes that hold stream `index`'s packets from its indexed
    /// keyframe at or before `from` up to and including its indexed packet
    /// at or before `until` (both in the stream's time base; an `until`
    /// before that keyframe means the keyframe packet alone), when the
    /// index knows both (MP4 indexes every packet; other containers only
    /// keyframes, if anything). Packets of other streams interleaved there
    /// are inside the range.
    pub fn indexed_bytes(&self, index: usize, from: i64, until: i64) -> Option<Range<u64>> {
        let st = self.stream_ptr(index);
        // SAFETY: as in `indexed_keyframe_before`: `st` is a valid stream,
        // the entries point into its index, which this call does not
        // change, and their fields are copied out at once.
        unsafe {
            let key =
                ffi::avformat_index_get_entry_from_timestamp(st, from, ffi::AVSEEK_FLAG_BACKWARD);
            if key.is_null() {
                return None;
            }
            let last = ffi::avformat_index_get_entry_from_timestamp(
                st,
                until.max((*key).timestamp),
                ffi::AVSEEK_FLAG_BACKWARD | ffi::AVSEEK_FLAG_ANY,
            );
            if last.is_null() {
                return None;
            }
            let start = u64::try_from((*key).pos).ok()?;
            let end = u64::try_from((*last).pos)
                .ok()?
                .checked_add(u64::try_from((*last).size()).ok()?)?;
            (end > start).then_some(start..end)
        }
    }

    /// Hints the byte source that the next reads cover `range` (see
    /// [`ByteSource::will_read`]).
    pub fn will_read(&mut self, range: Range<u64>) {
        self.io.will_read(range);
    }

    /// Seeks back to the beginning of the media.
    ///
    /// Containers without an index (MPEG-TS/PS, FLV, raw streams) seek by
    /// bisecting on timestamps, which can land after the first keyframe, so
    /// for them this goes to byte 0; indexed containers seek to the stream's
    /// first timestamp.
    pub fn seek_to_start(&mut self, index: usize) -> Result<(), AvError> {
        if !self.seeks_by_index() && self.seek_to_byte_zero().is_ok() {
            return Ok(());
        }
        let ts = self.stream(index).start_time.unwrap_or(i64::MIN);
        self.seek_backward(index, ts)
            .or_else(|_| self.seek_to_byte_zero())
    }

    /// Whether timestamp seeks go through an index of keyframes (MP4,
    /// Matroska, AVI…), so a backward seek lands on the last keyframe whose
    /// indexed time is at or before the target.
    pub fn seeks_by_index(&self) -> bool {
        !self
            .format_name()
            .split(',')
            .any(|n| UNINDEXED_DEMUXERS.contains(&n))
    }

    fn seek_to_byte_zero(&mut self) -> Result<(), AvError> {
        // SAFETY: `ctx` is opened; stream -1 with AVSEEK_FLAG_BYTE seeks to a
        // byte position, which demuxers without byte seeking reject safely.
        let rc = unsafe { ffi::av_seek_frame(self.ctx, -1, 0, ffi::AVSEEK_FLAG_BYTE) };
        AvError::check(rc).map(drop)
    }

    /// Reads the next packet into `packet` (`Err(AvError::Eof)` at the end).
    pub fn read_packet(&mut self, packet: &mut Packet) -> Result<(), AvError> {
        packet.unref();
        // SAFETY: `ctx` is opened and `packet` a valid, empty packet.
        let rc = unsafe { ffi::av_read_frame(self.ctx, packet.as_mut_ptr()) };
        AvError::check(rc).map(drop)
    }

    /// Takes the last I/O error of the byte source, if any.
    pub fn take_io_error(&mut self) -> Option<io::Error> {
        self.io.take_error()
    }

    /// Whether the byte source panicked inside a callback.
    pub fn source_panicked(&self) -> bool {
        self.io.panicked()
    }

    /// The deadline and cancel flag this input obeys.
    pub fn interrupt(&self) -> &Interrupt {
        self.interrupt.get()
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        // SAFETY: `ctx` is an opened input we own. With AVFMT_FLAG_CUSTOM_IO
        // set, avformat_close_input leaves our I/O context alone; the `io` and
        // `interrupt` fields are dropped after this, when nothing refers to
        // them any more.
        unsafe { ffi::avformat_close_input(&mut self.ctx) };
    }
}

/// Turns a failed open/probe into the most specific reason.
fn classify_failure(
    io: &mut IoContext,
    interrupt: &Interrupt,
    rc: c_int,
    fallback: OpenError,
) -> OpenError {
    if io.panicked() {
        OpenError::Panicked
    } else if let Some(e) = io.take_error() {
        OpenError::Io(e)
    } else if rc == ffi::AVERROR_EXIT || interrupt.triggered() {
        OpenError::Interrupted
    } else if rc == ffi::AVERROR(ffi::ENOMEM) {
        OpenError::Other(AvError::from_code(rc))
    } else {
        fallback
    }
}

/// Replaces `AVFormatContext.io_open`: demuxers may not open other
/// resources (playlists, external references).
unsafe extern "C" fn refuse_io_open(
    _s: *mut ffi::AVFormatContext,
    _pb: *mut *mut ffi::AVIOContext,
    _url: *const c_char,
    _flags: c_int,
    _options: *mut *mut ffi::AVDictionary,
) -> c_int {
    ffi::AVERROR(ffi::EPERM)
}
