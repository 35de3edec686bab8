//! A fake kernel for tests (here and in other crates, with the
//! `test-utils` feature): a sysfs tree in a directory whose writes behave
//! like the kernel's ([`FakeKernel`]), a recording rtnetlink
//! ([`FakeLink`]) and a VFIO that opens nothing ([`FakeVfio`]).
//!
//! Handles are cheap clones sharing state, so a test keeps one and hands
//! another to [`crate::Sriov`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::netlink::{VfLink, VfSetting, VfState, VlanProto};
use crate::pci::PciAddr;
use crate::sysfs::{Sysfs, SysfsWriter};
use crate::vfio::{Vfio, VfioFailure, VfioProof};

#[derive(Debug)]
struct PfState {
    addr: PciAddr,
    name: String,
    total: u16,
    vf_driver: Option<String>,
    vfs: Vec<PciAddr>,
}

#[derive(Debug, Default)]
struct KernelState {
    pfs: Vec<PfState>,
    next_group: u32,
    next_netdev: u32,
    /// Attribute file names whose writes fail with this errno.
    failures: Vec<(String, i32)>,
    writes: Vec<(String, String)>,
    /// Attribute file names whose writes succeed but change nothing.
    ignored: Vec<String>,
    /// `sriov_numvfs` writes that create VFs without their links (a PF
    /// that never finishes creating VFs).
    lazy_vfs: bool,
}

/// A sysfs tree under a directory, and the kernel's reaction to writes.
#[derive(Debug, Clone)]
pub struct FakeKernel {
    root: PathBuf,
    state: Arc<Mutex<KernelState>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeKernel {
    /// An empty tree at `root` with the drivers `igb`, `igbvf`, `vfio-pci`
    /// and `e1000e` registered.
    pub fn new(root: &Path) -> FakeKernel {
        for d in [
            "class/net",
            "bus/pci/devices",
            "kernel/iommu_groups",
            "devices/pci0000:00",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("bus/pci/drivers_probe"), "").unwrap();
        let k = FakeKernel {
            root: root.to_path_buf(),
            state: Arc::new(Mutex::new(KernelState {
                next_group: 10,
                next_netdev: 1,
                ..KernelState::default()
            })),
        };
        for d in ["igb", "igbvf", "vfio-pci", "e1000e", "pcieport"] {
            k.add_driver(d);
        }
        k
    }

    /// Registers a PCI driver (creates `bus/pci/drivers/NAME`).
    pub fn add_driver(&self, name: &str) {
        let d = self.root.join("bus/pci/drivers").join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("bind"), "").unwrap();
        fs::write(d.join("unbind"), "").unwrap();
    }

    /// Unregisters a PCI driver (as if its module were not loaded).
    pub fn remove_driver(&self, name: &str) {
        let _ = fs::remove_dir_all(self.root.join("bus/pci/drivers").join(name));
    }

    /// The [`Sysfs`] whose writes go to this fake kernel.
    pub fn sysfs(&self) -> Sysfs {
        Sysfs::with_writer(&self.root, Arc::new(self.clone()))
    }

    /// The tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The device directory of `addr`.
    pub fn device_dir(&self, addr: PciAddr) -> PathBuf {
        self.root.join("devices/pci0000:00").join(addr.to_string())
    }

