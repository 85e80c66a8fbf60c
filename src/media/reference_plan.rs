//! Which reference pictures an exact H.264 or HEVC decode may leave
//! undecoded.
//!
//! x264 and most encoders make some B-frames references (B-pyramid); in a
//! long GOP they are a third or more of the decoding work before a late
//! target, yet the P-frames of such streams usually never use them. This
//! module follows the stream's reference lists and reference marking
//! (ITU-T H.264 §8.2.1, §8.2.4, §8.2.5) for the packets an exact decode
//! sends, and proves for each reference B-picture whether any picture that
//! is decoded for real refers to it while it is held for reference.
//!
//! A picture nothing decoded refers to is still sent, but cut to its slice
//! headers: the decoder parses them, so its picture buffer, frame numbers,
//! picture order counts and reference marking (including the adaptive
//! marking x264 gives B-references) stay exactly those of the full stream,
//! and only the pixels of that one picture, which nothing reads, are not
//! decoded. Dropping the packet instead would not do: the decoder would see
//! a frame-number gap and fill it with a made-up picture marked by another
//! rule.
//!
//! The proof is conservative: a picture refers to every entry of its active
//! lists; a list entry that cannot be resolved, a picture kind or syntax
//! not modelled here (field pictures, long-term references, marking other
//! than "unused for short-term reference", frame-number gaps, picture
//! order count type 1, slice groups, redundant pictures), or a run that does
//! not start at an IDR picture turns the plan off, and everything from then
//! on is decoded in full.
//!
//! HEVC is followed the same way by [`HevcTracker`] (reference picture sets
//! and list entries instead of marking); this module holds what both share:
//! the packets waiting for a decision, the candidates and the cut itself.

use std::collections::{HashMap, VecDeque};

use super::disposable::{units, Framing};
use super::h264_syntax::{
    parse_slice_header, Modification, ParamSets, SliceHeader, SliceKind, Sps, Unsupported,
};
use super::hevc_reference::HevcTracker;
use crate::av::{Discard, Packet};

/// At most this many packets wait for a decision; the oldest is then
/// decoded in full.
const MAX_PENDING: usize = 48;

/// What follows the header of a cut slice: all ones never make an
/// emulation-prevention or start-code pattern, and end in a stop bit.
const CUT_TAIL: [u8; 4] = [0xff; 4];

/// A reference picture held for reference.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Decode-order number of the picture.
    id: u64,
    frame_num: u32,
    poc: i64,
}

/// The stream state that decides reference lists.
#[derive(Debug, Default)]
struct Model {
    /// Short-term reference pictures, in no particular order.
    dpb: Vec<Held>,
    /// `frame_num` of the last reference picture.
    prev_ref_frame_num: u32,
    /// Picture order count state (type 0): MSB and LSB of the last
    /// reference picture.
    prev_poc_msb: i64,
    prev_poc_lsb: i64,
    /// Picture order count state (type 2): offset and `frame_num` of the
    /// last picture.
    prev_frame_num_offset: i64,
    prev_frame_num: u32,
}

/// What is known of a reference picture that might be cut.
#[derive(Debug, Clone, Copy, Default)]
struct Candidate {
    /// A picture decoded in full (or still undecided) refers to it.
    referenced: bool,
    /// It can still be referred to.
    held: bool,
}

/// One packet waiting to be sent.
struct Pending {
    packet: Packet,
    discard: Discard,
    /// Set for a candidate: its picture id and its payload cut to the slice
    /// headers.
    candidate: Option<(u64, Vec<u8>)>,
}

/// What a codec's tracker learned from one packet's picture.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    /// Pictures it may refer to.
    pub refers_to: Vec<u64>,
    /// Pictures no longer held once it is decoded.
    pub released: Vec<u64>,
    /// It is a reference picture that may be left undecoded.
    pub cuttable: bool,
    /// For each unit of the packet, the length of its slice header (`None`
    /// for units other than slices).
    pub header_bytes: Vec<Option<usize>>,
}

/// Follows an H.264 stream's references.
struct H264Tracker {
    params: ParamSets,
    /// `None` until a run's first picture.
    model: Option<Model>,
}

/// The codec whose references a plan follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    /// H.264 / AVC.
    H264,
    /// HEVC / H.265.
    Hevc,
}

