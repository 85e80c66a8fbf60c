//! `AVCodecContext` opened as a decoder.

use super::{c_str, ffi, AvError, Frame, Packet};
use std::ffi::c_int;
use std::ptr;

/// Which frames the decoder may skip (`AVCodecContext.skip_frame`). The
/// setting applies to packets sent after it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// Decode everything.
    Nothing,
    /// Skip frames no other frame references (they cannot affect any later
    /// picture).
    NonReference,
    /// Skip every frame but keyframes.
    NonKey,
}

/// A decoder for one stream.
pub struct Decoder {
    ctx: *mut ffi::AVCodecContext,
}

// SAFETY: a `Decoder` owns its codec context exclusively and hands out no
// pointers into it. A codec context has no thread affinity: FFmpeg's frame
// and slice threads belong to the context and synchronise with whichever
// thread calls the send/receive functions, which may change between calls
// as long as calls are not concurrent (`&mut self` guarantees that). This
// lets a decoder parked between requests resume on another pool worker.
unsafe impl Send for Decoder {}

impl Decoder {
    /// Finds and opens a decoder for `par`.
    ///
    /// # Safety
    /// `par` must point to valid codec parameters for the duration of the
    /// call.
    pub(crate) unsafe fn open(
        par: *const ffi::AVCodecParameters,
        time_base: ffi::AVRational,
        threads: u32,
        conceal_errors: bool,
    ) -> Result<Self, AvError> {
        // SAFETY: the caller guarantees `par` is valid.
        let codec_id = unsafe { (*par).codec_id };
        // SAFETY: no preconditions; NULL means no decoder.
        let codec = unsafe { ffi::avcodec_find_decoder(codec_id) };
        if codec.is_null() {
            // SAFETY: avcodec_get_name returns a static string for any id.
            let name = unsafe { c_str(ffi::avcodec_get_name(codec_id)) };
            return Err(AvError::DecoderNotFound(name));
        }
        // SAFETY: `codec` is a valid decoder; NULL is checked.
        let ctx = unsafe { ffi::avcodec_alloc_context3(codec) };
        if ctx.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        let decoder = Self { ctx };
        // SAFETY: `ctx` is a fresh context for `codec`, `par` is valid. The
        // fields set are plain options read by avcodec_open2; `priv_data`,
        // when set, is the codec's option object (allocated with the
        // context) and the option name a NUL-terminated literal.
        unsafe {
            AvError::check(ffi::avcodec_parameters_to_context(ctx, par))?;
            (*ctx).pkt_timebase = time_base;
            (*ctx).thread_count = c_int::try_from(threads).unwrap_or(0);
            (*ctx).thread_type = ffi::FF_THREAD_FRAME | ffi::FF_THREAD_SLICE;
            if codec_id == ffi::AVCodecID::AV_CODEC_ID_AV1 {
                // libdav1d (FFmpeg's first AV1 decoder) with frame threads
                // (its `max_frame_delay` above 1) lost the picture of a
                // `show_existing_frame` unit when frames were sent in
                // bursts with pauses, as a resumed exact decode sends
                // them (FFmpeg 5.1, dav1d 1.0). Low delay makes FFmpeg set
                // `max_frame_delay` to 1: one frame at a time, its tiles,
                // rows and filters still spread over the threads.
                (*ctx).flags |= ffi::AV_CODEC_FLAG_LOW_DELAY as c_int;
            }
            if !conceal_errors && !(*ctx).priv_data.is_null() {
                // H.264's private `enable_er` option; decoders without it
                // answer "option not found", which leaves them as they are.
                let _ = ffi::av_opt_set_int((*ctx).priv_data, c"enable_er".as_ptr(), 0, 0);
            }
            AvError::check(ffi::avcodec_open2(ctx, codec, ptr::null_mut()))?;
        }
        Ok(decoder)
    }

    /// Sets which frames of the following packets may be skipped.
    pub fn set_discard(&mut self, discard: Discard) {
        let value = match discard {
            Discard::Nothing => ffi::AVDiscard::AVDISCARD_DEFAULT,
            Discard::NonReference => ffi::AVDiscard::AVDISCARD_NONREF,
            Discard::NonKey => ffi::AVDiscard::AVDISCARD_NONKEY,
        };
        // SAFETY: skip_frame is a public option that may change between
        // packets (avcodec_send_packet snapshots it per packet).
        unsafe { (*self.ctx).skip_frame = value };
    }

    /// Sends one packet. `Err(Again)` means frames must be received first.
    pub fn send_packet(&mut self, packet: &Packet) -> Result<(), AvError> {
        // SAFETY: `ctx` is an opened decoder and `packet` a valid packet the
        // decoder only reads (it takes its own reference).
        AvError::check(unsafe { ffi::avcodec_send_packet(self.ctx, packet.as_ptr()) }).map(drop)
    }

    /// Signals the end of input so buffered frames come out.
    pub fn send_eof(&mut self) -> Result<(), AvError> {
        // SAFETY: a NULL packet is the documented flush signal.
        AvError::check(unsafe { ffi::avcodec_send_packet(self.ctx, ptr::null()) }).map(drop)
    }

    /// Receives the next decoded frame into `frame`: `Err(Again)` when more
    /// input is needed, `Err(Eof)` when fully drained.
    pub fn receive_frame(&mut self, frame: &mut Frame) -> Result<(), AvError> {
        // SAFETY: `ctx` is an opened decoder; receive_frame unrefs `frame`
        // before filling it.
        AvError::check(unsafe { ffi::avcodec_receive_frame(self.ctx, frame.as_mut_ptr()) })
            .map(drop)
    }

    /// Drops all buffered state (after a seek).
    pub fn flush(&mut self) {
        // SAFETY: `ctx` is an opened decoder.
        unsafe { ffi::avcodec_flush_buffers(self.ctx) }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from avcodec_alloc_context3 and is freed once
        // (this also closes it).
        unsafe { ffi::avcodec_free_context(&mut self.ctx) }
    }
}
