//! SR-IOV: physical/virtual function discovery through sysfs, VF settings
//! over rtnetlink, vfio-pci binding and the VFIO hand-off to a VMM.
//!
//! Everything that touches the kernel sits behind a small seam so the
//! whole crate runs on a fake kernel in tests:
//! - [`Sysfs`]: sysfs under a configurable root, written through a
//!   [`SysfsWriter`] (the real one writes files; [`testing::FakeKernel`]
//!   plays the kernel's reaction to each write);
//! - [`VfLink`]: per-VF attributes on the PF (real: [`RtNetlink`], a
//!   synchronous rtnetlink socket; fake: [`testing::FakeLink`], which
//!   records every call);
//! - [`Vfio`]: opening a device through VFIO (real: [`KernelVfio`] on
//!   `vfio-ioctls`; fake: [`testing::FakeVfio`]).
//!
//! [`Sriov`] holds the three and does the work: discovery ([`Sriov::pf`]),
//! the VF count lifecycle ([`Sriov::set_num_vfs`]: a non-zero count goes
//! to 0 first, then the VFs are awaited), settings with read-back
//! ([`Sriov::configure`]: an attribute the driver does not support is a
//! warning in the outcome, a value that reads back differently a
//! mismatch), the vfio-pci hand-off ([`Sriov::bind_vfio`]: IOMMU group
//! viability naming the blocking device, then the VFIO proof), release
//! ([`Sriov::release`]) and the whole-PF reconcile ([`Sriov::apply_pf`]).
//!
//! Files: `manage/` is [`Sriov`], one job per file (`spec.rs` the wanted
//! state, `discover.rs`, `vf_count.rs`, `settings.rs`, `bind.rs` the
//! vfio-pci hand-off, `release.rs`, `reconcile.rs`, `report.rs` the
//! outcomes, `show.rs` and `attach.rs` the views); `sysfs.rs`,
//! `netlink.rs` and `vfio.rs` are the seams to the kernel, `pci.rs` PCI
//! addresses, `testing.rs` the fake kernel.
//!
//! Contents of sysfs are untrusted text: every value is parsed strictly and
//! a bad or missing one is an [`Error`] naming the file, never a panic.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod manage;
pub mod netlink;
pub mod pci;
pub mod sysfs;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod vfio;

#[cfg(test)]
mod tests;

pub use manage::{
    AttachInfo, Holder, PfInfo, PfReport, PfSpec, PfView, Sriov, VfInfo, VfOutcome, VfSpec, VfView,
    VlanSpec, release_settings,
};
pub use netlink::{LinkState, RtNetlink, VfLink, VfSetting, VfState, VlanProto};
pub use pci::{MacAddr, PciAddr};
pub use sysfs::{KernelWriter, Sysfs, SysfsError, SysfsWriter};
pub use vfio::{KernelVfio, Vfio, VfioProof};

/// The driver a VF is bound to for passthrough.
pub const VFIO_PCI: &str = "vfio-pci";

/// What went wrong, in terms the caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No network interface has that name.
    #[error("unknown PF `{pf}`: no network interface of that name")]
    UnknownPf {
        /// The name asked for.
        pf: String,
    },
    /// The interface is virtual (no PCI device behind it).
    #[error("`{pf}` is not a PCI network device, so it cannot be an SR-IOV PF")]
    NotPci {
        /// The interface.
        pf: String,
    },
    /// The PCI device has no SR-IOV capability.
    #[error("`{pf}` ({pci}) is not an SR-IOV physical function: it has no sriov_totalvfs")]
    NotSriov {
        /// The interface.
        pf: String,
        /// Its PCI address.
        pci: PciAddr,
    },
    /// More VFs asked for than the device has.
    #[error("{pf} supports at most {total} VFs (sriov_totalvfs), {requested} requested")]
    TooManyVfs {
        /// The PF.
        pf: String,
        /// The count asked for.
        requested: u16,
        /// `sriov_totalvfs`.
        total: u16,
    },
    /// The PF has no VF with that index.
    #[error("{pf} has no VF {index} (it has {num_vfs})")]
    UnknownVf {
        /// The PF.
        pf: String,
        /// The index asked for.
        index: u16,
        /// Its current VF count.
        num_vfs: u16,
    },
    /// A VF reference that names no VF.
    #[error("unknown VF `{0}`: expected PF/INDEX (like enp1s0f0/3) or a VF's PCI address")]
    UnknownVfRef(String),
    /// The kernel did not create the VFs in time.
    #[error("{pf}: {want} VFs requested, {seen} appeared within {waited_ms} ms")]
    VfsDidNotAppear {
        /// The PF.
        pf: String,
        /// VFs asked for.
        want: u16,
        /// `virtfn*` links found.
        seen: u16,
        /// How long we waited.
        waited_ms: u64,
    },
    /// The VF count cannot change under a VM.
    #[error("{pf}: the VF count cannot change while VF {index} ({pci}) is in use by {holder}")]
    CountInUse {
        /// The PF.
        pf: String,
        /// The VF in use.
        index: u16,
        /// Its PCI address.
        pci: PciAddr,
        /// Who has it open.
        holder: Holder,
    },
    /// A VF a VMM has open cannot be released or rebound.
    #[error("VF {pci} is in use by {holder}; stop the VM first")]
    InUse {
        /// The VF.
        pci: PciAddr,
        /// Who has it open.
        holder: Holder,
    },
    /// No IOMMU group: VFIO is impossible.
    #[error("VF {pci} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on)")]
    NoIommuGroup {
        /// The VF.
        pci: PciAddr,
    },
    /// Another device in the VF's IOMMU group has a host driver.
    #[error(
        "IOMMU group {group} of VF {pci} is not viable: {blocker} is bound to {driver} \
         (bind it to vfio-pci or unbind it)"
    )]
    GroupNotViable {
        /// The VF.
        pci: PciAddr,
        /// Its group.
        group: u32,
        /// The device that blocks the group.
        blocker: PciAddr,
        /// The blocker's driver.
        driver: String,
    },
    /// vfio-pci is not loaded.
    #[error("the vfio-pci driver is not loaded (modprobe vfio-pci)")]
    VfioPciMissing,
    /// After a bind, the VF has another driver than the one asked for.
    #[error("VF {pci} should be bound to {want} but is bound to {got}")]
    BindFailed {
        /// The VF.
        pci: PciAddr,
        /// The driver asked for.
        want: String,
        /// The driver it has (or "no driver").
        got: String,
    },
    /// A sysfs file could not be read, written or parsed.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    /// rtnetlink failed (not a per-attribute refusal: those are outcomes).
    #[error("{pf}: cannot {op} over rtnetlink")]
    Netlink {
        /// The PF.
        pf: String,
        /// What we tried.
        op: &'static str,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
    /// The VFIO proof failed after binding.
    #[error("VF {pci}: opening it through VFIO (container, group {group}, device) failed")]
    Vfio {
        /// The VF.
        pci: PciAddr,
        /// Its group.
        group: u32,
        /// What vfio-ioctls said.
        #[source]
        source: vfio::VfioFailure,
    },
}
