//! Discovery: PFs and VFs as sysfs shows them, and the processes (VMMs)
//! that hold a VF's VFIO group open.

use std::collections::HashMap;
use std::fmt;
use std::fs;

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::netlink::VfLink;
use crate::pci::PciAddr;
use crate::vfio::Vfio;

use super::Sriov;

/// A PF as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PfInfo {
    /// Netdev name.
    pub name: String,
    /// PCI address.
    pub pci: PciAddr,
    /// Its driver.
    pub driver: Option<String>,
    /// `sriov_totalvfs`.
    pub total_vfs: u16,
    /// `sriov_numvfs`.
    pub num_vfs: u16,
    /// VFs found through `virtfn*`, by index.
    pub vfs: Vec<VfInfo>,
}

/// A VF as sysfs shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VfInfo {
    /// Netdev name of its PF.
    pub pf: String,
    /// VF index.
    pub index: u16,
    /// PCI address.
    pub pci: PciAddr,
    /// Driver bound now.
    pub driver: Option<String>,
    /// Its netdev (with a host network driver).
    pub netdev: Option<String>,
    /// IOMMU group.
    pub iommu_group: Option<u32>,
}

impl VfInfo {
    /// `PF/INDEX`, how the CLI names a VF.
    pub fn name(&self) -> String {
        format!("{}/{}", self.pf, self.index)
    }
}

/// A process that has a VFIO group open (a VMM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process ID.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.comm)
    }
}

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// The PF whose netdev is `name`.
    pub fn pf(&self, name: &str) -> Result<PfInfo, Error> {
        let unknown = || Error::UnknownPf {
            pf: name.to_string(),
        };
        if name.is_empty() || name.len() > 15 || name.contains('/') || name == "." || name == ".." {
            return Err(unknown());
        }
        let net = self.sysfs.net(name);
        if fs::symlink_metadata(&net).is_err() {
            return Err(unknown());
        }
        // No `device`, or one that is not a PCI function (a virtio-net
        // NIC's `virtio0`): not a PF.
        let not_pci = || Error::NotPci {
            pf: name.to_string(),
        };
        let pci: PciAddr = self
            .sysfs
            .link_name(&net.join("device"))?
            .ok_or_else(not_pci)?
            .parse()
            .map_err(|_| not_pci())?;
        let dev = self.sysfs.pci_device(pci);
        if self.sysfs.read_opt(&dev.join("sriov_totalvfs"))?.is_none() {
            return Err(Error::NotSriov {
                pf: name.to_string(),
                pci,
            });
        }
        let total_vfs = self
            .sysfs
            .read_num(&dev.join("sriov_totalvfs"), "a VF count")?;
        let num_vfs = self
            .sysfs
            .read_num(&dev.join("sriov_numvfs"), "a VF count")?;
        let driver = self.sysfs.link_name(&dev.join("driver"))?;
        let mut vfs = Vec::new();
        for entry in self.sysfs.list(&dev)? {
            let Some(index) = entry
                .strip_prefix("virtfn")
                .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|i| i.parse::<u16>().ok())
            else {
                continue;
            };
            let Some(vf) = self.sysfs.link_pci(&dev.join(&entry))? else {
                continue;
            };
            vfs.push(self.vf_info(name, index, vf)?);
        }
        vfs.sort_by_key(|v| v.index);
        Ok(PfInfo {
            name: name.to_string(),
            pci,
            driver,
            total_vfs,
            num_vfs,
            vfs,
        })
    }

    fn vf_info(&self, pf: &str, index: u16, pci: PciAddr) -> Result<VfInfo, Error> {
        let dev = self.sysfs.pci_device(pci);
        let group = self.sysfs.link_name(&dev.join("iommu_group"))?;
        let iommu_group = match group {
            None => None,
            Some(g) => Some(g.parse::<u32>().map_err(|_| crate::SysfsError::Parse {
                path: dev.join("iommu_group"),
                value: g.chars().take(64).collect(),
                expected: "a link to an IOMMU group number",
            })?),
        };
        Ok(VfInfo {
            pf: pf.to_string(),
            index,
            pci,
            driver: self.sysfs.link_name(&dev.join("driver"))?,
            netdev: self.sysfs.list(&dev.join("net"))?.into_iter().next(),
            iommu_group,
        })
    }

    /// Every SR-IOV PF on the machine (netdevs with `sriov_totalvfs`);
    /// netdevs whose sysfs entries cannot be read are skipped with a log.
    pub fn pfs(&self) -> Result<Vec<PfInfo>, Error> {
        let mut out = Vec::new();
        for name in self.sysfs.list(&self.sysfs.root().join("class/net"))? {
            match self.pf(&name) {
                Ok(pf) => out.push(pf),
                Err(Error::NotPci { .. } | Error::NotSriov { .. } | Error::UnknownPf { .. }) => {}
                Err(e) => tracing::warn!("sriov: skipping {name}: {e}"),
            }
        }
        Ok(out)
    }

    /// VF `index` of `pf`.
    pub fn vf(&self, pf: &str, index: u16) -> Result<VfInfo, Error> {
        let info = self.pf(pf)?;
        let num_vfs = info.num_vfs;
        info.vfs
            .into_iter()
            .find(|v| v.index == index)
            .ok_or(Error::UnknownVf {
                pf: pf.to_string(),
                index,
                num_vfs,
            })
    }

    /// The VF `reference` names: `PF/INDEX` or the VF's PCI address.
    pub fn find_vf(&self, reference: &str) -> Result<VfInfo, Error> {
        if let Some((pf, index)) = reference.rsplit_once('/') {
            let index: u16 = index
                .parse()
                .map_err(|_| Error::UnknownVfRef(reference.to_string()))?;
            return self.vf(pf, index);
        }
        let pci: PciAddr = reference
            .parse()
            .map_err(|_| Error::UnknownVfRef(reference.to_string()))?;
        self.pfs()?
            .into_iter()
            .flat_map(|p| p.vfs)
            .find(|v| v.pci == pci)
            .ok_or_else(|| Error::UnknownVfRef(reference.to_string()))
    }

    pub(super) fn holder_of(&self, vf: &VfInfo) -> Option<Holder> {
        let group = vf.iommu_group?;
        self.vfio_holders()
            .remove(&group)
            .and_then(|h| h.into_iter().next())
    }

    /// Processes with `/dev/vfio/N` open, by group, from the proc root.
    /// Processes that vanish or cannot be read are skipped.
    pub fn vfio_holders(&self) -> HashMap<u32, Vec<Holder>> {
        let mut out: HashMap<u32, Vec<Holder>> = HashMap::new();
        let Ok(procs) = fs::read_dir(&self.proc_root) else {
            return out;
        };
        for p in procs.flatten() {
            let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
                continue;
            };
            let mut groups: Vec<u32> = fds
                .flatten()
                .filter_map(|fd| fs::read_link(fd.path()).ok())
                .filter_map(|t| t.to_str()?.strip_prefix("/dev/vfio/")?.parse::<u32>().ok())
                .collect();
            groups.sort_unstable();
            groups.dedup();
            if groups.is_empty() {
                continue;
            }
            let comm = fs::read_to_string(p.path().join("comm"))
                .map(|c| c.trim().chars().take(32).collect())
                .unwrap_or_else(|_| "?".to_string());
            for g in groups {
                out.entry(g).or_default().push(Holder {
                    pid,
                    comm: String::clone(&comm),
                });
            }
        }
        out
    }
}
