//! The parameter sets of an H.264 or HEVC stream seen so far: sequence
//! parameter sets and picture parameter sets by id, each picture parameter
//! set naming the sequence parameter set it uses.

use std::collections::HashMap;

use super::bits::{Parsed, Unsupported};

/// A picture parameter set: it names its sequence parameter set.
pub(crate) trait NamesSps {
    /// `seq_parameter_set_id` (H.264) or `pps_seq_parameter_set_id` (HEVC).
    fn sps_id(&self) -> u32;
}

/// Sequence (`S`) and picture (`P`) parameter sets by id; a later set with
/// the same id replaces the earlier one, as in the stream.
#[derive(Debug, Clone)]
pub(crate) struct ParamSets<S, P> {
    sps: HashMap<u32, S>,
    pps: HashMap<u32, P>,
}

impl<S, P> Default for ParamSets<S, P> {
    fn default() -> Self {
        Self {
            sps: HashMap::new(),
            pps: HashMap::new(),
        }
    }
}

impl<S, P: NamesSps> ParamSets<S, P> {
    /// Keeps a parsed sequence parameter set under its id.
    pub(crate) fn insert_sps(&mut self, (id, sps): (u32, S)) {
        self.sps.insert(id, sps);
    }

    /// Keeps a parsed picture parameter set under its id.
    pub(crate) fn insert_pps(&mut self, (id, pps): (u32, P)) {
        self.pps.insert(id, pps);
    }

    /// The active sets for a slice naming `pps_id`.
    pub(crate) fn get(&self, pps_id: u32) -> Parsed<(&S, &P)> {
        let pps = self.pps.get(&pps_id).ok_or(Unsupported)?;
        let sps = self.sps.get(&pps.sps_id()).ok_or(Unsupported)?;
        Ok((sps, pps))
    }

    /// The sequence parameter set of `pps_id`.
    pub(crate) fn sps_of(&self, pps_id: u32) -> Parsed<&S> {
        Ok(self.get(pps_id)?.0)
    }
}
