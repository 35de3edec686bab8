//! The manager on the fake kernel: every transition, every error message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::testing::{FakeKernel, FakeLink, FakeVfio};
use crate::*;

struct Env {
    _dir: tempfile::TempDir,
    kernel: FakeKernel,
    link: FakeLink,
    vfio: FakeVfio,
    proc_root: std::path::PathBuf,
    sriov: Sriov<FakeLink, FakeVfio>,
}

const PF: &str = "enp1s0";

fn pci(s: &str) -> PciAddr {
    s.parse().unwrap()
}

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

/// One igb PF `enp1s0` at 0000:01:00.0 with 7 VFs possible (igbvf).
fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    let proc_root = dir.path().join("proc");
    fs::create_dir_all(&proc_root).unwrap();
    let kernel = FakeKernel::new(&sys);
    kernel.add_pf(PF, pci("0000:01:00.0"), 7, Some("igbvf"));
    let link = FakeLink::new();
    let vfio = FakeVfio::new();
    let sriov = Sriov::new(kernel.sysfs(), link.clone(), vfio.clone())
        .with_proc_root(&proc_root)
        .with_timeout(Duration::from_millis(100));
    Env {
        _dir: dir,
        kernel,
        link,
        vfio,
        proc_root,
        sriov,
    }
}

impl Env {
    fn vfs(&mut self, n: u16) {
        self.sriov.set_num_vfs(PF, n).unwrap();
        self.link.set_vfs(PF, n);
    }

    /// A fake VMM process holding /dev/vfio/GROUP.
    fn hold(&self, pid: u32, group: u32) {
        let p = self.proc_root.join(pid.to_string());
        fs::create_dir_all(p.join("fd")).unwrap();
        fs::write(p.join("comm"), "qemu-system-x86\n").unwrap();
        symlink(format!("/dev/vfio/{group}"), p.join("fd/17")).unwrap();
        symlink("/dev/null", p.join("fd/0")).unwrap();
    }

    fn rel_writes(&self) -> Vec<String> {
        self.kernel
            .writes()
            .into_iter()
            .map(|(p, v)| format!("{p} <- {v}"))
            .collect()
    }
}

fn full_spec(index: u16) -> VfSpec {
    VfSpec {
        mac: Some(mac("02:00:00:00:00:01")),
        vlan: Some(VlanSpec {
            id: 100,
            qos: 3,
            proto: VlanProto::Dot1Q,
        }),
        spoof_check: false,
        trust: true,
        link_state: Some(LinkState::Enable),
        min_tx_rate_mbps: 0,
        max_tx_rate_mbps: 100,
        ..VfSpec::new(index)
    }
}

// ---- discovery ----

#[test]
fn discovers_the_pf_and_its_vfs() {
    let mut e = env();
    let pf = e.sriov.pf(PF).unwrap();
    assert_eq!(pf.pci, pci("0000:01:00.0"));
    assert_eq!((pf.total_vfs, pf.num_vfs), (7, 0));
    assert_eq!(pf.driver.as_deref(), Some("igb"));
    assert!(pf.vfs.is_empty());
    e.vfs(2);
    let pf = e.sriov.pf(PF).unwrap();
    assert_eq!(pf.num_vfs, 2);
    let vf1 = &pf.vfs[1];
    assert_eq!((vf1.index, vf1.pci), (1, pci("0000:01:10.1")));
    assert_eq!(vf1.driver.as_deref(), Some("igbvf"));
    assert!(vf1.netdev.as_deref().is_some_and(|n| n.starts_with("eth")));
    assert!(vf1.iommu_group.is_some());
    assert_ne!(pf.vfs[0].iommu_group, vf1.iommu_group);
    assert_eq!(vf1.name(), "enp1s0/1");

    // Only SR-IOV PFs are listed; a virtio NIC (device `virtio0`, not a
    // PCI address) is skipped without a warning.
    e.kernel.add_virtual_netdev("lo");
    e.kernel.add_virtio_netdev("ens3", "virtio0");
    assert_eq!(
        e.sriov.pf("ens3").unwrap_err().to_string(),
        "`ens3` is not a PCI network device, so it cannot be an SR-IOV PF"
    );
    e.kernel
        .add_device(pci("0000:02:00.0"), 0x10d3, 0x020000, Some("e1000e"), None);
    let names: Vec<String> = e.sriov.pfs().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, [PF]);
}

