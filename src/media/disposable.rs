//! Telling, from a packet's bytes alone, that no other picture references
//! the picture in it.
//!
//! Such a packet can be kept from the decoder entirely when its picture is
//! not the one wanted. `skip_frame` already makes FFmpeg drop these pictures
//! after parsing them, but a frame-threaded decoder still hands each packet
//! to the next thread in turn, so a skipped picture holds a thread slot and
//! the following reference picture waits for the thread that decoded the
//! previous one: with `P b b P` the reference chain ran on one core.
//! Filtering here keeps every thread on pictures that matter.
//!
//! Only what the bitstream states is trusted: H.264 `nal_ref_idc == 0`, and
//! HEVC sub-layer non-reference NAL types when the stream has one temporal
//! sub-layer. A packet that carries anything else (parameter sets, end of
//! sequence, slice data partitions, unknown units) or cannot be parsed is
//! kept; other codecs are left to the decoder's `skip_frame`.

/// How NAL units are delimited in the stream's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// ISO/IEC 14496-15: each unit is preceded by its big-endian length in
    /// this many bytes (MP4, Matroska).
    Length(usize),
    /// ITU-T H.264 Annex B: units separated by `00 00 01` start codes
    /// (MPEG-TS, raw streams).
    StartCodes,
}

/// Classifies one NAL unit: `Some(true)` for a slice of a picture nothing
/// references, `Some(false)` for a unit that carries no decoder state,
/// `None` for anything else.
type UnitRule = fn(&[u8]) -> Option<bool>;

/// The codec-specific rule, chosen once per stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposable {
    /// H.264 / AVC.
    H264(Framing),
    /// HEVC with a single temporal sub-layer.
    Hevc(Framing),
    /// No rule: every packet goes to the decoder.
    Unknown,
}

impl Disposable {
    /// The rule for a stream of `codec` (FFmpeg's codec name) whose
    /// out-of-band setup is `extradata`.
    pub(crate) fn for_stream(codec: &str, extradata: &[u8]) -> Self {
        match codec {
            "h264" => match extradata {
                // AVCDecoderConfigurationRecord: version 1, then profile,
                // compatibility, level, and lengthSizeMinusOne in byte 4.
                [1, _, _, _, b4, ..] => Self::H264(Framing::Length(usize::from(b4 & 3) + 1)),
                [] | [0, 0, 1, ..] | [0, 0, 0, 1, ..] => Self::H264(Framing::StartCodes),
                _ => Self::Unknown,
            },
            // HEVCDecoderConfigurationRecord: byte 21 holds
            // constantFrameRate(2) numTemporalLayers(3) temporalIdNested(1)
            // lengthSizeMinusOne(2). With one temporal layer, a sub-layer
            // non-reference picture is referenced by nothing.
            "hevc" => match extradata {
                [1, rest @ ..] if rest.len() >= 22 => {
                    let b21 = extradata[21];
                    if (b21 >> 3) & 7 == 1 {
                        Self::Hevc(Framing::Length(usize::from(b21 & 3) + 1))
                    } else {
                        Self::Unknown
                    }
                }
                _ => Self::Unknown,
            },
            _ => Self::Unknown,
        }
    }

    /// Whether the packet `data` holds one picture that no other picture
    /// references (and nothing else a decoder keeps).
    pub(crate) fn is_disposable(self, data: &[u8]) -> bool {
        let (framing, unit_ok): (Framing, UnitRule) = match self {
            Self::H264(f) => (f, h264_unit),
            Self::Hevc(f) => (f, hevc_unit),
            Self::Unknown => return false,
        };
        let mut slices = 0usize;
        let all_ok = units(framing, data).all(|unit| match unit.map(unit_ok) {
            Some(Some(is_slice)) => {
                slices += usize::from(is_slice);
                true
            }
            _ => false,
        });
        all_ok && slices > 0
    }
}

/// H.264: `Some(true)` for a slice of a non-reference picture, `Some(false)`
/// for a unit that carries no decoder state (SEI, access unit delimiter,
/// filler), `None` for anything else.
fn h264_unit(unit: &[u8]) -> Option<bool> {
    let header = *unit.first()?;
    let ref_idc = (header >> 5) & 3;
    match header & 0x1f {
        // Coded slice of a non-IDR picture.
        1 if ref_idc == 0 => Some(true),
        // SEI, access unit delimiter, filler data.
        6 | 9 | 12 => Some(false),
        _ => None,
    }
}

/// HEVC: `Some(true)` for a slice of a sub-layer non-reference picture in
/// temporal sub-layer 0, `Some(false)` for SEI, access unit delimiter and
/// filler, `None` for anything else.
fn hevc_unit(unit: &[u8]) -> Option<bool> {
    let [b0, b1, ..] = *unit else { return None };
    let temporal_id = (b1 & 7).checked_sub(1)?;
    let layer_id = ((b0 & 1) << 5) | (b1 >> 3);
    if layer_id != 0 {
        return None;
    }
    match (b0 >> 1) & 0x3f {
        // TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14.
        0 | 2 | 4 | 6 | 8 | 10 | 12 | 14 if temporal_id == 0 => Some(true),
        // AUD, filler, prefix and suffix SEI.
        35 | 38 | 39 | 40 => Some(false),
        _ => None,
    }
}

/// The NAL units of a packet; `None` marks data that does not parse (and
/// ends the walk).
pub(crate) fn units(framing: Framing, data: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut rest = data;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || rest.is_empty() {
            return None;
        }
        let unit = match framing {
            Framing::Length(n) => length_prefixed(&mut rest, n),
            Framing::StartCodes => start_coded(&mut rest),
        };
        failed = unit.is_none();
        Some(unit)
    })
}

