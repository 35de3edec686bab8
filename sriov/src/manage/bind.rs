//! A VF's driver: the hand-off to vfio-pci (IOMMU group viability, the
//! VFIO proof, roll-back on failure) and back to its host driver.

use std::fs;

use crate::netlink::VfLink;
use crate::pci::PciAddr;
use crate::vfio::{Vfio, VfioProof};
use crate::{Error, VFIO_PCI};

use super::{Sriov, VfInfo};

/// Drivers that leave an IOMMU group viable besides vfio-pci itself.
const VIABLE_DRIVERS: &[&str] = &[VFIO_PCI, "pci-stub"];
/// PCI class of a PCI-to-PCI bridge (bridges never block a group).
const CLASS_BRIDGE: u32 = 0x0604;

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// Checks that every other device in the VF's IOMMU group is bound to
    /// vfio-pci (or pci-stub), has no driver, or is a bridge. Returns the
    /// group.
    pub fn check_group(&self, vf: &VfInfo) -> Result<u32, Error> {
        let group = vf.iommu_group.ok_or(Error::NoIommuGroup { pci: vf.pci })?;
        for member in self.sysfs.list(&self.sysfs.iommu_group_devices(group))? {
            let Ok(addr) = member.parse::<PciAddr>() else {
                continue;
            };
            if addr == vf.pci {
                continue;
            }
            let dev = self.sysfs.pci_device(addr);
            let Some(driver) = self.sysfs.link_name(&dev.join("driver"))? else {
                continue;
            };
            if VIABLE_DRIVERS.contains(&driver.as_str()) {
                continue;
            }
            let class = self.sysfs.read_hex(&dev.join("class")).unwrap_or(0);
            if class >> 8 == CLASS_BRIDGE {
                continue;
            }
            return Err(Error::GroupNotViable {
                pci: vf.pci,
                group,
                blocker: addr,
                driver,
            });
        }
        Ok(group)
    }

    /// Hands the VF to vfio-pci: group viability first (naming the
    /// blocking device), then unbind from the host driver,
    /// `driver_override` = vfio-pci, `drivers_probe`, and the VFIO proof
    /// (container, group, device, config space). Returns the driver
    /// change (if any) and the proof.
    pub fn bind_vfio(&mut self, vf: &VfInfo) -> Result<(Option<String>, VfioProof), Error> {
        if fs::symlink_metadata(self.sysfs.pci_driver(VFIO_PCI)).is_err() {
            return Err(Error::VfioPciMissing);
        }
        let group = self.check_group(vf)?;
        let dev = self.sysfs.pci_device(vf.pci);
        let mut change = None;
        if vf.driver.as_deref() != Some(VFIO_PCI) {
            self.sysfs.write(&dev.join("driver_override"), VFIO_PCI)?;
            if let Some(d) = &vf.driver {
                self.sysfs.write(
                    &self.sysfs.pci_driver(d).join("unbind"),
                    &vf.pci.to_string(),
                )?;
            }
            let probed = self
                .sysfs
                .write(&self.sysfs.drivers_probe(), &vf.pci.to_string());
            let now = self.sysfs.link_name(&dev.join("driver"));
            let err = match (probed, now) {
                (Ok(()), Ok(Some(d))) if d == VFIO_PCI => None,
                (Err(e), _) | (Ok(()), Err(e)) => Some(Error::from(e)),
                (Ok(()), Ok(now)) => Some(Error::BindFailed {
                    pci: vf.pci,
                    want: VFIO_PCI.to_string(),
                    got: now.unwrap_or_else(|| "no driver".to_string()),
                }),
            };
            if let Some(err) = err {
                self.roll_back(vf);
                return Err(err);
            }
            change = Some(format!(
                "{} -> {VFIO_PCI}",
                vf.driver.as_deref().unwrap_or("no driver")
            ));
            tracing::info!("sriov {}: {} bound to vfio-pci", vf.name(), vf.pci);
        }
        let proof = self.vfio.prove(&dev, group).map_err(|source| Error::Vfio {
            pci: vf.pci,
            group,
            source,
        })?;
        Ok((change, proof))
    }

    /// After a failed hand-over: clear the override and let the host
    /// driver probe again (best effort; failures are logged).
    fn roll_back(&self, vf: &VfInfo) {
        let dev = self.sysfs.pci_device(vf.pci);
        let r = self
            .sysfs
            .write(&dev.join("driver_override"), "\n")
            .and_then(|()| match self.sysfs.link_name(&dev.join("driver"))? {
                Some(_) => Ok(()),
                None => self
                    .sysfs
                    .write(&self.sysfs.drivers_probe(), &vf.pci.to_string()),
            });
        if let Err(e) = r {
            tracing::warn!("sriov {}: rolling back to the host driver: {e}", vf.name());
        }
    }

    /// Gives the VF back to its host driver: clears `driver_override`,
    /// unbinds vfio-pci, `drivers_probe`. Refuses while a VMM has it
    /// open. Returns the driver change, if any.
    pub fn bind_host(&mut self, vf: &VfInfo) -> Result<Option<String>, Error> {
        if let Some(h) = self.holder_of(vf) {
            return Err(Error::InUse {
                pci: vf.pci,
                holder: h,
            });
        }
        let dev = self.sysfs.pci_device(vf.pci);
        let overridden = self
            .sysfs
            .read_opt(&dev.join("driver_override"))?
            .is_some_and(|o| !o.is_empty() && o != "(null)");
        if overridden {
            self.sysfs.write(&dev.join("driver_override"), "\n")?;
        }
        if vf.driver.as_deref() != Some(VFIO_PCI) && vf.driver.is_some() {
            return Ok(None);
        }
        if let Some(d) = &vf.driver {
            self.sysfs.write(
                &self.sysfs.pci_driver(d).join("unbind"),
                &vf.pci.to_string(),
            )?;
        }
        self.sysfs
            .write(&self.sysfs.drivers_probe(), &vf.pci.to_string())?;
        let now = self.sysfs.link_name(&dev.join("driver"))?;
        if now.as_deref() == Some(VFIO_PCI) {
            return Err(Error::BindFailed {
                pci: vf.pci,
                want: "its host driver".to_string(),
                got: VFIO_PCI.to_string(),
            });
        }
        let change = format!(
            "{} -> {}",
            vf.driver.as_deref().unwrap_or("no driver"),
            now.as_deref().unwrap_or("no driver")
        );
        tracing::info!("sriov {}: {change}", vf.name());
        Ok(Some(change))
    }
}
