//! The parts of HEVC syntax that say which pictures a picture refers to:
//! sequence and picture parameter sets, short-term reference picture sets
//! and slice segment headers (ITU-T H.265 §7.3.2.2, §7.3.2.3, §7.3.6,
//! §7.3.7), with the reference picture sets derived as §7.4.8 says.
//!
//! Only what decides reference picture sets and lists, and where a slice
//! segment header ends, is kept; the rest is read past. Anything this does
//! not model (long-term references in a slice, separate colour planes,
//! multi-layer and screen content extensions) is reported as
//! [`Unsupported`] rather than guessed at.

use super::bits::{Bits, Parsed, Unsupported};
use super::param_sets::{self, NamesSps};

/// A short-term reference picture set: picture order count differences
/// from the current picture, each with `used_by_curr_pic` (§7.4.8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rps {
    /// Pictures before the current one, nearest first (`DeltaPocS0`).
    pub negative: Vec<(i32, bool)>,
    /// Pictures after the current one, nearest first (`DeltaPocS1`).
    pub positive: Vec<(i32, bool)>,
}

impl Rps {
    /// `NumDeltaPocs`.
    fn len(&self) -> usize {
        self.negative.len() + self.positive.len()
    }

    /// `NumPicTotalCurr` without long-term pictures.
    pub(crate) fn used_count(&self) -> usize {
        self.negative
            .iter()
            .chain(&self.positive)
            .filter(|(_, used)| *used)
            .count()
    }
}

/// What a sequence parameter set says about slice headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sps {
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u32,
    /// `ChromaArrayType` (0 for monochrome).
    pub chroma_array_type: u32,
    /// `log2_max_pic_order_cnt_lsb_minus4 + 4`.
    pub log2_max_poc_lsb: u32,
    /// `PicSizeInCtbsY`.
    pub pic_size_in_ctbs: u32,
    /// `sample_adaptive_offset_enabled_flag`.
    pub sao: bool,
    /// The reference picture sets of the SPS, by index.
    pub rps: Vec<Rps>,
    /// `long_term_ref_pics_present_flag`.
    pub long_term_present: bool,
    /// `num_long_term_ref_pics_sps`.
    pub num_long_term_sps: u32,
    /// `sps_temporal_mvp_enabled_flag`.
    pub temporal_mvp: bool,
}

/// Skips `profile_tier_level(1, max_sub_layers_minus1)` (§7.3.3).
fn skip_profile_tier_level(r: &mut Bits<'_>, max_sub_layers_minus1: u32) -> Parsed<()> {
    // Profile space, tier, profile, compatibility flags, source flags,
    // reserved bits, then the level.
    r.skip(2 + 1 + 5 + 32 + 4 + 43 + 1 + 8)?;
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.flag()?, r.flag()?));
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for (profile, level) in present {
        if profile {
            r.skip(88)?;
        }
        if level {
            r.skip(8)?;
        }
    }
    Ok(())
}

/// Skips `scaling_list_data()` (§7.3.4).
fn skip_scaling_list_data(r: &mut Bits<'_>) -> Parsed<()> {
    for size_id in 0..4u32 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if !r.flag()? {
                r.ue()?; // scaling_list_pred_matrix_id_delta
                continue;
            }
            let coefficients = 64.min(1 << (4 + (size_id << 1)));
            if size_id > 1 {
                r.se()?; // scaling_list_dc_coef_minus8
            }
            for _ in 0..coefficients {
                r.se()?; // scaling_list_delta_coef
            }
        }
    }
    Ok(())
}

