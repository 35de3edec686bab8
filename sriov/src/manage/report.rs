//! What the work did, one line per change, warning and error:
//! [`VfOutcome`] per VF, [`PfReport`] per PF.

use serde::{Deserialize, Serialize};

use crate::netlink::VfState;
use crate::vfio::VfioProof;

/// What configuring (or releasing) one VF did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfOutcome {
    /// The PF.
    pub pf: String,
    /// VF index.
    pub index: u16,
    /// Settings applied, with the value they replaced ("vlan 100 (was
    /// vlan 0)"): at start this is the drift that was corrected.
    pub changed: Vec<String>,
    /// Settings the driver does not support (EOPNOTSUPP): warnings.
    pub unsupported: Vec<String>,
    /// Settings the driver refused with another error.
    pub refused: Vec<String>,
    /// Settings that read back differently after they were applied.
    pub mismatches: Vec<String>,
    /// Driver changes ("igbvf -> vfio-pci").
    pub driver: Vec<String>,
    /// The VFIO proof, when the VF was handed to vfio-pci.
    pub vfio: Option<VfioProof>,
    /// Failures that stopped part of the work (binding, group viability).
    pub errors: Vec<String>,
    /// The settings as read back at the end.
    pub state: Option<VfState>,
}

impl VfOutcome {
    pub(super) fn new(pf: &str, index: u16) -> VfOutcome {
        VfOutcome {
            pf: pf.to_string(),
            index,
            ..VfOutcome::default()
        }
    }

    fn prefix(&self, s: &str) -> String {
        format!("{} VF {}: {s}", self.pf, self.index)
    }

    /// Changes, one line each ("enp1s0f0 VF 1: vlan 100 (was vlan 0)").
    pub fn change_lines(&self) -> Vec<String> {
        self.changed
            .iter()
            .chain(&self.driver)
            .map(|s| self.prefix(s))
            .collect()
    }

    /// Warnings: unsupported attributes and read-back mismatches.
    pub fn warning_lines(&self) -> Vec<String> {
        self.unsupported
            .iter()
            .chain(&self.mismatches)
            .map(|s| self.prefix(s))
            .collect()
    }

    /// Errors: refused attributes and failed hand-offs.
    pub fn error_lines(&self) -> Vec<String> {
        self.refused
            .iter()
            .chain(&self.errors)
            .map(|s| self.prefix(s))
            .collect()
    }
}

/// What reconciling one PF did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PfReport {
    /// The PF.
    pub pf: String,
    /// The VF count change (old, new), if any.
    pub num_vfs: Option<(u16, u16)>,
    /// Per-VF outcomes.
    pub vfs: Vec<VfOutcome>,
    /// Failures of the PF as a whole (unknown PF, too many VFs, ...).
    pub errors: Vec<String>,
}

impl PfReport {
    /// Changes, one line each.
    pub fn change_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .num_vfs
            .map(|(o, n)| format!("{}: VFs {o} -> {n}", self.pf))
            .into_iter()
            .collect();
        out.extend(self.vfs.iter().flat_map(VfOutcome::change_lines));
        out
    }

    /// Warnings, one line each.
    pub fn warning_lines(&self) -> Vec<String> {
        self.vfs.iter().flat_map(VfOutcome::warning_lines).collect()
    }

    /// Errors, one line each.
    pub fn error_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self.errors.clone();
        out.extend(self.vfs.iter().flat_map(VfOutcome::error_lines));
        out
    }
}
