//! Telling, from an AV1 temporal unit's bytes alone, that no later frame
//! can depend on the frames in it (AV1 §5.3–§5.5, §5.9.1–§5.9.2).
//!
//! AV1 keeps every piece of state a frame leaves for others in the eight
//! reference slots: pictures, motion vectors, segmentation maps, loop
//! filter deltas, CDFs and film grain all travel with a slot and are loaded
//! from one (`primary_ref_frame`, `ref_frame_idx`), never from "the previous
//! frame". A frame whose `refresh_frame_flags` is 0 writes no slot, so a
//! temporal unit whose every frame has that is referenced by nothing and
//! can be kept from the decoder when its picture is not the one wanted
//! (SVT-AV1's hierarchy makes a third of the frames so). VP9 is different
//! (a frame uses the previous frame's motion vectors and segmentation map
//! and may save probability contexts without refreshing a slot), which is
//! why no rule exists for it.
//!
//! The frame header is read as far as `refresh_frame_flags`, which needs a
//! few fields of the sequence header: the one in the container's
//! configuration record (`av1C`), which the ISOBMFF and Matroska mappings
//! require to match the ones in the stream. Anything not modelled (reduced
//! still-picture headers, decoder model timing in frame headers, frame id
//! numbers, scalable streams with OBU extensions, metadata, a sequence
//! header in the unit, `show_existing_frame`) keeps the unit.

/// Reads bits MSB first.
struct Bits<'a> {
    data: &'a [u8],
    /// Position of the next bit.
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    /// `f(n)`, n ≤ 32; `None` past the end.
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }

    fn flag(&mut self) -> Option<bool> {
        self.bits(1).map(|b| b == 1)
    }

    /// `uvlc()`: skipped, only its length matters here.
    fn skip_uvlc(&mut self) -> Option<()> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return None;
            }
        }
        self.bits(zeros).map(drop)
    }
}

/// `seq_force_screen_content_tools` / `seq_force_integer_mv` value meaning
/// "the frame header says".
const SELECT: u32 = 2;

/// OBU types (AV1 §6.2.2).
const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_TILE_GROUP: u8 = 4;
const OBU_FRAME: u8 = 6;
const OBU_REDUNDANT_FRAME_HEADER: u8 = 7;
const OBU_PADDING: u8 = 15;

/// `frame_type` values.
const KEY_FRAME: u32 = 0;
const INTRA_ONLY_FRAME: u32 = 2;
const SWITCH_FRAME: u32 = 3;

/// The sequence header fields the frame header up to `refresh_frame_flags`
/// depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Av1Sequence {
    seq_force_screen_content_tools: u32,
    seq_force_integer_mv: u32,
    /// `OrderHintBits`.
    order_hint_bits: u32,
}

impl Av1Sequence {
    /// The sequence header of a stream whose codec private data is
    /// `extradata` (an `av1C` record, or bare OBUs); `None` when there is
    /// none or it is of a kind not modelled.
    pub(crate) fn from_extradata(extradata: &[u8]) -> Option<Self> {
        // av1C: marker and version (0x81), then three bytes of profile,
        // level and flags, then the configuration OBUs.
        let obus = match extradata {
            [0x81, _, _, _, rest @ ..] => rest,
            _ => extradata,
        };
        obus_of(obus)?
            .find(|o| o.as_ref().is_some_and(|o| o.kind == OBU_SEQUENCE_HEADER))?
            .and_then(|o| Self::parse(o.payload))
    }