#[test]
fn discovery_errors() {
    let e = env();
    e.kernel.add_virtual_netdev("lo");
    e.kernel
        .add_device(pci("0000:02:00.0"), 0x10d3, 0x020000, Some("e1000e"), None);
    let plain = e
        .kernel
        .pfs_netdev_of(pci("0000:02:00.0"))
        .expect("e1000e has a netdev");
    let msg = |name: &str| e.sriov.pf(name).unwrap_err().to_string();
    assert_eq!(
        msg("enp9s0"),
        "unknown PF `enp9s0`: no network interface of that name"
    );
    assert_eq!(
        msg("../../etc"),
        "unknown PF `../../etc`: no network interface of that name"
    );
    assert_eq!(msg(""), "unknown PF ``: no network interface of that name");
    assert_eq!(
        msg("lo"),
        "`lo` is not a PCI network device, so it cannot be an SR-IOV PF"
    );
    assert_eq!(
        msg(&plain),
        format!(
            "`{plain}` (0000:02:00.0) is not an SR-IOV physical function: it has no sriov_totalvfs"
        )
    );
    assert_eq!(
        e.sriov.vf(PF, 3).unwrap_err().to_string(),
        "enp1s0 has no VF 3 (it has 0)"
    );
}

#[test]
fn find_vf_by_name_or_pci_address() {
    let mut e = env();
    e.vfs(3);
    assert_eq!(
        e.sriov.find_vf("enp1s0/2").unwrap().pci,
        pci("0000:01:10.2")
    );
    assert_eq!(e.sriov.find_vf("0000:01:10.1").unwrap().index, 1);
    for bad in ["enp1s0/x", "0000:01:11.0", "eth0", "enp1s0/"] {
        assert_eq!(
            e.sriov.find_vf(bad).unwrap_err().to_string(),
            format!(
                "unknown VF `{bad}`: expected PF/INDEX (like enp1s0f0/3) or a VF's PCI address"
            ),
        );
    }
    assert_eq!(
        e.sriov.find_vf("enp1s0/5").unwrap_err().to_string(),
        "enp1s0 has no VF 5 (it has 3)"
    );
}

// ---- the VF count ----

#[test]
fn num_vfs_lifecycle_goes_through_zero() {
    let mut e = env();
    assert_eq!(e.sriov.set_num_vfs(PF, 2).unwrap(), Some((0, 2)));
    assert_eq!(
        e.rel_writes(),
        ["bus/pci/devices/0000:01:00.0/sriov_numvfs <- 2"]
    );
    e.kernel.clear_writes();
    assert_eq!(e.sriov.set_num_vfs(PF, 2).unwrap(), None);
    assert!(e.kernel.writes().is_empty());
    assert_eq!(e.sriov.set_num_vfs(PF, 4).unwrap(), Some((2, 4)));
    assert_eq!(
        e.rel_writes(),
        [
            "bus/pci/devices/0000:01:00.0/sriov_numvfs <- 0",
            "bus/pci/devices/0000:01:00.0/sriov_numvfs <- 4"
        ]
    );
    assert_eq!(e.sriov.pf(PF).unwrap().vfs.len(), 4);
    e.kernel.clear_writes();
    assert_eq!(e.sriov.set_num_vfs(PF, 0).unwrap(), Some((4, 0)));
    assert_eq!(
        e.rel_writes(),
        ["bus/pci/devices/0000:01:00.0/sriov_numvfs <- 0"]
    );
    assert!(e.sriov.pf(PF).unwrap().vfs.is_empty());
}