/// The codec-specific part of a plan.
enum Tracker {
    /// H.264: frame numbers, marking and list modifications.
    H264(H264Tracker),
    /// HEVC: reference picture sets and list entries.
    Hevc(HevcTracker),
}

impl Tracker {
    /// Forgets the decoder state (after a seek).
    fn restart(&mut self) {
        match self {
            Self::H264(t) => t.model = None,
            Self::Hevc(t) => t.restart(),
        }
    }

    /// Follows the picture in `units` (one packet), numbered `id`.
    fn observe(&mut self, units: &[&[u8]], id: u64) -> Result<Observed, Unsupported> {
        match self {
            Self::H264(t) => t.observe(units, id),
            Self::Hevc(t) => t.observe(units, id),
        }
    }
}

/// The plan for one decoding run from a seek.
pub(crate) struct ReferencePlan {
    framing: Framing,
    tracker: Tracker,
    /// The stream left what is modelled: everything is decoded in full
    /// until the next run.
    off: bool,
    /// Decode-order number of the next picture.
    next_id: u64,
    candidates: HashMap<u64, Candidate>,
    pending: VecDeque<Pending>,
    /// Pictures cut so far (all runs).
    cut: u64,
}

/// A packet the plan lets go: sent as it is, or with a cut payload.
pub(crate) struct Release {
    /// The packet (payload already cut when it is to be).
    pub packet: Packet,
    /// The discard level it was queued with.
    pub discard: Discard,
}

impl ReferencePlan {
    /// A plan for a stream of `codec` (FFmpeg's codec name) whose
    /// out-of-band setup (avcC or hvcC record, or Annex B parameter sets)
    /// is `extradata`; `None` for codecs not followed (all but H.264 and
    /// HEVC) and setups not understood.
    pub(crate) fn for_stream(codec: &str, extradata: &[u8]) -> Option<Self> {
        let codec = match codec {
            "h264" => Codec::H264,
            "hevc" => Codec::Hevc,
            _ => return None,
        };
        let framing = match (codec, extradata) {
            (_, [] | [0, 0, 1, ..] | [0, 0, 0, 1, ..]) => Framing::StartCodes,
            // avcC: lengthSizeMinusOne in byte 4.
            (Codec::H264, [1, _, _, _, b4, ..]) => Framing::Length(usize::from(b4 & 3) + 1),
            // hvcC: lengthSizeMinusOne in byte 21.
            (Codec::Hevc, [1, ..]) if extradata.len() > 22 => {
                Framing::Length(usize::from(extradata[21] & 3) + 1)
            }
            _ => return None,
        };
        Some(Self::new(codec, framing, extradata))
    }

    /// A plan for a `codec` stream framed as `framing`.
    fn new(codec: Codec, framing: Framing, extradata: &[u8]) -> Self {
        let tracker = match codec {
            Codec::H264 => {
                let mut params = ParamSets::default();
                for unit in parameter_sets(extradata) {
                    // A set that does not parse leaves its id unknown:
                    // slices that use it turn the plan off.
                    let _ = params.add(unit[0] & 0x1f, &unit[1..]);
                }
                Tracker::H264(H264Tracker {
                    params,
                    model: None,
                })
            }
            Codec::Hevc => {
                Tracker::Hevc(HevcTracker::new(hevc_parameter_sets(extradata).into_iter()))
            }
        };
        Self {
            framing,
            tracker,
            off: false,
            next_id: 0,
            candidates: HashMap::new(),
            pending: VecDeque::new(),
            cut: 0,
        }
    }

    /// How many pictures were cut to their headers so far.
    pub(crate) fn cut(&self) -> u64 {
        self.cut
    }

    /// Starts a new run (after a seek): nothing is pending, the model waits
    /// for an IDR picture.
    pub(crate) fn restart(&mut self) {
        self.tracker.restart();
        self.off = false;
        self.candidates.clear();
        self.pending.clear();
    }