/// Parses `st_ref_pic_set(index)` (§7.3.7) given the sets before it
/// (`earlier`: those of the SPS); `in_slice` says it is the one a slice
/// header carries (index `num_short_term_ref_pic_sets`).
pub(crate) fn parse_rps(r: &mut Bits<'_>, earlier: &[Rps], in_slice: bool) -> Parsed<Rps> {
    let index = earlier.len();
    if index != 0 && r.flag()? {
        let delta_idx = if in_slice {
            r.ue_max(u32::try_from(index - 1).map_err(|_| Unsupported)?)? + 1
        } else {
            1
        };
        let reference = &earlier[index - delta_idx as usize];
        let sign = r.flag()?;
        let abs = i32::try_from(r.ue_max(1 << 15)? + 1).map_err(|_| Unsupported)?;
        let delta_rps = if sign { -abs } else { abs };
        let mut flags = Vec::with_capacity(reference.len() + 1);
        for _ in 0..=reference.len() {
            let used = r.flag()?;
            let use_delta = used || r.flag()?;
            flags.push((used, use_delta));
        }
        return Ok(predicted_rps(reference, delta_rps, &flags));
    }
    let negative_count = r.ue_max(16)?;
    let positive_count = r.ue_max(16)?;
    let mut rps = Rps::default();
    let mut poc = 0i32;
    for _ in 0..negative_count {
        poc -= i32::try_from(r.ue_max(1 << 15)? + 1).map_err(|_| Unsupported)?;
        rps.negative.push((poc, r.flag()?));
    }
    poc = 0;
    for _ in 0..positive_count {
        poc += i32::try_from(r.ue_max(1 << 15)? + 1).map_err(|_| Unsupported)?;
        rps.positive.push((poc, r.flag()?));
    }
    Ok(rps)
}

/// The set predicted from `reference` shifted by `delta_rps`, with
/// `(used_by_curr_pic_flag, use_delta_flag)` for each of its entries
/// (negative ones first) and for the reference picture itself (7-61, 7-62).
fn predicted_rps(reference: &Rps, delta_rps: i32, flags: &[(bool, bool)]) -> Rps {
    let n_neg = reference.negative.len();
    let own = flags[reference.len()];
    let neg = |j: usize| (reference.negative[j].0 + delta_rps, flags[j]);
    let pos = |j: usize| (reference.positive[j].0 + delta_rps, flags[n_neg + j]);
    let mut rps = Rps::default();
    // Pictures before the current one, nearest first.
    let candidates = (0..reference.positive.len())
        .rev()
        .map(pos)
        .chain(std::iter::once((delta_rps, own)))
        .chain((0..n_neg).map(neg));
    for (d, (used, use_delta)) in candidates {
        if d < 0 && use_delta {
            rps.negative.push((d, used));
        }
    }
    // Pictures after it, nearest first.
    let candidates = (0..n_neg)
        .rev()
        .map(neg)
        .chain(std::iter::once((delta_rps, own)))
        .chain((0..reference.positive.len()).map(pos));
    for (d, (used, use_delta)) in candidates {
        if d > 0 && use_delta {
            rps.positive.push((d, used));
        }
    }
    rps
}