    /// Adds a PCI device (vendor 8086, class `class`), bound to `driver`,
    /// in IOMMU group `group` (a new one if `None`). Returns its group.
    pub fn add_device(
        &self,
        addr: PciAddr,
        device_id: u16,
        class: u32,
        driver: Option<&str>,
        group: Option<u32>,
    ) -> u32 {
        let dir = self.device_dir(addr);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("vendor"), "0x8086\n").unwrap();
        fs::write(dir.join("device"), format!("0x{device_id:04x}\n")).unwrap();
        fs::write(dir.join("class"), format!("0x{class:06x}\n")).unwrap();
        fs::write(dir.join("driver_override"), "(null)\n").unwrap();
        symlink(
            &dir,
            self.root.join("bus/pci/devices").join(addr.to_string()),
        )
        .unwrap();
        let group = group.unwrap_or_else(|| {
            let mut st = lock(&self.state);
            st.next_group += 1;
            st.next_group
        });
        let gdir = self
            .root
            .join(format!("kernel/iommu_groups/{group}/devices"));
        fs::create_dir_all(&gdir).unwrap();
        symlink(&dir, gdir.join(addr.to_string())).unwrap();
        symlink(
            self.root.join(format!("kernel/iommu_groups/{group}")),
            dir.join("iommu_group"),
        )
        .unwrap();
        if let Some(d) = driver {
            self.bind(addr, d);
        }
        group
    }

    /// Adds an SR-IOV PF netdev `name` at `addr` (igb, 82576) with
    /// `total` VFs possible, whose VFs get `vf_driver` when created.
    pub fn add_pf(&self, name: &str, addr: PciAddr, total: u16, vf_driver: Option<&str>) {
        self.add_device(addr, 0x10c9, 0x020000, Some("igb"), None);
        let dir = self.device_dir(addr);
        fs::write(dir.join("sriov_totalvfs"), format!("{total}\n")).unwrap();
        fs::write(dir.join("sriov_numvfs"), "0\n").unwrap();
        self.add_netdev(addr, name);
        lock(&self.state).pfs.push(PfState {
            addr,
            name: name.to_string(),
            total,
            vf_driver: vf_driver.map(str::to_string),
            vfs: Vec::new(),
        });
    }

    /// Adds a netdev without a PCI device (like `lo` or a veth).
    pub fn add_virtual_netdev(&self, name: &str) {
        fs::create_dir_all(self.root.join("devices/virtual/net").join(name)).unwrap();
        symlink(
            self.root.join("devices/virtual/net").join(name),
            self.root.join("class/net").join(name),
        )
        .unwrap();
    }

    /// Adds a netdev whose `device` is not a PCI device (a virtio-net
    /// NIC: `device` links to `virtio0` on the virtio bus).
    pub fn add_virtio_netdev(&self, name: &str, virtio: &str) {
        let dev = self
            .root
            .join("devices/pci0000:00/0000:00:03.0")
            .join(virtio);
        let dir = dev.join("net").join(name);
        fs::create_dir_all(&dir).unwrap();
        symlink(&dev, dir.join("device")).unwrap();
        symlink(&dir, self.root.join("class/net").join(name)).unwrap();
    }

    fn add_netdev(&self, addr: PciAddr, name: &str) {
        let dir = self.device_dir(addr).join("net").join(name);
        fs::create_dir_all(&dir).unwrap();
        let _ = symlink(self.device_dir(addr), dir.join("device"));
        let _ = fs::remove_file(self.root.join("class/net").join(name));
        symlink(&dir, self.root.join("class/net").join(name)).unwrap();
    }

    /// Makes writes to files called `file` fail with `errno`.
    pub fn fail_writes(&self, file: &str, errno: i32) {
        lock(&self.state).failures.push((file.to_string(), errno));
    }

    /// Forgets [`FakeKernel::fail_writes`].
    pub fn clear_failures(&self) {
        lock(&self.state).failures.clear();
    }

    /// Makes writes to files called `file` succeed without effect.
    pub fn ignore_writes(&self, file: &str) {
        lock(&self.state).ignored.push(file.to_string());
    }

    /// From now on, `sriov_numvfs` writes do not create `virtfn*` links.
    pub fn never_create_vfs(&self) {
        lock(&self.state).lazy_vfs = true;
    }

    /// Every write so far, as (path relative to the root, value).
    pub fn writes(&self) -> Vec<(String, String)> {
        lock(&self.state).writes.clone()
    }

    /// Forgets the recorded writes.
    pub fn clear_writes(&self) {
        lock(&self.state).writes.clear();
    }

    /// The driver `addr` is bound to.
    pub fn driver_of(&self, addr: PciAddr) -> Option<String> {
        fs::read_link(self.device_dir(addr).join("driver"))
            .ok()
            .and_then(|t| t.file_name().and_then(|n| n.to_str()).map(str::to_string))
    }

    /// Binds `addr` to `driver` (as a probe would).
    pub fn bind(&self, addr: PciAddr, driver: &str) {
        let dir = self.device_dir(addr);
        let _ = fs::remove_file(dir.join("driver"));
        symlink(
            self.root.join("bus/pci/drivers").join(driver),
            dir.join("driver"),
        )
        .unwrap();
        if driver == "igbvf" || driver == "e1000e" {
            let n = {
                let mut st = lock(&self.state);
                st.next_netdev += 1;
                st.next_netdev
            };
            self.add_netdev(addr, &format!("eth{n}"));
        }
    }

    fn unbind(&self, addr: PciAddr) {
        let dir = self.device_dir(addr);
        let _ = fs::remove_file(dir.join("driver"));
        if let Ok(entries) = fs::read_dir(dir.join("net")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(self.root.join("class/net").join(e.file_name()));
            }
        }
        let _ = fs::remove_dir_all(dir.join("net"));
    }

    fn probe(&self, addr: PciAddr) -> io::Result<()> {
        let dir = self.device_dir(addr);
        if fs::symlink_metadata(dir.join("driver")).is_ok() {
            return Ok(());
        }
        let over = fs::read_to_string(dir.join("driver_override"))?;
        let over = over.trim();
        let driver = if over.is_empty() || over == "(null)" {
            let st = lock(&self.state);
            st.pfs
                .iter()
                .find(|p| p.vfs.contains(&addr))
                .and_then(|p| p.vf_driver.clone())
        } else {
            Some(over.to_string())
        };
        if let Some(d) = driver
            && self.root.join("bus/pci/drivers").join(&d).exists()
        {
            self.bind(addr, &d);
        }
        Ok(())
    }

    fn set_num_vfs(&self, pf_addr: PciAddr, value: &str) -> io::Result<()> {
        let n: u16 = value
            .trim()
            .parse()
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let (old, total, vf_driver, lazy) = {
            let st = lock(&self.state);
            let pf = st
                .pfs
                .iter()
                .find(|p| p.addr == pf_addr)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            (pf.vfs.clone(), pf.total, pf.vf_driver.clone(), st.lazy_vfs)
        };
        if n > total {
            return Err(io::Error::from_raw_os_error(libc::ERANGE));
        }
        if usize::from(n) == old.len() {
            return Ok(());
        }
        if n != 0 && !old.is_empty() {
            // The kernel: "N VFs already enabled. Disable before enabling M".
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let pf_dir = self.device_dir(pf_addr);
        for (i, vf) in old.iter().enumerate() {
            self.unbind(*vf);
            let _ = fs::remove_file(pf_dir.join(format!("virtfn{i}")));
            let _ = fs::remove_file(self.root.join("bus/pci/devices").join(vf.to_string()));
            if let Ok(g) = fs::read_link(self.device_dir(*vf).join("iommu_group")) {
                let _ = fs::remove_dir_all(&g);
            }
            let _ = fs::remove_dir_all(self.device_dir(*vf));
        }
        let mut vfs = Vec::new();
        for i in 0..n {
            let i8 = u8::try_from(i).unwrap();
            let vf = PciAddr {
                domain: pf_addr.domain,
                bus: pf_addr.bus,
                device: 0x10 + i8 / 8,
                function: i8 % 8,
            };
            vfs.push(vf);
        }
        {
            let mut st = lock(&self.state);
            if let Some(pf) = st.pfs.iter_mut().find(|p| p.addr == pf_addr) {
                pf.vfs = vfs.clone();
            }
        }
        for (i, vf) in vfs.iter().enumerate() {
            self.add_device(*vf, 0x10ca, 0x020000, None, None);
            symlink(pf_dir.clone(), self.device_dir(*vf).join("physfn")).unwrap();
            if !lazy {
                symlink(self.device_dir(*vf), pf_dir.join(format!("virtfn{i}"))).unwrap();
            }
            if let Some(d) = &vf_driver {
                self.bind(*vf, d);
            }
        }
        fs::write(pf_dir.join("sriov_numvfs"), format!("{n}\n"))?;
        Ok(())
    }

    /// The first netdev of the device at `addr`.
    pub fn pfs_netdev_of(&self, addr: PciAddr) -> Option<String> {
        fs::read_dir(self.device_dir(addr).join("net"))
            .ok()?
            .flatten()
            .find_map(|e| e.file_name().to_str().map(str::to_string))
    }

    /// The PF netdev names.
    pub fn pf_names(&self) -> Vec<String> {
        lock(&self.state)
            .pfs
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }
}

