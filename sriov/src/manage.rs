//! [`Sriov`]: discovery, the VF count lifecycle, settings with read-back,
//! the vfio-pci hand-off, release and the whole-PF reconcile.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::netlink::{LinkState, VfLink, VfSetting, VfState, VlanProto};
use crate::pci::{MacAddr, PciAddr};
use crate::sysfs::Sysfs;
use crate::vfio::{Vfio, VfioProof};
use crate::{Error, VFIO_PCI};

/// Drivers that leave an IOMMU group viable besides vfio-pci itself.
const VIABLE_DRIVERS: &[&str] = &[VFIO_PCI, "pci-stub"];
/// PCI class of a PCI-to-PCI bridge (bridges never block a group).
const CLASS_BRIDGE: u32 = 0x0604;

/// A port VLAN for a VF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanSpec {
    /// VLAN ID, 1-4094.
    pub id: u16,
    /// 802.1p priority, 0-7.
    pub qos: u8,
    /// Tag protocol.
    pub proto: VlanProto,
}

/// What a VF should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfSpec {
    /// VF index.
    pub index: u16,
    /// MAC to set; `None`: left as it is.
    pub mac: Option<MacAddr>,
    /// Port VLAN; `None`: untagged (VLAN 0), the guest may tag.
    pub vlan: Option<VlanSpec>,
    /// MAC spoof checking.
    pub spoof_check: bool,
    /// Trusted VF (may change MAC, go promiscuous).
    pub trust: bool,
    /// Link state; `None`: left as it is.
    pub link_state: Option<LinkState>,
    /// Guaranteed TX rate, Mbit/s (0: none).
    pub min_tx_rate_mbps: u32,
    /// TX rate cap, Mbit/s (0: none).
    pub max_tx_rate_mbps: u32,
    /// Bind the VF to vfio-pci for passthrough.
    pub vfio: bool,
    /// MAC the VF gets when released (`None`: zero, no MAC).
    pub release_mac: Option<MacAddr>,
}

impl VfSpec {
    /// A VF with the defaults: no MAC, untagged, spoof check on, trust
    /// off, no rate limit, host driver.
    pub fn new(index: u16) -> VfSpec {
        VfSpec {
            index,
            mac: None,
            vlan: None,
            spoof_check: true,
            trust: false,
            link_state: None,
            min_tx_rate_mbps: 0,
            max_tx_rate_mbps: 0,
            vfio: false,
            release_mac: None,
        }
    }

    /// The attributes this spec sets, in the order they are applied.
    pub fn settings(&self) -> Vec<VfSetting> {
        let mut out = Vec::with_capacity(6);
        if let Some(m) = self.mac {
            out.push(VfSetting::Mac(m));
        }
        out.push(match self.vlan {
            Some(v) => VfSetting::Vlan {
                id: v.id,
                qos: v.qos,
                proto: v.proto,
            },
            None => VfSetting::Vlan {
                id: 0,
                qos: 0,
                proto: VlanProto::Dot1Q,
            },
        });
        out.push(VfSetting::SpoofCheck(self.spoof_check));
        out.push(VfSetting::Trust(self.trust));
        if let Some(s) = self.link_state {
            out.push(VfSetting::LinkState(s));
        }
        out.push(VfSetting::Rate {
            min_mbps: self.min_tx_rate_mbps,
            max_mbps: self.max_tx_rate_mbps,
        });
        out
    }
}

/// The clean state a released VF gets: MAC zero (or `mac`), VLAN 0, spoof
/// check on, trust off, no rate limit, link state auto.
pub fn release_settings(mac: Option<MacAddr>) -> Vec<VfSetting> {
    vec![
        VfSetting::Mac(mac.unwrap_or(MacAddr::ZERO)),
        VfSetting::Vlan {
            id: 0,
            qos: 0,
            proto: VlanProto::Dot1Q,
        },
        VfSetting::SpoofCheck(true),
        VfSetting::Trust(false),
        VfSetting::Rate {
            min_mbps: 0,
            max_mbps: 0,
        },
        VfSetting::LinkState(LinkState::Auto),
    ]
}

