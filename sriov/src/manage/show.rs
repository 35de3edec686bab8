//! `show`: PFs and VFs with their settings as read back, drivers, IOMMU
//! groups and holders ([`PfView`], [`VfView`]).

use serde::{Deserialize, Serialize};

use crate::VFIO_PCI;
use crate::netlink::{VfLink, VfState};
use crate::pci::PciAddr;
use crate::vfio::Vfio;

use super::{Holder, Sriov};

/// A PF for `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PfView {
    /// Netdev name.
    pub name: String,
    /// PCI address, if found.
    pub pci: Option<PciAddr>,
    /// Its driver.
    pub driver: Option<String>,
    /// `sriov_totalvfs`.
    pub total_vfs: u16,
    /// `sriov_numvfs`.
    pub num_vfs: u16,
    /// The VFs.
    pub vfs: Vec<VfView>,
    /// Why the PF could not be read (the rest is then empty).
    pub error: Option<String>,
}

/// A VF for `show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfView {
    /// VF index.
    pub index: u16,
    /// PCI address.
    pub pci: PciAddr,
    /// Driver bound now.
    pub driver: Option<String>,
    /// Host netdev.
    pub netdev: Option<String>,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
    /// Settings as read back from the PF's driver.
    pub settings: Option<VfState>,
    /// Who has it: "host (igbvf, eth1)", "vfio-pci (free)", "vfio-pci
    /// (pid 42 (qemu-system-x86))", "no driver".
    pub owner: String,
    /// Processes with its VFIO group open.
    pub holders: Vec<Holder>,
    /// Whether the caller manages this VF (vswitchd: it configured it
    /// and releases it; other VFs it leaves alone). [`Sriov::show`]
    /// leaves it false; the daemon sets it.
    #[serde(default)]
    pub managed: bool,
}

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// PFs, VFs, settings as read back, drivers, groups and holders.
    pub fn show(&mut self, pfs: &[String]) -> Vec<PfView> {
        let holders = self.vfio_holders();
        let mut out = Vec::new();
        for name in pfs {
            let info = match self.pf(name) {
                Ok(i) => i,
                Err(e) => {
                    out.push(PfView {
                        name: name.clone(),
                        pci: None,
                        driver: None,
                        total_vfs: 0,
                        num_vfs: 0,
                        vfs: Vec::new(),
                        error: Some(e.to_string()),
                    });
                    continue;
                }
            };
            let (states, error) = if info.num_vfs == 0 {
                (Vec::new(), None)
            } else {
                match self.read_vfs(name) {
                    Ok(s) => (s, None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                }
            };
            let vfs = info
                .vfs
                .iter()
                .map(|vf| {
                    let h: Vec<Holder> = vf
                        .iommu_group
                        .and_then(|g| holders.get(&g))
                        .cloned()
                        .unwrap_or_default();
                    let owner = match (vf.driver.as_deref(), h.first()) {
                        (Some(VFIO_PCI), Some(first)) => format!("vfio-pci ({first})"),
                        (Some(VFIO_PCI), None) => "vfio-pci (free)".to_string(),
                        (Some(d), _) => match &vf.netdev {
                            Some(n) => format!("host ({d}, {n})"),
                            None => format!("host ({d})"),
                        },
                        (None, _) => "no driver".to_string(),
                    };
                    VfView {
                        index: vf.index,
                        pci: vf.pci,
                        driver: vf.driver.clone(),
                        netdev: vf.netdev.clone(),
                        iommu_group: vf.iommu_group,
                        settings: states
                            .iter()
                            .find(|s| s.index == u32::from(vf.index))
                            .cloned(),
                        owner,
                        holders: h,
                        managed: false,
                    }
                })
                .collect();
            out.push(PfView {
                name: info.name,
                pci: Some(info.pci),
                driver: info.driver,
                total_vfs: info.total_vfs,
                num_vfs: info.num_vfs,
                vfs,
                error,
            });
        }
        out
    }
}