impl SysfsWriter for FakeKernel {
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        let rel = path
            .strip_prefix(&self.root)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?
            .to_string_lossy()
            .into_owned();
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_string();
        {
            let mut st = lock(&self.state);
            st.writes.push((rel.clone(), value.trim().to_string()));
            if let Some((_, errno)) = st.failures.iter().find(|(f, _)| *f == file) {
                return Err(io::Error::from_raw_os_error(*errno));
            }
            if st.ignored.contains(&file) {
                return Ok(());
            }
        }
        if fs::symlink_metadata(path).is_err() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        let bdf = || -> io::Result<PciAddr> {
            value
                .trim()
                .parse()
                .map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))
        };
        // The device a per-device attribute belongs to: `.../BDF/FILE`.
        let owner = || -> io::Result<PciAddr> {
            path.parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
        };
        match file.as_str() {
            "sriov_numvfs" => self.set_num_vfs(owner()?, value),
            "driver_override" => {
                let v = value.trim();
                let v = if v.is_empty() { "(null)" } else { v };
                fs::write(path, format!("{v}\n"))
            }
            "unbind" => {
                let addr = bdf()?;
                let driver = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                if self.driver_of(addr).as_deref() != Some(driver) {
                    return Err(io::Error::from_raw_os_error(libc::ENODEV));
                }
                self.unbind(addr);
                Ok(())
            }
            "bind" => {
                let addr = bdf()?;
                if self.driver_of(addr).is_some() {
                    return Err(io::Error::from_raw_os_error(libc::EBUSY));
                }
                let driver = path
                    .parent()
                    .and_then(|p| p.file_name())
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                self.bind(addr, &driver);
                Ok(())
            }
            "drivers_probe" => self.probe(bdf()?),
            _ => fs::write(path, value),
        }
    }
}