    /// `sequence_header_obu()` (§5.5), as far as the fields kept.
    fn parse(payload: &[u8]) -> Option<Self> {
        let mut r = Bits::new(payload);
        let _seq_profile = r.bits(3)?;
        let _still_picture = r.flag()?;
        if r.flag()? {
            // reduced_still_picture_header
            return None;
        }
        let mut decoder_model_info_present = false;
        let mut buffer_delay_bits = 0;
        if r.flag()? {
            // timing_info()
            r.bits(32)?;
            r.bits(32)?;
            if r.flag()? {
                r.skip_uvlc()?;
            }
            decoder_model_info_present = r.flag()?;
            if decoder_model_info_present {
                buffer_delay_bits = r.bits(5)? + 1;
                r.bits(32)?;
                r.bits(5)?;
                r.bits(5)?;
            }
        }
        let initial_display_delay_present = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            let _idc = r.bits(12)?;
            if r.bits(5)? > 7 {
                r.bits(1)?;
            }
            if decoder_model_info_present && r.flag()? {
                r.bits(buffer_delay_bits)?;
                r.bits(buffer_delay_bits)?;
                r.bits(1)?;
            }
            if initial_display_delay_present && r.flag()? {
                r.bits(4)?;
            }
        }
        if decoder_model_info_present {
            // Frame headers then carry timing fields per operating point:
            // not modelled.
            return None;
        }
        let width_bits = r.bits(4)? + 1;
        let height_bits = r.bits(4)? + 1;
        r.bits(width_bits)?;
        r.bits(height_bits)?;
        if r.flag()? {
            // frame_id_numbers_present_flag: every frame header then marks
            // reference slots by its frame id, whether it refreshes one or
            // not.
            return None;
        }
        // use_128x128_superblock, enable_filter_intra,
        // enable_intra_edge_filter, enable_interintra_compound,
        // enable_masked_compound, enable_warped_motion, enable_dual_filter.
        r.bits(7)?;
        let enable_order_hint = r.flag()?;
        if enable_order_hint {
            // enable_jnt_comp, enable_ref_frame_mvs.
            r.bits(2)?;
        }
        let seq_force_screen_content_tools = if r.flag()? { SELECT } else { r.bits(1)? };
        let seq_force_integer_mv = if seq_force_screen_content_tools > 0 {
            if r.flag()? {
                SELECT
            } else {
                r.bits(1)?
            }
        } else {
            SELECT
        };
        let order_hint_bits = if enable_order_hint { r.bits(3)? + 1 } else { 0 };
        Some(Self {
            seq_force_screen_content_tools,
            seq_force_integer_mv,
            order_hint_bits,
        })
    }

    /// Whether the temporal unit `data` holds at least one frame and only
    /// frames that refresh no reference slot (and nothing else a decoder
    /// keeps).
    pub(crate) fn is_disposable(&self, data: &[u8]) -> bool {
        let Some(obus) = obus_of(data) else {
            return false;
        };
        let mut frames = 0usize;
        for obu in obus {
            let Some(obu) = obu else { return false };
            match obu.kind {
                OBU_FRAME_HEADER | OBU_FRAME => {
                    if self.refresh_frame_flags(obu.payload) != Some(0) {
                        return false;
                    }
                    frames += 1;
                }
                // A copy of the frame header already read; tile data; and
                // units without decoder state.
                OBU_REDUNDANT_FRAME_HEADER
                | OBU_TILE_GROUP
                | OBU_TEMPORAL_DELIMITER
                | OBU_PADDING => {}
                _ => return false,
            }
        }
        frames > 0
    }

    /// `refresh_frame_flags` of `uncompressed_header()` (§5.9.2); `None`
    /// for `show_existing_frame` or what does not parse.
    fn refresh_frame_flags(&self, payload: &[u8]) -> Option<u32> {
        let mut r = Bits::new(payload);
        if r.flag()? {
            // show_existing_frame: may reload a key frame's state.
            return None;
        }
        let frame_type = r.bits(2)?;
        let intra = frame_type == KEY_FRAME || frame_type == INTRA_ONLY_FRAME;
        let show_frame = r.flag()?;
        if !show_frame {
            let _showable_frame = r.bits(1)?;
        }
        if frame_type == SWITCH_FRAME || (frame_type == KEY_FRAME && show_frame) {
            return Some(0xff);
        }
        let error_resilient_mode = r.flag()?;
        let _disable_cdf_update = r.bits(1)?;
        let screen_content_tools = match self.seq_force_screen_content_tools {
            SELECT => r.bits(1)?,
            v => v,
        };
        if screen_content_tools > 0 && self.seq_force_integer_mv == SELECT {
            let _force_integer_mv = r.bits(1)?;
        }
        let _frame_size_override_flag = r.bits(1)?;
        let _order_hint = r.bits(self.order_hint_bits)?;
        if !(intra || error_resilient_mode) {
            let _primary_ref_frame = r.bits(3)?;
        }
        r.bits(8)
    }
}

/// One OBU of a temporal unit.
struct Obu<'a> {
    kind: u8,
    payload: &'a [u8],
}

/// The OBUs of `data` (low-overhead format: each with its size field, the
/// last one possibly without); `None` items mark what does not parse or
/// carries an extension header (scalable streams), and end the walk. `None`
/// for empty data.
fn obus_of(data: &[u8]) -> Option<impl Iterator<Item = Option<Obu<'_>>>> {
    if data.is_empty() {
        return None;
    }
    let mut rest = data;
    let mut failed = false;
    Some(std::iter::from_fn(move || {
        if failed || rest.is_empty() {
            return None;
        }
        let obu = next_obu(&mut rest);
        failed = obu.is_none();
        Some(obu)
    }))
}