#[test]
fn a_pf_that_is_up_gets_its_carrier_back_before_settings() {
    let mut e = env();
    let net = e
        .kernel
        .root()
        .join("devices/pci0000:00/0000:01:00.0/net/enp1s0");
    // Down: no wait at all.
    fs::write(net.join("flags"), "0x1002\n").unwrap();
    let t = std::time::Instant::now();
    e.sriov.set_num_vfs(PF, 1).unwrap();
    assert!(t.elapsed() < Duration::from_millis(90));
    // Up with carrier: no wait.
    fs::write(net.join("flags"), "0x1003\n").unwrap();
    fs::write(net.join("carrier"), "1\n").unwrap();
    let t = std::time::Instant::now();
    e.sriov.set_num_vfs(PF, 2).unwrap();
    assert!(t.elapsed() < Duration::from_millis(90));
    // Up without carrier: waits for it (bounded by the timeout), no error.
    fs::write(net.join("carrier"), "0\n").unwrap();
    let t = std::time::Instant::now();
    assert_eq!(e.sriov.set_num_vfs(PF, 3).unwrap(), Some((2, 3)));
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn num_vfs_errors() {
    let mut e = env();
    assert_eq!(
        e.sriov.set_num_vfs(PF, 8).unwrap_err().to_string(),
        "enp1s0 supports at most 7 VFs (sriov_totalvfs), 8 requested"
    );
    assert!(e.kernel.writes().is_empty());
    assert_eq!(
        e.sriov.set_num_vfs("nope0", 1).unwrap_err().to_string(),
        "unknown PF `nope0`: no network interface of that name"
    );

    // The kernel refuses (say, ENOMEM): the sysfs error names the file.
    e.kernel.fail_writes("sriov_numvfs", libc::ENOMEM);
    let err = e.sriov.set_num_vfs(PF, 2).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot write `2` to {}",
            e.kernel
                .root()
                .join("bus/pci/devices/0000:01:00.0/sriov_numvfs")
                .display()
        )
    );
    assert_eq!(
        std::error::Error::source(&err).map(|s| s.to_string()),
        Some(std::io::Error::from_raw_os_error(libc::ENOMEM).to_string())
    );
}

#[test]
fn vfs_that_never_appear_time_out() {
    let mut e = env();
    e.kernel.never_create_vfs();
    let err = e.sriov.set_num_vfs(PF, 2).unwrap_err().to_string();
    assert!(
        err.starts_with("enp1s0: 2 VFs requested, 0 appeared within 1"),
        "{err}"
    );
}

#[test]
fn the_count_does_not_change_under_a_vm() {
    let mut e = env();
    e.vfs(2);
    let vf = e.sriov.vf(PF, 1).unwrap();
    e.sriov.bind_vfio(&vf).unwrap();
    let g = vf.iommu_group.unwrap();
    e.hold(4242, g);
    assert_eq!(
        e.sriov.set_num_vfs(PF, 3).unwrap_err().to_string(),
        "enp1s0: the VF count cannot change while VF 1 (0000:01:10.1) is in use by pid 4242 (qemu-system-x86)"
    );
}

// ---- settings ----

#[test]
fn configure_applies_reads_back_and_reports_what_changed() {
    let mut e = env();
    e.vfs(2);
    let out = e.sriov.configure(PF, &full_spec(1)).unwrap();
    assert_eq!(
        out.change_lines(),
        [
            "enp1s0 VF 1: mac 02:00:00:00:00:01 (was mac 00:00:00:00:00:00)",
            "enp1s0 VF 1: vlan 100 qos 3 (was vlan 0)",
            "enp1s0 VF 1: spoof-check off (was spoof-check on)",
            "enp1s0 VF 1: trust on (was trust off)",
            "enp1s0 VF 1: link-state enable (was link-state auto)",
            "enp1s0 VF 1: rate min 0 max 100 Mbit/s (was rate min 0 max 0 Mbit/s)",
        ]
    );
    assert!(out.warning_lines().is_empty() && out.error_lines().is_empty());
    let s = out.state.unwrap();
    assert_eq!(
        (s.vlan, s.qos, s.trust, s.spoof_check),
        (100, 3, true, false)
    );
    assert_eq!(e.link.state(PF, 0), Some(VfState::unset(0)));

    // Applying the same spec again touches nothing.
    e.link.clear_calls();
    let again = e.sriov.configure(PF, &full_spec(1)).unwrap();
    assert!(e.link.calls().is_empty());
    assert!(again.change_lines().is_empty());

    // Drift (someone ran `ip link set ... vf 1 vlan 5`) is corrected alone.
    e.link.tamper(
        PF,
        1,
        VfSetting::Vlan {
            id: 5,
            qos: 0,
            proto: VlanProto::Dot1Q,
        },
    );
    let fixed = e.sriov.configure(PF, &full_spec(1)).unwrap();
    assert_eq!(
        fixed.change_lines(),
        ["enp1s0 VF 1: vlan 100 qos 3 (was vlan 5)"]
    );
    assert_eq!(e.link.calls().len(), 1);
}

