//! The VF count lifecycle: a non-zero count goes to 0 first, then the
//! VFs (and their drivers, and the PF's link) are awaited.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::Error;
use crate::netlink::VfLink;
use crate::vfio::Vfio;

use super::Sriov;

impl<L: VfLink, V: Vfio> Sriov<L, V> {
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
}