/// Parses a sequence parameter set (the unit without its two header
/// bytes); returns its id and content.
pub(crate) fn parse_sps(payload: &[u8]) -> Parsed<(u32, Sps)> {
    let mut r = Bits::new(payload);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    r.flag()?; // sps_temporal_id_nesting_flag
    skip_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    let id = r.ue_max(15)?;
    let chroma_format_idc = r.ue_max(3)?;
    if chroma_format_idc == 3 && r.flag()? {
        // separate_colour_plane_flag: colour_plane_id in slice headers.
        return Err(Unsupported);
    }
    let width = r.ue()?;
    let height = r.ue()?;
    if r.flag()? {
        for _ in 0..4 {
            r.ue()?; // conformance window offsets
        }
    }
    r.ue()?; // bit_depth_luma_minus8
    r.ue()?; // bit_depth_chroma_minus8
    let log2_max_poc_lsb = r.ue_max(12)? + 4;
    let all_sub_layers = r.flag()?;
    let first = if all_sub_layers {
        0
    } else {
        max_sub_layers_minus1
    };
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    let log2_min_cb = r.ue_max(3)? + 3;
    let log2_ctb = log2_min_cb + r.ue_max(3)?;
    r.ue()?; // log2_min_luma_transform_block_size_minus2
    r.ue()?; // log2_diff_max_min_luma_transform_block_size
    r.ue()?; // max_transform_hierarchy_depth_inter
    r.ue()?; // max_transform_hierarchy_depth_intra
    if r.flag()? && r.flag()? {
        skip_scaling_list_data(&mut r)?;
    }
    r.flag()?; // amp_enabled_flag
    let sao = r.flag()?;
    if r.flag()? {
        r.skip(8)?; // PCM sample bit depths
        r.ue()?; // log2_min_pcm_luma_coding_block_size_minus3
        r.ue()?; // log2_diff_max_min_pcm_luma_coding_block_size
        r.flag()?; // pcm_loop_filter_disabled_flag
    }
    let count = r.ue_max(64)?;
    let mut rps = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let set = parse_rps(&mut r, &rps, false)?;
        rps.push(set);
    }
    let long_term_present = r.flag()?;
    let mut num_long_term_sps = 0;
    if long_term_present {
        num_long_term_sps = r.ue_max(32)?;
        for _ in 0..num_long_term_sps {
            r.skip(log2_max_poc_lsb + 1)?; // lt_ref_pic_poc_lsb_sps, used flag
        }
    }
    let temporal_mvp = r.flag()?;
    let ctbs = |luma: u32| luma.div_ceil(1 << log2_ctb);
    Ok((
        id,
        Sps {
            max_sub_layers: max_sub_layers_minus1 + 1,
            chroma_array_type: chroma_format_idc,
            log2_max_poc_lsb,
            pic_size_in_ctbs: ctbs(width).checked_mul(ctbs(height)).ok_or(Unsupported)?,
            sao,
            rps,
            long_term_present,
            num_long_term_sps,
            temporal_mvp,
        },
    ))
}

/// What a picture parameter set says about slice segment headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pps {
    /// The sequence parameter set it refers to.
    pub sps_id: u32,
    /// `dependent_slice_segments_enabled_flag`.
    pub dependent_slices: bool,
    /// `output_flag_present_flag`.
    pub output_flag_present: bool,
    /// `num_extra_slice_header_bits`.
    pub extra_slice_header_bits: u32,
    /// `cabac_init_present_flag`.
    pub cabac_init_present: bool,
    /// `num_ref_idx_l0/l1_default_active_minus1 + 1`.
    pub num_ref_idx_default: [u32; 2],
    /// `pps_slice_chroma_qp_offsets_present_flag`.
    pub chroma_qp_offsets_present: bool,
    /// `weighted_pred_flag`.
    pub weighted_pred: bool,
    /// `weighted_bipred_flag`.
    pub weighted_bipred: bool,
    /// `tiles_enabled_flag || entropy_coding_sync_enabled_flag`: slices
    /// carry entry points.
    pub entry_points: bool,
    /// `pps_loop_filter_across_slices_enabled_flag`.
    pub loop_filter_across_slices: bool,
    /// `deblocking_filter_override_enabled_flag`.
    pub deblocking_override: bool,
    /// `pps_deblocking_filter_disabled_flag`.
    pub deblocking_disabled: bool,
    /// `lists_modification_present_flag`.
    pub lists_modification: bool,
    /// `slice_segment_header_extension_present_flag`.
    pub header_extension: bool,
    /// `chroma_qp_offset_list_enabled_flag` (range extension).
    pub chroma_qp_offset_list: bool,
}