#[test]
fn unsupported_refused_and_mismatched_attributes_are_per_vf_outcomes() {
    let mut e = env();
    e.vfs(1);
    e.link.unsupported("link-state");
    e.link.refuse("rate");
    e.link.ignore("trust");
    e.link.no_8021ad();
    let mut spec = full_spec(0);
    spec.vlan = Some(VlanSpec {
        id: 100,
        qos: 0,
        proto: VlanProto::Dot1Ad,
    });
    let out = e.sriov.configure(PF, &spec).unwrap();
    let eopnotsupp = std::io::Error::from_raw_os_error(libc::EOPNOTSUPP);
    let eproto = std::io::Error::from_raw_os_error(libc::EPROTONOSUPPORT);
    let einval = std::io::Error::from_raw_os_error(libc::EINVAL);
    assert_eq!(
        out.warning_lines(),
        [
            format!("enp1s0 VF 0: link-state enable: not supported by the driver ({eopnotsupp})"),
            "enp1s0 VF 0: trust on: reads back as trust off".to_string(),
        ]
    );
    // A VLAN the driver cannot apply is an error: the VF is not isolated.
    assert_eq!(
        out.error_lines(),
        [
            format!(
                "enp1s0 VF 0: vlan 100 proto 802.1ad: not supported by the driver ({eproto}); \
                 the VF is not in that VLAN"
            ),
            format!("enp1s0 VF 0: rate min 0 max 100 Mbit/s: refused by the driver ({einval})"),
        ]
    );
    // The rest was applied.
    assert_eq!(
        out.change_lines(),
        [
            "enp1s0 VF 0: mac 02:00:00:00:00:01 (was mac 00:00:00:00:00:00)",
            "enp1s0 VF 0: spoof-check off (was spoof-check on)",
            "enp1s0 VF 0: trust on (was trust off)",
        ]
    );
}

#[test]
fn a_vf_the_driver_does_not_report_cannot_be_read_back() {
    let mut e = env();
    e.vfs(2);
    e.link.hide(1);
    let out = e.sriov.configure(PF, &VfSpec::new(1)).unwrap();
    assert_eq!(
        out.warning_lines(),
        ["enp1s0 VF 1: cannot read back: enp1s0 reports no VF 1"]
    );
}