/// What a PF should look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PfSpec {
    /// Netdev name of the PF.
    pub pf: String,
    /// VFs to have.
    pub num_vfs: u16,
    /// VFs with settings, by index; the others are left alone.
    pub vfs: Vec<VfSpec>,
}

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
    fn new(pf: &str, index: u16) -> VfOutcome {
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
    /// Bound to vfio-pci with a viable group: a VMM can take it now.
    pub ready: bool,
    /// Why it is not ready.
    pub problem: Option<String>,
    /// The QEMU argument.
    pub qemu: String,
    /// The libvirt domain XML element (`managed='no'`: vswitchd does the
    /// binding, libvirt must not).
    pub libvirt: String,
}

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
}

/// The SR-IOV manager: sysfs, rtnetlink and VFIO behind their seams.
#[derive(Debug)]
pub struct Sriov<L, V> {
    sysfs: Sysfs,
    proc_root: PathBuf,
    link: L,
    vfio: V,
    timeout: Duration,
}

impl<L: VfLink, V: Vfio> Sriov<L, V> {
    /// A manager on `sysfs`, with `/proc` for finding VFIO holders and a
    /// 10 s wait for new VFs.
    pub fn new(sysfs: Sysfs, link: L, vfio: V) -> Sriov<L, V> {
        Sriov {
            sysfs,
            proc_root: PathBuf::from("/proc"),
            link,
            vfio,
            timeout: Duration::from_secs(10),
        }
    }

    /// Where `/proc` is (tests use a fake one).
    pub fn with_proc_root(mut self, proc_root: impl Into<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self
    }

    /// How long to wait for VFs to appear after setting the count.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The sysfs it works on.
    pub fn sysfs(&self) -> &Sysfs {
        &self.sysfs
    }

    // ---- discovery ----

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
        let pci = self
            .sysfs
            .link_pci(&net.join("device"))?
            .ok_or_else(|| Error::NotPci {
                pf: name.to_string(),
            })?;
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

    // ---- the VF count ----

    /// Gives `pf` `want` VFs. A different non-zero count goes to 0 first
    /// (the kernel refuses non-zero to non-zero); then waits for every
    /// `virtfn*` link, and (bounded by the same timeout) for the VFs'
    /// drivers. Refuses while a VMM has one of the VFs open. Returns the
    /// change (old, new), `None` if the count was already right.
    pub fn set_num_vfs(&mut self, pf: &str, want: u16) -> Result<Option<(u16, u16)>, Error> {
        let info = self.pf(pf)?;
        if want > info.total_vfs {
            return Err(Error::TooManyVfs {
                pf: pf.to_string(),
                requested: want,
                total: info.total_vfs,
            });
        }
        let dev = self.sysfs.pci_device(info.pci);
        if info.num_vfs == want {
            self.wait_for_vfs(pf, &dev, want)?;
            return Ok(None);
        }
        let holders = self.vfio_holders();
        for vf in &info.vfs {
            if let Some(h) = vf
                .iommu_group
                .and_then(|g| holders.get(&g))
                .and_then(|h| h.first())
            {
                return Err(Error::CountInUse {
                    pf: pf.to_string(),
                    index: vf.index,
                    pci: vf.pci,
                    holder: h.clone(),
                });
            }
        }
        let path = dev.join("sriov_numvfs");
        if info.num_vfs != 0 {
            tracing::info!("sriov {pf}: removing {} VFs", info.num_vfs);
            self.sysfs.write(&path, "0")?;
        }
        if want != 0 {
            tracing::info!("sriov {pf}: creating {want} VFs");
            self.sysfs.write(&path, &want.to_string())?;
        }
        self.wait_for_vfs(pf, &dev, want)?;
        self.wait_for_pf_link(pf);
        Ok(Some((info.num_vfs, want)))
    }