/// Parses a picture parameter set; returns its id and content.
pub(crate) fn parse_pps(payload: &[u8]) -> Parsed<(u32, Pps)> {
    let mut r = Bits::new(payload);
    let id = r.ue_max(63)?;
    let sps_id = r.ue_max(15)?;
    let dependent_slices = r.flag()?;
    let output_flag_present = r.flag()?;
    let extra_slice_header_bits = r.bits(3)?;
    r.flag()?; // sign_data_hiding_enabled_flag
    let cabac_init_present = r.flag()?;
    let l0 = r.ue_max(14)? + 1;
    let l1 = r.ue_max(14)? + 1;
    r.se()?; // init_qp_minus26
    r.flag()?; // constrained_intra_pred_flag
    let transform_skip = r.flag()?;
    if r.flag()? {
        r.ue()?; // diff_cu_qp_delta_depth
    }
    r.se()?; // pps_cb_qp_offset
    r.se()?; // pps_cr_qp_offset
    let chroma_qp_offsets_present = r.flag()?;
    let weighted_pred = r.flag()?;
    let weighted_bipred = r.flag()?;
    r.flag()?; // transquant_bypass_enabled_flag
    let tiles = r.flag()?;
    let wavefronts = r.flag()?;
    if tiles {
        let columns = r.ue()?;
        let rows = r.ue()?;
        if !r.flag()? {
            for _ in 0..u64::from(columns) + u64::from(rows) {
                r.ue()?; // column_width_minus1, row_height_minus1
            }
        }
        r.flag()?; // loop_filter_across_tiles_enabled_flag
    }
    let loop_filter_across_slices = r.flag()?;
    let (mut deblocking_override, mut deblocking_disabled) = (false, false);
    if r.flag()? {
        deblocking_override = r.flag()?;
        deblocking_disabled = r.flag()?;
        if !deblocking_disabled {
            r.se()?; // pps_beta_offset_div2
            r.se()?; // pps_tc_offset_div2
        }
    }
    if r.flag()? {
        skip_scaling_list_data(&mut r)?;
    }
    let lists_modification = r.flag()?;
    r.ue()?; // log2_parallel_merge_level_minus2
    let header_extension = r.flag()?;
    let chroma_qp_offset_list = pps_extensions(&mut r, transform_skip)?;
    Ok((
        id,
        Pps {
            sps_id,
            dependent_slices,
            output_flag_present,
            extra_slice_header_bits,
            cabac_init_present,
            num_ref_idx_default: [l0, l1],
            chroma_qp_offsets_present,
            weighted_pred,
            weighted_bipred,
            entry_points: tiles || wavefronts,
            loop_filter_across_slices,
            deblocking_override,
            deblocking_disabled,
            lists_modification,
            header_extension,
            chroma_qp_offset_list,
        },
    ))
}

/// Reads the PPS extension flags and the range extension (§7.3.2.3.2);
/// returns `chroma_qp_offset_list_enabled_flag`. Other extensions change
/// slice headers in ways not modelled.
fn pps_extensions(r: &mut Bits<'_>, transform_skip: bool) -> Parsed<bool> {
    if !r.flag()? {
        return Ok(false);
    }
    let range = r.flag()?;
    if r.bits(7)? != 0 {
        // Multilayer, 3D, screen content or future extensions.
        return Err(Unsupported);
    }
    if !range {
        return Ok(false);
    }
    if transform_skip {
        r.ue()?; // log2_max_transform_skip_block_size_minus2
    }
    r.flag()?; // cross_component_prediction_enabled_flag
    let chroma_qp_offset_list = r.flag()?;
    Ok(chroma_qp_offset_list)
}

/// The parameter sets seen so far.
pub(crate) type ParamSets = param_sets::ParamSets<Sps, Pps>;

impl NamesSps for Pps {
    fn sps_id(&self) -> u32 {
        self.sps_id
    }
}

impl ParamSets {
    /// Takes in a parameter set unit (`nal_unit_type` 33 or 34; the unit
    /// without its two header bytes).
    pub(crate) fn add(&mut self, nal_type: u8, payload: &[u8]) -> Parsed<()> {
        match nal_type {
            33 => self.insert_sps(parse_sps(payload)?),
            34 => self.insert_pps(parse_pps(payload)?),
            _ => return Err(Unsupported),
        }
        Ok(())
    }
}

/// The kind of a slice (`slice_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SliceKind {
    /// B: two reference lists.
    B,
    /// P: one reference list.
    P,
    /// I: no references.
    I,
}

impl SliceKind {
    /// How many reference lists a slice of this kind has.
    pub(crate) fn lists(self) -> usize {
        match self {
            Self::B => 2,
            Self::P => 1,
            Self::I => 0,
        }
    }
}

