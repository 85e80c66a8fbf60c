//! The parts of H.264 syntax that say which pictures a picture refers to:
//! sequence and picture parameter sets, and slice headers up to and
//! including the reference marking (ITU-T H.264 §7.3.2.1, §7.3.2.2, §7.3.3).
//!
//! Only what decides reference lists and reference marking is kept; the
//! rest is read past. Anything this does not model (field pictures, slice
//! groups, separate colour planes, multi-view units) is reported as
//! [`Unsupported`] rather than guessed at.

pub(crate) use super::bits::Unsupported;
use super::bits::{Bits, Parsed};
use super::param_sets::{self, NamesSps};

/// What a sequence parameter set says about references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sps {
    /// `chroma_format_idc` (1 when absent).
    pub chroma_format_idc: u32,
    /// `log2_max_frame_num_minus4 + 4`.
    pub log2_max_frame_num: u32,
    /// `pic_order_cnt_type`.
    pub poc_type: u32,
    /// `log2_max_pic_order_cnt_lsb_minus4 + 4` (type 0).
    pub log2_max_poc_lsb: u32,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// `frame_mbs_only_flag`.
    pub frame_mbs_only: bool,
}

fn skip_scaling_list(r: &mut Bits<'_>, size: u32) -> Parsed<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses a sequence parameter set (the unit without its header byte);
/// returns its id and content.
pub(crate) fn parse_sps(payload: &[u8]) -> Parsed<(u32, Sps)> {
    let mut r = Bits::new(payload);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    let id = r.ue_max(31)?;
    let mut chroma_format_idc = 1;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue_max(3)?;
        if chroma_format_idc == 3 && r.flag()? {
            // separate_colour_plane_flag: colour_plane_id in slice headers.
            return Err(Unsupported);
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let log2_max_frame_num = r.ue_max(12)? + 4;
    let poc_type = r.ue_max(2)?;
    let mut log2_max_poc_lsb = 0;
    match poc_type {
        0 => log2_max_poc_lsb = r.ue_max(12)? + 4,
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255)?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    let max_num_ref_frames = r.ue_max(16)?;
    // gaps_in_frame_num_value_allowed_flag: any gap turns the plan off.
    r.flag()?;
    r.ue()?; // pic_width_in_mbs_minus1
    r.ue()?; // pic_height_in_map_units_minus1
    let frame_mbs_only = r.flag()?;
    Ok((
        id,
        Sps {
            chroma_format_idc,
            log2_max_frame_num,
            poc_type,
            log2_max_poc_lsb,
            max_num_ref_frames,
            frame_mbs_only,
        },
    ))
}

/// What a picture parameter set says about slice headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pps {
    /// The sequence parameter set it refers to.
    pub sps_id: u32,
    /// `bottom_field_pic_order_in_frame_present_flag`.
    pub bottom_field_pic_order_present: bool,
    /// `num_ref_idx_l0/l1_default_active_minus1 + 1`.
    pub num_ref_idx_default: [u32; 2],
    /// `weighted_pred_flag`.
    pub weighted_pred: bool,
    /// `weighted_bipred_idc`.
    pub weighted_bipred_idc: u32,
    /// `redundant_pic_cnt_present_flag`.
    pub redundant_pic_cnt_present: bool,
}

/// Parses a picture parameter set; returns its id and content.
pub(crate) fn parse_pps(payload: &[u8]) -> Parsed<(u32, Pps)> {
    let mut r = Bits::new(payload);
    let id = r.ue_max(255)?;
    let sps_id = r.ue_max(31)?;
    r.flag()?; // entropy_coding_mode_flag
    let bottom_field_pic_order_present = r.flag()?;
    if r.ue()? != 0 {
        // num_slice_groups_minus1: slice group maps are not modelled.
        return Err(Unsupported);
    }
    let l0 = r.ue_max(31)? + 1;
    let l1 = r.ue_max(31)? + 1;
    let weighted_pred = r.flag()?;
    let weighted_bipred_idc = r.bits(2)?;
    r.se()?; // pic_init_qp_minus26
    r.se()?; // pic_init_qs_minus26
    r.se()?; // chroma_qp_index_offset
    r.flag()?; // deblocking_filter_control_present_flag
    r.flag()?; // constrained_intra_pred_flag
    let redundant_pic_cnt_present = r.flag()?;
    Ok((
        id,
        Pps {
            sps_id,
            bottom_field_pic_order_present,
            num_ref_idx_default: [l0, l1],
            weighted_pred,
            weighted_bipred_idc,
            redundant_pic_cnt_present,
        },
    ))
}

/// The parameter sets seen so far.
pub(crate) type ParamSets = param_sets::ParamSets<Sps, Pps>;

impl NamesSps for Pps {
    fn sps_id(&self) -> u32 {
        self.sps_id
    }
}

impl ParamSets {
    /// Takes in a parameter set unit (`nal_unit_type` 7 or 8; the unit
    /// without its header byte).
    pub(crate) fn add(&mut self, nal_type: u8, payload: &[u8]) -> Parsed<()> {
        match nal_type {
            7 => self.insert_sps(parse_sps(payload)?),
            8 => self.insert_pps(parse_pps(payload)?),
            _ => return Err(Unsupported),
        }
        Ok(())
    }
}

/// The kind of a slice (`slice_type % 5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceKind {
    /// P or SP: one reference list.
    P,
    /// B: two reference lists.
    B,
    /// I or SI: no references.
    I,
}

