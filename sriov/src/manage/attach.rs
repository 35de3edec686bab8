//! How to give a VF to a VM: [`AttachInfo`] (readiness, the QEMU
//! argument, the libvirt element).

use serde::{Deserialize, Serialize};

use crate::VFIO_PCI;
use crate::netlink::VfLink;
use crate::pci::PciAddr;
use crate::vfio::Vfio;

use super::{Sriov, VfInfo};

/// How to give a VF to a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachInfo {
    /// `PF/INDEX`.
    pub vf: String,
    /// PCI address.
    pub pci: PciAddr,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
    /// `/dev/vfio/N`, what the VMM opens.
    pub vfio_group: Option<String>,
    /// Driver bound now.
    pub driver: Option<String>,
    /// The process that has the VF's VFIO group open (a VM), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Bound to vfio-pci with a viable group that no process holds: a
    /// VMM can take it now.
    pub ready: bool,
    /// Why it is not ready.
    pub problem: Option<String>,
    /// The QEMU argument.
    pub qemu: String,
    /// The libvirt domain XML element (`managed='no'`: vswitchd does the
    /// binding, libvirt must not).
    pub libvirt: String,
}

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// How to attach the VF to a VM.
    pub fn attach_info(&self, vf: &VfInfo) -> AttachInfo {
        let holder = self.holder_of(vf).map(|h| h.to_string());
        let problem = if vf.driver.as_deref() != Some(VFIO_PCI) {
            Some(format!(
                "bound to {}, not vfio-pci: set `vfio: true` on the VF in the config",
                vf.driver.as_deref().unwrap_or("no driver")
            ))
        } else if let Some(h) = &holder {
            Some(format!("in use by {h}: its VFIO group is open"))
        } else {
            self.check_group(vf).err().map(|e| e.to_string())
        };
        let a = vf.pci;
        AttachInfo {
            vf: vf.name(),
            pci: a,
            iommu_group: vf.iommu_group,
            vfio_group: vf.iommu_group.map(|g| format!("/dev/vfio/{g}")),
            driver: vf.driver.clone(),
            holder,
            ready: problem.is_none(),
            problem,
            qemu: format!("-device vfio-pci,host={a}"),
            libvirt: format!(
                "<hostdev mode='subsystem' type='pci' managed='no'>\n  <source>\n    \
                 <address domain='0x{:04x}' bus='0x{:02x}' slot='0x{:02x}' function='0x{:x}'/>\n  \
                 </source>\n</hostdev>",
                a.domain, a.bus, a.device, a.function
            ),
        }
    }
}