/// What an independent slice segment header says about references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Independent {
    /// The slice kind.
    pub kind: SliceKind,
    /// `slice_pic_order_cnt_lsb` (0 for IDR pictures).
    pub poc_lsb: u32,
    /// The picture's short-term reference picture set (empty for IDR).
    pub rps: Rps,
    /// `num_ref_idx_l0/l1_active_minus1 + 1` (0 for absent lists).
    pub num_ref_idx_active: [u32; 2],
    /// `list_entry_l0/l1` when the list is modified.
    pub list_entries: [Option<Vec<u32>>; 2],
}

/// A slice segment header, as far as references go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SliceHeader {
    /// `first_slice_segment_in_pic_flag`.
    pub first_in_picture: bool,
    /// `slice_pic_parameter_set_id`.
    pub pps_id: u32,
    /// `None` for a dependent slice segment (it uses the header of the
    /// independent segment before it).
    pub independent: Option<Independent>,
    /// Bytes of the escaped unit (both header bytes included) up to the
    /// end of the header, `byte_alignment()` included.
    pub header_bytes: usize,
}

/// Bits needed for values below `n`: `Ceil(Log2(n))`.
fn ceil_log2(n: u32) -> u32 {
    n.max(1).next_power_of_two().trailing_zeros()
}

/// Parses the header of a slice segment unit (`nal_unit_type` 0 to 21;
/// `unit` includes its two header bytes).
pub(crate) fn parse_slice_header(unit: &[u8], params: &ParamSets) -> Parsed<SliceHeader> {
    let nal_type = unit.first().ok_or(Unsupported)? >> 1 & 0x3f;
    let mut r = Bits::new(unit.get(2..).ok_or(Unsupported)?);
    let first_in_picture = r.flag()?;
    if (16..=23).contains(&nal_type) {
        r.flag()?; // no_output_of_prior_pics_flag
    }
    let pps_id = r.ue_max(63)?;
    let (sps, pps) = params.get(pps_id)?;
    let mut dependent = false;
    if !first_in_picture {
        dependent = pps.dependent_slices && r.flag()?;
        r.skip(ceil_log2(sps.pic_size_in_ctbs))?; // slice_segment_address
    }
    let independent = if dependent {
        None
    } else {
        Some(parse_independent(&mut r, nal_type, sps, pps)?)
    };
    if pps.entry_points {
        let count = r.ue()?;
        if count > 0 {
            let bits = r.ue_max(31)? + 1;
            for _ in 0..count {
                r.skip(bits)?; // entry_point_offset_minus1
            }
        }
    }
    if pps.header_extension {
        let len = r.ue_max(256)?;
        r.skip(8 * len)?;
    }
    r.byte_alignment()?;
    Ok(SliceHeader {
        first_in_picture,
        pps_id,
        independent,
        header_bytes: 2 + r.consumed(),
    })
}

/// The part of a slice segment header only independent segments carry,
/// up to the entry points.
fn parse_independent(r: &mut Bits<'_>, nal_type: u8, sps: &Sps, pps: &Pps) -> Parsed<Independent> {
    r.skip(pps.extra_slice_header_bits)?; // slice_reserved_flag
    let kind = match r.ue_max(2)? {
        0 => SliceKind::B,
        1 => SliceKind::P,
        _ => SliceKind::I,
    };
    if pps.output_flag_present {
        r.flag()?; // pic_output_flag
    }
    let mut poc_lsb = 0;
    let mut rps = Rps::default();
    let mut temporal_mvp = false;
    if nal_type != 19 && nal_type != 20 {
        poc_lsb = r.bits(sps.log2_max_poc_lsb)?;
        rps = slice_rps(r, sps)?;
        if sps.long_term_present {
            let from_sps = if sps.num_long_term_sps > 0 {
                r.ue()?
            } else {
                0
            };
            if from_sps + r.ue()? > 0 {
                // Long-term references are not modelled.
                return Err(Unsupported);
            }
        }
        temporal_mvp = sps.temporal_mvp && r.flag()?;
    }
    let mut sao = false;
    if sps.sao {
        sao = r.flag()?; // slice_sao_luma_flag
        if sps.chroma_array_type != 0 {
            sao |= r.flag()?; // slice_sao_chroma_flag
        }
    }
    let mut num_ref_idx_active = [0, 0];
    let mut list_entries = [None, None];
    if kind != SliceKind::I {
        num_ref_idx_active = pps.num_ref_idx_default;
        if r.flag()? {
            num_ref_idx_active[0] = r.ue_max(14)? + 1;
            if kind == SliceKind::B {
                num_ref_idx_active[1] = r.ue_max(14)? + 1;
            }
        }
        if kind == SliceKind::P {
            num_ref_idx_active[1] = 0;
        }
        let total = u32::try_from(rps.used_count()).map_err(|_| Unsupported)?;
        if pps.lists_modification && total > 1 {
            for (list, active) in list_entries.iter_mut().zip(num_ref_idx_active) {
                if active > 0 && r.flag()? {
                    let entries = (0..active)
                        .map(|_| r.bits(ceil_log2(total)))
                        .collect::<Parsed<Vec<u32>>>()?;
                    *list = Some(entries);
                }
            }
        }
        skip_prediction_fields(r, kind, temporal_mvp, num_ref_idx_active, sps, pps)?;
    }
    skip_filter_fields(r, sao, pps)?;
    Ok(Independent {
        kind,
        poc_lsb,
        rps,
        num_ref_idx_active,
        list_entries,
    })
}