/// One `modification_of_pic_nums_idc` command of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modification {
    /// idc 0: `abs_diff_pic_num_minus1 + 1` below the prediction.
    Minus(u32),
    /// idc 1: `abs_diff_pic_num_minus1 + 1` above the prediction.
    Plus(u32),
}

/// A slice header, as far as references go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SliceHeader {
    /// `nal_ref_idc != 0`.
    pub reference: bool,
    /// An IDR picture (`nal_unit_type` 5).
    pub idr: bool,
    /// The slice kind.
    pub kind: SliceKind,
    /// `pic_parameter_set_id`.
    pub pps_id: u32,
    /// `frame_num`.
    pub frame_num: u32,
    /// `pic_order_cnt_lsb` (type 0).
    pub poc_lsb: u32,
    /// `delta_pic_order_cnt_bottom` (type 0).
    pub delta_poc_bottom: i32,
    /// Active entries of list 0 and list 1.
    pub num_ref_idx_active: [u32; 2],
    /// The list modification commands of list 0 and list 1.
    pub modifications: [Vec<Modification>; 2],
    /// `memory_management_control_operation` 1 commands
    /// (`difference_of_pic_nums_minus1`), when the marking is adaptive.
    pub adaptive_marking: Option<Vec<u32>>,
    /// Bytes of the escaped unit (header byte included) up to the end of
    /// the header.
    pub header_bytes: usize,
}