/// Takes one OBU off the front of `rest`.
fn next_obu<'a>(rest: &mut &'a [u8]) -> Option<Obu<'a>> {
    let (&header, after) = rest.split_first()?;
    let forbidden = header >> 7;
    let kind = (header >> 3) & 0x0f;
    let has_extension = header & 0x04 != 0;
    let has_size = header & 0x02 != 0;
    if forbidden != 0 || has_extension {
        return None;
    }
    let (payload, remaining) = if has_size {
        let (size, used) = leb128(after)?;
        let body = after.get(used..)?;
        let size = usize::try_from(size).ok()?;
        (body.get(..size)?, &body[size..])
    } else {
        (after, &after[after.len()..])
    };
    *rest = remaining;
    Some(Obu { kind, payload })
}

/// `leb128()`: the value and how many bytes it took.
fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::bits::hex;

    /// `fixtures/av1.mp4` (SVT-AV1, preset 12): its `av1C` record.
    const AV1C: &str = "81000c000a0b000000043cffbc02f80040";

    /// One OBU with its size field.
    fn obu(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(kind << 3) | 0x02, u8::try_from(payload.len()).unwrap()];
        out.extend_from_slice(payload);
        out
    }

    /// The first bytes of frame OBUs of the fixture, with the values
    /// FFmpeg's `trace_headers` prints for them: a shown inter frame that
    /// refreshes nothing (pts 1536), one that refreshes slot 6 (pts 2560)
    /// and a hidden one that refreshes slot 0 (pts 512, first of five).
    const NON_REFERENCE: &str = "320300 0db6b69132000000";
    const REFERENCE: &str = "290304 05b6b6c898200000";
    const HIDDEN: &str = "2908001249 248c902080";

    fn payload(text: &str) -> Vec<u8> {
        hex(&text.replace(' ', ""))
    }

    #[test]
    fn fixture_headers_read_as_ffmpeg_reads_them() {
        let sequence = Av1Sequence::from_extradata(&hex(AV1C)).expect("a sequence header");
        assert_eq!(
            sequence.refresh_frame_flags(&payload(NON_REFERENCE)),
            Some(0)
        );
        assert_eq!(sequence.refresh_frame_flags(&payload(REFERENCE)), Some(64));
        assert_eq!(sequence.refresh_frame_flags(&payload(HIDDEN)), Some(1));
        // show_existing_frame.
        assert_eq!(sequence.refresh_frame_flags(&[0xe8]), None);
        // The same record as bare OBUs.
        assert_eq!(
            Av1Sequence::from_extradata(&hex(&AV1C[8..])),
            Some(sequence)
        );
    }

    #[test]
    fn only_units_of_non_reference_frames_are_disposable() {
        let sequence = Av1Sequence::from_extradata(&hex(AV1C)).unwrap();
        let delimiter = obu(OBU_TEMPORAL_DELIMITER, &[]);
        let non_reference = obu(OBU_FRAME, &payload(NON_REFERENCE));
        let reference = obu(OBU_FRAME, &payload(REFERENCE));
        let unit = |parts: &[&[u8]]| parts.concat();
        assert!(sequence.is_disposable(&non_reference));
        assert!(sequence.is_disposable(&unit(&[&delimiter, &non_reference])));
        assert!(!sequence.is_disposable(&reference));
        // A hidden reference frame before the shown one.
        assert!(
            !sequence.is_disposable(&unit(&[&obu(OBU_FRAME, &payload(HIDDEN)), &non_reference]))
        );
        // A frame shown again, a delimiter alone, metadata, a sequence
        // header, an extension header, a size past the end, nothing.
        assert!(!sequence.is_disposable(&obu(OBU_FRAME_HEADER, &[0xe8])));
        assert!(!sequence.is_disposable(&delimiter));
        assert!(!sequence.is_disposable(&unit(&[&obu(5, &[1, 2]), &non_reference])));
        assert!(!sequence.is_disposable(&unit(&[&hex(&AV1C[8..]), &non_reference])));
        let mut extended = non_reference.clone();
        extended[0] |= 0x04;
        assert!(!sequence.is_disposable(&extended));
        let mut cut = non_reference.clone();
        cut[1] += 1;
        assert!(!sequence.is_disposable(&cut));
        assert!(!sequence.is_disposable(&[]));
    }

    #[test]
    fn unmodelled_sequence_headers_give_no_rule() {
        assert_eq!(Av1Sequence::from_extradata(&[]), None);
        // reduced_still_picture_header.
        assert_eq!(
            Av1Sequence::from_extradata(&obu(OBU_SEQUENCE_HEADER, &[0x18, 0])),
            None
        );
        // Cut short.
        assert_eq!(Av1Sequence::from_extradata(&hex(&AV1C[..20])), None);
        assert_eq!(leb128(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(leb128(&[0x80]), None);
    }
}