#[test]
fn netlink_failure_is_an_error_naming_the_pf() {
    let mut e = env();
    e.vfs(1);
    // The fake link knows no PF "enp1s0" until told: ENODEV on read.
    let mut other = Sriov::new(e.kernel.sysfs(), FakeLink::new(), FakeVfio::new());
    let err = other.configure(PF, &VfSpec::new(0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "enp1s0: cannot read VF settings over rtnetlink"
    );
    let _ = &mut e;
}

// ---- vfio-pci ----

#[test]
fn bind_vfio_unbinds_overrides_probes_and_proves() {
    let mut e = env();
    e.vfs(2);
    let vf = e.sriov.vf(PF, 1).unwrap();
    e.kernel.clear_writes();
    let (change, proof) = e.sriov.bind_vfio(&vf).unwrap();
    assert_eq!(change.as_deref(), Some("igbvf -> vfio-pci"));
    assert_eq!(
        e.rel_writes(),
        [
            "bus/pci/devices/0000:01:10.1/driver_override <- vfio-pci",
            "bus/pci/drivers/igbvf/unbind <- 0000:01:10.1",
            "bus/pci/drivers_probe <- 0000:01:10.1",
        ]
    );
    assert_eq!(e.kernel.driver_of(vf.pci).as_deref(), Some("vfio-pci"));
    assert_eq!((proof.vendor, proof.device), (0x8086, 0x10ca));
    assert_eq!(proof.group, vf.iommu_group.unwrap());
    assert_eq!(
        e.vfio.opened(),
        [(
            e.kernel.root().join("bus/pci/devices/0000:01:10.1"),
            proof.group
        )]
    );
    // Bound already: no writes, proven again.
    e.kernel.clear_writes();
    let vf = e.sriov.vf(PF, 1).unwrap();
    assert_eq!(e.sriov.bind_vfio(&vf).unwrap().0, None);
    assert!(e.kernel.writes().is_empty());
}

#[test]
fn a_group_with_a_host_driver_is_not_viable_and_names_the_device() {
    let mut e = env();
    e.vfs(1);
    let vf = e.sriov.vf(PF, 0).unwrap();
    let g = vf.iommu_group.unwrap();
    // A bridge in the group is fine; a NIC bound to e1000e is not.
    e.kernel.add_device(
        pci("0000:00:1c.0"),
        0x1234,
        0x060400,
        Some("pcieport"),
        Some(g),
    );
    e.kernel
        .add_device(pci("0000:00:1f.6"), 0x15b8, 0x020000, None, Some(g));
    e.sriov.check_group(&vf).unwrap();
    e.kernel.bind(pci("0000:00:1f.6"), "e1000e");
    e.kernel.clear_writes();
    assert_eq!(
        e.sriov.bind_vfio(&vf).unwrap_err().to_string(),
        format!(
            "IOMMU group {g} of VF 0000:01:10.0 is not viable: 0000:00:1f.6 is bound to e1000e \
             (bind it to vfio-pci or unbind it)"
        )
    );
    // Nothing was touched: the VF keeps its host driver.
    assert!(e.kernel.writes().is_empty());
    assert_eq!(e.kernel.driver_of(vf.pci).as_deref(), Some("igbvf"));
    // Once the other device is on vfio-pci, the group is viable.
    e.kernel.bind(pci("0000:00:1f.6"), "vfio-pci");
    e.sriov.bind_vfio(&vf).unwrap();
}

#[test]
fn vfio_errors() {
    let mut e = env();
    e.vfs(2);
    let vf = e.sriov.vf(PF, 0).unwrap();

    e.kernel.remove_driver("vfio-pci");
    assert_eq!(
        e.sriov.bind_vfio(&vf).unwrap_err().to_string(),
        "the vfio-pci driver is not loaded (modprobe vfio-pci)"
    );
    e.kernel.add_driver("vfio-pci");

    let mut no_group = vf.clone();
    no_group.iommu_group = None;
    assert_eq!(
        e.sriov.bind_vfio(&no_group).unwrap_err().to_string(),
        "VF 0000:01:10.0 has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on)"
    );

    e.vfio.fail("group is not viable");
    let err = e.sriov.bind_vfio(&vf).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "VF 0000:01:10.0: opening it through VFIO (container, group {}, device) failed",
            vf.iommu_group.unwrap()
        )
    );
    assert_eq!(
        std::error::Error::source(&err).map(|s| s.to_string()),
        Some("group is not viable".to_string())
    );

    // vfio-pci refuses the probe: the VF goes back to its host driver.
    let vf1 = e.sriov.vf(PF, 1).unwrap();
    e.kernel.fail_writes("drivers_probe", libc::ENODEV);
    let err = e.sriov.bind_vfio(&vf1).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "cannot write `0000:01:10.1` to {}",
            e.kernel.root().join("bus/pci/drivers_probe").display()
        )
    );
    assert_eq!(
        fs::read_to_string(e.kernel.device_dir(vf1.pci).join("driver_override")).unwrap(),
        "(null)\n"
    );
    e.kernel.clear_failures();
    e.kernel.bind(vf1.pci, "igbvf");

    // The override is ignored: the host driver takes the VF back.
    let vf1 = e.sriov.vf(PF, 1).unwrap();
    e.kernel.ignore_writes("driver_override");
    assert_eq!(
        e.sriov.bind_vfio(&vf1).unwrap_err().to_string(),
        "VF 0000:01:10.1 should be bound to vfio-pci but is bound to igbvf"
    );
}

// ---- release ----

