//! Which pictures an HEVC picture refers to, for the reference plan
//! (see `reference_plan`): picture order counts (ITU-T H.265 §8.3.1), the
//! reference picture set of each picture (§8.3.2) and the reference picture
//! lists of each slice (§8.3.4), followed for the pictures the decoder is
//! sent.
//!
//! A picture is held while reference picture sets keep it. A slice reads
//! only the entries of its active lists (motion compensation and the
//! collocated picture of temporal motion vector prediction both index
//! them), so a held picture in no active list entry of any slice decoded
//! for real is never read, even when its `used_by_curr_pic` flag is set.
//!
//! FFmpeg's decoder, as this models it: a run starts at an IDR or CRA
//! picture; the RASL pictures of a CRA picture a run starts at are not
//! decoded (nor kept); an entry of a reference picture set the decoder does
//! not hold is made up (a grey picture), which is never cut here. Multiple
//! temporal sub-layers, layers other than the base one, long-term
//! references, BLA pictures and end of sequence units are not modelled.

use super::bits::{Parsed, Unsupported};
use super::hevc_syntax::{parse_slice_header, Independent, ParamSets, SliceHeader, SliceKind};
use super::reference_plan::{poc_msb, Observed};

/// A picture held for reference.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Decode-order number of the picture.
    id: u64,
    poc: i64,
}

/// The decoder state that decides reference picture sets.
#[derive(Debug)]
struct Dpb {
    held: Vec<Held>,
    /// Picture order count of the last picture of temporal sub-layer 0
    /// that is not a RADL, RASL or sub-layer non-reference picture.
    prev_tid0_poc: i64,
    /// RASL pictures up to this order count are not decoded (FFmpeg's
    /// `max_ra`).
    max_ra: i64,
}

/// Follows an HEVC stream's references.
#[derive(Debug, Default)]
pub(crate) struct HevcTracker {
    params: ParamSets,
    /// `None` until a run's first picture.
    dpb: Option<Dpb>,
}

/// `nal_unit_type` values.
const RASL_N: u8 = 8;
const RASL_R: u8 = 9;
const IDR_W_RADL: u8 = 19;
const IDR_N_LP: u8 = 20;
const CRA: u8 = 21;

/// Whether pictures of `nal_type` set the order count the next pictures'
/// counts are derived from (§8.3.1: not RADL, RASL or sub-layer
/// non-reference).
fn sets_prev_tid0(nal_type: u8) -> bool {
    !matches!(nal_type, 0 | 2 | 4 | 6 | 7 | 8 | 9)
}

/// Whether a picture of `nal_type` may be cut: a non-IRAP picture others
/// may refer to (TRAIL_R, RADL_R, RASL_R).
fn cuttable(nal_type: u8) -> bool {
    matches!(nal_type, 1 | 7 | 9)
}

/// The slices of one packet.
struct Packet {
    slices: Vec<SliceHeader>,
    /// `nal_unit_type` of each slice.
    nal_types: Vec<u8>,
    /// For each unit, the length of its slice segment header.
    header_bytes: Vec<Option<usize>>,
}