    /// Queues a packet about to be sent; `may_cut` says that its picture is
    /// not one wanted (it is decoded only if something wanted refers to
    /// it). Packets whose fate is known come out of [`ReferencePlan::next`].
    pub(crate) fn push(&mut self, packet: Packet, discard: Discard, may_cut: bool) {
        let candidate = match self.observe(&packet, may_cut) {
            Ok(candidate) => candidate,
            Err(Unsupported) => {
                self.turn_off();
                None
            }
        };
        self.pending.push_back(Pending {
            packet,
            discard,
            candidate,
        });
        if self.pending.len() > MAX_PENDING {
            if let Some((id, _)) = self.pending.front().and_then(|p| p.candidate.as_ref()) {
                let id = *id;
                if let Some(c) = self.candidates.get_mut(&id) {
                    c.referenced = true;
                }
            }
        }
    }

    /// The run ended: every picture still held can no longer be referred
    /// to by anything decoded.
    pub(crate) fn finish(&mut self) {
        for c in self.candidates.values_mut() {
            c.held = false;
        }
    }

    /// The next packet to send, once its fate is known.
    pub(crate) fn next(&mut self) -> Option<Release> {
        let front = self.pending.front()?;
        let cut = match &front.candidate {
            None => false,
            Some((id, _)) => {
                let c = self.candidates.get(id).copied().unwrap_or(Candidate {
                    referenced: true,
                    held: false,
                });
                if c.held && !c.referenced {
                    return None;
                }
                !c.referenced
            }
        };
        let Pending {
            mut packet,
            discard,
            candidate,
        } = self.pending.pop_front()?;
        if let Some((id, payload)) = candidate {
            self.candidates.remove(&id);
            if cut {
                if packet.set_payload(&payload).is_ok() {
                    self.cut += 1;
                } else {
                    // Sent whole: decoding it is never wrong.
                    tracing::debug!("could not cut a packet; decoding it");
                }
            }
        }
        Some(Release { packet, discard })
    }

    /// From here on, everything is decoded in full.
    fn turn_off(&mut self) {
        self.off = true;
        for c in self.candidates.values_mut() {
            c.referenced = true;
        }
    }

    /// Follows one packet through the tracker; returns its candidate entry
    /// when it may be cut.
    fn observe(
        &mut self,
        packet: &Packet,
        may_cut: bool,
    ) -> Result<Option<(u64, Vec<u8>)>, Unsupported> {
        if self.off {
            return Ok(None);
        }
        let all: Vec<&[u8]> = units(self.framing, packet.data())
            .collect::<Option<_>>()
            .ok_or(Unsupported)?;
        let id = self.next_id;
        self.next_id += 1;
        let seen = self.tracker.observe(&all, id)?;
        for referred in &seen.refers_to {
            if let Some(c) = self.candidates.get_mut(referred) {
                c.referenced = true;
            }
        }
        for removed in &seen.released {
            if let Some(c) = self.candidates.get_mut(removed) {
                c.held = false;
            }
        }
        if !(may_cut && seen.cuttable) {
            return Ok(None);
        }
        let payload = cut_payload(self.framing, &all, &seen.header_bytes);
        self.candidates.insert(
            id,
            Candidate {
                referenced: false,
                held: true,
            },
        );
        Ok(Some((id, payload)))
    }
}

/// The units of a packet again, each slice cut to its header followed by a
/// few bytes of ones: the decoder reads the header (the last one is the
/// stop bit it looks for), takes the picture into its buffer and gives up
/// on the slice data at once. Other units stay as they are.
fn cut_payload(framing: Framing, all: &[&[u8]], header_bytes: &[Option<usize>]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(all.len() * 64);
    for (&unit, &header) in all.iter().zip(header_bytes) {
        let (keep, tail): (&[u8], &[u8]) = match header {
            Some(n) if unit.len() > n + CUT_TAIL.len() => (&unit[..n], &CUT_TAIL),
            _ => (unit, &[]),
        };
        let cut_len = keep.len() + tail.len();
        match framing {
            Framing::Length(n) => {
                let len = cut_len.to_be_bytes();
                payload.extend_from_slice(&len[len.len() - n..]);
            }
            Framing::StartCodes => payload.extend_from_slice(&[0, 0, 0, 1]),
        }
        payload.extend_from_slice(keep);
        payload.extend_from_slice(tail);
    }
    payload
}