/// Skips what follows the list modifications of a P or B slice up to
/// `five_minus_max_num_merge_cand`, that included.
fn skip_prediction_fields(
    r: &mut Bits<'_>,
    kind: SliceKind,
    temporal_mvp: bool,
    num_ref_idx_active: [u32; 2],
    sps: &Sps,
    pps: &Pps,
) -> Parsed<()> {
    if kind == SliceKind::B {
        r.flag()?; // mvd_l1_zero_flag
    }
    if pps.cabac_init_present {
        r.flag()?; // cabac_init_flag
    }
    if temporal_mvp {
        let from_l0 = kind != SliceKind::B || r.flag()?;
        let active = num_ref_idx_active[usize::from(!from_l0)];
        if active > 1 {
            r.ue()?; // collocated_ref_idx
        }
    }
    let weighted = match kind {
        SliceKind::P => pps.weighted_pred,
        _ => pps.weighted_bipred,
    };
    if weighted {
        skip_pred_weight_table(r, kind, num_ref_idx_active, sps.chroma_array_type != 0)?;
    }
    r.ue()?; // five_minus_max_num_merge_cand
    Ok(())
}

/// Skips `pred_weight_table()` (§7.3.6.3) of a single-layer stream, where
/// no reference picture has the current picture's order count.
fn skip_pred_weight_table(
    r: &mut Bits<'_>,
    kind: SliceKind,
    num_ref_idx_active: [u32; 2],
    chroma: bool,
) -> Parsed<()> {
    r.ue()?; // luma_log2_weight_denom
    if chroma {
        r.se()?; // delta_chroma_log2_weight_denom
    }
    for &active in num_ref_idx_active.iter().take(kind.lists()) {
        let luma = (0..active)
            .map(|_| r.flag())
            .collect::<Parsed<Vec<bool>>>()?;
        let chroma_flags = if chroma {
            (0..active)
                .map(|_| r.flag())
                .collect::<Parsed<Vec<bool>>>()?
        } else {
            vec![false; luma.len()]
        };
        for (l, c) in luma.into_iter().zip(chroma_flags) {
            if l {
                r.se()?; // delta_luma_weight
                r.se()?; // luma_offset
            }
            if c {
                for _ in 0..4 {
                    r.se()?; // delta_chroma_weight, delta_chroma_offset
                }
            }
        }
    }
    Ok(())
}