#[test]
fn release_resets_everything_and_rebinds_the_host_driver() {
    let mut e = env();
    e.vfs(2);
    e.sriov.configure(PF, &full_spec(1)).unwrap();
    let vf = e.sriov.vf(PF, 1).unwrap();
    e.sriov.bind_vfio(&vf).unwrap();
    let vf = e.sriov.vf(PF, 1).unwrap();
    e.kernel.clear_writes();
    let out = e.sriov.release(&vf, None).unwrap();
    assert_eq!(
        e.link.state(PF, 1),
        Some(VfState::unset(1)).map(|mut s| {
            s.vlan_proto = Some(VlanProto::Dot1Q);
            s
        })
    );
    assert_eq!(
        out.change_lines(),
        [
            "enp1s0 VF 1: mac 00:00:00:00:00:00 (was mac 02:00:00:00:00:01)",
            "enp1s0 VF 1: vlan 0 (was vlan 100 qos 3)",
            "enp1s0 VF 1: spoof-check on (was spoof-check off)",
            "enp1s0 VF 1: trust off (was trust on)",
            "enp1s0 VF 1: rate min 0 max 0 Mbit/s (was rate min 0 max 100 Mbit/s)",
            "enp1s0 VF 1: link-state auto (was link-state enable)",
            "enp1s0 VF 1: vfio-pci -> igbvf",
        ]
    );
    assert_eq!(
        e.rel_writes(),
        [
            "bus/pci/devices/0000:01:10.1/driver_override <- ",
            "bus/pci/drivers/vfio-pci/unbind <- 0000:01:10.1",
            "bus/pci/drivers_probe <- 0000:01:10.1",
        ]
    );
    assert_eq!(e.kernel.driver_of(vf.pci).as_deref(), Some("igbvf"));

    // Released with a default MAC; every setting is written even when
    // it already reads back right (the read-back may lie); link state
    // "auto" only when it differs.
    e.link.clear_calls();
    let vf = e.sriov.vf(PF, 1).unwrap();
    let out = e
        .sriov
        .release(&vf, Some(mac("02:00:00:00:99:01")))
        .unwrap();
    assert_eq!(e.link.calls().len(), 5);
    assert_eq!(e.link.state(PF, 1).unwrap().mac, mac("02:00:00:00:99:01"));
    assert!(out.driver.is_empty());
}

#[test]
fn release_refuses_a_vf_a_vm_holds() {
    let mut e = env();
    e.vfs(1);
    let vf = e.sriov.vf(PF, 0).unwrap();
    e.sriov.bind_vfio(&vf).unwrap();
    e.hold(77, vf.iommu_group.unwrap());
    let vf = e.sriov.vf(PF, 0).unwrap();
    e.link.clear_calls();
    assert_eq!(
        e.sriov.release(&vf, None).unwrap_err().to_string(),
        "VF 0000:01:10.0 is in use by pid 77 (qemu-system-x86); stop the VM first"
    );
    assert!(e.link.calls().is_empty());
    let view = e.sriov.show(&[PF.to_string()]);
    assert_eq!(view[0].vfs[0].owner, "vfio-pci (pid 77 (qemu-system-x86))");
}

// ---- the whole PF ----