impl H264Tracker {
    /// Follows the picture in `units` (one packet), numbered `id`.
    fn observe(&mut self, units: &[&[u8]], id: u64) -> Result<Observed, Unsupported> {
        let mut slices: Vec<SliceHeader> = Vec::new();
        let mut header_bytes = Vec::with_capacity(units.len());
        for &unit in units {
            let mut header = None;
            match unit[0] & 0x1f {
                1 | 5 => {
                    let slice = parse_slice_header(unit, &self.params)?;
                    header = Some(slice.header_bytes);
                    slices.push(slice);
                }
                7 | 8 => self.params.add(unit[0] & 0x1f, &unit[1..])?,
                // SEI, access unit delimiter, end of sequence/stream,
                // filler: no reference state.
                6 | 9 | 10 | 11 | 12 => {}
                _ => return Err(Unsupported),
            }
            header_bytes.push(header);
        }
        let first = slices.first().ok_or(Unsupported)?.clone();
        if self.model.is_none() {
            if !first.idr {
                return Err(Unsupported);
            }
            self.model = Some(Model::default());
        }
        if slices.iter().any(|s| {
            (
                s.frame_num,
                s.idr,
                s.reference,
                s.poc_lsb,
                s.pps_id,
                &s.adaptive_marking,
            ) != (
                first.frame_num,
                first.idr,
                first.reference,
                first.poc_lsb,
                first.pps_id,
                &first.adaptive_marking,
            )
        }) {
            return Err(Unsupported);
        }
        let sps = self.params.sps_of(first.pps_id)?.clone();
        let model = self.model.as_mut().ok_or(Unsupported)?;
        let poc = model.poc(&first, &sps)?;
        let mut refers_to = Vec::new();
        for slice in &slices {
            refers_to.extend(model.referenced(slice, poc, &sps)?);
        }
        let released = model.mark(&first, id, poc, &sps)?;
        Ok(Observed {
            refers_to,
            released,
            cuttable: first.reference && slices.iter().all(|s| s.kind == SliceKind::B),
            header_bytes,
        })
    }
}

impl Model {
    /// The picture order count of the picture `slice` starts (§8.2.1), and
    /// the state update for the next one.
    fn poc(&mut self, slice: &SliceHeader, sps: &Sps) -> Result<i64, Unsupported> {
        match sps.poc_type {
            0 => {
                let max_lsb = 1i64 << sps.log2_max_poc_lsb;
                let (prev_msb, prev_lsb) = if slice.idr {
                    (0, 0)
                } else {
                    (self.prev_poc_msb, self.prev_poc_lsb)
                };
                let lsb = i64::from(slice.poc_lsb);
                let msb = poc_msb(prev_msb, prev_lsb, lsb, max_lsb);
                let top = msb + lsb;
                let bottom = top + i64::from(slice.delta_poc_bottom);
                if slice.reference {
                    self.prev_poc_msb = msb;
                    self.prev_poc_lsb = lsb;
                }
                Ok(top.min(bottom))
            }
            2 => {
                let max_frame_num = 1i64 << sps.log2_max_frame_num;
                let offset = if slice.idr {
                    0
                } else if self.prev_frame_num > slice.frame_num {
                    self.prev_frame_num_offset + max_frame_num
                } else {
                    self.prev_frame_num_offset
                };
                self.prev_frame_num_offset = offset;
                self.prev_frame_num = slice.frame_num;
                let abs = offset + i64::from(slice.frame_num);
                Ok(if slice.reference {
                    2 * abs
                } else {
                    2 * abs - 1
                })
            }
            _ => Err(Unsupported),
        }
    }

    /// `FrameNumWrap` / `PicNum` of a held picture seen from a picture with
    /// `frame_num` (§8.2.4.1).
    fn pic_num(held: &Held, frame_num: u32, sps: &Sps) -> i64 {
        let max = 1i64 << sps.log2_max_frame_num;
        if held.frame_num > frame_num {
            i64::from(held.frame_num) - max
        } else {
            i64::from(held.frame_num)
        }
    }