/// Takes one length-prefixed unit off the front of `rest`.
fn length_prefixed<'a>(rest: &mut &'a [u8], size: usize) -> Option<&'a [u8]> {
    let prefix = rest.get(..size)?;
    let len = prefix
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let unit = rest.get(size..size.checked_add(len)?)?;
    *rest = &rest[size + len..];
    (!unit.is_empty()).then_some(unit)
}

/// Takes one start-code-delimited unit off the front of `rest` (leading
/// zero bytes and the start code are skipped; trailing zeros belong to the
/// next start code).
fn start_coded<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let start = find_start_code(rest)? + 3;
    let body = &rest[start..];
    let end = find_start_code(body).unwrap_or(body.len());
    let mut unit = &body[..end];
    while let [head @ .., 0] = unit {
        unit = head;
    }
    *rest = &body[end..];
    (!unit.is_empty()).then_some(unit)
}

/// Position of the first `00 00 01` in `data`.
fn find_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const AVCC: &[u8] = &[1, 0x64, 0, 0x28, 0xff, 0xe1, 0, 0];

    fn avcc_packet(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| {
                let len = u32::try_from(u.len()).unwrap().to_be_bytes();
                len.into_iter().chain(u.iter().copied())
            })
            .collect()
    }

    #[test]
    fn h264_rule_follows_the_extradata() {
        assert_eq!(
            Disposable::for_stream("h264", AVCC),
            Disposable::H264(Framing::Length(4))
        );
        assert_eq!(
            Disposable::for_stream("h264", &[1, 0x64, 0, 0x28, 0xfd]),
            Disposable::H264(Framing::Length(2))
        );
        assert_eq!(
            Disposable::for_stream("h264", &[]),
            Disposable::H264(Framing::StartCodes)
        );
        assert_eq!(
            Disposable::for_stream("h264", &[0, 0, 0, 1, 0x67]),
            Disposable::H264(Framing::StartCodes)
        );
        assert_eq!(Disposable::for_stream("h264", &[7, 7]), Disposable::Unknown);
        assert_eq!(Disposable::for_stream("vp9", &[]), Disposable::Unknown);
    }

    #[test]
    fn h264_non_reference_slices_are_disposable() {
        let rule = Disposable::for_stream("h264", AVCC);
        // SEI + non-reference slice (nal_ref_idc 0, type 1).
        assert!(rule.is_disposable(&avcc_packet(&[&[0x06, 5, 1], &[0x01, 0x9e, 0x10]])));
        // Two slices of one non-reference picture.
        assert!(rule.is_disposable(&avcc_packet(&[&[0x01, 0x9e], &[0x01, 0x9f]])));
    }

    #[test]
    fn h264_anything_a_decoder_keeps_is_not() {
        let rule = Disposable::for_stream("h264", AVCC);
        // Reference slice (nal_ref_idc 2).
        assert!(!rule.is_disposable(&avcc_packet(&[&[0x41, 0x9a]])));
        // IDR.
        assert!(!rule.is_disposable(&avcc_packet(&[&[0x65, 0x88]])));
        // A parameter set before a non-reference slice.
        assert!(!rule.is_disposable(&avcc_packet(&[&[0x68, 0xee], &[0x01, 0x9e]])));
        // End of sequence after one.
        assert!(!rule.is_disposable(&avcc_packet(&[&[0x01, 0x9e], &[0x0a]])));
        // SEI alone: no picture.
        assert!(!rule.is_disposable(&avcc_packet(&[&[0x06, 5, 1]])));
        // A length running past the end, and an empty packet.
        let mut cut = avcc_packet(&[&[0x01, 0x9e, 0x10]]);
        cut[3] = 9;
        assert!(!rule.is_disposable(&cut));
        assert!(!rule.is_disposable(&[]));
        assert!(!rule.is_disposable(&[0, 0]));
    }

    #[test]
    fn h264_start_codes() {
        let rule = Disposable::H264(Framing::StartCodes);
        assert!(rule.is_disposable(&[0, 0, 0, 1, 0x09, 0x10, 0, 0, 1, 0x01, 0x9e, 0x22, 0, 0]));
        assert!(!rule.is_disposable(&[0, 0, 0, 1, 0x09, 0x10, 0, 0, 1, 0x21, 0x9e]));
        assert!(!rule.is_disposable(&[0x01, 0x9e]));
    }

    #[test]
    fn hevc_needs_one_temporal_layer() {
        let mut hvcc = vec![1u8; 23];
        hvcc[21] = (1 << 3) | 3;
        let rule = Disposable::for_stream("hevc", &hvcc);
        assert_eq!(rule, Disposable::Hevc(Framing::Length(4)));
        // TRAIL_N (type 0) in temporal layer 0, after a prefix SEI (39).
        assert!(rule.is_disposable(&avcc_packet(&[&[39 << 1, 1, 5], &[0, 1, 0xaf]])));
        // TRAIL_R (type 1).
        assert!(!rule.is_disposable(&avcc_packet(&[&[1 << 1, 1, 0xaf]])));
        // TRAIL_N in temporal layer 1.
        assert!(!rule.is_disposable(&avcc_packet(&[&[0, 2, 0xaf]])));
        hvcc[21] = (2 << 3) | 3;
        assert_eq!(Disposable::for_stream("hevc", &hvcc), Disposable::Unknown);
        hvcc[21] = 3;
        assert_eq!(Disposable::for_stream("hevc", &hvcc), Disposable::Unknown);
    }
}