#[test]
fn apply_pf_reconciles_count_settings_and_drivers() {
    let mut e = env();
    e.link.set_vfs(PF, 3);
    e.link.unsupported("link-state");
    let mut vf2 = full_spec(2);
    vf2.vfio = true;
    vf2.mac = Some(mac("02:00:00:00:00:02"));
    let spec = PfSpec {
        pf: PF.to_string(),
        num_vfs: 3,
        vfs: vec![full_spec(0), vf2],
    };
    let r = e.sriov.apply_pf(&spec);
    assert_eq!(r.num_vfs, Some((0, 3)));
    assert!(r.error_lines().is_empty(), "{:?}", r.error_lines());
    let changes = r.change_lines();
    assert_eq!(changes[0], "enp1s0: VFs 0 -> 3");
    assert!(changes.contains(&"enp1s0 VF 2: igbvf -> vfio-pci".to_string()));
    assert_eq!(r.warning_lines().len(), 2);
    assert!(r.vfs[1].vfio.is_some());

    // Again: nothing changes, the unsupported link state still warns.
    let again = e.sriov.apply_pf(&spec);
    assert_eq!(again.change_lines(), Vec::<String>::new());
    assert_eq!(again.warning_lines().len(), 2);

    // VF 2 no longer wants vfio: back to the host driver.
    let mut spec2 = spec.clone();
    spec2.vfs[1].vfio = false;
    let r = e.sriov.apply_pf(&spec2);
    assert_eq!(r.change_lines(), ["enp1s0 VF 2: vfio-pci -> igbvf"]);

    // Errors of the PF as a whole end up in the report.
    let bad = PfSpec {
        pf: PF.to_string(),
        num_vfs: 9,
        vfs: vec![],
    };
    assert_eq!(
        e.sriov.apply_pf(&bad).error_lines(),
        ["enp1s0 supports at most 7 VFs (sriov_totalvfs), 9 requested"]
    );
    let unknown = PfSpec {
        pf: "ens9".to_string(),
        num_vfs: 1,
        vfs: vec![],
    };
    assert_eq!(
        e.sriov.apply_pf(&unknown).error_lines(),
        ["unknown PF `ens9`: no network interface of that name"]
    );
}

#[test]
fn a_non_viable_group_is_a_vf_error_in_the_report() {
    let mut e = env();
    e.link.set_vfs(PF, 1);
    let mut vf = VfSpec::new(0);
    vf.vfio = true;
    let spec = PfSpec {
        pf: PF.to_string(),
        num_vfs: 1,
        vfs: vec![vf],
    };
    e.sriov.set_num_vfs(PF, 1).unwrap();
    let g = e.sriov.vf(PF, 0).unwrap().iommu_group.unwrap();
    e.kernel
        .add_device(pci("0000:03:00.0"), 0x1533, 0x020000, Some("igb"), Some(g));
    let r = e.sriov.apply_pf(&spec);
    assert_eq!(
        r.error_lines(),
        [format!(
            "enp1s0 VF 0: IOMMU group {g} of VF 0000:01:10.0 is not viable: 0000:03:00.0 is bound \
             to igb (bind it to vfio-pci or unbind it)"
        )]
    );
}

// ---- views ----

#[test]
fn attach_info_gives_qemu_and_libvirt() {
    let mut e = env();
    e.vfs(2);
    let vf = e.sriov.vf(PF, 1).unwrap();
    let info = e.sriov.attach_info(&vf);
    assert!(!info.ready);
    assert_eq!(
        info.problem.as_deref(),
        Some("bound to igbvf, not vfio-pci: set `vfio: true` on the VF in the config")
    );
    e.sriov.bind_vfio(&vf).unwrap();
    let vf = e.sriov.vf(PF, 1).unwrap();
    let info = e.sriov.attach_info(&vf);
    assert!(info.ready && info.problem.is_none());
    assert_eq!(info.vf, "enp1s0/1");
    assert_eq!(info.qemu, "-device vfio-pci,host=0000:01:10.1");
    assert_eq!(
        info.libvirt,
        "<hostdev mode='subsystem' type='pci' managed='no'>\n  <source>\n    \
         <address domain='0x0000' bus='0x01' slot='0x10' function='0x1'/>\n  </source>\n</hostdev>"
    );
    assert_eq!(
        info.vfio_group,
        Some(format!("/dev/vfio/{}", vf.iommu_group.unwrap()))
    );
    // A VM holds the group: not ready, and who holds it (issue 23: it
    // said "ready for a VM").
    e.hold(77, vf.iommu_group.unwrap());
    let info = e.sriov.attach_info(&vf);
    assert!(!info.ready);
    assert_eq!(info.holder.as_deref(), Some("pid 77 (qemu-system-x86)"));
    assert_eq!(
        info.problem.as_deref(),
        Some("in use by pid 77 (qemu-system-x86): its VFIO group is open")
    );
}