    /// The pictures one slice refers to: its active list entries after
    /// initialisation and modification (§8.2.4.2, §8.2.4.3).
    fn referenced(
        &self,
        slice: &SliceHeader,
        poc: i64,
        sps: &Sps,
    ) -> Result<Vec<u64>, Unsupported> {
        let lists = match slice.kind {
            SliceKind::I => return Ok(Vec::new()),
            SliceKind::P => self.p_list(slice.frame_num, sps),
            // A held picture with the current count belongs to neither side
            // of the lists, and the decoder's own lists could differ from
            // these: anything held may be used.
            SliceKind::B if self.dpb.iter().any(|h| h.poc == poc) => {
                return Ok(self.dpb.iter().map(|h| h.id).collect());
            }
            SliceKind::B => self.b_lists(poc),
        };
        let mut out = Vec::new();
        for (list_index, initial) in lists.into_iter().enumerate() {
            let active = slice.num_ref_idx_active[list_index] as usize;
            let list = self.modified(
                initial,
                &slice.modifications[list_index],
                active,
                slice.frame_num,
                sps,
            )?;
            if list.iter().take(active).any(Option::is_none) {
                // An empty entry is filled by the decoder from what it
                // holds: anything held may be used.
                out.extend(self.dpb.iter().map(|h| h.id));
            }
            out.extend(list.into_iter().take(active).flatten());
        }
        Ok(out)
    }

    /// The initial list of a P slice: descending `PicNum`.
    fn p_list(&self, frame_num: u32, sps: &Sps) -> Vec<Vec<Held>> {
        let mut list = self.dpb.clone();
        list.sort_by_key(|h| std::cmp::Reverse(Self::pic_num(h, frame_num, sps)));
        vec![list]
    }

    /// The initial lists of a B slice: by picture order count around the
    /// current one.
    fn b_lists(&self, poc: i64) -> Vec<Vec<Held>> {
        let mut before: Vec<Held> = self.dpb.iter().copied().filter(|h| h.poc < poc).collect();
        let mut after: Vec<Held> = self.dpb.iter().copied().filter(|h| h.poc > poc).collect();
        before.sort_by_key(|h| std::cmp::Reverse(h.poc));
        after.sort_by_key(|h| h.poc);
        let l0: Vec<Held> = before.iter().chain(after.iter()).copied().collect();
        let mut l1: Vec<Held> = after.iter().chain(before.iter()).copied().collect();
        if l1.len() > 1 && l1.iter().map(|h| h.id).eq(l0.iter().map(|h| h.id)) {
            l1.swap(0, 1);
        }
        vec![l0, l1]
    }

    /// Applies the modification commands to an initial list cut to
    /// `active` entries (§8.2.4.3.1).
    fn modified(
        &self,
        initial: Vec<Held>,
        commands: &[Modification],
        active: usize,
        frame_num: u32,
        sps: &Sps,
    ) -> Result<Vec<Option<u64>>, Unsupported> {
        let mut list: Vec<Option<u64>> = initial.iter().map(|h| Some(h.id)).collect();
        list.resize(active.max(list.len()), None);
        list.truncate(active);
        let max = 1i64 << sps.log2_max_frame_num;
        let curr = i64::from(frame_num);
        let mut pred = curr;
        for (ref_idx, command) in commands.iter().enumerate() {
            if ref_idx >= active {
                return Err(Unsupported);
            }
            let no_wrap = match *command {
                Modification::Minus(d) => {
                    let v = pred - (i64::from(d) + 1);
                    if v < 0 {
                        v + max
                    } else {
                        v
                    }
                }
                Modification::Plus(d) => {
                    let v = pred + (i64::from(d) + 1);
                    if v >= max {
                        v - max
                    } else {
                        v
                    }
                }
            };
            pred = no_wrap;
            let pic_num = if no_wrap > curr {
                no_wrap - max
            } else {
                no_wrap
            };
            let target = self
                .dpb
                .iter()
                .find(|h| Self::pic_num(h, frame_num, sps) == pic_num)
                .ok_or(Unsupported)?
                .id;
            list.insert(ref_idx, Some(target));
            let mut seen_at = None;
            for (i, entry) in list.iter().enumerate().skip(ref_idx + 1) {
                if *entry == Some(target) {
                    seen_at = Some(i);
                    break;
                }
            }
            match seen_at {
                Some(i) => {
                    list.remove(i);
                }
                None => {
                    list.pop();
                }
            }
        }
        Ok(list)
    }