/// Parses the header of a slice unit (`nal_unit_type` 1 or 5; `unit`
/// includes the header byte).
pub(crate) fn parse_slice_header(unit: &[u8], params: &ParamSets) -> Parsed<SliceHeader> {
    let (&nal_header, payload) = unit.split_first().ok_or(Unsupported)?;
    let nal_type = nal_header & 0x1f;
    let reference = (nal_header >> 5) & 3 != 0;
    let idr = nal_type == 5;
    if nal_type != 1 && nal_type != 5 {
        return Err(Unsupported);
    }
    let mut r = Bits::new(payload);
    r.ue()?; // first_mb_in_slice
    let kind = match r.ue_max(9)? % 5 {
        0 | 3 => SliceKind::P,
        1 => SliceKind::B,
        _ => SliceKind::I,
    };
    let pps_id = r.ue_max(255)?;
    let (sps, pps) = params.get(pps_id)?;
    let frame_num = r.bits(sps.log2_max_frame_num)?;
    if !sps.frame_mbs_only && r.flag()? {
        // field_pic_flag: field pictures are not modelled.
        return Err(Unsupported);
    }
    if idr {
        r.ue()?; // idr_pic_id
    }
    let (mut poc_lsb, mut delta_poc_bottom) = (0, 0);
    match sps.poc_type {
        0 => {
            poc_lsb = r.bits(sps.log2_max_poc_lsb)?;
            if pps.bottom_field_pic_order_present {
                delta_poc_bottom = r.se()?;
            }
        }
        // Type 1 orders pictures by offsets not modelled here.
        1 => return Err(Unsupported),
        _ => {}
    }
    if pps.redundant_pic_cnt_present && r.ue()? != 0 {
        // A redundant picture: decoders ignore it; so is it modelled.
        return Err(Unsupported);
    }
    if kind == SliceKind::B {
        r.flag()?; // direct_spatial_mv_pred_flag
    }
    let mut num_ref_idx_active = [0, 0];
    if kind != SliceKind::I {
        num_ref_idx_active = pps.num_ref_idx_default;
        if r.flag()? {
            num_ref_idx_active[0] = r.ue_max(31)? + 1;
            if kind == SliceKind::B {
                num_ref_idx_active[1] = r.ue_max(31)? + 1;
            }
        }
        if kind == SliceKind::P {
            num_ref_idx_active[1] = 0;
        }
    }
    let mut modifications = [Vec::new(), Vec::new()];
    let lists = match kind {
        SliceKind::I => 0,
        SliceKind::P => 1,
        SliceKind::B => 2,
    };
    for list in modifications.iter_mut().take(lists) {
        if r.flag()? {
            loop {
                match r.ue()? {
                    0 => list.push(Modification::Minus(r.ue()?)),
                    1 => list.push(Modification::Plus(r.ue()?)),
                    3 => break,
                    // Long-term references are not modelled.
                    _ => return Err(Unsupported),
                }
                if list.len() > 32 {
                    return Err(Unsupported);
                }
            }
        }
    }
    let weighted = match kind {
        SliceKind::P => pps.weighted_pred,
        SliceKind::B => pps.weighted_bipred_idc == 1,
        SliceKind::I => false,
    };
    if weighted {
        r.ue()?; // luma_log2_weight_denom
        let chroma = sps.chroma_format_idc != 0;
        if chroma {
            r.ue()?; // chroma_log2_weight_denom
        }
        for &active in num_ref_idx_active.iter().take(lists) {
            for _ in 0..active {
                if r.flag()? {
                    r.se()?;
                    r.se()?;
                }
                if chroma && r.flag()? {
                    for _ in 0..4 {
                        r.se()?;
                    }
                }
            }
        }
    }
    let mut adaptive_marking = None;
    if reference {
        if idr {
            r.flag()?; // no_output_of_prior_pics_flag
            if r.flag()? {
                // long_term_reference_flag
                return Err(Unsupported);
            }
        } else if r.flag()? {
            let mut ops = Vec::new();
            loop {
                match r.ue()? {
                    0 => break,
                    1 => ops.push(r.ue()?),
                    // Long-term marking and resets are not modelled.
                    _ => return Err(Unsupported),
                }
                if ops.len() > 64 {
                    return Err(Unsupported);
                }
            }
            adaptive_marking = Some(ops);
        }
    }
    Ok(SliceHeader {
        reference,
        idr,
        kind,
        pps_id,
        frame_num,
        poc_lsb,
        delta_poc_bottom,
        num_ref_idx_active,
        modifications,
        adaptive_marking,
        header_bytes: 1 + r.consumed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::bits::hex;

    /// The parameter sets and the first slice headers of
    /// `fixtures/h264_bframes.mp4` (x264, veryfast, 3 B-frames with
    /// pyramid), with the values FFmpeg's `trace_headers` prints for them.
    #[test]
    fn fixture_headers_parse_as_ffmpeg_reads_them() {
        let mut params = ParamSets::default();
        let sps = hex("6764000dacd94141fb011000000300100000030320f1429960");
        let pps = hex("68ef8472c0");
        params.add(7, &sps[1..]).unwrap();
        params.add(8, &pps[1..]).unwrap();
        let (_, parsed) = parse_sps(&sps[1..]).unwrap();
        assert_eq!(
            (
                parsed.log2_max_frame_num,
                parsed.poc_type,
                parsed.log2_max_poc_lsb
            ),
            (4, 0, 6)
        );
        assert_eq!(parsed.max_num_ref_frames, 4);
        let (_, pps) = parse_pps(&pps[1..]).unwrap();
        assert_eq!(pps.num_ref_idx_default, [1, 1]);
        assert!(pps.weighted_pred);
        let idr =
            hex("6588840037ffb1c06b3ef9e035c3cdfdf37fc6aad587755c008b9d7c8d61704c42c0537e5b2ae659");
        let p =
            hex("419a241886fff8c87db4b743e0005c467d01a568da7552b60a2fd34ebaf934a85efa19767bcf5632");
        let b =
            hex("419e424217ff80b229a973c0084d26a48d22ce571ab00271fa2b5684601fd6b70370356fd8e31104");
        let idr = parse_slice_header(&idr, &params).unwrap();
        assert_eq!(
            (idr.idr, idr.kind, idr.frame_num, idr.poc_lsb),
            (true, SliceKind::I, 0, 0)
        );
        let p = parse_slice_header(&p, &params).unwrap();
        assert_eq!(
            (p.kind, p.frame_num, p.poc_lsb, p.reference),
            (SliceKind::P, 1, 8, true)
        );
        assert_eq!(p.num_ref_idx_active, [1, 0]);
        let b = parse_slice_header(&b, &params).unwrap();
        assert_eq!(
            (b.kind, b.frame_num, b.poc_lsb, b.reference),
            (SliceKind::B, 2, 4, true)
        );
        assert_eq!(b.num_ref_idx_active, [1, 1]);
        assert!(b.header_bytes > 3 && b.header_bytes < 40);
        // A slice naming a picture parameter set never seen is refused.
        assert_eq!(
            parse_slice_header(&hex("419a2418"), &ParamSets::default()),
            Err(Unsupported)
        );
    }
}