    /// Some PF drivers (igb) reset the PF when the VF count changes; a PF
    /// that is administratively up gets its carrier back within the
    /// timeout (bounded, not an error: it may have no cable). Settings
    /// such as igb's VF rate need the link.
    fn wait_for_pf_link(&self, pf: &str) {
        let net = self.sysfs.net(pf);
        let up = self
            .sysfs
            .read_hex(&net.join("flags"))
            .is_ok_and(|f| f & 1 != 0);
        if !up {
            return;
        }
        let start = Instant::now();
        while start.elapsed() < self.timeout {
            if self
                .sysfs
                .read_opt(&net.join("carrier"))
                .is_ok_and(|c| c.as_deref() == Some("1"))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!(
            "sriov {pf}: no carrier {:?} after the VF count changed",
            self.timeout
        );
    }

    fn wait_for_vfs(&self, pf: &str, dev: &Path, want: u16) -> Result<(), Error> {
        let start = Instant::now();
        loop {
            let seen = (0..want)
                .filter(|i| fs::symlink_metadata(dev.join(format!("virtfn{i}"))).is_ok())
                .count();
            let seen = u16::try_from(seen).unwrap_or(u16::MAX);
            if seen == want {
                break;
            }
            if start.elapsed() >= self.timeout {
                return Err(Error::VfsDidNotAppear {
                    pf: pf.to_string(),
                    want,
                    seen,
                    waited_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Host drivers probe the new VFs; wait for them (bounded, not an
        // error: a VF without a driver is still usable for vfio-pci).
        loop {
            let mut all = true;
            for i in 0..want {
                let vf = self.sysfs.link_pci(&dev.join(format!("virtfn{i}")))?;
                let bound = match vf {
                    Some(vf) => {
                        fs::symlink_metadata(self.sysfs.pci_device(vf).join("driver")).is_ok()
                    }
                    None => false,
                };
                all &= bound;
            }
            if all || start.elapsed() >= self.timeout {
                if !all {
                    tracing::warn!(
                        "sriov {pf}: some VFs have no driver after {:?}",
                        self.timeout
                    );
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // ---- settings ----

    /// Every VF's settings as the PF's driver reports them.
    pub fn read_vfs(&mut self, pf: &str) -> Result<Vec<VfState>, Error> {
        self.link.vf_states(pf).map_err(|source| Error::Netlink {
            pf: pf.to_string(),
            op: "read VF settings",
            source,
        })
    }

    fn read_vf(&mut self, pf: &str, index: u16) -> Result<Option<VfState>, Error> {
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

    // ---- vfio-pci ----

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

    // ---- release ----

    /// Releases a VF: MAC zero (or `release_mac`), VLAN 0, spoof check on,
    /// trust off, rate 0, link state auto, then back to the host driver.
    /// Refuses while a VMM has it open.
    pub fn release(
        &mut self,
        vf: &VfInfo,
        release_mac: Option<MacAddr>,
    ) -> Result<VfOutcome, Error> {
        if let Some(h) = self.holder_of(vf) {
            return Err(Error::InUse {
                pci: vf.pci,
                holder: h,
            });
        }
        let mut out =
            self.apply_settings(&vf.pf, vf.index, &release_settings(release_mac), true)?;
        match self.bind_host(vf) {
            Ok(change) => out.driver.extend(change),
            Err(e) => out.errors.push(e.to_string()),
        }
        Ok(out)
    }

    // ---- the whole PF ----

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

    // ---- views ----

    /// How to attach the VF to a VM.
    pub fn attach_info(&self, vf: &VfInfo) -> AttachInfo {
        let problem = if vf.driver.as_deref() != Some(VFIO_PCI) {
            Some(format!(
                "bound to {}, not vfio-pci: set `vfio: true` on the VF in the config",
                vf.driver.as_deref().unwrap_or("no driver")
            ))
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

    fn holder_of(&self, vf: &VfInfo) -> Option<Holder> {
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

/// EOPNOTSUPP (the driver has no such callback) and EPROTONOSUPPORT (an
/// 802.1ad VLAN on a driver that only tags 802.1Q).
fn is_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT)
    )
}