#[derive(Debug, Default)]
struct LinkInner {
    vfs: BTreeMap<String, Vec<VfState>>,
    calls: Vec<(String, u32, VfSetting)>,
    unsupported: HashSet<&'static str>,
    refused: HashSet<&'static str>,
    ignored: HashSet<&'static str>,
    no_proto: bool,
    reads: usize,
    hidden: HashSet<u32>,
}

/// A recording [`VfLink`]: keeps per-VF state, records every call, and
/// refuses or ignores the attributes a test names.
#[derive(Debug, Clone, Default)]
pub struct FakeLink(Arc<Mutex<LinkInner>>);

impl FakeLink {
    /// A link with no PFs.
    pub fn new() -> FakeLink {
        FakeLink::default()
    }

    /// Gives `pf` `n` VFs in their default state (call after creating
    /// them in the fake sysfs).
    pub fn set_vfs(&self, pf: &str, n: u16) {
        let mut st = lock(&self.0);
        let vfs = st.vfs.entry(pf.to_string()).or_default();
        vfs.truncate(usize::from(n));
        for i in vfs.len()..usize::from(n) {
            vfs.push(VfState::unset(u32::try_from(i).unwrap()));
        }
    }

    /// Attribute (by [`VfSetting::name`]) the driver answers EOPNOTSUPP.
    pub fn unsupported(&self, name: &'static str) {
        lock(&self.0).unsupported.insert(name);
    }

    /// Attribute the driver answers EINVAL.
    pub fn refuse(&self, name: &'static str) {
        lock(&self.0).refused.insert(name);
    }

    /// Attribute the driver accepts but does not apply (a read-back
    /// mismatch).
    pub fn ignore(&self, name: &'static str) {
        lock(&self.0).ignored.insert(name);
    }

    /// 802.1ad VLANs are refused with EPROTONOSUPPORT (like igb).
    pub fn no_8021ad(&self) {
        lock(&self.0).no_proto = true;
    }

    /// VF `vf` is set as usual but left out of every read.
    pub fn hide(&self, vf: u32) {
        lock(&self.0).hidden.insert(vf);
    }

    /// Every `set_vf` call so far.
    pub fn calls(&self) -> Vec<(String, u32, VfSetting)> {
        lock(&self.0).calls.clone()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        lock(&self.0).calls.clear();
    }

    /// How many times the state was read.
    pub fn reads(&self) -> usize {
        lock(&self.0).reads
    }