#[test]
fn show_reports_settings_drivers_groups_and_owners() {
    let mut e = env();
    e.vfs(2);
    e.sriov.configure(PF, &full_spec(0)).unwrap();
    let vf1 = e.sriov.vf(PF, 1).unwrap();
    e.sriov.bind_vfio(&vf1).unwrap();
    let v = e.sriov.show(&[PF.to_string(), "gone0".to_string()]);
    assert_eq!(v.len(), 2);
    assert_eq!((v[0].total_vfs, v[0].num_vfs), (7, 2));
    assert!(v[0].vfs[0].owner.starts_with("host (igbvf, eth"));
    assert_eq!(v[0].vfs[1].owner, "vfio-pci (free)");
    assert_eq!(v[0].vfs[0].settings.as_ref().unwrap().vlan, 100);
    assert_eq!(
        v[1].error.as_deref(),
        Some("unknown PF `gone0`: no network interface of that name")
    );
}

// ---- untrusted sysfs ----

fn write_attr(root: &Path, rel: &str, text: &[u8]) {
    fs::write(root.join(rel), text).unwrap();
}

#[test]
fn garbage_in_sysfs_is_a_clear_error() {
    let e = env();
    let root = e.kernel.root().to_path_buf();
    let dev = "devices/pci0000:00/0000:01:00.0";
    write_attr(&root, &format!("{dev}/sriov_totalvfs"), b"seven\n");
    assert_eq!(
        e.sriov.pf(PF).unwrap_err().to_string(),
        format!(
            "{}: `seven` is not a VF count",
            root.join("bus/pci/devices/0000:01:00.0/sriov_totalvfs")
                .display()
        )
    );
    write_attr(&root, &format!("{dev}/sriov_totalvfs"), b"70000");
    assert!(e.sriov.pf(PF).is_err());
    write_attr(&root, &format!("{dev}/sriov_totalvfs"), b"7");
    fs::remove_file(root.join(format!("{dev}/sriov_numvfs"))).unwrap();
    assert_eq!(
        e.sriov.pf(PF).unwrap_err().to_string(),
        format!(
            "cannot read {}",
            root.join("bus/pci/devices/0000:01:00.0/sriov_numvfs")
                .display()
        )
    );
    write_attr(&root, &format!("{dev}/sriov_numvfs"), b"0");
    symlink("../../../bogus", root.join(format!("{dev}/virtfn0"))).unwrap();
    assert_eq!(
        e.sriov.pf(PF).unwrap_err().to_string(),
        format!(
            "{}: `bogus` is not a link to a PCI device",
            root.join("bus/pci/devices/0000:01:00.0/virtfn0").display()
        )
    );
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever bytes the attributes hold and wherever the links
        /// point, discovery and reconcile return, never panic.
        #[test]
        fn any_sysfs_contents(
            total in proptest::collection::vec(any::<u8>(), 0..12),
            numvfs in proptest::collection::vec(any::<u8>(), 0..12),
            group in "[0-9a-z./]{0,12}",
            virtfn in "[0-9a-f:./x]{1,16}",
            nvfs in 0u16..4,
        ) {
            let mut e = env();
            e.vfs(nvfs);
            // Garbage makes VFs "never appear": keep those waits short.
            e.sriov = Sriov::new(e.kernel.sysfs(), e.link.clone(), e.vfio.clone())
                .with_proc_root(&e.proc_root)
                .with_timeout(Duration::from_millis(5));
            let root = e.kernel.root().to_path_buf();
            let dev = root.join("devices/pci0000:00/0000:01:00.0");
            fs::write(dev.join("sriov_totalvfs"), &total).unwrap();
            fs::write(dev.join("sriov_numvfs"), &numvfs).unwrap();
            if nvfs > 0 {
                let vf = root.join("devices/pci0000:00/0000:01:10.0");
                let _ = fs::remove_file(vf.join("iommu_group"));
                let _ = symlink(format!("../{group}"), vf.join("iommu_group"));
            }
            let _ = symlink(virtfn, dev.join("virtfn5"));
            let _ = e.sriov.pf(PF);
            let _ = e.sriov.pfs();
            let _ = e.sriov.find_vf("enp1s0/0");
            let _ = e.sriov.show(&[PF.to_string()]);
            let mut spec = full_spec(0);
            spec.vfio = true;
            let _ = e.sriov.apply_pf(&PfSpec { pf: PF.to_string(), num_vfs: 2, vfs: vec![spec] });
        }
    }
}
