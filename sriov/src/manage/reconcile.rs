//! The whole-PF reconcile: the VF count, each configured VF's settings,
//! then its driver; every problem is a line in the report.

use crate::netlink::{VfLink, VfState};
use crate::vfio::Vfio;
use crate::{Error, VFIO_PCI};

use super::{PfReport, PfSpec, Sriov, VfOutcome, VfSpec};

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// Brings a PF to `spec`: the VF count, then each configured VF's
    /// settings (only what differs), then its driver (vfio-pci with the
    /// VFIO proof, or the host driver). Never fails as a whole: every
    /// problem is a line in the report.
    pub fn apply_pf(&mut self, spec: &PfSpec) -> PfReport {
        let mut report = PfReport {
            pf: spec.pf.clone(),
            ..PfReport::default()
        };
        match self.set_num_vfs(&spec.pf, spec.num_vfs) {
            Ok(change) => report.num_vfs = change,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        }
        for vf_spec in &spec.vfs {
            let mut out = match self.configure(&spec.pf, vf_spec) {
                Ok(o) => o,
                Err(e) => {
                    let mut o = VfOutcome::new(&spec.pf, vf_spec.index);
                    o.errors.push(e.to_string());
                    o
                }
            };
            if let Err(e) = self.place(&spec.pf, vf_spec, &mut out) {
                out.errors.push(e.to_string());
            }
            report.vfs.push(out);
        }
        report
    }

    /// What [`Sriov::apply_pf`] would change on `spec`, read-only (for a
    /// dry run): the VF count, each configured VF's settings that the
    /// driver reports differently (against the kernel's defaults when the
    /// count changes: the VFs are created again), and its driver. The
    /// lines are apply's; a PF that cannot be read is an error. Settings
    /// the driver does not support show up here every time (apply
    /// reports them as warnings).
    pub fn plan_pf(&mut self, spec: &PfSpec) -> PfReport {
        let mut report = PfReport {
            pf: spec.pf.clone(),
            ..PfReport::default()
        };
        let info = match self.pf(&spec.pf) {
            Ok(i) => i,
            Err(e) => {
                report.errors.push(e.to_string());
                return report;
            }
        };
        let recreated = info.num_vfs != spec.num_vfs;
        let states = if recreated {
            report.num_vfs = Some((info.num_vfs, spec.num_vfs));
            Vec::new()
        } else {
            match self.read_vfs(&spec.pf) {
                Ok(s) => s,
                Err(e) => {
                    report.errors.push(e.to_string());
                    return report;
                }
            }
        };
        for vf in &spec.vfs {
            let mut out = VfOutcome::new(&spec.pf, vf.index);
            let now = states
                .iter()
                .find(|s| s.index == u32::from(vf.index))
                .cloned()
                .unwrap_or_else(|| VfState::unset(u32::from(vf.index)));
            for s in vf.settings() {
                if !now.shows(&s) {
                    out.changed.push(format!("{s} (was {})", now.current(&s)));
                }
            }
            // A count change creates VFs on the host driver.
            let driver = if recreated {
                None
            } else {
                info.vfs
                    .iter()
                    .find(|v| v.index == vf.index)
                    .and_then(|v| v.driver.clone())
            };
            let on_vfio = driver.as_deref() == Some(VFIO_PCI);
            if vf.vfio && !on_vfio {
                out.driver.push(format!(
                    "{} -> {VFIO_PCI}",
                    driver.as_deref().unwrap_or("host driver")
                ));
            } else if !vf.vfio && on_vfio {
                out.driver.push(format!("{VFIO_PCI} -> host driver"));
            }
            if !out.changed.is_empty() || !out.driver.is_empty() {
                report.vfs.push(out);
            }
        }
        report
    }

    /// Puts the VF on the driver its spec asks for.
    fn place(&mut self, pf: &str, spec: &VfSpec, out: &mut VfOutcome) -> Result<(), Error> {
        let vf = self.vf(pf, spec.index)?;
        let on_vfio = vf.driver.as_deref() == Some(VFIO_PCI);
        if spec.vfio {
            if let Some(h) = self.holder_of(&vf) {
                // A VMM has it: it is as handed over as it gets.
                tracing::debug!("sriov {}: in use by {h}", vf.name());
                return Ok(());
            }
            if on_vfio {
                // Handed over earlier (and proven then): do not open the
                // group again under a VMM that may be starting.
                self.check_group(&vf)?;
                return Ok(());
            }
            let (change, proof) = self.bind_vfio(&vf)?;
            out.driver.extend(change);
            out.vfio = Some(proof);
        } else if on_vfio {
            out.driver.extend(self.bind_host(&vf)?);
        }
        Ok(())
    }
}