impl HevcTracker {
    /// A tracker that knows the parameter sets in `units` (out-of-band
    /// setup; those that do not parse stay unknown).
    pub(crate) fn new<'a>(units: impl Iterator<Item = &'a [u8]>) -> Self {
        let mut params = ParamSets::default();
        for unit in units {
            if let Some(payload) = unit.get(2..) {
                let _ = params.add(unit[0] >> 1 & 0x3f, payload);
            }
        }
        Self { params, dpb: None }
    }

    /// Forgets the decoder state (after a seek): the next picture must be
    /// an IDR or CRA picture.
    pub(crate) fn restart(&mut self) {
        self.dpb = None;
    }

    /// Follows the picture in `units` (one packet), numbered `id`.
    pub(crate) fn observe(&mut self, units: &[&[u8]], id: u64) -> Parsed<Observed> {
        let Packet {
            slices,
            nal_types,
            header_bytes,
        } = self.read_units(units)?;
        let (Some(first), Some(&nal_type)) = (slices.first(), nal_types.first()) else {
            return Err(Unsupported);
        };
        let one_picture = first.first_in_picture
            && slices.iter().skip(1).all(|s| !s.first_in_picture)
            && nal_types.iter().all(|&t| t == nal_type);
        let Some(picture) = first.independent.as_ref().filter(|_| one_picture) else {
            return Err(Unsupported);
        };
        let sps = self.params.sps_of(first.pps_id)?;
        if sps.max_sub_layers != 1 || (16..=18).contains(&nal_type) {
            return Err(Unsupported);
        }
        let max_lsb = 1i64 << sps.log2_max_poc_lsb;
        let dpb = match self.dpb.take() {
            Some(dpb) => dpb,
            None => Dpb::start(nal_type, picture.poc_lsb)?,
        };
        let dpb = self.dpb.insert(dpb);
        let poc = dpb.poc(nal_type, picture.poc_lsb, max_lsb);
        if matches!(nal_type, RASL_N | RASL_R) && poc <= dpb.max_ra {
            // Not decoded: nothing changes.
            return Ok(Observed {
                header_bytes,
                ..Observed::default()
            });
        }
        if nal_type == RASL_R {
            dpb.max_ra = i64::MIN;
        }
        let released = dpb.apply_rps(nal_type, poc, picture);
        let mut refers_to = Vec::new();
        for slice in slices.iter().filter_map(|s| s.independent.as_ref()) {
            if slice.rps != picture.rps || slice.poc_lsb != picture.poc_lsb {
                return Err(Unsupported);
            }
            refers_to.extend(dpb.referenced(slice, poc)?);
        }
        if sets_prev_tid0(nal_type) {
            dpb.prev_tid0_poc = poc;
        }
        dpb.held.push(Held { id, poc });
        Ok(Observed {
            refers_to,
            released,
            cuttable: cuttable(nal_type),
            header_bytes,
        })
    }
}

impl HevcTracker {
    /// Parses the units of a packet, taking in its parameter sets.
    fn read_units(&mut self, units: &[&[u8]]) -> Parsed<Packet> {
        let mut packet = Packet {
            slices: Vec::new(),
            nal_types: Vec::new(),
            header_bytes: Vec::with_capacity(units.len()),
        };
        for unit in units {
            let [b0, b1, ..] = **unit else {
                return Err(Unsupported);
            };
            let nal_type = b0 >> 1 & 0x3f;
            if b0 & 1 != 0 || b1 != 1 {
                // A layer other than the base one, or a temporal
                // sub-layer above 0.
                return Err(Unsupported);
            }
            let mut header = None;
            match nal_type {
                0..=9 | 16..=21 => {
                    let slice = parse_slice_header(unit, &self.params)?;
                    header = Some(slice.header_bytes);
                    packet.nal_types.push(nal_type);
                    packet.slices.push(slice);
                }
                33 | 34 => self.params.add(nal_type, &unit[2..])?,
                // Video parameter set, access unit delimiter, filler, SEI.
                32 | 35 | 38 | 39 | 40 => {}
                _ => return Err(Unsupported),
            }
            packet.header_bytes.push(header);
        }
        Ok(packet)
    }
}

impl Dpb {
    /// The state at a run's first picture, of `nal_type`.
    fn start(nal_type: u8, poc_lsb: u32) -> Parsed<Self> {
        let max_ra = match nal_type {
            IDR_W_RADL | IDR_N_LP => i64::MIN,
            // The count of a CRA picture that starts a run has no MSB.
            CRA => i64::from(poc_lsb),
            _ => return Err(Unsupported),
        };
        Ok(Self {
            held: Vec::new(),
            prev_tid0_poc: i64::from(poc_lsb),
            max_ra,
        })
    }

    /// The picture order count of a picture (§8.3.1, as FFmpeg derives it).
    fn poc(&self, nal_type: u8, poc_lsb: u32, max_lsb: i64) -> i64 {
        if matches!(nal_type, IDR_W_RADL | IDR_N_LP) {
            return 0;
        }
        let lsb = i64::from(poc_lsb);
        let prev_lsb = self.prev_tid0_poc.rem_euclid(max_lsb);
        let prev_msb = self.prev_tid0_poc - prev_lsb;
        poc_msb(prev_msb, prev_lsb, lsb, max_lsb) + lsb
    }

