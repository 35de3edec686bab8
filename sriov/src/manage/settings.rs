//! VF settings over rtnetlink with read-back: only what differs is
//! applied, unsupported attributes are warnings, values that read back
//! differently are mismatches.

use std::io;

use crate::Error;
use crate::netlink::{LinkState, VfLink, VfSetting, VfState};
use crate::vfio::Vfio;

use super::{Sriov, VfOutcome, VfSpec};

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// Every VF's settings as the PF's driver reports them.
    pub fn read_vfs(&mut self, pf: &str) -> Result<Vec<VfState>, Error> {
        self.link.vf_states(pf).map_err(|source| Error::Netlink {
            pf: pf.to_string(),
            op: "read VF settings",
            source,
        })
    }

    pub(super) fn read_vf(&mut self, pf: &str, index: u16) -> Result<Option<VfState>, Error> {
        Ok(self
            .read_vfs(pf)?
            .into_iter()
            .find(|s| s.index == u32::from(index)))
    }

    /// Applies `settings` to VF `index` of `pf` (all of them if `force`,
    /// else only those the driver reports differently), then reads them
    /// back. Per-attribute refusals are in the outcome, not errors.
    pub fn apply_settings(
        &mut self,
        pf: &str,
        index: u16,
        settings: &[VfSetting],
        force: bool,
    ) -> Result<VfOutcome, Error> {
        let mut out = VfOutcome::new(pf, index);
        let before = self.read_vf(pf, index)?;
        let mut applied = Vec::new();
        for s in settings {
            let was = before.as_ref().map(|b| (b.shows(s), b.current(s)));
            if !force && was.as_ref().is_some_and(|(shown, _)| *shown) {
                continue;
            }
            // Link state "auto" is the default; do not ask a driver that
            // cannot set link state to set the value it already has.
            if force
                && matches!(s, VfSetting::LinkState(LinkState::Auto))
                && was.as_ref().is_some_and(|(shown, _)| *shown)
            {
                continue;
            }
            match self.link.set_vf(pf, u32::from(index), s) {
                Ok(()) => {
                    applied.push(*s);
                    // A forced write of what the driver already reported
                    // is not a change.
                    match &was {
                        Some((false, old)) => out.changed.push(format!("{s} (was {old})")),
                        Some((true, _)) => {}
                        None => out.changed.push(s.to_string()),
                    }
                }
                Err(e)
                    if is_unsupported(&e)
                        && matches!(s, VfSetting::Vlan { id, .. } if *id != 0) =>
                {
                    // Not a mere warning: the VF is not isolated.
                    tracing::error!("sriov {pf} VF {index}: {s}: not supported by the driver");
                    out.refused.push(format!(
                        "{s}: not supported by the driver ({e}); the VF is not in that VLAN"
                    ));
                }
                Err(e) if is_unsupported(&e) => {
                    tracing::warn!("sriov {pf} VF {index}: {s}: not supported by the driver");
                    out.unsupported
                        .push(format!("{s}: not supported by the driver ({e})"));
                }
                Err(e) => {
                    tracing::warn!("sriov {pf} VF {index}: {s}: refused: {e}");
                    out.refused
                        .push(format!("{s}: refused by the driver ({e})"));
                }
            }
        }
        let after = self.read_vf(pf, index)?;
        match &after {
            Some(after) => {
                for s in &applied {
                    if !after.shows(s) {
                        out.mismatches
                            .push(format!("{s}: reads back as {}", after.current(s)));
                    }
                }
            }
            None if !applied.is_empty() => out
                .mismatches
                .push(format!("cannot read back: {pf} reports no VF {index}")),
            None => {}
        }
        out.state = after;
        Ok(out)
    }

    /// Applies a VF's spec (only what differs from what the driver
    /// reports: at start this is the drift, reported and corrected).
    pub fn configure(&mut self, pf: &str, spec: &VfSpec) -> Result<VfOutcome, Error> {
        self.apply_settings(pf, spec.index, &spec.settings(), false)
    }
}

/// EOPNOTSUPP (the driver has no such callback) and EPROTONOSUPPORT (an
/// 802.1ad VLAN on a driver that only tags 802.1Q).
fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT)
    )
}