/// Skips the quantiser and loop filter fields that end an independent
/// slice segment header (before its entry points); `sao` says either
/// SAO flag was set.
fn skip_filter_fields(r: &mut Bits<'_>, sao: bool, pps: &Pps) -> Parsed<()> {
    r.se()?; // slice_qp_delta
    if pps.chroma_qp_offsets_present {
        r.se()?; // slice_cb_qp_offset
        r.se()?; // slice_cr_qp_offset
    }
    if pps.chroma_qp_offset_list {
        r.flag()?; // cu_chroma_qp_offset_enabled_flag
    }
    let overridden = pps.deblocking_override && r.flag()?;
    let mut deblocking_disabled = pps.deblocking_disabled;
    if overridden {
        deblocking_disabled = r.flag()?;
        if !deblocking_disabled {
            r.se()?; // slice_beta_offset_div2
            r.se()?; // slice_tc_offset_div2
        }
    }
    if pps.loop_filter_across_slices && (sao || !deblocking_disabled) {
        r.flag()?; // slice_loop_filter_across_slices_enabled_flag
    }
    Ok(())
}

/// The short-term reference picture set of a slice: its own or one of
/// the SPS's.
fn slice_rps(r: &mut Bits<'_>, sps: &Sps) -> Parsed<Rps> {
    if !r.flag()? {
        return parse_rps(r, &sps.rps, true);
    }
    let count = u32::try_from(sps.rps.len()).map_err(|_| Unsupported)?;
    let index = if count > 1 {
        r.bits(ceil_log2(count))?
    } else {
        0
    };
    sps.rps.get(index as usize).cloned().ok_or(Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::bits::hex;

    /// The parameter sets and the first slice headers of
    /// `fixtures/hevc.mp4` (x265, fast, 3 B-frames), with the values
    /// FFmpeg's `trace_headers` prints for them; a header ends after the
    /// byte holding `alignment_bit_equal_to_one` and its zero bits.
    #[test]
    fn fixture_headers_parse_as_ffmpeg_reads_them() {
        let mut params = ParamSets::default();
        let sps =
            hex("0101600000030090000003000003003ca00a080f16595964932bc05a020000030002000003003210");
        params.add(33, &sps).unwrap();
        params.add(34, &hex("c172b42240")).unwrap();
        let parsed = params.sps_of(0).unwrap();
        assert_eq!(parsed.log2_max_poc_lsb, 8);
        assert_eq!(parsed.pic_size_in_ctbs, 20); // 320x240 in 64-pixel CTBs
        assert!(parsed.sao && parsed.temporal_mvp && parsed.rps.is_empty());
        let rps = |negative: &[i32], positive: &[i32]| Rps {
            negative: negative.iter().map(|&d| (d, true)).collect(),
            positive: positive.iter().map(|&d| (d, true)).collect(),
        };
        // (unit start, kind, POC LSB, set, active entries, header bytes)
        let cases = [
            (
                "2801af0b60b8fc4d3f0cea413ce757d8",
                SliceKind::I,
                0,
                rps(&[], &[]),
                [0, 0],
                5,
            ),
            (
                "0201d02149e10c205bfe56021f033616",
                SliceKind::P,
                4,
                rps(&[-4], &[]),
                [1, 0],
                9,
            ),
            (
                "0201e04495782069ea3959e943c434aa",
                SliceKind::B,
                2,
                rps(&[-2], &[2]),
                [1, 1],
                8,
            ),
            (
                "0001e024fd7e890398e91bde5797c76b",
                SliceKind::B,
                1,
                rps(&[-1], &[1, 3]),
                [1, 2],
                9,
            ),
        ];
        for (unit, kind, poc_lsb, set, active, header_bytes) in cases {
            let header = parse_slice_header(&hex(unit), &params).unwrap();
            assert!(header.first_in_picture, "{unit}");
            assert_eq!(header.header_bytes, header_bytes, "{unit}");
            let independent = header.independent.unwrap();
            assert_eq!(independent.kind, kind, "{unit}");
            assert_eq!(independent.poc_lsb, poc_lsb, "{unit}");
            assert_eq!(independent.rps, set, "{unit}");
            assert_eq!(independent.num_ref_idx_active, active, "{unit}");
        }
    }

    /// Slices after the first carry `slice_segment_address` (5 bits for the
    /// 20 CTBs of 320x240): x265 with `slices=4`, as `trace_headers` reads
    /// it (the IDR picture's slice and a P-picture's).
    #[test]
    fn later_slices_skip_their_address() {
        let mut params = ParamSets::default();
        let sps =
            hex("0101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003210");
        params.add(33, &sps).unwrap();
        params.add(34, &hex("c172b40240")).unwrap();
        for (unit, kind, header_bytes) in [
            ("280125784a", SliceKind::I, 5),
            ("02014a814a5f08630940", SliceKind::P, 10),
        ] {
            let header = parse_slice_header(&hex(unit), &params).unwrap();
            assert!(!header.first_in_picture, "{unit}");
            assert_eq!(header.header_bytes, header_bytes, "{unit}");
            assert_eq!(header.independent.unwrap().kind, kind, "{unit}");
        }
    }

    /// A set predicted from an earlier one (`inter_ref_pic_set_prediction`)
    /// shifts the earlier set's pictures and the earlier current picture by
    /// `deltaRps` and keeps those `use_delta_flag` selects.
    #[test]
    fn predicted_sets_follow_the_derivation() {
        let reference = Rps {
            negative: vec![(-1, true), (-3, false)],
            positive: vec![(2, true)],
        };
        // deltaRps = -1: -2, -4, +1, and the earlier picture itself at -1.
        let all = [(true, true); 4];
        let rps = predicted_rps(&reference, -1, &all);
        assert_eq!(rps.negative, vec![(-1, true), (-2, true), (-4, true)]);
        assert_eq!(rps.positive, vec![(1, true)]);
        // Entries left out, one kept but unused.
        let flags = [(false, true), (false, false), (true, true), (false, false)];
        let rps = predicted_rps(&reference, -1, &flags);
        assert_eq!(rps.negative, vec![(-2, false)]);
        assert_eq!(rps.positive, vec![(1, true)]);
        assert_eq!(rps.used_count(), 1);
    }

    /// Parsed from bits, a predicted set in a slice names the SPS set it
    /// is predicted from (`delta_idx_minus1`).
    #[test]
    fn slice_sets_predicted_from_the_sps_sets() {
        let sps_sets = vec![
            Rps {
                negative: vec![(-1, true)],
                positive: vec![],
            },
            Rps {
                negative: vec![(-2, true)],
                positive: vec![],
            },
        ];
        // inter_ref_pic_set_prediction_flag 1, delta_idx_minus1 ue(1) =
        // 010, delta_rps_sign 1, abs_delta_rps_minus1 ue(0) = 1, then
        // used_by_curr_pic_flag 1 for the entry and for the picture.
        let bits = [0b1010_1111, 0b1000_0000];
        let mut r = Bits::new(&bits);
        let rps = parse_rps(&mut r, &sps_sets, true).unwrap();
        assert_eq!(rps.negative, vec![(-1, true), (-2, true)]);
        assert!(rps.positive.is_empty());
    }

    /// Arbitrary bytes are refused or read, never a panic (a few thousand
    /// deterministic pseudo-random units, and the fixture's units with
    /// bytes changed).
    #[test]
    fn arbitrary_bytes_do_not_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let sps =
            hex("0101600000030090000003000003003ca00a080f16595964932bc05a020000030002000003003210");
        let slice = hex("0201e04495782069ea3959e943c434aa");
        for round in 0..4000 {
            let mut params = ParamSets::default();
            params.add(33, &sps).unwrap();
            params.add(34, &hex("c172b42240")).unwrap();
            let len = (next() % 48) as usize;
            let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut changed = if round % 2 == 0 {
                sps.clone()
            } else {
                slice.clone()
            };
            let at = (next() as usize) % changed.len();
            changed[at] = next() as u8;
            for bytes in [&random, &changed] {
                let _ = parse_sps(bytes);
                let _ = parse_pps(bytes);
                let _ = parse_slice_header(bytes, &params);
                let _ = params.add(33, bytes);
                let _ = parse_slice_header(&changed, &params);
            }
        }
    }

    #[test]
    fn ceil_log2_counts_the_bits_of_an_index() {
        assert_eq!(
            [1, 2, 3, 4, 5, 20, 64].map(ceil_log2),
            [0, 1, 2, 2, 3, 5, 6]
        );
    }
}