    /// Keeps what the picture's reference picture set keeps (everything
    /// goes at an IDR picture); returns the pictures no longer held.
    fn apply_rps(&mut self, nal_type: u8, poc: i64, picture: &Independent) -> Vec<u64> {
        let kept: Vec<i64> = if matches!(nal_type, IDR_W_RADL | IDR_N_LP) {
            Vec::new()
        } else {
            let rps = &picture.rps;
            rps.negative
                .iter()
                .chain(&rps.positive)
                .map(|&(delta, _)| poc + i64::from(delta))
                .collect()
        };
        let (held, released): (Vec<Held>, Vec<Held>) =
            self.held.iter().partition(|h| kept.contains(&h.poc));
        self.held = held;
        released.into_iter().map(|h| h.id).collect()
    }

    /// The held pictures in the active entries of a slice's lists
    /// (§8.3.4); entries the decoder makes up are left out.
    fn referenced(&self, slice: &Independent, poc: i64) -> Parsed<Vec<u64>> {
        if slice.kind == SliceKind::I {
            return Ok(Vec::new());
        }
        let used = |side: &[(i32, bool)]| -> Vec<i64> {
            side.iter()
                .filter(|(_, used)| *used)
                .map(|&(delta, _)| poc + i64::from(delta))
                .collect()
        };
        let before = used(&slice.rps.negative);
        let after = used(&slice.rps.positive);
        if before.is_empty() && after.is_empty() {
            return Err(Unsupported);
        }
        let orders = [
            [before.as_slice(), after.as_slice()],
            [after.as_slice(), before.as_slice()],
        ];
        let total = before.len() + after.len();
        let mut out = Vec::new();
        let lists = orders
            .iter()
            .zip(slice.num_ref_idx_active)
            .zip(&slice.list_entries)
            .take(slice.kind.lists());
        for ((order, active), list_entries) in lists {
            let active = active as usize;
            let temp: Vec<i64> = order
                .concat()
                .into_iter()
                .cycle()
                .take(active.max(total))
                .collect();
            let entries: Vec<i64> = match list_entries {
                Some(entries) => entries
                    .iter()
                    .map(|&e| temp.get(e as usize).copied().ok_or(Unsupported))
                    .collect::<Parsed<_>>()?,
                None => temp.into_iter().take(active).collect(),
            };
            out.extend(
                self.held
                    .iter()
                    .filter(|h| entries.contains(&h.poc))
                    .map(|h| h.id),
            );
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::hevc_syntax::Rps;

    fn slice(kind: SliceKind, active: [u32; 2], entries: [Option<Vec<u32>>; 2]) -> Independent {
        Independent {
            kind,
            poc_lsb: 8,
            rps: Rps {
                negative: vec![(-4, true), (-8, true), (-6, false)],
                positive: vec![(2, true)],
            },
            num_ref_idx_active: active,
            list_entries: entries,
        }
    }

    /// Held pictures 1-4 at counts 4, 0, 2 and 10, seen from count 8.
    fn dpb() -> Dpb {
        Dpb {
            held: [(1, 4), (2, 0), (3, 2), (4, 10)]
                .map(|(id, poc)| Held { id, poc })
                .to_vec(),
            prev_tid0_poc: 4,
            max_ra: i64::MIN,
        }
    }

    /// Only active list entries count: a used picture past
    /// `num_ref_idx_active` is not referred to, an unused one never is,
    /// and short lists repeat the sets (§8.3.4).
    #[test]
    fn slices_refer_to_their_active_list_entries() {
        let dpb = dpb();
        let p1 = slice(SliceKind::P, [1, 0], [None, None]);
        assert_eq!(dpb.referenced(&p1, 8).unwrap(), vec![1]);
        let p2 = slice(SliceKind::P, [2, 0], [None, None]);
        assert_eq!(dpb.referenced(&p2, 8).unwrap(), vec![1, 2]);
        // L1 starts after the current picture: count 10.
        let b = slice(SliceKind::B, [1, 1], [None, None]);
        assert_eq!(dpb.referenced(&b, 8).unwrap(), vec![1, 4]);
        // Modified: L0 = [temp[2]] = count 10; the cycle fills 5 entries.
        let modified = slice(SliceKind::P, [1, 0], [Some(vec![2]), None]);
        assert_eq!(dpb.referenced(&modified, 8).unwrap(), vec![4]);
        let long = slice(SliceKind::P, [5, 0], [None, None]);
        assert_eq!(dpb.referenced(&long, 8).unwrap(), vec![1, 2, 4]);
    }

    /// A set keeps the pictures it names, used or not; the rest go.
    #[test]
    fn the_reference_picture_set_releases_what_it_leaves_out() {
        let mut dpb = dpb();
        let picture = slice(SliceKind::P, [1, 0], [None, None]);
        // Counts 4, 0, 2 and 10 are all named.
        assert!(dpb.apply_rps(1, 8, &picture).is_empty());
        // From count 12: 8, 4, 6 and 14 are named; 4 is held.
        assert_eq!(dpb.apply_rps(1, 12, &picture), vec![2, 3, 4]);
        assert_eq!(dpb.apply_rps(IDR_N_LP, 0, &picture), vec![1]);
    }

    /// Packets of arbitrary units are followed or refused, never a panic;
    /// a run refuses to start at anything but an IDR or CRA picture.
    #[test]
    fn arbitrary_packets_do_not_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // The parameter sets and slices of `fixtures/hevc.mp4` (IDR, P, B,
        // b), whole or with a byte changed, and random units.
        let hex = |text: &str| -> Vec<u8> {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
                .collect()
        };
        let sps = hex(
            "42010101600000030090000003000003003ca00a080f16595964932bc05a020000030002000003003210",
        );
        let pps = hex("4401c172b42240");
        let mut tracker = HevcTracker::new([sps.as_slice(), pps.as_slice()].into_iter());
        let slices = [
            "2801af0b60b8fc4d3f0cea413ce757d8",
            "0201d02149e10c205bfe56021f033616",
            "0201e04495782069ea3959e943c434aa",
            "0001e024fd7e890398e91bde5797c76b",
        ]
        .map(hex);
        // In order, they parse: P 4 refers to the IDR picture, B 2 (a
        // reference) to both, b 1 to what its one L0 and two L1 entries
        // name (counts 0, 2 and 4).
        let seen: Vec<Observed> = (0..4)
            .map(|id| {
                tracker
                    .observe(&[slices[id as usize].as_slice()], id)
                    .unwrap()
            })
            .collect();
        assert_eq!(seen[1].refers_to, vec![0]);
        assert_eq!(
            (seen[2].refers_to.as_slice(), seen[2].cuttable),
            (&[0, 1][..], true)
        );
        assert_eq!((seen[3].refers_to.len(), seen[3].cuttable), (3, false));
        tracker.restart();
        for id in 0..5000 {
            let units: Vec<Vec<u8>> = (0..1 + next() % 3)
                .map(|_| {
                    let mut unit = match next() % 3 {
                        0 => (0..next() % 24).map(|_| next() as u8).collect(),
                        _ => slices[(next() % 4) as usize].clone(),
                    };
                    if next() % 2 == 0 && unit.len() > 2 {
                        let at = 2 + (next() as usize) % (unit.len() - 2);
                        unit[at] = next() as u8;
                    }
                    if let Some(b1) = unit.get_mut(1) {
                        *b1 = 1;
                    }
                    unit
                })
                .collect();
            let refs: Vec<&[u8]> = units.iter().map(Vec::as_slice).collect();
            if tracker.observe(&refs, id).is_err() {
                tracker.restart();
            }
        }
        assert!(Dpb::start(1, 0).is_err());
        assert_eq!(Dpb::start(CRA, 40).unwrap().max_ra, 40);
    }

    /// Counts wrap as §8.3.1 says, from the last sub-layer 0 picture.
    #[test]
    fn picture_order_counts_wrap_around_the_lsb() {
        let mut dpb = dpb();
        dpb.prev_tid0_poc = 250;
        assert_eq!(dpb.poc(1, 2, 256), 258);
        dpb.prev_tid0_poc = 258;
        assert_eq!(dpb.poc(0, 254, 256), 254);
        assert_eq!(dpb.poc(IDR_W_RADL, 0, 256), 0);
    }
}