    /// VF `vf` of `pf` as the fake driver has it.
    pub fn state(&self, pf: &str, vf: u32) -> Option<VfState> {
        lock(&self.0)
            .vfs
            .get(pf)
            .and_then(|v| v.iter().find(|s| s.index == vf).cloned())
    }

    /// Changes a VF behind the manager's back (drift).
    pub fn tamper(&self, pf: &str, vf: u32, setting: VfSetting) {
        let mut st = lock(&self.0);
        if let Some(s) = st
            .vfs
            .get_mut(pf)
            .and_then(|v| v.iter_mut().find(|s| s.index == vf))
        {
            apply(s, setting);
        }
    }
}

fn apply(s: &mut VfState, setting: VfSetting) {
    match setting {
        VfSetting::Mac(m) => s.mac = m,
        VfSetting::Vlan { id, qos, proto } => {
            s.vlan = id;
            s.qos = qos;
            s.vlan_proto = Some(proto);
        }
        VfSetting::SpoofCheck(b) => s.spoof_check = b,
        VfSetting::Trust(b) => s.trust = b,
        VfSetting::LinkState(l) => s.link_state = Some(l),
        VfSetting::Rate { min_mbps, max_mbps } => {
            s.min_tx_rate_mbps = min_mbps;
            s.max_tx_rate_mbps = max_mbps;
        }
    }
}

impl VfLink for FakeLink {
    fn set_vf(&mut self, pf: &str, vf: u32, setting: &VfSetting) -> io::Result<()> {
        let mut st = lock(&self.0);
        st.calls.push((pf.to_string(), vf, *setting));
        let name = setting.name();
        if st.unsupported.contains(name) {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        if st.refused.contains(name) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if st.no_proto
            && matches!(
                setting,
                VfSetting::Vlan {
                    proto: VlanProto::Dot1Ad,
                    ..
                }
            )
        {
            return Err(io::Error::from_raw_os_error(libc::EPROTONOSUPPORT));
        }
        let ignored = st.ignored.contains(name);
        let s = st
            .vfs
            .get_mut(pf)
            .and_then(|v| v.iter_mut().find(|s| s.index == vf))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        if !ignored {
            apply(s, *setting);
        }
        Ok(())
    }

    fn vf_states(&mut self, pf: &str) -> io::Result<Vec<VfState>> {
        let mut st = lock(&self.0);
        st.reads += 1;
        let hidden = st.hidden.clone();
        st.vfs
            .get(pf)
            .map(|v| {
                v.iter()
                    .filter(|s| !hidden.contains(&s.index))
                    .cloned()
                    .collect()
            })
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }
}

/// A [`Vfio`] that reads vendor/device from the fake sysfs and records
/// what it opened; [`FakeVfio::fail`] makes it fail.
#[derive(Debug, Clone, Default)]
pub struct FakeVfio(Arc<Mutex<VfioInner>>);

#[derive(Debug, Default)]
struct VfioInner {
    opened: Vec<(PathBuf, u32)>,
    failure: Option<String>,
}

impl FakeVfio {
    /// A working fake.
    pub fn new() -> FakeVfio {
        FakeVfio::default()
    }

    /// Every (device path, group) opened.
    pub fn opened(&self) -> Vec<(PathBuf, u32)> {
        lock(&self.0).opened.clone()
    }

    /// From now on opening fails with `msg`.
    pub fn fail(&self, msg: &str) {
        lock(&self.0).failure = Some(msg.to_string());
    }
}

impl Vfio for FakeVfio {
    fn prove(&self, sysfs_path: &Path, group: u32) -> Result<VfioProof, VfioFailure> {
        let mut st = lock(&self.0);
        if let Some(m) = &st.failure {
            return Err(m.clone().into());
        }
        st.opened.push((sysfs_path.to_path_buf(), group));
        let hex = |f: &str| -> Result<u16, VfioFailure> {
            let s = fs::read_to_string(sysfs_path.join(f))?;
            Ok(u16::from_str_radix(s.trim().trim_start_matches("0x"), 16)?)
        };
        Ok(VfioProof {
            group,
            vendor: hex("vendor")?,
            device: hex("device")?,
            regions: 4,
            bar0_size: 16384,
        })
    }
}