    /// Marks after decoding the picture `slice` starts (§8.2.5); returns the
    /// pictures no longer held.
    fn mark(
        &mut self,
        slice: &SliceHeader,
        id: u64,
        poc: i64,
        sps: &Sps,
    ) -> Result<Vec<u64>, Unsupported> {
        let max = 1u32 << sps.log2_max_frame_num;
        if !slice.idr
            && slice.frame_num != self.prev_ref_frame_num
            && slice.frame_num != (self.prev_ref_frame_num + 1) % max
        {
            // A frame_num gap: the decoder would invent pictures.
            return Err(Unsupported);
        }
        let mut removed = Vec::new();
        if !slice.reference {
            return Ok(removed);
        }
        if slice.idr {
            removed.extend(self.dpb.drain(..).map(|h| h.id));
        } else if let Some(ops) = &slice.adaptive_marking {
            for &diff in ops {
                let pic_num = i64::from(slice.frame_num) - (i64::from(diff) + 1);
                let at = self
                    .dpb
                    .iter()
                    .position(|h| Self::pic_num(h, slice.frame_num, sps) == pic_num)
                    .ok_or(Unsupported)?;
                removed.push(self.dpb.remove(at).id);
            }
        } else if self.dpb.len() >= sps.max_num_ref_frames.max(1) as usize {
            let oldest = self
                .dpb
                .iter()
                .enumerate()
                .min_by_key(|(_, h)| Self::pic_num(h, slice.frame_num, sps))
                .map(|(i, _)| i)
                .ok_or(Unsupported)?;
            removed.push(self.dpb.remove(oldest).id);
        }
        if self.dpb.len() >= sps.max_num_ref_frames.max(1) as usize {
            return Err(Unsupported);
        }
        self.dpb.push(Held {
            id,
            frame_num: slice.frame_num,
            poc,
        });
        self.prev_ref_frame_num = slice.frame_num;
        Ok(removed)
    }
}

/// The parameter set units of an avcC record or Annex B extradata.
fn parameter_sets(extradata: &[u8]) -> Vec<&[u8]> {
    match extradata {
        [1, _, _, _, _, count, rest @ ..] => {
            let mut out = Vec::new();
            let mut rest = rest;
            if take_units(usize::from(count & 0x1f), &mut rest, &mut out).is_some() {
                if let Some((&pps_count, tail)) = rest.split_first() {
                    let mut tail = tail;
                    let _ = take_units(usize::from(pps_count), &mut tail, &mut out);
                }
            }
            out
        }
        _ => units(Framing::StartCodes, extradata).flatten().collect(),
    }
}

/// Takes `n` units with 16-bit lengths off the front of `rest` (avcC).
fn take_units<'a>(n: usize, rest: &mut &'a [u8], out: &mut Vec<&'a [u8]>) -> Option<()> {
    for _ in 0..n {
        let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        let unit = rest.get(2..2 + len)?;
        if !unit.is_empty() {
            out.push(unit);
        }
        *rest = &rest[2 + len..];
    }
    Some(())
}

/// The parameter set units (VPS, SPS, PPS) of an hvcC record or Annex B
/// extradata.
fn hevc_parameter_sets(extradata: &[u8]) -> Vec<&[u8]> {
    match extradata {
        [1, ..] => {
            let mut out = Vec::new();
            let mut rest = extradata.get(23..).unwrap_or_default();
            let arrays = usize::from(*extradata.get(22).unwrap_or(&0));
            for _ in 0..arrays {
                let Some([_, hi, lo]) = rest.get(..3).map(|h| [h[0], h[1], h[2]]) else {
                    break;
                };
                rest = &rest[3..];
                if take_units(
                    usize::from(u16::from_be_bytes([hi, lo])),
                    &mut rest,
                    &mut out,
                )
                .is_none()
                {
                    break;
                }
            }
            out
        }
        _ => units(Framing::StartCodes, extradata).flatten().collect(),
    }
}

/// The most significant part of a picture order count from its `lsb`
/// (`0..max_lsb`) and the previous picture's MSB and LSB: it wraps when the
/// LSB jumps by half the range or more (H.264 §8.2.1.1, H.265 §8.3.1).
pub(super) fn poc_msb(prev_msb: i64, prev_lsb: i64, lsb: i64, max_lsb: i64) -> i64 {
    if lsb < prev_lsb && prev_lsb - lsb >= max_lsb / 2 {
        prev_msb + max_lsb
    } else if lsb > prev_lsb && lsb - prev_lsb > max_lsb / 2 {
        prev_msb - max_lsb
    } else {
        prev_msb
    }
}
