//! `AVPacket`: one compressed frame (or a few audio frames).

use super::{ffi, AvError};

/// An owned, reusable `AVPacket`.
pub struct Packet(*mut ffi::AVPacket);

// SAFETY: a `Packet` owns its `AVPacket` exclusively; its data buffer is
// reference counted with atomic counts, so it may be moved to and freed on
// another thread.
unsafe impl Send for Packet {}

impl Packet {
    /// Allocates an empty packet.
    pub fn new() -> Result<Self, AvError> {
        // SAFETY: no preconditions; NULL is checked.
        let p = unsafe { ffi::av_packet_alloc() };
        if p.is_null() {
            return Err(AvError::from_code(ffi::AVERROR(ffi::ENOMEM)));
        }
        Ok(Self(p))
    }

    /// Index of the stream the packet belongs to.
    pub fn stream_index(&self) -> usize {
        // SAFETY: reading a plain field of a valid packet.
        usize::try_from(unsafe { (*self.0).stream_index }).unwrap_or(usize::MAX)
    }

    /// Presentation timestamp in the stream's time base.
    pub fn pts(&self) -> Option<i64> {
        // SAFETY: reading a plain field of a valid packet.
        let v = unsafe { (*self.0).pts };
        (v != ffi::AV_NOPTS_VALUE).then_some(v)
    }

    /// Decoding timestamp in the stream's time base.
    pub fn dts(&self) -> Option<i64> {
        // SAFETY: reading a plain field of a valid packet.
        let v = unsafe { (*self.0).dts };
        (v != ffi::AV_NOPTS_VALUE).then_some(v)
    }

    /// Whether the container marks the packet as a keyframe (random access
    /// point).
    pub fn is_key(&self) -> bool {
        // SAFETY: reading a plain field of a valid packet.
        unsafe { (*self.0).flags & ffi::AV_PKT_FLAG_KEY != 0 }
    }

    /// The compressed payload (empty for an empty packet).
    pub fn data(&self) -> &[u8] {
        // SAFETY: a valid packet's `data` points to `size` readable bytes
        // (or is NULL with size 0), owned by the packet and unchanged while
        // it is borrowed.
        unsafe {
            let (data, size) = ((*self.0).data, (*self.0).size);
            match usize::try_from(size) {
                Ok(len) if !data.is_null() && len > 0 => std::slice::from_raw_parts(data, len),
                _ => &[],
            }
        }
    }

    /// Replaces the payload with a copy of `data`, keeping the timestamps,
    /// flags, stream index and side data.
    pub fn set_payload(&mut self, data: &[u8]) -> Result<(), AvError> {
        let len = std::ffi::c_int::try_from(data.len()).map_err(|_| AvError::InvalidData)?;
        let fresh = Packet::new()?;
        // SAFETY: `fresh.0` is a valid empty packet; av_new_packet gives it
        // a buffer of `len` bytes (plus zeroed padding) or fails, and the
        // copy writes exactly `len` bytes into it from `data`, which does not
        // overlap a fresh allocation. av_packet_copy_props only reads
        // `self.0`; the move leaves `fresh.0` empty for its drop.
        unsafe {
            AvError::check(ffi::av_new_packet(fresh.0, len))?;
            std::ptr::copy_nonoverlapping(data.as_ptr(), (*fresh.0).data, data.len());
            AvError::check(ffi::av_packet_copy_props(fresh.0, self.0))?;
            ffi::av_packet_unref(self.0);
            ffi::av_packet_move_ref(self.0, fresh.0);
        }
        Ok(())
    }

    /// Releases the payload; the packet can be reused.
    pub fn unref(&mut self) {
        // SAFETY: `self.0` is a valid packet; unref on an empty one is a no-op.
        unsafe { ffi::av_packet_unref(self.0) }
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::AVPacket {
        self.0
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut ffi::AVPacket {
        self.0
    }
}

impl Drop for Packet {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from av_packet_alloc and is freed once.
        unsafe { ffi::av_packet_free(&mut self.0) }
    }
}
